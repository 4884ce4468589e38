/**
 * Real processes on loopback: `flotilla cluster start --nodes 3`, SIGSTOP of the leader for
 * longer than three (maximum randomized) election timeouts while the other two elect a new
 * leader and accept a newer write, then SIGCONT. A linearizable read through the old leader
 * (one queued while it was stopped, one right after it resumes) must return the newer value
 * or an error, never the older one; once it has caught up, every acknowledged write is on
 * every node. Every wait polls against a deadline; every process is killed in `after`.
 */
import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import type { ClusterNodeInfo } from '../src/cli/cluster-command.js';
import { requestJsonOrUnreachable, until } from './support/http.js';

const MAIN = fileURLToPath(new URL('../src/cli/main.js', import.meta.url));
const TICK_MS = 50;
const ELECTION_TICKS = 10;
/** The longest randomized election timeout ([t, 2t) ticks). */
const ELECTION_MS_MAX = 2 * ELECTION_TICKS * TICK_MS;

let cluster: ChildProcess | undefined;
let nodes: ClusterNodeInfo[] = [];
let root = '';
after(async () => {
  // A stopped process must be resumed to act on SIGTERM; SIGKILL works either way.
  for (const node of nodes) {
    for (const signal of ['SIGCONT', 'SIGKILL'] as const) {
      try {
        process.kill(node.pid, signal);
      } catch {
        // already gone
      }
    }
  }
  if (cluster !== undefined && cluster.exitCode === null) cluster.kill('SIGKILL');
  if (root !== '') await rm(root, { recursive: true, force: true });
});

/** One request; status 0 when it failed outright (refused, reset, timed out). */
const json = requestJsonOrUnreachable;

async function leaderName(node: ClusterNodeInfo): Promise<string | undefined> {
  const { status, body } = await json(`${node.clientUrl}/v1/cluster`);
  return status === 200 ? body.leader?.name : undefined;
}

/** A put retried on retryable failures until acknowledged (or the deadline passes). */
async function put(node: ClusterNodeInfo, key: string, value: string): Promise<void> {
  await until(`PUT ${key}=${value} through ${node.name}`, 10_000, async () => {
    const { status } = await json(
      `${node.clientUrl}/v1/kv/${key}`,
      { method: 'PUT', body: JSON.stringify({ value }) },
      6000,
    );
    if (status === 200) return true;
    assert.ok(status === 0 || status === 503 || status === 429, `PUT ${key} through ${node.name}: ${status}`);
    return undefined;
  });
}

test('3 processes: SIGSTOP the leader past the election timeout, SIGCONT: no stale read, no lost write', {
  timeout: 60_000,
}, async (t) => {
  root = await mkdtemp(join(tmpdir(), 'flotilla-pause-'));
  cluster = spawn(
    process.execPath,
    [
      MAIN,
      'cluster',
      'start',
      '--nodes',
      '3',
      '--data-dir',
      root,
      '--base-port',
      '0',
      '--tick-ms',
      String(TICK_MS),
    ],
    { stdio: ['ignore', 'pipe', 'pipe'] },
  );
  let output = '';
  cluster.stdout?.on('data', (d: Buffer) => {
    output += d.toString();
  });
  await until('the cluster to be up', 20_000, async () => (output.includes('endpoints:') ? true : undefined));
  nodes = (JSON.parse(await readFile(join(root, 'cluster.json'), 'utf8')) as { nodes: ClusterNodeInfo[] })
    .nodes;
  assert.equal(nodes.length, 3);

  const acknowledged = new Map<string, string>();
  const leader = await until('a leader all agree on', 10_000, async () => {
    const names = await Promise.all(nodes.map(leaderName));
    return names[0] !== undefined && names.every((n) => n === names[0]) ? names[0] : undefined;
  });
  const old = nodes.find((n) => n.name === leader)!;
  const others = nodes.filter((n) => n !== old);
  await put(old, 'k', 'v1');
  acknowledged.set('k', 'v1');
  for (let i = 0; i < 5; i++) {
    await put(nodes[i % 3]!, `before${i}`, `b${i}`);
    acknowledged.set(`before${i}`, `b${i}`);
  }
  // The old leader has applied k=v1, so a stale read from it would show v1.
  await until('k=v1 applied on the leader', 5000, async () => {
    const { body } = await json(`${old.clientUrl}/v1/kv/k?consistency=serializable`);
    return body.value === 'v1' ? true : undefined;
  });

  process.kill(old.pid, 'SIGSTOP');
  const stoppedAt = Date.now();
  const newLeader = await until('a new leader among the other two', 3 * ELECTION_MS_MAX + 5000, async () => {
    const names = await Promise.all(others.map(leaderName));
    return names[0] !== undefined && names[0] !== old.name && names.every((n) => n === names[0])
      ? names[0]
      : undefined;
  });
  await put(others[0]!, 'k', 'v2');
  acknowledged.set('k', 'v2');
  for (let i = 0; i < 5; i++) {
    await put(others[i % 2]!, `during${i}`, `d${i}`);
    acknowledged.set(`during${i}`, `d${i}`);
  }
  // Stay stopped for more than three of the longest election timeouts.
  const pauseMs = 3 * ELECTION_MS_MAX + 500;
  await new Promise((r) => setTimeout(r, Math.max(0, stoppedAt + pauseMs - Date.now())));
  assert.ok(Date.now() - stoppedAt > 3 * ELECTION_MS_MAX);

  // One read queued in the kernel while the old leader is stopped, one right after SIGCONT.
  const queued = json(`${old.clientUrl}/v1/kv/k`, {}, 8000);
  await new Promise((r) => setTimeout(r, 50));
  process.kill(old.pid, 'SIGCONT');
  const immediate = await json(`${old.clientUrl}/v1/kv/k`, {}, 8000);
  for (const [when, reply] of [
    ['queued while stopped', await queued],
    ['right after SIGCONT', immediate],
  ] as const) {
    assert.ok(
      reply.status !== 200 || reply.body.value === 'v2',
      `read through the old leader ${when}: status ${reply.status}, value ${reply.body.value} (must be v2 or an error)`,
    );
    assert.notEqual(reply.body.value, 'v1', `stale read through the old leader ${when}`);
    t.diagnostic(
      `read through old leader ${old.name} ${when}: ${reply.status} ${reply.body.value ?? reply.body.error?.code}`,
    );
  }

  // The old leader follows the new one and every acknowledged write is on every node.
  await until(`${old.name} to follow ${newLeader}`, 10_000, async () => {
    const { body } = await json(`${old.clientUrl}/v1/cluster`);
    return body.leader?.name === newLeader && body.role !== 'leader' ? true : undefined;
  });
  for (const node of nodes) {
    await until(`every acknowledged write applied on ${node.name}`, 10_000, async () => {
      const { status, body } = await json(`${node.clientUrl}/v1/kv?prefix=&consistency=serializable`);
      if (status !== 200) return undefined;
      const kvs = new Map((body.kvs ?? []).map((kv) => [kv.key, kv.value]));
      return [...acknowledged].every(([k, v]) => kvs.get(k) === v) ? true : undefined;
    });
  }
  const { status, body } = await json(`${old.clientUrl}/v1/kv/k`);
  assert.equal(status, 200);
  assert.equal(body.value, 'v2');

  cluster.kill('SIGTERM');
  await until('the cluster to stop', 10_000, async () =>
    cluster?.exitCode !== null || cluster.signalCode !== null ? true : undefined,
  );
});
