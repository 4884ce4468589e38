/**
 * The library's node API on real sockets and data directories (every node in this process, so
 * errors can be checked with `instanceof`): a counter cluster of three founders grows by a
 * learner that joins with `join`, is promoted and takes over leadership; a member is removed
 * (it stops, and its calls fail with `RemovedError`); lease reads answer on the leader and
 * elsewhere; status events and `watchStatus` report what changed; every failure is a
 * `FlotillaError` of the documented class.
 */
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { type Command, Counter } from '../examples/counter-machine.js';
import { freePort } from '../src/cli/cluster-command.js';
import {
  createNode,
  FlotillaError,
  type FlotillaNode,
  type NodeStatus,
  NotLeaderError,
  RefusedError,
  RemovedError,
  StoppedError,
  TimeoutError,
} from '../src/index.js';

type CounterNode = FlotillaNode<Command, number, null, number>;

const roots: string[] = [];
/** What the nodes logged, shown when a test fails. */
const logged: string[] = [];
const running = new Set<CounterNode>();
after(async () => {
  for (const node of running) await node.close().catch(() => {});
  for (const root of roots) await rm(root, { recursive: true, force: true });
});

async function newRoot(): Promise<string> {
  const root = await mkdtemp(join(tmpdir(), 'flotilla-library-'));
  roots.push(root);
  return root;
}

/** Starts counter member `id` in `root`, listening on `address`, founding with `peers` or joining. */
async function start(
  root: string,
  id: number,
  address: string,
  cluster: { peers: Record<number, string> } | { join: string[] },
  requestTimeoutMs = 3000,
): Promise<CounterNode> {
  const node = await createNode({
    id,
    dataDir: join(root, String(id)),
    listen: address,
    ...cluster,
    stateMachine: new Counter(),
    tickMs: 20,
    requestTimeoutMs,
    logger: {
      info: (message) => logged.push(`${Date.now() % 100_000} ${id} ${message}`),
      warn: (message) => logged.push(`${Date.now() % 100_000} ${id} warn ${message}`),
      error: (message) => logged.push(`${Date.now() % 100_000} ${id} error ${message}`),
    },
  });
  running.add(node);
  return node;
}

/** Resolves with the first status of `node` that satisfies `done` (fails after `timeoutMs`). */
async function until(
  node: CounterNode,
  what: string,
  done: (status: NodeStatus) => boolean,
  timeoutMs = 10_000,
): Promise<NodeStatus> {
  for await (const status of node.watchStatus({ signal: AbortSignal.timeout(timeoutMs) })) {
    if (done(status)) return status;
  }
  throw new Error(`node ${node.id}: no ${what} within ${timeoutMs} ms`);
}

