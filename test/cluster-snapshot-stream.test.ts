/**
 * The streamed catch-up with real processes: three `flotilla serve` members snapshotting
 * every 200 entries; one is killed, the others write far past its log, and it restarts and
 * must be sent the store. While the stream is in flight the leader is frozen (SIGSTOP), so
 * the stream stops mid-way: the two others elect a new leader, which streams the store
 * afresh; the restarted member installs it and serves every acknowledged write. Then the old
 * leader is let go (SIGCONT) and finishes its now stale stream: the member must ignore it.
 * At the end every member holds the same store (etcd's HashKV, through the real etcdctl).
 * And a member killed while it writes a stream to its spool restarts, discards the partial
 * file and is streamed the store afresh.
 */
import assert from 'node:assert/strict';
import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { type ClusterNodeInfo, freePorts, initialClusterOf, serveArgs } from '../src/cli/cluster-command.js';
import { requestJson, until } from './support/http.js';

const run = promisify(execFile);
const MAIN = fileURLToPath(new URL('../src/cli/main.js', import.meta.url));
/** Every member process started, by data directory (names repeat across tests). */
const children = new Map<string, ChildProcess>();
const roots: string[] = [];
after(async () => {
  for (const child of children.values()) {
    child.kill('SIGCONT');
    child.kill('SIGKILL');
  }
  await Promise.all(roots.map((root) => rm(root, { recursive: true, force: true })));
});

// More than the 5,000 entries a member keeps behind its snapshot, so the log cannot serve the catch-up.
const KEYS = 6000;
const VALUE = 'v'.repeat(4 * 1024);

async function leaderName(url: string): Promise<string | undefined> {
  try {
    const { body } = await requestJson(`${url}/v1/cluster`);
    return (body.leader as { name: string } | null)?.name;
  } catch {
    return undefined;
  }
}

async function put(url: string, key: string): Promise<boolean> {
  try {
    const { status } = await requestJson(`${url}/v1/kv/${key}`, {
      method: 'PUT',
      body: JSON.stringify({ value: `${key}:${VALUE}` }),
    });
    return status === 200;
  } catch {
    return false;
  }
}

function start(node: ClusterNodeInfo, initialCluster: string): void {
  const args = serveArgs(node, initialCluster, [
    '--tick-ms',
    '50',
    '--snapshot-entries',
    '200',
    '--kv-no-sync',
  ]);
  const child = spawn(process.execPath, [MAIN, ...args], { stdio: ['ignore', 'ignore', 'ignore'] });
  children.set(node.dataDir, child);
}

async function count(url: string): Promise<number> {
  const { body } = await requestJson(`${url}/v1/kv?prefix=k&countOnly=true&consistency=serializable`);
  return Number(body.count);
}

/** etcd's HashKV of a member at `revision`, through the real etcdctl. */
async function hashKv(endpoint: string, revision: number): Promise<number> {
  const { stdout } = await run('etcdctl', [
    '--endpoints',
    endpoint,
    'endpoint',
    'hashkv',
    '--rev',
    String(revision),
    '-w',
    'json',
  ]);
  const [entry] = JSON.parse(stdout) as { HashKV: { hash: number } }[];
  return entry!.HashKV.hash;
}

/** Polls every 2 ms (a stream of a few tens of MB on loopback lasts a fraction of a second). */
async function soon(what: string, timeoutMs: number, probe: () => Promise<boolean>): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await probe())) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 2));
  }
}

test('a follower whose snapshot stream stops mid-way (leader frozen) catches up from the next leader', async () => {
  const { nodes, initialCluster, behind, live, leader, spool } = await clusterWithOneBehind();
  const url = (name: string): string => nodes.find((n) => n.name === name)!.clientUrl;
  const dataDirOf = (name: string): string => nodes.find((n) => n.name === name)!.dataDir;
  start(behind, initialCluster);
  // Freeze the leader as soon as the restarted member is receiving its stream.
  await streamBegun(spool);
  children.get(dataDirOf(leader))!.kill('SIGSTOP');
  // Frozen mid-stream: nothing was installed yet (the stream's file is not complete).
  assert.equal((await readdir(spool)).filter((n) => n.endsWith('.state')).length, 0);
  assert.ok((await count(behind.clientUrl).catch(() => 0)) < KEYS, 'frozen before the store was installed');
  const others = live.filter((n) => n.name !== leader);
  try {
    // The survivor and the restarted member elect a leader, which streams the store afresh.
    await until('a new leader', 20_000, async () => {
      const name = await leaderName(others[0]!.clientUrl);
      return name !== undefined && name !== leader ? name : undefined;
    });
    await until('the restarted member to hold every key', 60_000, async () =>
      (await count(behind.clientUrl).catch(() => 0)) === KEYS ? true : undefined,
    );
  } finally {
    children.get(dataDirOf(leader))!.kill('SIGCONT');
  }
  // The old leader's stale stream completes or is dropped; nothing changes.
  await until('the old leader to rejoin', 20_000, async () =>
    (await count(url(leader)).catch(() => 0)) === KEYS ? true : undefined,
  );
  await sameStoreEverywhere(nodes, behind);
});

