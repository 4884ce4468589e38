/**
 * Membership at runtime with real processes on loopback: three `serve` processes, writes; a
 * learner `n4` added through `POST /v1/members` and started with `--initial-cluster-state
 * existing` and an empty data directory (it comes up from the leader's snapshot); promoted;
 * a follower removed and stopped; the leader replaced (leadership moved, then removed). After
 * that writes still succeed, every acknowledged key is readable on the remaining members,
 * `GET /v1/members` shows the final membership, and re-adding a removed name is refused
 * with 409 `NODE_ID_REUSED`. Every wait polls against a deadline.
 */
import assert from 'node:assert/strict';
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { type ClusterNodeInfo, initialClusterOf, planNode, serveArgs } from '../src/cli/cluster-command.js';
import { type ApiBody, requestJson, untilQuiet } from './support/http.js';

const MAIN = fileURLToPath(new URL('../src/cli/main.js', import.meta.url));
const TICK_MS = 50;
const EXTRA = ['--tick-ms', String(TICK_MS), '--kv-no-sync'];

const children: ChildProcess[] = [];
let root = '';
after(async () => {
  for (const child of children) if (child.exitCode === null) child.kill('SIGKILL');
  if (root !== '') await rm(root, { recursive: true, force: true });
});

const json = (url: string, init: RequestInit = {}) => requestJson(url, init, 8000);
const until = untilQuiet;

function node(name: string): Promise<ClusterNodeInfo> {
  return planNode(name, root);
}

function serve(n: ClusterNodeInfo, initialCluster: string, extra: readonly string[] = []): ChildProcess {
  const child = spawn(process.execPath, [MAIN, ...serveArgs(n, initialCluster, [...EXTRA, ...extra])], {
    stdio: 'ignore',
  });
  children.push(child);
  return child;
}

/** The leader every given node agrees on. */
async function leaderOf(nodes: readonly ClusterNodeInfo[]): Promise<ClusterNodeInfo> {
  return until('an agreed leader', 10_000, async () => {
    const names = await Promise.all(
      nodes.map(async (n) => (await json(`${n.clientUrl}/v1/cluster`)).body.leader?.name),
    );
    const first = names[0];
    if (first === undefined || !names.every((x) => x === first)) return undefined;
    return nodes.find((n) => n.name === first);
  });
}

/** A membership request sent to the leader, retried while a change is still in progress. */
async function onLeader(
  nodes: readonly ClusterNodeInfo[],
  path: string,
  init: RequestInit,
): Promise<{ status: number; body: ApiBody }> {
  return until(`${init.method} ${path}`, 10_000, async () => {
    const leader = await leaderOf(nodes);
    const r = await json(`${leader.clientUrl}${path}`, init);
    return r.body.error?.retryable === true ? undefined : r;
  });
}

async function put(url: string, key: string, value: string): Promise<boolean> {
  try {
    return (
      (await json(`${url}/v1/kv/${key}`, { method: 'PUT', body: JSON.stringify({ value }) })).status === 200
    );
  } catch {
    return false;
  }
}

