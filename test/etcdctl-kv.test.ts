/**
 * The real `etcdctl` (3.4) against a real 3-node cluster (`flotilla cluster start`): its
 * output for put, get (every option), del, txn (piped and interactive), watch (a child
 * process), compaction, leases and etcd's error messages must be what etcd gives. Writes go
 * through every member in turn (followers forward them), reads through others.
 */
import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import { after, before, describe, test } from 'node:test';
import { until } from './support/http.js';
import {
  type EtcdctlResult,
  etcdctl,
  type LocalCluster,
  startLocalCluster,
} from './support/local-cluster.js';

let cluster: LocalCluster;
/** Each member's endpoint, in node order. */
let endpoint: string[] = [];
const watchers: ChildProcess[] = [];

before(async () => {
  cluster = await startLocalCluster(3);
  endpoint = cluster.nodes.map((n) => n.grpcEndpoint);
});

after(async () => {
  for (const child of watchers) if (child.exitCode === null) child.kill('SIGKILL');
  await cluster?.destroy();
});

/** etcdctl against `at` (default: every member); asserts success and returns stdout. */
async function ok(args: readonly string[], at = cluster.endpoints, input?: string): Promise<string> {
  const result = await etcdctl(at, args, input === undefined ? {} : { input });
  assert.equal(result.code, 0, `etcdctl ${args.join(' ')} failed:\n${result.stderr}`);
  return result.stdout;
}

/** etcdctl expected to fail; returns its result. */
async function fails(
  args: readonly string[],
  at = cluster.endpoints,
  input?: string,
): Promise<EtcdctlResult> {
  const result = await etcdctl(at, args, input === undefined ? {} : { input });
  assert.notEqual(result.code, 0, `etcdctl ${args.join(' ')} succeeded:\n${result.stdout}`);
  return result;
}

/** etcdctl's simple output as lines (without the final newline). */
function lines(text: string): string[] {
  return text.replace(/\n$/, '').split('\n');
}

interface JsonHeader {
  cluster_id: number;
  member_id: number;
  revision: number;
  raft_term: number;
}

interface JsonKv {
  key: string;
  value?: string;
  create_revision: number;
  mod_revision: number;
  version: number;
  lease?: number;
}

interface GetJson {
  header: JsonHeader;
  kvs?: JsonKv[];
  more?: boolean;
  count?: number;
}

function b64(text: string): string {
  return Buffer.from(text).toString('base64');
}

/**
 * The events `etcdctl watch` printed, one array of lines each (type, [prev key, prev value,]
 * key, value), without the sentinel writes that showed the watch was established.
 */
function events(output: string): string[][] {
  const all: string[][] = [];
  for (const line of lines(output)) {
    if (line === 'PUT' || line === 'DELETE') all.push([line]);
    else all.at(-1)?.push(line);
  }
  return all.filter((event) => event.at(-1) !== 'sentinel');
}

/** The current revision, as a member's `get -w json` header says it. */
async function revision(at = endpoint[0]!): Promise<number> {
  return (JSON.parse(await ok(['get', 'no-such-key', '-w', 'json'], at)) as GetJson).header.revision;
}