test('a follower killed while it receives the stream restarts, drops the partial file and catches up', async () => {
  const { nodes, initialCluster, behind, spool } = await clusterWithOneBehind();
  start(behind, initialCluster);
  await streamBegun(spool);
  children.get(behind.dataDir)!.kill('SIGKILL');
  await new Promise((resolve) => children.get(behind.dataDir)!.once('exit', resolve));
  assert.ok(
    (await readdir(spool)).some((n) => n.endsWith('.tmp')),
    'killed with the stream half written',
  );
  start(behind, initialCluster);
  await until('the restarted member to hold every key', 60_000, async () =>
    (await count(behind.clientUrl).catch(() => 0)) === KEYS ? true : undefined,
  );
  // Installed from a complete stream; the partial one is gone, and so is the installed one.
  await until('the spool to be empty', 10_000, async () =>
    (await readdir(spool)).length === 0 ? true : undefined,
  );
  await sameStoreEverywhere(nodes, behind);
});

/**
 * Three members; the first follower is killed and the others write far past its log
 * (snapshots every 200 entries compact it).
 */
async function clusterWithOneBehind(): Promise<{
  nodes: ClusterNodeInfo[];
  initialCluster: string;
  behind: ClusterNodeInfo;
  live: ClusterNodeInfo[];
  leader: string;
  spool: string;
}> {
  const root = await mkdtemp(join(tmpdir(), 'flotilla-stream-'));
  roots.push(root);
  const ports = await freePorts(9);
  const nodes: ClusterNodeInfo[] = [1, 2, 3].map((k) => ({
    name: `n${k}`,
    id: 0,
    pid: 0,
    peerUrl: `http://127.0.0.1:${ports[3 * k - 3]}`,
    clientUrl: `http://127.0.0.1:${ports[3 * k - 2]}`,
    grpcEndpoint: `127.0.0.1:${ports[3 * k - 1]}`,
    dataDir: join(root, `n${k}`),
  }));
  const initialCluster = initialClusterOf(nodes);
  for (const n of nodes) start(n, initialCluster);
  const first = await until('a leader', 20_000, () => leaderName(nodes[0]!.clientUrl));
  const behind = nodes.find((n) => n.name !== first)!;
  children.get(behind.dataDir)!.kill('SIGKILL');
  const live = nodes.filter((n) => n !== behind);
  for (let i = 0; i < KEYS; i += 50) {
    const batch = Array.from(
      { length: Math.min(50, KEYS - i) },
      (_, j) => `k${String(i + j).padStart(5, '0')}`,
    );
    const results = await Promise.all(batch.map((key) => put(live[i % 2]!.clientUrl, key)));
    assert.ok(results.every(Boolean), `puts from ${i} acknowledged`);
  }
  const leader = await until('a leader', 10_000, () => leaderName(live[0]!.clientUrl));
  return { nodes, initialCluster, behind, live, leader, spool: join(behind.dataDir, 'snap-received') };
}

/** Resolves once the restarted member is writing a stream into its spool. */
async function streamBegun(spool: string): Promise<void> {
  await soon('the stream to begin', 20_000, async () =>
    (await readdir(spool).catch(() => [] as string[])).some((n) => n.endsWith('.tmp')),
  );
}

/** A last write reaches every member, and every member holds the same store, history included. */
async function sameStoreEverywhere(nodes: readonly ClusterNodeInfo[], via: ClusterNodeInfo): Promise<void> {
  // The old leader rejoining may cost an election: retry the write until one is acknowledged.
  await until('the cluster to take writes afterwards', 20_000, async () =>
    (await put(via.clientUrl, 'k-after')) ? true : undefined,
  );
  for (const n of nodes) {
    await until(`${n.name} to apply the last write`, 20_000, async () =>
      (await count(n.clientUrl).catch(() => 0)) === KEYS + 1 ? true : undefined,
    );
  }
  // HashKV up to the last write's revision.
  const { body } = await requestJson(`${via.clientUrl}/v1/kv/k-after?consistency=serializable`);
  const revision = Number(body.revision);
  const hashes = await Promise.all(nodes.map((n) => hashKv(n.grpcEndpoint, revision)));
  assert.equal(new Set(hashes).size, 1, `HashKV differs between members: ${hashes.join(', ')}`);
}
