/**
 * The `etcd3` npm client, unchanged, against a real 3-node cluster (`flotilla cluster
 * start`): KV, transactions, watches, leases with keep-alive, its lock and STM recipes built
 * on them, and etcd's compacted error. Clients talk to every member (the client balances
 * across hosts) or to one member at a time.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { Etcd3, EtcdLockFailedError, type IKeyValue, type Lease, type Watcher } from 'etcd3';
import { until } from './support/http.js';
import { type LocalCluster, startLocalCluster } from './support/local-cluster.js';

let cluster: LocalCluster;
/** A client of every member. */
let client: Etcd3;
/** A client of each member alone, in node order. */
let members: Etcd3[] = [];
/** Every live watcher a test created, canceled at the end whatever happened. */
const watchers: Watcher[] = [];

function track(watcher: Watcher): Watcher {
  watchers.push(watcher);
  return watcher;
}

before(async () => {
  cluster = await startLocalCluster(3);
  client = new Etcd3({ hosts: cluster.nodes.map((n) => `http://${n.grpcEndpoint}`) });
  members = cluster.nodes.map((n) => new Etcd3({ hosts: `http://${n.grpcEndpoint}` }));
});

after(async () => {
  // A watcher left open would make the closed client reconnect forever.
  await Promise.race([
    Promise.allSettled(watchers.map((w) => w.cancel())),
    new Promise((resolve) => setTimeout(resolve, 3000)),
  ]);
  client?.close();
  for (const member of members) member.close();
  await cluster?.destroy();
});

/** One watch event as the test records it. */
type Seen = readonly [type: 'put' | 'delete', key: string, value: string, previous: string | undefined];

/** Records a watcher's events. */
function record(watcher: Watcher): Seen[] {
  const seen: Seen[] = [];
  watcher.on('put', (kv: IKeyValue, previous?: IKeyValue) =>
    seen.push(['put', kv.key.toString(), kv.value.toString(), previous?.value.toString()]),
  );
  watcher.on('delete', (kv: IKeyValue, previous?: IKeyValue) =>
    seen.push(['delete', kv.key.toString(), kv.value.toString(), previous?.value.toString()]),
  );
  return seen;
}