/** Retries `change` while the leader refuses it for a reason that passes (a learner catching up). */
async function retryRefused(change: () => Promise<void>): Promise<void> {
  for (let attempt = 0; ; attempt++) {
    try {
      return await change();
    } catch (error) {
      if (!(error instanceof RefusedError && error.retryable) || attempt >= 100) throw error;
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  }
}

test('a learner joins, is promoted and leads; a member is removed; lease reads; events', async (t) => {
  await membershipScenario().catch((error: unknown) => {
    t.diagnostic(logged.slice(-120).join('\n'));
    throw error;
  });
});

async function membershipScenario(): Promise<void> {
  const root = await newRoot();
  const addresses = new Map<number, string>();
  for (const id of [1, 2, 3, 4]) addresses.set(id, `127.0.0.1:${await freePort()}`);
  const peers = Object.fromEntries([1, 2, 3].map((id) => [id, addresses.get(id)!]));
  const nodes = new Map<number, CounterNode>();
  for (const id of [1, 2, 3]) nodes.set(id, await start(root, id, addresses.get(id)!, { peers }));
  const first = await until(nodes.get(1)!, 'leader', (s) => s.leader !== 0);
  const leader = nodes.get(first.leader)!;
  const follower = [...nodes.values()].find((n) => n !== leader)!;
  assert.equal(await follower.propose({ op: 'add', n: 5 }), 5, 'a follower forwards to the leader');

  // Membership changes go to the leader; a follower names it.
  const refused = await follower.addLearner(4, addresses.get(4)!).then(
    () => assert.fail('a follower accepted a membership change'),
    (error: unknown) => error,
  );
  assert.ok(refused instanceof NotLeaderError && refused instanceof FlotillaError, String(refused));
  assert.equal(refused.code, 'NOT_LEADER');
  assert.equal(refused.leaderId, leader.id);
  assert.equal(refused.leaderAddress, addresses.get(leader.id));

  await leader.addLearner(4, addresses.get(4)!);
  // Start it once every member knows it: a member that has not applied the addition yet
  // refuses its connection, and the transport redials a refusing peer only seconds later.
  for (const node of nodes.values())
    await until(node, 'the learner', (s) => s.confState.learners.includes(4));
  const learner = await start(root, 4, addresses.get(4)!, { join: [...addresses.values()].slice(0, 3) });
  nodes.set(4, learner);
  await until(learner, 'catch-up', (s) => s.machineApplied >= first.commit && s.leader !== 0);
  assert.equal(await learner.read(null, { consistency: 'linearizable' }), 5, 'the learner has the count');
  assert.deepEqual(
    leader.members().find((m) => m.id === 4),
    { id: 4, name: '4', address: addresses.get(4), role: 'learner' },
  );

  await retryRefused(() => leader.promote(4));
  assert.equal(leader.members().find((m) => m.id === 4)?.role, 'voter');
  const leads = new Promise<void>((resolve) => learner.on('leader', (id) => id === 4 && resolve()));
  const leaderRole = new Promise<void>((resolve) =>
    learner.on('role', (role) => role === 'leader' && resolve()),
  );
  await follower.transferLeadership(4, { timeoutMs: 5000 });
  await Promise.all([leads, leaderRole]); // the events of the new leader
  assert.equal(learner.status().role, 'leader');
  assert.equal(await learner.propose({ op: 'add', n: 1 }), 6);

  // Lease reads: at once on the leader holding a lease, through ReadIndex elsewhere.
  for (const node of nodes.values()) assert.equal(await node.read(null, { consistency: 'lease' }), 6);

  // Remove a member that is not the leader: it applies its removal and stops.
  const removed = nodes.get([1, 2, 3].find((id) => id !== 4)!)!;
  const removedEvent = new Promise<void>((resolve) => removed.once('removed', resolve));
  await learner.remove(removed.id);
  await removedEvent;
  nodes.delete(removed.id);
  for (const call of [() => removed.propose({ op: 'add', n: 1 }), () => removed.read(null)]) {
    await assert.rejects(
      call(),
      (error: unknown) => error instanceof RemovedError && error.code === 'REMOVED',
    );
  }
  assert.ok(!learner.members().some((m) => m.id === removed.id), 'gone from the configuration');
  const survivors = [...nodes.values()];
  assert.equal(await survivors[0]!.propose({ op: 'add', n: 1 }), 7, 'the other three go on');
  for (const node of survivors) assert.equal(await node.read(null, { consistency: 'lease' }), 7);

  // The leader alone cannot commit: a proposal it made has an unknown outcome.
  for (const node of survivors) if (node !== learner) await node.close();
  await assert.rejects(learner.propose({ op: 'add', n: 1 }, { timeoutMs: 300 }), (error: unknown) => {
    assert.ok(error instanceof TimeoutError, String(error));
    assert.equal(error.code, 'TIMEOUT');
    assert.equal(error.retryable, false);
    return true;
  });
  await learner.close();
}

test('errors: no leader, a stopped node, bad options, an aborted request', async () => {
  const root = await newRoot();
  const peers = { 1: `127.0.0.1:${await freePort()}`, 2: `127.0.0.1:${await freePort()}` };
  // One member of two: no leader can be elected.
  const alone = await start(root, 1, peers[1], { peers }, 400);
  await assert.rejects(alone.propose({ op: 'add', n: 1 }), (error: unknown) => {
    assert.ok(error instanceof NotLeaderError, String(error));
    assert.equal(error.code, 'NO_LEADER');
    assert.equal(error.leaderId, 0);
    assert.ok(error.retryable);
    return true;
  });
  await assert.rejects(alone.read(null), (error: unknown) => error instanceof NotLeaderError);
  await assert.rejects(
    alone.addLearner(3, '127.0.0.1:1'),
    (error: unknown) => error instanceof NotLeaderError,
  );
  await assert.rejects(
    alone.transferLeadership(2, { timeoutMs: 200 }),
    (error: unknown) => error instanceof TimeoutError,
  );
  const controller = new AbortController();
  const aborted = alone.propose({ op: 'add', n: 1 }, { signal: controller.signal });
  controller.abort(new Error('gave up'));
  await assert.rejects(aborted, /gave up/);

  const stopped = (error: unknown): boolean => error instanceof StoppedError && error.code === 'STOPPED';
  const waiting = assert.rejects(alone.propose({ op: 'add', n: 1 }, { timeoutMs: 10_000 }), stopped);
  await alone.close();
  await waiting;
  await assert.rejects(alone.propose({ op: 'add', n: 1 }), stopped);
  await assert.rejects(alone.read(null, { consistency: 'serializable' }), stopped);
  await assert.rejects(
    createNode({
      id: 3,
      dataDir: join(root, '3'),
      listen: '127.0.0.1:1',
      peers,
      join: [peers[1]],
      stateMachine: new Counter(),
    }),
    (error: unknown) => error instanceof FlotillaError && error.code === 'INVALID_CONFIG',
  );
});

test('applied-index events reach a listener and a status watcher, added or not while writes run', async () => {
  const root = await newRoot();
  const peers = { 1: `127.0.0.1:${await freePort()}` };
  const node = await start(root, 1, peers[1], { peers });
  await until(node, 'leadership', (s) => s.role === 'leader');
  // Nobody listens: the applied index moves without an event, and the status still says where it is.
  for (let i = 0; i < 5; i++) await node.propose({ op: 'add', n: 1 });
  const quiet = node.status().machineApplied;
  assert.ok(quiet >= 6, `applied ${quiet}`);
  const heard: number[] = [];
  const listener = (index: number): void => {
    heard.push(index);
  };
  node.on('applied', listener);
  const watched = until(node, 'the watched write', (s) => s.machineApplied >= quiet + 3);
  for (let i = 0; i < 3; i++) await node.propose({ op: 'add', n: 1 });
  assert.ok((await watched).machineApplied >= quiet + 3);
  await new Promise((resolve) => setImmediate(resolve));
  assert.ok(heard.length >= 1, 'no applied event');
  assert.equal(heard.at(-1), quiet + 3);
  // The pass that applied `quiet` may still be finishing when the listener is added: it reports `quiet`.
  assert.ok(
    heard.every((index, i) => index >= quiet && (i === 0 || index > heard[i - 1]!)),
    String(heard),
  );
  node.off('applied', listener);
  await node.propose({ op: 'add', n: 1 });
  await new Promise((resolve) => setImmediate(resolve));
  assert.equal(heard.at(-1), quiet + 3, 'an event after the listener was removed');
  assert.equal(node.status().machineApplied, quiet + 4);
  await node.close();
});
