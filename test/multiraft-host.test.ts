/**
 * The multi-raft host on loopback: three hosts in one process with real sockets and data
 * directories, each running the same 20 counter groups. Every group elects a leader and takes
 * writes; a host stopped and restarted from its data directory recovers every group (its
 * acknowledged writes, and new ones; groups whose logs were compacted past it meanwhile
 * catch up from a snapshot); a group destroyed on every host is gone with its files;
 * messages for a group a host does not run are counted, not fatal. A second test opens 210
 * groups on three hosts and reports how long until every group has a leader. A third checks
 * what `openGroup` refuses, and that a host finishes a deletion a crash interrupted; a fourth
 * runs groups of an on-disk state machine (the KV store), which catch a restarted host up by
 * streaming their state to it.
 */
import assert from 'node:assert/strict';
import { mkdir, mkdtemp, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { Counter } from '../examples/counter-machine.js';
import { KvOnDiskStateMachine } from '../src/db/index.js';
import type { FlotillaHost, FlotillaNode } from '../src/index.js';
import { LmdbKvBackend } from '../src/kv/index.js';
import { until } from './support/http.js';
import { type CounterGroup, openCounters, planHosts, range, startHosts } from './support/multiraft.js';

const roots: string[] = [];
after(async () => {
  await Promise.all(roots.map((d) => rm(d, { recursive: true, force: true })));
});

async function tempRoot(): Promise<string> {
  const root = await mkdtemp(join(tmpdir(), 'flotilla-multiraft-'));
  roots.push(root);
  return root;
}

/** Waits until every group of every host knows a leader; returns the leaders' host ids by group. */
async function leaders(
  hosts: readonly Map<number, Pick<CounterGroup, 'status'>>[],
  timeoutMs: number,
): Promise<Map<number, number>> {
  return until('a leader in every group', timeoutMs, () => {
    const found = new Map<number, number>();
    for (const groups of hosts) {
      for (const [g, node] of groups) {
        const { role, id, leader } = node.status();
        if (leader === 0) return undefined;
        if (role === 'leader') found.set(g, id);
      }
    }
    return found.size === hosts[0]!.size ? found : undefined;
  });
}

async function exists(path: string): Promise<boolean> {
  return stat(path).then(
    () => true,
    () => false,
  );
}

test('three hosts run 20 groups: elections, writes, restart from disk, destroy, unknown groups', {
  timeout: 120_000,
}, async (t) => {
  const root = await tempRoot();
  // Snapshots every 20 entries keeping 5: a host that was down catches up from a snapshot.
  const configs = await planHosts(root, 3, { snapshotEntries: 20, snapshotKeepEntries: 5 });
  const hosts: FlotillaHost[] = await startHosts(configs);
  try {
    const ids = range(20);
    const groups = await Promise.all(hosts.map((h) => openCounters(h, ids, [1, 2, 3])));
    const leaderOf = await leaders(groups, 30_000);
    const spread = [1, 2, 3].map((h) => [...leaderOf.values()].filter((l) => l === h).length);
    t.diagnostic(`leaders per host: ${spread.join(', ')}`);

    // Every group takes writes through every host (followers forward to their leader).
    const expected = new Map<number, number>();
    await Promise.all(
      ids.map(async (g) => {
        let sum = 0;
        for (const [i, host] of groups.entries()) {
          const n = g * 10 + i;
          await host.get(g)!.propose({ op: 'add', n });
          sum += n;
        }
        expected.set(g, sum);
      }),
    );
    for (const g of ids) assert.equal(await groups[0]!.get(g)!.read(null), expected.get(g), `group ${g}`);

    // A group open on one host only: its messages to the others are dropped and counted.
    const lonely = await hosts[0]!.openGroup(500, { stateMachine: new Counter(), members: [1, 2, 3] });
    await until('messages for an unknown group counted', 10_000, () =>
      hosts[1]!.stats().droppedUnknownGroup > 0 && hosts[2]!.stats().droppedUnknownGroup > 0
        ? true
        : undefined,
    );
    assert.equal(lonely.status().leader, 0, 'a group with one of three members up elects no leader');
    await hosts[0]!.destroyGroup(500);
    assert.equal(await exists(join(configs[0]!.dataDir, 'groups', '500')), false);

    // Host 3 stops; the other two keep every group writable; host 3 restarts from its directory.
    await hosts[2]!.close();
    // A proposal forwarded to a leader that is gone has an unknown outcome: wait for new leaders.
    await until('leaders on the live hosts', 30_000, () =>
      groups.slice(0, 2).every((h) => [...h.values()].every((n) => [1, 2].includes(n.status().leader)))
        ? true
        : undefined,
    );
    // Groups 1-4 move on by 40 entries: their logs are compacted past host 3's.
    await Promise.all(
      ids.map(async (g) => {
        for (let i = 0; i < (g <= 4 ? 40 : 1); i++) await groups[0]!.get(g)!.propose({ op: 'add', n: 1 });
        expected.set(g, expected.get(g)! + (g <= 4 ? 40 : 1));
      }),
    );
    const stale = groups[2]!.get(1)!.status().lastIndex;
    assert.ok(groups[0]!.get(1)!.status().firstIndex > stale + 1, 'group 1 compacted past host 3');
    hosts[2] = (await startHosts([configs[2]!]))[0]!;
    assert.deepEqual(await hosts[2].storedGroups(), ids, 'host 3 has every group on disk');
    groups[2] = await openCounters(hosts[2], await hosts[2].storedGroups(), [1, 2, 3]);
    await leaders(groups, 30_000);
    for (const g of ids) {
      assert.equal(await groups[2].get(g)!.read(null), expected.get(g), `group ${g} on the restarted host`);
      const after = await groups[2].get(g)!.propose({ op: 'add', n: 2 });
      expected.set(g, after);
    }
    for (const g of ids) {
      const value = await groups[1]!.get(g)!.read(null);
      assert.equal(value, expected.get(g), `group ${g} on host 2 after the restart`);
    }

    // Group 7 destroyed on every host: closed, files deleted; the other groups run on.
    await Promise.all(hosts.map((h) => h.destroyGroup(7)));
    for (const [i, host] of hosts.entries()) {
      assert.equal(host.group(7), undefined);
      assert.equal(host.groups().includes(7), false);
      assert.equal((await host.storedGroups()).includes(7), false);
      assert.equal(
        await exists(join(configs[i]!.dataDir, 'groups', '7')),
        false,
        `host ${i + 1}: files gone`,
      );
    }
    await assert.rejects(groups[0]!.get(7)!.propose({ op: 'add', n: 1 }), { code: 'STOPPED' });
    assert.equal(await groups[0]!.get(8)!.propose({ op: 'add', n: 1 }), expected.get(8)! + 1);
    const stats = hosts[0]!.stats();
    const sent = [...stats.peers.values()].reduce((sum, p) => sum + p.messagesSent, 0);
    const writes = [...stats.peers.values()].reduce((sum, p) => sum + p.writes, 0);
    t.diagnostic(
      `host 1: ${stats.groups} groups, ${stats.messagesRouted} messages routed, ` +
        `${sent} sent in ${writes} socket writes`,
    );
    assert.equal(stats.groups, 20 - 1);
  } finally {
    await Promise.all(hosts.map((h) => h.close()));
  }
});

test('210 groups open and elect leaders on three hosts within seconds', { timeout: 120_000 }, async (t) => {
  const root = await tempRoot();
  const configs = await planHosts(root, 3, { tickMs: 100 });
  const started = performance.now();
  const hosts = await startHosts(configs);
  try {
    const ids = range(210);
    const groups = await Promise.all(hosts.map((h) => openCounters(h, ids, [1, 2, 3])));
    const opened = performance.now();
    await leaders(groups, 60_000);
    const elected = performance.now();
    t.diagnostic(
      `210 groups x 3 hosts: opened in ${Math.round(opened - started)} ms, ` +
        `every group led after ${Math.round(elected - started)} ms`,
    );
    assert.ok(elected - started < 60_000);
  } finally {
    await Promise.all(hosts.map((h) => h.close()));
  }
});

test('openGroup refuses bad groups; a deletion interrupted by a crash is finished on start', async () => {
  const root = await tempRoot();
  const [config] = await planHosts(root, 3);
  const dataDir = config!.dataDir;
  await mkdir(join(dataDir, 'groups', '.removing-9', 'raft'), { recursive: true });
  await writeFile(join(dataDir, 'groups', '.removing-9', 'raft', 'junk'), 'x');
  const [host] = await startHosts([config!]);
  try {
    assert.equal(await exists(join(dataDir, 'groups', '.removing-9')), false);
    const open = (groupId: number, members: number[]) =>
      host!.openGroup(groupId, { stateMachine: new Counter(), members });
    await assert.rejects(open(0, [1, 2, 3]), { code: 'INVALID_CONFIG' });
    await assert.rejects(open(2 ** 32, [1, 2, 3]), { code: 'INVALID_CONFIG' });
    await assert.rejects(open(1, [2, 3]), { code: 'INVALID_CONFIG' }, 'members without this host');
    await assert.rejects(open(1, [1, 4]), { code: 'INVALID_CONFIG' }, 'a member that is no host');
    const group = await open(1, [1, 2, 3]);
    assert.equal(group.status().groupId, 1);
    await assert.rejects(open(1, [1, 2, 3]), { code: 'INVALID_CONFIG' }, 'already open');
    assert.deepEqual(await host!.storedGroups(), [1]);
    // A group closed through its handle may be opened again; destroying one not open deletes its data.
    await group.close();
    assert.deepEqual(host!.groups(), []);
    await open(1, [1, 2, 3]);
    assert.deepEqual(host!.groups(), [1]);
    await host!.destroyGroup(1);
    assert.deepEqual(await host!.storedGroups(), []);
  } finally {
    await host!.close();
  }
  await assert.rejects(host!.openGroup(2, { stateMachine: new Counter(), members: [1] }), {
    code: 'STOPPED',
  });
});

type KvGroup = FlotillaNode<
  Parameters<KvOnDiskStateMachine['apply']>[0][number]['command'] & {},
  unknown,
  Parameters<KvOnDiskStateMachine['query']>[0],
  Awaited<ReturnType<KvOnDiskStateMachine['query']>>
>;

/** Opens group `g` on `host` with the KV store (an on-disk state machine) in the group's directory. */
function openKv(host: FlotillaHost, g: number): Promise<KvGroup> {
  const dir = join(host.groupDirectory(g), 'kv');
  const stateMachine = new KvOnDiskStateMachine(() => LmdbKvBackend.open(dir, { noSync: true }));
  return host.openGroup(g, { stateMachine, members: [1, 2, 3] });
}

test('groups of an on-disk state machine catch a restarted host up by streamed snapshots', {
  timeout: 120_000,
}, async () => {
  const root = await tempRoot();
  const configs = await planHosts(root, 3, { snapshotEntries: 20, snapshotKeepEntries: 5 });
  const hosts = await startHosts(configs);
  const key = (i: number) => new TextEncoder().encode(`key-${String(i).padStart(3, '0')}`);
  const put = (node: KvGroup, i: number) => node.propose({ type: 'put', key: key(i), value: key(i) });
  const count = async (node: KvGroup, consistency: 'linearizable' | 'serializable') =>
    (await node.read({ key: key(0), rangeEnd: key(999), countOnly: true }, { consistency })).count;
  try {
    const groups = await Promise.all(
      hosts.map(
        async (h) =>
          new Map([
            [1, await openKv(h, 1)],
            [2, await openKv(h, 2)],
          ]),
      ),
    );
    await leaders(groups, 30_000);
    for (const g of [1, 2]) for (let i = 0; i < 5; i++) await put(groups[0]!.get(g)!, i);
    await hosts[2]!.close();
    await until('leaders on the live hosts', 30_000, () =>
      groups.slice(0, 2).every((h) => [...h.values()].every((n) => [1, 2].includes(n.status().leader)))
        ? true
        : undefined,
    );
    for (const g of [1, 2]) for (let i = 5; i < 45; i++) await put(groups[0]!.get(g)!, i);
    const stale = groups[2]!.get(1)!.status().lastIndex;
    assert.ok(groups[0]!.get(1)!.status().firstIndex > stale + 1, 'group 1 compacted past host 3');
    hosts[2] = (await startHosts([configs[2]!]))[0]!;
    const restarted = new Map([
      [1, await openKv(hosts[2], 1)],
      [2, await openKv(hosts[2], 2)],
    ]);
    for (const g of [1, 2]) {
      const node = restarted.get(g)!;
      assert.equal(await count(node, 'linearizable'), 45, `group ${g}: every key on the restarted host`);
      assert.equal(await count(node, 'serializable'), 45, `group ${g}: in its own store`);
    }
  } finally {
    await Promise.all(hosts.map((h) => h.close()));
  }
});