describe('etcd3 client against flotilla cluster start', () => {
  test('put, get, getAll with a prefix, delete, through every member', async () => {
    for (const [i, member] of members.entries()) await member.put(`kv/${i}`).value(`v${i}`);
    for (const [i, member] of members.entries()) {
      assert.equal(
        await member.get(`kv/${(i + 1) % members.length}`).string(),
        `v${(i + 1) % members.length}`,
      );
    }
    assert.deepEqual(await client.getAll().prefix('kv/').strings(), {
      'kv/0': 'v0',
      'kv/1': 'v1',
      'kv/2': 'v2',
    });
    assert.deepEqual(await client.getAll().prefix('kv/').keys(), ['kv/0', 'kv/1', 'kv/2']);
    assert.equal(await client.getAll().prefix('kv/').count(), 3);
    assert.deepEqual(await client.getAll().prefix('kv/').sort('Value', 'Descend').limit(2).keys(), [
      'kv/2',
      'kv/1',
    ]);
    assert.equal(await client.get('kv/none').string(), null);

    const put = await members[1]!.put('kv/1').value('again').getPrevious();
    assert.equal(put?.value.toString(), 'v1');
    const json = await client.get('kv/1').exec();
    assert.equal(json.kvs[0]?.version, '2');
    assert.equal(json.count, '1');

    const deleted = await members[2]!.delete().key('kv/0').getPrevious();
    assert.deepEqual(
      deleted.map((kv) => kv.key.toString()),
      ['kv/0'],
    );
    const range = await client.delete().prefix('kv/').exec();
    assert.equal(range.deleted, '2');
    assert.deepEqual(await client.getAll().prefix('kv/').strings(), {});
  });

  test('txn with client.if(...).then(...).else(...) on value, version, mod and create', async () => {
    await members[0]!.put('txn/k').value('1');
    const won = await members[1]!
      .if('txn/k', 'Value', '==', '1')
      .and('txn/k', 'Version', '>', 0)
      .and('txn/missing', 'Create', '==', 0)
      .then(client.put('txn/k').value('2'), client.get('txn/k'))
      .else(client.put('txn/lost').value('x'))
      .commit();
    assert.equal(won.succeeded, true);
    assert.deepEqual(
      // The oneof's discriminator (the client loads the proto with `oneofs`), not in its types.
      won.responses.map((r) => (r as { response?: string }).response),
      ['response_put', 'response_range'],
    );
    assert.equal(won.responses[1]?.response_range?.kvs[0]?.value.toString(), '2');

    const modRevision = (await client.get('txn/k').exec()).kvs[0]!.mod_revision;
    const lost = await members[2]!
      .if('txn/k', 'Mod', '<', modRevision)
      .then(client.put('txn/k').value('never'))
      .else(client.delete().key('txn/k'), client.get('txn/k'))
      .commit();
    assert.equal(lost.succeeded, false);
    assert.equal(lost.responses[0]?.response_delete_range?.deleted, '1');
    assert.deepEqual(lost.responses[1]?.response_range?.kvs, []);
    assert.equal(await client.get('txn/lost').string(), null);
  });

  test('watch builder: events in order with previous kvs, single key, from a start revision', async () => {
    const prefix = track(await members[2]!.watch().prefix('w/').withPreviousKV().create());
    const single = track(await members[0]!.watch().key('w/a').create());
    const prefixSeen = record(prefix);
    const singleSeen = record(single);
    const start = Number((await members[1]!.put('w/a').value('1').exec()).header.revision);
    await members[2]!.put('w/b').value('2');
    await members[0]!.put('w/a').value('3');
    await members[1]!.delete().prefix('w/');
    await client
      .if('w/a', 'Create', '==', 0)
      .then(client.put('w/a').value('t'), client.put('w/c').value('t'))
      .commit();

    const expected: Seen[] = [
      ['put', 'w/a', '1', undefined],
      ['put', 'w/b', '2', undefined],
      ['put', 'w/a', '3', '1'],
      ['delete', 'w/a', '', '3'],
      ['delete', 'w/b', '', '2'],
      ['put', 'w/a', 't', undefined],
      ['put', 'w/c', 't', undefined],
    ];
    await until('every event at the prefix watcher', 10_000, () =>
      prefixSeen.length >= expected.length ? true : undefined,
    );
    assert.deepEqual(prefixSeen, expected);
    await until('every event at the single-key watcher', 10_000, () =>
      singleSeen.length >= 4 ? true : undefined,
    );
    assert.deepEqual(
      singleSeen.map(([type, key, value]) => [type, key, value]),
      [
        ['put', 'w/a', '1'],
        ['put', 'w/a', '3'],
        ['delete', 'w/a', ''],
        ['put', 'w/a', 't'],
      ],
    );

    // The same history replayed from a start revision, through another member. Listeners go
    // on before the watch connects: replayed events may arrive right after it is created.
    const replay = track(members[1]!.watch().prefix('w/').startRevision(String(start)).watcher());
    const replaySeen = record(replay);
    await until('the replay', 10_000, () => (replaySeen.length >= expected.length ? true : undefined));
    assert.deepEqual(
      replaySeen,
      expected.map(([type, key, value]) => [type, key, value, undefined]),
    );
  });

  test('lease: grant, keys attached, keep-alive outlives the TTL, revoke deletes the keys', async () => {
    const lease: Lease = members[1]!.lease(2);
    await lease.put('lease/a').value('a');
    await lease.put('lease/b').value('b');
    const id = await lease.grant();
    const ttl = await client.leaseClient.leaseTimeToLive({ ID: id, keys: true });
    assert.equal(ttl.grantedTTL, '2');
    assert.deepEqual(
      ttl.keys.map((k) => k.toString()),
      ['lease/a', 'lease/b'],
    );
    const leases = await client.leaseClient.leaseLeases();
    assert.ok(leases.leases.some((l) => l.ID === id));

    // Automatic keep-alives (every TTL/3) hold the keys well past the TTL.
    let renewals = 0;
    lease.on('keepaliveSucceeded', () => renewals++);
    await new Promise((resolve) => setTimeout(resolve, 3500));
    assert.ok(renewals >= 2, `${renewals} keep-alives`);
    assert.equal(await client.get('lease/a').string(), 'a');
    const once = await lease.keepaliveOnce();
    assert.equal(once.TTL, '2');

    await lease.revoke();
    assert.deepEqual(await client.getAll().prefix('lease/').keys(), []);
    const gone = await client.leaseClient.leaseTimeToLive({ ID: id });
    assert.equal(gone.TTL, '-1');
  });

  test('lease without keep-alive: its keys go when the TTL runs out', async () => {
    const lease = members[2]!.lease(1, { autoKeepAlive: false });
    await lease.put('expiring').value('x');
    const lost = new Promise((resolve) => lease.once('lost', resolve));
    await until('the lease to expire', 10_000, async () =>
      (await client.get('expiring').string()) === null ? true : undefined,
    );
    // A keep-alive of the expired lease gets TTL 0, which the client reports as lost.
    await assert.rejects(lease.keepaliveOnce(), /EtcdLeaseInvalidError|lease/i);
    await lost;
  });

  test('lock and STM recipes (lease + create-revision and mod-revision compares)', async () => {
    const first = members[0]!.lock('recipes/lock').ttl(5);
    await first.acquire();
    await assert.rejects(members[1]!.lock('recipes/lock').ttl(5).acquire(), EtcdLockFailedError);
    await first.release();
    const second = members[1]!.lock('recipes/lock').ttl(5);
    await second.acquire();
    await second.release();

    await client.put('recipes/counter').value('0');
    await Promise.all(
      members.map((member) =>
        member.stm({ retries: 20 }).transact(async (tx) => {
          const value = Number(await tx.get('recipes/counter').string());
          await tx.put('recipes/counter').value(String(value + 1));
        }),
      ),
    );
    assert.equal(await client.get('recipes/counter').string(), '3');
  });

  test('compaction: reads and watches below it fail with the compacted error', async () => {
    const old = Number((await client.put('compact/k').value('old').exec()).header.revision);
    const current = Number((await client.put('compact/k').value('new').exec()).header.revision);
    await members[0]!.kv.compact({ revision: String(current), physical: true });
    await assert.rejects(
      members[1]!.get('compact/k').revision(old).string(),
      /etcdserver: mvcc: required revision has been compacted/,
    );
    assert.equal(await members[2]!.get('compact/k').revision(current).string(), 'new');

    // Not create(): the error may come right after the watch is created, before create() resolves.
    const watcher = members[2]!.watch().key('compact/k').startRevision(String(old)).watcher();
    const error = await new Promise<Error>((resolve) => watcher.once('error', resolve));
    assert.match(error.message, /etcdserver: mvcc: required revision has been compacted/);
  });
});
