/**
 * The multi-raft host's one log (src/storage/shared-wal.ts), with real sockets and files:
 * the groups of a host write their records into one log, many groups' records made durable
 * by one fdatasync (group commit across groups); a restart recovers every group from it;
 * groups whose entries keep old segments alive are made to snapshot and compact, so the log
 * shrinks; a group directory with a log of its own (the layout before the shared log) is
 * refused, and records of a group whose directory is gone are dropped at start.
 */
import assert from 'node:assert/strict';
import { mkdir, mkdtemp, readdir, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { Counter } from '../examples/counter-machine.js';
import type { FlotillaHost } from '../src/index.js';
import { LOG_SEGMENTS_KEPT } from '../src/node/multi-host.js';
import { until } from './support/http.js';
import { type CounterGroup, openCounters, planHosts, range, startHosts } from './support/multiraft.js';

const roots: string[] = [];
after(async () => {
  await Promise.all(roots.map((d) => rm(d, { recursive: true, force: true })));
});

async function tempRoot(): Promise<string> {
  const root = await mkdtemp(join(tmpdir(), 'flotilla-shared-log-'));
  roots.push(root);
  return root;
}

async function exists(path: string): Promise<boolean> {
  return stat(path).then(
    () => true,
    () => false,
  );
}

/** The shared log's segment files under a host's data directory. */
async function segments(dataDir: string): Promise<string[]> {
  return (await readdir(join(dataDir, 'wal'))).filter((name) => name.endsWith('.wal'));
}

/** Waits until every group on every host knows a leader. */
async function led(hosts: readonly Map<number, CounterGroup>[]): Promise<void> {
  await until('a leader in every group', 30_000, () =>
    hosts.every((groups) => [...groups.values()].every((g) => g.status().leader !== 0)) ? true : undefined,
  );
}

test('the groups of a host share one log: one fdatasync for many groups, every group recovered', {
  timeout: 120_000,
}, async (t) => {
  const root = await tempRoot();
  const configs = await planHosts(root, 3);
  let hosts: FlotillaHost[] = await startHosts(configs);
  try {
    const ids = range(16);
    let groups = await Promise.all(hosts.map((h) => openCounters(h, ids, [1, 2, 3])));
    await led(groups);
    const before = hosts.map((h) => h.stats().log);
    const expected = new Map<number, number>();
    // Every group written at once, through every host (followers forward to the leader).
    await Promise.all(
      ids.map(async (g) => {
        let value = 0;
        for (let i = 0; i < 10; i++) value = await groups[i % 3]!.get(g)!.propose({ op: 'add', n: g });
        expected.set(g, value);
      }),
    );
    for (const [i, host] of hosts.entries()) {
      const log = host.stats().log;
      const records = log.records - before[i]!.records;
      const syncs = log.syncs - before[i]!.syncs;
      t.diagnostic(
        `host ${i + 1}: ${records} records in ${log.writes - before[i]!.writes} writes, ` +
          `${syncs} fdatasyncs, up to ${log.maxGroupsPerSync} groups per fdatasync`,
      );
      assert.ok(records >= ids.length * 10, `host ${i + 1} wrote every group's entries`);
      assert.ok(syncs < records / 2, `host ${i + 1}: ${syncs} fdatasyncs for ${records} records`);
      assert.ok(log.maxGroupsPerSync > 1, `host ${i + 1}: one fdatasync made several groups durable`);
      const dataDir = configs[i]!.dataDir;
      assert.ok((await segments(dataDir)).length >= 1, 'the host has one log');
      assert.equal(await exists(join(dataDir, 'groups', '3', 'raft', 'wal')), false, 'no log per group');
    }

    await Promise.all(hosts.map((h) => h.close()));
    hosts = await startHosts(configs);
    groups = await Promise.all(hosts.map(async (h) => openCounters(h, await h.storedGroups(), [1, 2, 3])));
    await led(groups);
    for (const [i, host] of groups.entries())
      for (const g of ids)
        assert.equal(await host.get(g)!.read(null), expected.get(g), `group ${g} on host ${i + 1}`);
    assert.equal(await groups[2]!.get(5)!.propose({ op: 'add', n: 1 }), expected.get(5)! + 1);
  } finally {
    await Promise.all(hosts.map((h) => h.close()));
  }
});

test('groups that keep old segments alive snapshot and compact, so the log shrinks', {
  timeout: 120_000,
}, async (t) => {
  const root = await tempRoot();
  // Small segments, and snapshots the policy alone would never take.
  const configs = await planHosts(root, 3, { logSegmentBytes: 16 * 1024, snapshotEntries: 1_000_000 });
  let hosts: FlotillaHost[] = await startHosts(configs);
  try {
    const ids = range(8);
    let groups = await Promise.all(hosts.map((h) => openCounters(h, ids, [1, 2, 3])));
    await led(groups);
    // Group 1 is written once and then stays idle: only a requested snapshot frees its entries.
    await groups[0]!.get(1)!.propose({ op: 'add', n: 1 });
    let total = 0;
    await Promise.all(
      range(7, 2).map(async (g) => {
        for (let i = 0; i < 150; i++) await groups[0]!.get(g)!.propose({ op: 'add', n: 1 });
        total += 150;
      }),
    );
    const dataDir = configs[0]!.dataDir;
    const written = (await segments(dataDir)).length;
    t.diagnostic(`${total} writes; host 1's log: ${written} segments`);
    // Without the groups' forced snapshots the log keeps every segment (9 in a run without them).
    await until('old segments deleted', 30_000, async () =>
      (await segments(dataDir)).length <= LOG_SEGMENTS_KEPT ? true : undefined,
    );
    assert.ok(groups[0]!.get(1)!.status().firstIndex > 1, 'the idle group compacted its log');
    await Promise.all(hosts.map((h) => h.close()));
    hosts = await startHosts(configs);
    groups = await Promise.all(hosts.map(async (h) => openCounters(h, await h.storedGroups(), [1, 2, 3])));
    await led(groups);
    assert.equal(await groups[0]!.get(1)!.read(null), 1);
    for (const g of range(7, 2)) assert.equal(await groups[1]!.get(g)!.read(null), 150, `group ${g}`);
  } finally {
    await Promise.all(hosts.map((h) => h.close()));
  }
});

test('a group directory with a log of its own is refused; records of a group without a directory are dropped', async () => {
  const root = await tempRoot();
  const [config] = await planHosts(root, 1);
  const dataDir = config!.dataDir;
  let [host] = await startHosts([config!]);
  try {
    const open = (groupId: number) => host!.openGroup(groupId, { stateMachine: new Counter(), members: [1] });
    await mkdir(join(dataDir, 'groups', '9', 'raft', 'wal'), { recursive: true });
    await assert.rejects(open(9), (error: Error & { code?: string }) => {
      assert.equal(error.code, 'INVALID_CONFIG');
      assert.match(error.message, /log of the group's own/);
      return true;
    });
    await rm(join(dataDir, 'groups', '9'), { recursive: true });
    const five = await open(5);
    await until('group 5 leads', 10_000, () => (five.status().role === 'leader' ? true : undefined));
    assert.equal(await five.propose({ op: 'add', n: 41 }), 41);
    await host!.close();
    // A deletion that removed the directory but crashed before the log recorded it.
    await rm(join(dataDir, 'groups', '5'), { recursive: true });
    [host] = await startHosts([config!]);
    const again = await open(5);
    await until('group 5 leads again', 10_000, () => (again.status().role === 'leader' ? true : undefined));
    assert.equal(await again.read(null), 0, 'a new group 5 starts empty, without the old records');
    assert.equal(await again.propose({ op: 'add', n: 1 }), 1);
  } finally {
    await host!.close();
  }
});
