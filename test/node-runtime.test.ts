/**
 * The node runtime in one process: three RaftNodes on loopback with real storage and
 * transport. Snapshots and compaction kick in after a few entries, so a node that was down
 * catches up through InstallSnapshot (the KV store streamed from the leader), and a whole-cluster restart recovers
 * every acknowledged write from the data directories.
 */
import assert from 'node:assert/strict';
import { mkdtemp, readdir, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { freePort } from '../src/cli/cluster-command.js';
import { KvNode, type KvNodeInit } from '../src/db/index.js';
import type { KvResult } from '../src/kv/index.js';
import { clusterIdFrom, isNodeError, parseInitialCluster } from '../src/node/index.js';
import { until } from './support/http.js';

const encoder = new TextEncoder();
const decoder = new TextDecoder();
const dirs: string[] = [];
after(async () => {
  await Promise.all(dirs.map((d) => rm(d, { recursive: true, force: true })));
});

async function clusterConfig(names: string[]): Promise<{ initialCluster: string; base: KvNodeInit[] }> {
  const root = await mkdtemp(join(tmpdir(), 'flotilla-node-'));
  dirs.push(root);
  const ports = await Promise.all(names.map(() => freePort()));
  const initialCluster = names.map((n, i) => `${n}=127.0.0.1:${ports[i]}`).join(',');
  const members = parseInitialCluster(initialCluster);
  const memberMap = new Map(members.map((m) => [m.id, { name: m.name, host: m.host, port: m.port }]));
  const base = members.map((m) => ({
    name: m.name,
    id: m.id,
    clusterId: clusterIdFrom(members),
    initialCluster,
    members: memberMap,
    dataDir: join(root, m.name),
    listenPeer: { host: m.host, port: m.port },
    tickMs: 20,
    kvNoSync: true,
    snapshotPolicy: { entriesPerSnapshot: 20 },
    snapshotKeepEntries: 5,
  }));
  return { initialCluster, base };
}

async function leaderOf(nodes: readonly KvNode[]): Promise<KvNode> {
  return until('a leader', 5000, () => nodes.find((n) => n.status().role === 'leader'));
}

function put(node: KvNode, key: string, value: string): Promise<KvResult> {
  return node.propose({ type: 'put', key: encoder.encode(key), value: encoder.encode(value) });
}

async function localValue(node: KvNode, key: string): Promise<string | undefined> {
  const response = await node.read({ key: encoder.encode(key) }, 'serializable');
  const kv = response.kvs[0];
  return kv === undefined ? undefined : decoder.decode(kv.value);
}

test('three nodes: writes through any node, snapshot catch-up, restart from the data directories', async () => {
  const { base } = await clusterConfig(['a', 'b', 'c']);
  let nodes = await Promise.all(base.map((o) => KvNode.start(o)));
  try {
    await leaderOf(nodes);
    // Writes through every node (followers forward), each acknowledged once applied there.
    for (let i = 0; i < 30; i++) {
      const result = await put(nodes[i % 3]!, `k${i}`, `v${i}`);
      assert.equal(result.ok, true);
    }
    // Stop c, write enough that the leader snapshots and compacts past c's log.
    const c = nodes[2]!;
    await c.stop();
    // Read after the stop: entries can still reach c while it stops, and its log on disk may
    // end past any index read before.
    const cLast = c.status().lastIndex;
    const live = nodes.slice(0, 2);
    const leader = await leaderOf(live);
    for (let i = 30; i < 120; i++) assert.equal((await put(leader, `k${i}`, `v${i}`)).ok, true);
    // Snapshots are taken in the background: wait until every live member's log starts past
    // c's (whoever leads when c is back must send it the store).
    await until("the live members' logs compacted past c's", 5000, () =>
      live.every((n) => n.status().firstIndex > cLast + 1) ? true : undefined,
    );
    // c restarts from its data directory and must be sent a snapshot.
    const c2 = await KvNode.start(base[2]!);
    nodes = [...live, c2];
    // The restored store is readable a moment before the install finishes (sync, spool
    // cleared, counted): wait for both.
    await until('c to catch up through a snapshot', 10_000, async () =>
      (await localValue(c2, 'k119')) === 'v119' && c2.raft.stats().counters.snapshotsInstalled >= 1
        ? true
        : undefined,
    );
    // The KV store is an on-disk state machine: the leader's raft snapshots are metadata
    // only, and the state went to c as a stream read from the store.
    assert.ok(leader.raft.stats().counters.snapshotsStreamed >= 1, 'the leader streamed its state');
    const leaderDir = base.find((o) => o.name === leader.options.name)!.dataDir;
    for (const name of await readdir(join(leaderDir, 'raft', 'snap'))) {
      const size = (await stat(join(leaderDir, 'raft', 'snap', name))).size;
      assert.ok(size < 1024, `raft snapshot ${name} is ${size} bytes`);
    }
    assert.deepEqual(await readdir(join(base[2]!.dataDir, 'snap-received')), [], "c's spool is empty");
    for (let i = 0; i < 120; i += 7) assert.equal(await localValue(c2, `k${i}`), `v${i}`);
    // A linearizable read through a follower.
    const follower = nodes.find((n) => n.status().role !== 'leader')!;
    const read = await follower.read({ key: encoder.encode('k5') });
    assert.equal(decoder.decode(read.kvs[0]!.value), 'v5');
    // Whole cluster restart: everything acknowledged is still there.
    await Promise.all(nodes.map((n) => n.stop()));
    nodes = await Promise.all(base.map((o) => KvNode.start(o)));
    const newLeader = await leaderOf(nodes);
    const all = await newLeader.read({ key: encoder.encode('k'), rangeEnd: encoder.encode('l') });
    assert.equal(all.count, 120);
  } finally {
    await Promise.all(nodes.map((n) => n.stop()));
  }
});

test('without a quorum a proposal fails with NO_LEADER after the request timeout', async () => {
  const { base } = await clusterConfig(['x', 'y', 'z']);
  const node = await KvNode.start({ ...base[0]!, requestTimeoutMs: 300 });
  try {
    await assert.rejects(put(node, 'k', 'v'), (error: unknown) => isNodeError(error, 'NO_LEADER'));
    await assert.rejects(node.read({ key: encoder.encode('k') }), (error: unknown) =>
      isNodeError(error, 'NO_LEADER'),
    );
  } finally {
    await node.stop();
  }
});

test('back-pressure: a full proposal queue refuses with TOO_MANY_REQUESTS', async () => {
  const { base } = await clusterConfig(['p', 'q', 'r']);
  const node = await KvNode.start({ ...base[0]!, requestTimeoutMs: 300, pendingProposalsMax: 2 });
  try {
    const first = put(node, 'a', '1');
    const second = put(node, 'b', '2');
    await assert.rejects(put(node, 'c', '3'), (error: unknown) => isNodeError(error, 'TOO_MANY_REQUESTS'));
    await Promise.allSettled([first, second]);
  } finally {
    await node.stop();
  }
});

test('a data directory refuses another member or cluster, and a second owner', async () => {
  const { base } = await clusterConfig(['m1', 'm2', 'm3']);
  const node = await KvNode.start(base[0]!);
  await assert.rejects(
    KvNode.start({ ...base[0]!, listenPeer: { host: '127.0.0.1', port: 0 } }),
    /in use by process/,
  );
  await node.stop();
  await assert.rejects(KvNode.start({ ...base[0]!, clusterId: 42 }), /belongs to cluster/);
  await assert.rejects(KvNode.start({ ...base[0]!, name: 'other' }), /belongs to member/);
});