/** `etcdctl watch` as a child process; its stdout accumulates in `output()`. */
function watch(args: readonly string[], at = cluster.endpoints) {
  const child = spawn('etcdctl', [`--endpoints=${at}`, 'watch', ...args], {
    env: { ...process.env, ETCDCTL_API: '3' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  watchers.push(child);
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d: Buffer) => {
    stdout += d.toString();
  });
  child.stderr.on('data', (d: Buffer) => {
    stderr += d.toString();
  });
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  return {
    output: () => stdout,
    errors: () => stderr,
    exited,
    /** Waits until stdout holds `text`. */
    seen: (text: string, timeoutMs = 10_000) =>
      until(`etcdctl watch ${args.join(' ')} to print ${JSON.stringify(text)}`, timeoutMs, () =>
        stdout.includes(text) ? true : undefined,
      ),
    stop: async () => {
      child.kill('SIGTERM');
      await exited;
    },
  };
}

describe('etcdctl against flotilla cluster start', () => {
  test('put and get through every member; get -w json carries etcd header fields', async () => {
    for (const [i, at] of endpoint.entries()) {
      assert.equal(await ok(['put', `basic/k${i}`, `v${i}`], at), 'OK\n');
    }
    // Read each key through a different member than the one that wrote it.
    for (const i of endpoint.keys()) {
      const reader = endpoint[(i + 1) % endpoint.length]!;
      assert.deepEqual(lines(await ok(['get', `basic/k${i}`], reader)), [`basic/k${i}`, `v${i}`]);
    }
    assert.deepEqual(lines(await ok(['get', 'basic/', '--prefix'])), [
      'basic/k0',
      'v0',
      'basic/k1',
      'v1',
      'basic/k2',
      'v2',
    ]);
    assert.equal(await ok(['get', 'basic/missing']), '');

    const cluster0 = (await (await fetch(`${cluster.nodes[0]!.clientUrl}/v1/cluster`)).json()) as {
      clusterId: number;
      term: number;
    };
    for (const [i, at] of endpoint.entries()) {
      const out = JSON.parse(await ok(['get', 'basic/k1', '-w', 'json'], at)) as GetJson;
      assert.equal(out.header.cluster_id, cluster0.clusterId);
      assert.equal(out.header.member_id, cluster.nodes[i]!.id);
      assert.ok(out.header.raft_term >= 1);
      assert.ok(out.header.revision >= 4, `revision ${out.header.revision}`);
      assert.equal(out.count, 1);
      const kv = out.kvs?.[0];
      assert.equal(kv?.key, b64('basic/k1'));
      assert.equal(kv?.value, b64('v1'));
      assert.equal(kv?.version, 1);
      assert.equal(kv?.create_revision, kv?.mod_revision);
    }

    // The put response header is the write's revision, the same on the next read.
    const put = JSON.parse(await ok(['put', 'basic/k1', 'again', '-w', 'json'], endpoint[2])) as {
      header: JsonHeader;
    };
    const read = JSON.parse(await ok(['get', 'basic/k1', '-w', 'json'], endpoint[0])) as GetJson;
    assert.equal(read.kvs?.[0]?.mod_revision, put.header.revision);
    assert.equal(read.kvs?.[0]?.version, 2);
    assert.equal(read.header.revision, put.header.revision);
    assert.deepEqual(lines(await ok(['put', 'basic/k1', 'third', '--prev-kv'])), ['OK', 'basic/k1', 'again']);
  });

  test('get: --from-key, --rev, --limit, --sort-by with --order, --keys-only, serializable', async () => {
    // Values chosen so that every sort target gives a different order.
    await ok(['put', 'sort/b', '3'], endpoint[1]);
    await ok(['put', 'sort/c', '1'], endpoint[2]);
    await ok(['put', 'sort/a', '2'], endpoint[0]);
    const afterFirstRound = await revision();
    await ok(['put', 'sort/c', '4'], endpoint[1]);
    const keysOf = (out: string) => lines(out).filter((_, i) => i % 2 === 0);

    assert.deepEqual(keysOf(await ok(['get', 'sort/', '--prefix'])), ['sort/a', 'sort/b', 'sort/c']);
    assert.deepEqual(keysOf(await ok(['get', 'sort/', '--prefix', '--order=DESCEND'])), [
      'sort/c',
      'sort/b',
      'sort/a',
    ]);
    assert.deepEqual(keysOf(await ok(['get', 'sort/', '--prefix', '--sort-by=MODIFY', '--order=DESCEND'])), [
      'sort/c',
      'sort/a',
      'sort/b',
    ]);
    assert.deepEqual(keysOf(await ok(['get', 'sort/', '--prefix', '--sort-by=CREATE'])), [
      'sort/b',
      'sort/c',
      'sort/a',
    ]);
    assert.deepEqual(keysOf(await ok(['get', 'sort/', '--prefix', '--sort-by=VALUE', '--order=ASCEND'])), [
      'sort/a',
      'sort/b',
      'sort/c',
    ]);
    assert.deepEqual(keysOf(await ok(['get', 'sort/', '--prefix', '--sort-by=VERSION', '--order=DESCEND'])), [
      'sort/c',
      'sort/a',
      'sort/b',
    ]);
    assert.deepEqual(lines(await ok(['get', 'sort/', '--prefix', '--keys-only'])), [
      'sort/a',
      '',
      'sort/b',
      '',
      'sort/c',
      '',
    ]);
    assert.deepEqual(lines(await ok(['get', 'sort/', '--prefix', '--print-value-only'])), ['2', '3', '4']);
    assert.deepEqual(keysOf(await ok(['get', 'sort/b', '--from-key', '--limit=2'])), ['sort/b', 'sort/c']);
    assert.deepEqual(keysOf(await ok(['get', 'sort/a', 'sort/c'])), ['sort/a', 'sort/b']);

    // --rev reads the past: sort/c was 1 then.
    assert.deepEqual(lines(await ok(['get', 'sort/c', `--rev=${afterFirstRound}`])), ['sort/c', '1']);
    assert.equal(await ok(['get', 'sort/c', `--rev=${afterFirstRound - 2}`]), '');

    const limited = JSON.parse(await ok(['get', 'sort/', '--prefix', '--limit=2', '-w', 'json'])) as GetJson;
    assert.deepEqual(
      limited.kvs?.map((kv) => Buffer.from(kv.key, 'base64').toString()),
      ['sort/a', 'sort/b'],
    );
    assert.equal(limited.more, true);
    assert.equal(limited.count, 3);
    const limitedDesc = await ok([
      'get',
      'sort/',
      '--prefix',
      '--limit=1',
      '--sort-by=VALUE',
      '--order=DESCEND',
    ]);
    assert.deepEqual(lines(limitedDesc), ['sort/c', '4']);

    // A serializable read is served by the member itself, at most a little behind.
    const serializable = await until('a follower to apply the last write', 5000, async () => {
      const out = await ok(['get', 'sort/c', '--consistency=s'], endpoint[2]);
      return out.includes('\n4\n') ? out : undefined;
    });
    assert.deepEqual(lines(serializable), ['sort/c', '4']);
  });

  test('del: single key, --prefix, --prev-kv, ranges', async () => {
    for (const key of ['del/a', 'del/b', 'del/c', 'del/d', 'other'])
      await ok(['put', key, `${key}!`], endpoint[1]);
    assert.equal(await ok(['del', 'del/missing'], endpoint[2]), '0\n');
    assert.deepEqual(lines(await ok(['del', 'del/a', '--prev-kv'], endpoint[2])), ['1', 'del/a', 'del/a!']);
    assert.equal(await ok(['del', 'del/b', 'del/d'], endpoint[0]), '2\n');
    assert.deepEqual(lines(await ok(['del', 'del/', '--prefix', '--prev-kv'])), ['1', 'del/d', 'del/d!']);
    assert.equal(await ok(['get', 'del/', '--prefix']), '');
    assert.deepEqual(lines(await ok(['get', 'other'])), ['other', 'other!']);
  });

  test('txn piped on stdin: compares, success and failure branches', async () => {
    await ok(['put', 'txn/k', 'v1'], endpoint[1]);
    await ok(['put', 'txn/other', 'o'], endpoint[2]);
    const success = [
      'mod("txn/k") > "0"',
      '',
      'put txn/k v2',
      'get txn/other',
      '',
      'put txn/failed x',
      '',
      '',
    ];
    assert.deepEqual(lines(await ok(['txn'], endpoint[0], success.join('\n'))), [
      'SUCCESS',
      '',
      'OK',
      '',
      'txn/other',
      'o',
    ]);
    const failure = [
      'value("txn/k") = "nope"',
      '',
      'put txn/k never',
      '',
      'del txn/other',
      'get txn/k',
      '',
      '',
    ];
    assert.deepEqual(lines(await ok(['txn'], endpoint[2], failure.join('\n'))), [
      'FAILURE',
      '',
      '1',
      '',
      'txn/k',
      'v2',
    ]);
    assert.equal(await ok(['get', 'txn/failed']), '');
    assert.equal(await ok(['get', 'txn/other']), '');

    // Several compares (all must hold), version and create targets, JSON output. (etcdctl 3.4
    // panics parsing a lease compare, so that one is left to the etcd3 client test.)
    const multi = [
      'version("txn/k") = "2"',
      'create("txn/new") = "0"',
      '',
      'put txn/new n',
      'get txn/ --prefix',
      '',
      '',
      '',
    ];
    const out = JSON.parse(await ok(['txn', '-w', 'json'], endpoint[1], multi.join('\n'))) as {
      header: JsonHeader;
      succeeded: boolean;
      responses: { Response: { ResponsePut?: { header: JsonHeader }; ResponseRange?: { kvs?: JsonKv[] } } }[];
    };
    assert.equal(out.succeeded, true);
    assert.deepEqual(
      out.responses.map((r) => Object.keys(r.Response)),
      [['ResponsePut'], ['ResponseRange']],
    );
    const range = out.responses[1]?.Response.ResponseRange;
    assert.deepEqual(
      range?.kvs?.map((kv) => Buffer.from(kv.key, 'base64').toString()),
      ['txn/k', 'txn/new'],
    );
    assert.equal(out.responses[0]?.Response.ResponsePut?.header.revision, out.header.revision);

    // Two puts of one key in a branch: etcd refuses the txn.
    const duplicate = ['', 'put txn/d 1', 'put txn/d 2', '', '', ''];
    const refused = await fails(['txn'], endpoint[0], duplicate.join('\n'));
    assert.match(refused.stderr, /Error: etcdserver: duplicate key given in txn request/);
  });

  test('txn -i reads compares and requests interactively', async () => {
    await ok(['put', 'itxn/k', 'x'], endpoint[2]);
    const input = ['value("itxn/k") = "x"', '', 'put itxn/k y', 'get itxn/k', '', 'get itxn/none', '', ''];
    assert.deepEqual(lines(await ok(['txn', '-i'], endpoint[0], input.join('\n'))), [
      'compares:',
      'success requests (get, put, del):',
      'failure requests (get, put, del):',
      'SUCCESS',
      '',
      'OK',
      '',
      'itxn/k',
      'y',
    ]);
  });

  test('watch: --prefix with --prev-kv, a single key, --rev replays history', async () => {
    const prefixWatch = watch(['watch/', '--prefix', '--prev-kv'], endpoint[2]);
    const keyWatch = watch(['watch/a'], endpoint[1]);
    // Both watches are live once a sentinel write shows up in both.
    await until('the watches to be established', 10_000, async () => {
      await ok(['put', 'watch/a', 'sentinel'], endpoint[0]);
      await new Promise((r) => setTimeout(r, 100));
      return prefixWatch.output().includes('sentinel') && keyWatch.output().includes('sentinel')
        ? true
        : undefined;
    });
    const start = (await revision()) + 1;
    await ok(['put', 'watch/a', '1'], endpoint[0]);
    await ok(['put', 'watch/b', '2'], endpoint[1]);
    await ok(['put', 'watch/a', '3'], endpoint[2]);
    await ok(['del', 'watch/', '--prefix'], endpoint[0]);
    await ok(['txn'], endpoint[1], ['', 'put watch/a t', 'put watch/c t', '', '', ''].join('\n'));
    await prefixWatch.seen('watch/c\nt\n');
    await keyWatch.seen('PUT\nwatch/a\nt\n');
    await prefixWatch.stop();
    await keyWatch.stop();

    assert.deepEqual(events(prefixWatch.output()), [
      ['PUT', 'watch/a', 'sentinel', 'watch/a', '1'],
      ['PUT', 'watch/b', '2'],
      ['PUT', 'watch/a', '1', 'watch/a', '3'],
      ['DELETE', 'watch/a', '3', 'watch/a', ''],
      ['DELETE', 'watch/b', '2', 'watch/b', ''],
      ['PUT', 'watch/a', 't'],
      ['PUT', 'watch/c', 't'],
    ]);
    assert.deepEqual(events(keyWatch.output()), [
      ['PUT', 'watch/a', '1'],
      ['PUT', 'watch/a', '3'],
      ['DELETE', 'watch/a', ''],
      ['PUT', 'watch/a', 't'],
    ]);

    // The same history again, from a revision in the past, through another member.
    const replay = watch(['watch/', '--prefix', `--rev=${start}`], endpoint[0]);
    await replay.seen('watch/c\nt\n');
    await replay.stop();
    assert.deepEqual(events(replay.output()), [
      ['PUT', 'watch/a', '1'],
      ['PUT', 'watch/b', '2'],
      ['PUT', 'watch/a', '3'],
      ['DELETE', 'watch/a', ''],
      ['DELETE', 'watch/b', ''],
      ['PUT', 'watch/a', 't'],
      ['PUT', 'watch/c', 't'],
    ]);
  });

  test('lease: grant, put --lease, timetolive --keys, list, keep-alive --once, revoke', async () => {
    const granted = await ok(['lease', 'grant', '60'], endpoint[1]);
    const match = /^lease ([0-9a-f]{16}) granted with TTL\(60s\)\n$/.exec(granted);
    assert.ok(match, granted);
    const id = match[1]!;
    assert.equal(await ok(['put', 'lease/a', '1', `--lease=${id}`], endpoint[2]), 'OK\n');
    assert.equal(await ok(['put', 'lease/b', '2', `--lease=${id}`], endpoint[0]), 'OK\n');
    const ttl = await ok(['lease', 'timetolive', id, '--keys'], endpoint[2]);
    assert.match(
      ttl,
      new RegExp(
        `^lease ${id} granted with TTL\\(60s\\), remaining\\((59|60)s\\), attached keys\\(\\[lease/a lease/b\\]\\)\\n$`,
      ),
    );
    const list = lines(await ok(['lease', 'list'], endpoint[0]));
    assert.match(list[0]!, /^found \d+ leases$/);
    assert.ok(list.includes(id), list.join('\n'));
    assert.equal(
      await ok(['lease', 'keep-alive', '--once', id], endpoint[1]),
      `lease ${id} keepalived with TTL(60)\n`,
    );
    const json = JSON.parse(await ok(['get', 'lease/a', '-w', 'json'])) as GetJson;
    assert.equal(json.kvs?.[0]?.lease, Number.parseInt(id, 16));

    assert.equal(await ok(['lease', 'revoke', id], endpoint[2]), `lease ${id} revoked\n`);
    assert.equal(await ok(['get', 'lease/', '--prefix']), '');
    assert.equal(await ok(['lease', 'timetolive', id], endpoint[0]), `lease ${id} already expired\n`);
    const gone = await fails(['lease', 'keep-alive', '--once', id], endpoint[1]);
    assert.match(gone.stderr, /etcdserver: requested lease not found/);
    const revokeAgain = await fails(['lease', 'revoke', id]);
    assert.match(revokeAgain.stderr, /etcdserver: requested lease not found/);
  });

  test('lease: keys go when the TTL runs out; keep-alive holds them', async () => {
    const short = /lease ([0-9a-f]{16}) granted/.exec(await ok(['lease', 'grant', '2'], endpoint[0]))![1]!;
    const held = /lease ([0-9a-f]{16}) granted/.exec(await ok(['lease', 'grant', '2'], endpoint[1]))![1]!;
    await ok(['put', 'ttl/short', 's', `--lease=${short}`], endpoint[1]);
    await ok(['put', 'ttl/held', 'h', `--lease=${held}`], endpoint[2]);
    const keeper = spawn('etcdctl', [`--endpoints=${endpoint[2]}`, 'lease', 'keep-alive', held], {
      env: { ...process.env, ETCDCTL_API: '3' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    watchers.push(keeper);
    let kept = '';
    keeper.stdout.on('data', (d: Buffer) => {
      kept += d.toString();
    });
    await until('the unrenewed lease to expire', 10_000, async () =>
      (await ok(['get', 'ttl/short'])) === '' ? true : undefined,
    );
    assert.deepEqual(lines(await ok(['get', 'ttl/held'])), ['ttl/held', 'h']);
    assert.match(kept, new RegExp(`lease ${held} keepalived with TTL\\(2\\)`));
    keeper.kill('SIGTERM');
  });

  test("errors carry etcd's messages", async () => {
    const unknownLease = await fails(['put', 'err/k', 'v', '--lease=1234abcd'], endpoint[1]);
    assert.match(unknownLease.stderr, /Error: etcdserver: requested lease not found/);
    const oversize = await fails(['put', 'err/big'], endpoint[2], 'x'.repeat(1.6 * 1024 * 1024));
    assert.match(oversize.stderr, /Error: etcdserver: request is too large/);
    const emptyKey = await fails(['put', '', 'v']);
    assert.match(emptyKey.stderr, /Error: etcdserver: key is not provided/);
    const future = await fails(['get', 'err/k', '--rev=100000000']);
    assert.match(future.stderr, /Error: etcdserver: mvcc: required revision is a future revision/);
    const ignoreValue = await fails(['put', 'err/missing', '--ignore-value']);
    assert.match(ignoreValue.stderr, /Error: etcdserver: key not found/);
    const ttl = await ok(['lease', 'timetolive', '1234abcd']);
    assert.equal(ttl, 'lease 000000001234abcd already expired\n');
  });

  test('compaction: older revisions and watches from them fail with the compacted error', async () => {
    await ok(['put', 'compact/k', 'old'], endpoint[0]);
    const old = await revision();
    await ok(['put', 'compact/k', 'new'], endpoint[1]);
    const current = await revision();
    assert.equal(await ok(['compaction', String(current)], endpoint[2]), `compacted revision ${current}\n`);
    const compacted = await fails(['get', 'compact/k', `--rev=${old}`], endpoint[0]);
    assert.match(compacted.stderr, /Error: etcdserver: mvcc: required revision has been compacted/);
    const again = await fails(['compaction', String(old)]);
    assert.match(again.stderr, /Error: etcdserver: mvcc: required revision has been compacted/);
    // At the compacted revision itself the history is still there.
    assert.deepEqual(lines(await ok(['get', 'compact/k', `--rev=${current}`])), ['compact/k', 'new']);

    const lost = watch(['compact/', '--prefix', `--rev=${old}`], endpoint[1]);
    const code = await lost.exited;
    assert.notEqual(code, 0);
    assert.match(
      lost.errors(),
      /watch was canceled \(etcdserver: mvcc: required revision has been compacted\)/,
    );
  });
});
