/**
 * Real processes on loopback: `flotilla cluster start --nodes 3`, writes through every node,
 * SIGKILL of the leader, a new leader within three (maximum randomized) election timeouts,
 * every acknowledged write readable afterwards, and the killed node restarted with
 * `flotilla serve` catching up. Every wait polls against a deadline.
 */
import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { type ClusterNodeInfo, initialClusterOf, serveArgs } from '../src/cli/cluster-command.js';
import { requestJson, until } from './support/http.js';

const MAIN = fileURLToPath(new URL('../src/cli/main.js', import.meta.url));
const TICK_MS = 50;
const ELECTION_TICKS = 10;
/** The randomized election timeout is in [t, 2t): three of the longest possible ones. */
const FAILOVER_MS_MAX = 3 * 2 * ELECTION_TICKS * TICK_MS;

const children: ChildProcess[] = [];
let root = '';
after(async () => {
  for (const child of children) if (child.exitCode === null) child.kill('SIGKILL');
  if (root !== '') await rm(root, { recursive: true, force: true });
});

const json = requestJson;

async function leaderName(url: string): Promise<string | undefined> {
  try {
    const { body } = await json(`${url}/v1/cluster`);
    return (body.leader as { name: string } | null)?.name;
  } catch {
    return undefined;
  }
}

async function put(url: string, key: string, value: string): Promise<boolean> {
  try {
    const { status } = await json(`${url}/v1/kv/${key}`, { method: 'PUT', body: JSON.stringify({ value }) });
    return status === 200;
  } catch {
    return false;
  }
}

test('3 processes: failover after SIGKILL of the leader, no acknowledged write lost, restart catches up', async () => {
  root = await mkdtemp(join(tmpdir(), 'flotilla-cluster-'));
  const cluster = spawn(
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
    {
      stdio: ['ignore', 'pipe', 'pipe'],
    },
  );
  children.push(cluster);
  let output = '';
  cluster.stdout?.on('data', (d: Buffer) => {
    output += d.toString();
  });
  await until('the cluster to be up', 20_000, async () => (output.includes('endpoints:') ? true : undefined));
  assert.match(output, /cluster of 3 nodes is up; leader n\d/);
  const { nodes } = JSON.parse(await readFile(join(root, 'cluster.json'), 'utf8')) as {
    nodes: ClusterNodeInfo[];
  };
  assert.equal(nodes.length, 3);
  for (const n of nodes) assert.ok(n.pid > 0 && n.id > 0 && n.dataDir.startsWith(root));

  // Writes through every node; followers forward to the leader.
  const acknowledged = new Map<string, string>();
  for (let i = 0; i < 30; i++) {
    const node = nodes[i % 3]!;
    assert.ok(await put(node.clientUrl, `k${i}`, `v${i}`), `put through ${node.name}`);
    acknowledged.set(`k${i}`, `v${i}`);
  }

  // SIGKILL the leader.
  const leader = (await leaderName(nodes[0]!.clientUrl))!;
  const victim = nodes.find((n) => n.name === leader)!;
  const survivors = nodes.filter((n) => n !== victim);
  process.kill(victim.pid, 'SIGKILL');
  const killedAt = Date.now();
  const newLeader = await until('a new leader', FAILOVER_MS_MAX + 2000, async () => {
    const names = await Promise.all(survivors.map((n) => leaderName(n.clientUrl)));
    return names[0] !== undefined && names[0] !== leader && names.every((x) => x === names[0])
      ? names[0]
      : undefined;
  });
  const failoverMs = Date.now() - killedAt;
  assert.ok(
    failoverMs <= FAILOVER_MS_MAX,
    `new leader ${newLeader} after ${failoverMs} ms (max ${FAILOVER_MS_MAX})`,
  );

  // More writes through the survivors, then every acknowledged write is readable (linearizable).
  for (let i = 30; i < 50; i++) {
    const node = survivors[i % 2]!;
    if (await put(node.clientUrl, `k${i}`, `v${i}`)) acknowledged.set(`k${i}`, `v${i}`);
  }
  assert.ok(acknowledged.size >= 45, `most writes after failover acknowledged (${acknowledged.size})`);
  for (const survivor of survivors) {
    const { body } = await json(`${survivor.clientUrl}/v1/kv?prefix=k`);
    const kvs = new Map((body.kvs as { key: string; value: string }[]).map((kv) => [kv.key, kv.value]));
    for (const [key, value] of acknowledged) assert.equal(kvs.get(key), value, `${key} on ${survivor.name}`);
  }

  // Restart the killed node with `serve`; it catches up from its data directory and the leader.
  const restarted = spawn(
    process.execPath,
    [MAIN, ...serveArgs(victim, initialClusterOf(nodes), ['--tick-ms', String(TICK_MS)])],
    { stdio: 'ignore' },
  );
  children.push(restarted);
  await until('the restarted node to catch up', 10_000, async () => {
    try {
      const { body } = await json(`${victim.clientUrl}/v1/kv?prefix=k&consistency=serializable`);
      return body.count === acknowledged.size ? true : undefined;
    } catch {
      return undefined;
    }
  });
  const { body: status } = await json(`${victim.clientUrl}/v1/cluster`);
  assert.equal((status.leader as { name: string }).name, newLeader);

  restarted.kill('SIGTERM');
  cluster.kill('SIGTERM');
  const exited = await until('the cluster to stop', 10_000, async () =>
    cluster.exitCode !== null && restarted.exitCode !== null ? true : undefined,
  );
  assert.ok(exited);
});