test('membership at runtime: add a learner, promote it, remove a follower, replace the leader', async () => {
  root = await mkdtemp(join(tmpdir(), 'flotilla-members-'));
  const founders = [await node('n1'), await node('n2'), await node('n3')];
  const initial = initialClusterOf(founders);
  const procs = new Map<string, ChildProcess>();
  for (const n of founders) procs.set(n.name, serve(n, initial));
  let members = [...founders];
  await leaderOf(members);

  const acknowledged = new Map<string, string>();
  for (let i = 0; i < 20; i++) {
    assert.ok(await put(members[i % 3]!.clientUrl, `k${i}`, `v${i}`), `put k${i}`);
    acknowledged.set(`k${i}`, `v${i}`);
  }

  // Add n4 as a learner, then start it with an empty data directory.
  const n4 = await node('n4');
  const added = await onLeader(members, '/v1/members', {
    method: 'POST',
    body: JSON.stringify({ name: 'n4', peerUrl: n4.peerUrl, learner: true }),
  });
  assert.equal(added.status, 201, JSON.stringify(added.body));
  assert.deepEqual(added.body.member, { id: n4.id, name: 'n4', peerUrl: n4.peerUrl, role: 'learner' });
  const clusterId = String(added.body.clusterId);
  procs.set(
    'n4',
    serve(n4, initialClusterOf([...members, n4]), [
      '--initial-cluster-state',
      'existing',
      '--cluster-id',
      clusterId,
    ]),
  );
  members = [...members, n4];
  await until('n4 to apply the writes', 15_000, async () => {
    const { body } = await json(`${n4.clientUrl}/v1/kv?prefix=k&consistency=serializable`);
    return body.count === acknowledged.size ? true : undefined;
  });

  // Promote it.
  const promoted = await onLeader(members, `/v1/members/${n4.id}/promote`, { method: 'POST' });
  assert.equal(promoted.status, 200, JSON.stringify(promoted.body));
  assert.equal(promoted.body.member?.role, 'voter');

  // Remove a follower, then stop its process.
  const leader1 = await leaderOf(members);
  const follower = members.find((n) => n !== leader1 && n !== n4)!;
  const removed = await onLeader(members, `/v1/members/${follower.id}`, { method: 'DELETE' });
  assert.equal(removed.status, 200, JSON.stringify(removed.body));
  members = members.filter((n) => n !== follower);
  procs.get(follower.name)?.kill('SIGTERM');

  // Replace the leader: removing it directly is refused; move leadership, then remove it.
  const leader2 = await leaderOf(members);
  const refused = await json(`${leader2.clientUrl}/v1/members/${leader2.id}`, { method: 'DELETE' });
  assert.equal(refused.status, 409);
  assert.equal(refused.body.error?.code, 'MEMBER_IS_LEADER');
  const successor = members.find((n) => n !== leader2)!;
  const moved = await onLeader(members, '/v1/leader', {
    method: 'POST',
    body: JSON.stringify({ id: successor.id }),
  });
  assert.equal(moved.status, 200, JSON.stringify(moved.body));
  const gone = await onLeader(members, `/v1/members/${leader2.id}`, { method: 'DELETE' });
  assert.equal(gone.status, 200, JSON.stringify(gone.body));
  members = members.filter((n) => n !== leader2);
  procs.get(leader2.name)?.kill('SIGTERM');
  assert.equal(members.length, 2);

  // Writes still succeed; every acknowledged key is readable on the remaining members.
  await leaderOf(members);
  for (let i = 20; i < 30; i++) {
    assert.ok(
      await until(`put k${i}`, 10_000, async () =>
        (await put(members[i % 2]!.clientUrl, `k${i}`, `v${i}`)) ? true : undefined,
      ),
    );
    acknowledged.set(`k${i}`, `v${i}`);
  }
  for (const n of members) {
    const { body } = await json(`${n.clientUrl}/v1/kv?prefix=k`);
    const kvs = new Map((body.kvs ?? []).map((kv) => [kv.key, kv.value]));
    for (const [key, value] of acknowledged) assert.equal(kvs.get(key), value, `${key} on ${n.name}`);
  }

  // The final membership, as every remaining member sees it.
  for (const n of members) {
    const { body } = await json(`${n.clientUrl}/v1/members`);
    assert.deepEqual(
      body.members?.map((m) => [m.name, m.role, m.peerUrl]),
      members.map((m) => [m.name, 'voter', m.peerUrl]).sort((a, b) => (a[0]! < b[0]! ? -1 : 1)),
    );
  }

  // The CLI shows the same, and `member add` reports the refusal of a removed name.
  const cli = (args: string[]) =>
    spawnSync(process.execPath, [MAIN, ...args], { encoding: 'utf8', timeout: 15_000 });
  const endpoints = members.map((m) => m.clientUrl).join(',');
  const listed = cli(['member', 'list', '--endpoints', endpoints, '--json']);
  assert.equal(listed.status, 0, listed.stderr);
  assert.deepEqual(
    (JSON.parse(listed.stdout) as ApiBody).members?.map((m) => m.name),
    members.map((m) => m.name).sort(),
  );
  const readd = cli([
    'member',
    'add',
    follower.name,
    '--peer-url',
    follower.peerUrl,
    '--endpoints',
    endpoints,
  ]);
  assert.equal(readd.status, 1);
  assert.match(readd.stderr, /NODE_ID_REUSED/);

  // A founder restarted with its original flags knows n4's address from its data directory
  // (members.json / the conf changes in its log), not from --initial-cluster: the pair (a
  // majority of two needs both) accepts writes again. (Should n4 have been the replaced
  // leader, the restart still shows the remaining pair recovering.)
  const founder = members.find((m) => m !== n4)!;
  const old = procs.get(founder.name)!;
  old.kill('SIGTERM');
  await until(`${founder.name} to stop`, 10_000, async () =>
    old.exitCode !== null || old.signalCode !== null ? true : undefined,
  );
  procs.set(founder.name, serve(founder, initial));
  assert.ok(
    await until('a write after the restart', 15_000, async () =>
      (await put(founder.clientUrl, 'k-restart', 'v')) ? true : undefined,
    ),
  );
  acknowledged.set('k-restart', 'v');
  const { body: after } = await json(`${founder.clientUrl}/v1/members`);
  for (const m of members) assert.equal(after.members?.find((x) => x.id === m.id)?.peerUrl, m.peerUrl);

  // A removed name (hence id) cannot come back.
  const again = await onLeader(members, '/v1/members', {
    method: 'POST',
    body: JSON.stringify({ name: follower.name, peerUrl: follower.peerUrl }),
  });
  assert.equal(again.status, 409);
  assert.equal(again.body.error?.code, 'NODE_ID_REUSED');

  for (const child of procs.values()) child.kill('SIGTERM');
  await until('every process to stop', 10_000, async () =>
    [...procs.values()].every((c) => c.exitCode !== null || c.signalCode !== null) ? true : undefined,
  );
});
