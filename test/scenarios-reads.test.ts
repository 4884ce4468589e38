/**
 * Scripted read scenarios, FAULTS.md items 18 and 19: ReadIndex (Raft thesis §6.4) with its
 * heartbeat round, batching, the commit-in-term rule, deposed leaders and follower reads;
 * lease reads (§6.4.1) with their drift bound, transfers and the boot lease. Each drives the
 * in-process harness message by message and asserts exact messages and read states.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { HeartbeatRequest, Message, NodeId, Raft, RaftOptions, ReadState } from '../src/raft/index.js';
import { DEFAULT_RAFT_OPTIONS, MemoryStorage, Prng, RaftError, RawNode } from '../src/raft/index.js';
import { Harness } from '../src/sim/harness.js';
import {
  bytes,
  leadersAmong,
  raftErrorOf,
  run,
  runUntil,
  settle,
  text,
  tickNodes,
  tryPropose,
} from './support/cluster.js';

const electionTicks = DEFAULT_RAFT_OPTIONS.electionTicks;

function raftOf(h: Harness, id: NodeId): Raft {
  return h.node(id).raw.raft;
}

/** Read states as `[index, context]` pairs. */
function reads(states: readonly ReadState[]): [number, string][] {
  return states.map((rs) => [rs.index, text(rs.context)]);
}

/** A 3-node cluster led by node 1 with one committed write `a`, known to every node. */
function clusterLedBy1(seed: number, raft: Partial<Omit<RaftOptions, 'id' | 'random'>> = {}): Harness {
  const h = new Harness({ size: 3, seed, raft });
  h.campaign(1);
  assert.deepEqual(h.leaders(), [1]);
  assert.ok(tryPropose(h, 1, 'a'));
  settle(h);
  run(h, 1);
  assert.equal(raftOf(h, 1).log.committed, 2);
  return h;
}

/** A cluster with lease reads; the leader is elected by timeout (the boot lease forbids earlier votes). */
function leaseCluster(seed: number, raft: Partial<Omit<RaftOptions, 'id' | 'random'>> = {}) {
  const h = new Harness({ size: 3, seed, raft: { readOnly: 'lease-based', ...raft } });
  const leader = h.electLeader();
  assert.ok(tryPropose(h, leader, 'a'));
  settle(h);
  // One more tick: a heartbeat round sent at this tick is acknowledged by everyone.
  run(h, 1);
  const followers = [...h.nodes.keys()].filter((id) => id !== leader) as [NodeId, NodeId];
  return { h, leader, followers };
}

function heartbeatsIn(messages: readonly Message[]): HeartbeatRequest[] {
  return messages.filter((m): m is HeartbeatRequest => m.type === 'heartbeat');
}

// ------------------------------------------------------------------ ReadIndex

test('FAULTS 18: ReadIndex: the read is released only after a quorum acknowledged its heartbeat round', () => {
  const h = clusterLedBy1(131);
  const leader = h.node(1);
  leader.raw.readIndex(bytes('r1'));
  assert.deepEqual(raftOf(h, 1).readStates, [], 'a multi-node leader never answers at once');

  // The Ready starts one heartbeat round carrying a read context.
  h.processReadies();
  const round = heartbeatsIn(h.queue);
  assert.deepEqual(
    round.map((m) => [m.from, m.to, m.term, m.commit]),
    [
      [1, 2, 1, 2],
      [1, 3, 1, 2],
    ],
  );
  assert.equal(h.queue.length, 2);
  assert.equal(round[0]!.context.length, 8);
  assert.deepEqual(round[0]!.context, round[1]!.context);

  // Followers answer, echoing the context; nothing is released before an answer arrives.
  h.deliverAll();
  h.processReadies();
  const answers = h.queue.filter((m) => m.type === 'heartbeat-response');
  assert.deepEqual(
    answers.map((m) => m.type === 'heartbeat-response' && [m.from, m.to, [...m.context]]),
    [
      [2, 1, [...round[0]!.context]],
      [3, 1, [...round[0]!.context]],
    ],
  );
  assert.deepEqual(leader.readStates, []);
  assert.deepEqual(raftOf(h, 1).readStates, []);

  // One answer makes a quorum with the leader: the read is released at the commit index of
  // its arrival; the second answer changes nothing.
  h.queue = [];
  assert.ok(h.deliver(answers[0]!));
  h.processReadies();
  assert.deepEqual(reads(leader.readStates), [[2, 'r1']]);
  assert.ok(h.deliver(answers[1]!));
  settle(h);
  assert.deepEqual(reads(leader.readStates), [[2, 'r1']]);
});

test('FAULTS 18: ReadIndex batching: reads queued before one flush share one heartbeat round', () => {
  const h = clusterLedBy1(137);
  const leader = h.node(1);
  const sent: Message[] = [];
  const hooks = { onSend: (m: Message) => void sent.push(m) };
  for (let i = 0; i < 5; i++) leader.raw.readIndex(bytes(`batch${i}`));
  settle(h, hooks);
  const round = heartbeatsIn(sent);
  assert.equal(round.length, 2, 'one heartbeat per follower for five reads');
  assert.equal(new Set(round.map((m) => [...m.context].join())).size, 1);
  assert.deepEqual(
    reads(leader.readStates),
    [0, 1, 2, 3, 4].map((i) => [2, `batch${i}`]),
  );

  // Reads flushed separately take a round each.
  sent.length = 0;
  leader.raw.readIndex(bytes('x'));
  h.processReadies();
  leader.raw.readIndex(bytes('y'));
  settle(h, hooks);
  const rounds = heartbeatsIn(sent);
  assert.equal(rounds.length, 4);
  assert.equal(new Set(rounds.map((m) => [...m.context].join())).size, 2);
  assert.deepEqual(reads(leader.readStates).slice(5), [
    [2, 'x'],
    [2, 'y'],
  ]);
});

test('FAULTS 18: a read whose heartbeat round was lost is confirmed by a later heartbeat round', () => {
  const h = clusterLedBy1(139);
  const leader = h.node(1);
  // The read's round is lost on the way to both followers (a transient drop, e.g. a
  // connection reset); the links work again right after.
  h.filter = (m) => m.type !== 'heartbeat';
  leader.raw.readIndex(bytes('lost-round'));
  settle(h);
  h.filter = () => true;

  // The leader is healthy and keeps sending heartbeat rounds that a quorum acknowledges;
  // a later confirmation also confirms leadership for the earlier read (read-only.ts).
  run(h, 3);
  assert.deepEqual(h.leaders(), [1]);
  assert.deepEqual(reads(leader.readStates), [[2, 'lost-round']]);
});

test('FAULTS 18: a leader that has not committed an entry of its term holds reads until it does', () => {
  const h = clusterLedBy1(149);
  // Node 1 is cut off; 2 and 3 elect a leader whose no-op cannot commit: append answers are lost.
  h.isolate(1);
  h.filter = (m) => m.type !== 'append-response';
  runUntil(h, () => leadersAmong(h, [2, 3]).length === 1, 10 * electionTicks);
  const next = leadersAmong(h, [2, 3])[0]!;
  const r = raftOf(h, next);
  const noop = r.log.lastIndex();
  assert.equal(r.log.term(noop), r.term);
  assert.equal(r.log.committed, 2, 'the commit index of the previous term is all it knows');

  h.node(next).raw.readIndex(bytes('held'));
  assert.equal(r.hasUnsentReads(), false, 'no round is started for it');
  // Heartbeat rounds go out and are acknowledged, but the read stays held.
  run(h, 3);
  assert.deepEqual(h.node(next).readStates, []);
  assert.equal(r.log.committed, 2);

  // Once the no-op commits, the read is confirmed at that index, never at the older one.
  h.filter = () => true;
  runUntil(h, () => h.node(next).readStates.length > 0, 5);
  assert.equal(r.log.committed, noop);
  assert.deepEqual(reads(h.node(next).readStates), [[noop, 'held']]);
});

test('FAULTS 18: a partitioned leader never releases a ReadIndex read, before or after it is deposed', () => {
  const h = clusterLedBy1(151);
  const old = h.node(1);
  h.isolate(1);
  old.raw.readIndex(bytes('stale?'));
  h.processReadies();

  // The majority elects a new leader and commits a write the old leader never sees.
  runUntil(h, () => leadersAmong(h, [2, 3]).length === 1, 10 * electionTicks);
  const next = leadersAmong(h, [2, 3])[0]!;
  assert.ok(tryPropose(h, next, 'new'));
  settle(h);
  // Check-quorum: the old leader steps down without ever confirming the read (the harness
  // keeps every read state a node was ever handed).
  runUntil(h, () => raftOf(h, 1).role !== 'leader', 3 * electionTicks);
  assert.deepEqual(old.readStates, []);
  assert.equal(raftOf(h, 1).log.committed, 2);

  h.heal();
  run(h, 2 * electionTicks);
  assert.deepEqual(old.readStates, [], 'the read was dropped, never answered with index 2');
  assert.equal(raftOf(h, 1).leader, next);
  assert.deepEqual(h.appliedText(1), ['a', 'new']);
});

test('FAULTS 18: without check-quorum a deposed leader still never releases a read: its round is answered by a higher term', () => {
  const h = clusterLedBy1(157, { checkQuorum: false });
  h.isolate(1);
  runUntil(h, () => leadersAmong(h, [2, 3]).length === 1, 10 * electionTicks);
  const next = leadersAmong(h, [2, 3])[0]!;
  assert.ok(tryPropose(h, next, 'new'));
  settle(h);
  assert.equal(raftOf(h, 1).role, 'leader', 'without check-quorum it still believes it leads');

  // The old leader's read round reaches the followers once healed: they answer in their
  // (higher) term instead of acknowledging, and it steps down.
  h.heal();
  h.node(1).raw.readIndex(bytes('stale?'));
  const answers: Message[] = [];
  settle(h, { onSend: (m) => void (m.to === 1 && answers.push(m)) });
  assert.deepEqual(
    answers.map((m) => [m.type, m.from, m.term]),
    [
      ['append-response', 2, raftOf(h, next).term],
      ['append-response', 3, raftOf(h, next).term],
    ],
  );
  assert.equal(raftOf(h, 1).role, 'follower');
  run(h, 2 * electionTicks);
  assert.deepEqual(h.node(1).readStates, []);
  assert.deepEqual(h.appliedText(1), ['a', 'new']);
});

test("FAULTS 18: a follower read is forwarded and answered with the leader's commit index", () => {
  const h = clusterLedBy1(163);
  // Node 2 misses the next write: its own commit index falls behind the leader's.
  h.filter = (m) => !(m.type === 'append' && m.to === 2);
  assert.ok(tryPropose(h, 1, 'b'));
  settle(h);
  assert.equal(raftOf(h, 1).log.committed, 3);
  assert.equal(raftOf(h, 2).log.committed, 2);

  h.node(2).raw.readIndex(bytes('f'));
  assert.deepEqual(
    raftOf(h, 2).msgs.map((m) => m.type === 'read-index' && [m.from, m.to, m.term, text(m.context)]),
    [[2, 1, 0, 'f']],
  );
  const sent: Message[] = [];
  settle(h, { onSend: (m) => void sent.push(m) });
  assert.deepEqual(
    sent.map((m) => [m.type, m.from, m.to]),
    [
      ['read-index', 2, 1],
      ['heartbeat', 1, 2],
      ['heartbeat', 1, 3],
      ['heartbeat-response', 2, 1],
      ['heartbeat-response', 3, 1],
      // Node 2 lags: its answer also makes the leader retry the (dropped) append.
      ['append', 1, 2],
      ['read-index-response', 1, 2],
    ],
  );
  // The follower may serve the read once it has applied index 3, which it has not yet.
  assert.deepEqual(reads(h.node(2).readStates), [[3, 'f']]);
  assert.equal(raftOf(h, 2).log.applied, 2);
  h.filter = () => true;
  run(h, 1);
  assert.deepEqual(h.appliedText(2), ['a', 'b']);

  // A follower that knows no leader refuses the read.
  h.isolate(3);
  run(h, 3 * electionTicks);
  assert.equal(raftOf(h, 3).leader, 0);
  raftErrorOf(() => h.node(3).raw.readIndex(bytes('nobody')), 'NOT_LEADER');
});

// ------------------------------------------------------------------ lease reads

for (const leaseDriftTicks of [1, 3]) {
  test(`FAULTS 19: lease reads (drift ${leaseDriftTicks}) are served at once in lease, refused after electionTicks - 1 - ${leaseDriftTicks} ticks without acks`, () => {
    const { h, leader } = leaseCluster(167 + leaseDriftTicks, { leaseDriftTicks });
    const r = raftOf(h, leader);
    const commit = r.log.committed;
    r.readIndex(bytes('lease0'));
    assert.deepEqual(reads(r.readStates), [[commit, 'lease0']], 'answered within the call');
    assert.deepEqual(r.msgs, [], 'without a heartbeat round');
    assert.equal(r.hasUnsentReads(), false);
    r.readStates = [];

    // No acknowledgement arrives any more; the leader keeps ticking.
    h.isolate(leader);
    const leaseTicks = electionTicks - 1 - leaseDriftTicks;
    for (let k = 1; k <= leaseTicks; k++) {
      tickNodes(h, [leader]);
      r.msgs = [];
      assert.equal(r.role, 'leader');
      r.readIndex(bytes(`lease${k}`));
      if (k < leaseTicks) {
        assert.deepEqual(reads(r.readStates), [[commit, `lease${k}`]], `in lease after ${k} ticks`);
        r.readStates = [];
      } else {
        assert.deepEqual(r.readStates, [], `lease expired after ${k} ticks`);
        assert.equal(r.hasUnsentReads(), true, 'the read falls back to a heartbeat round');
      }
    }
    // The fallback round is confirmed once the followers answer again.
    h.heal();
    settle(h);
    assert.deepEqual(reads(h.node(leader).readStates), [[commit, `lease${leaseTicks}`]]);
  });
}

test('FAULTS 19: lease reads are refused while a leadership transfer is pending, and after a TimeoutNow until a new round is acknowledged', () => {
  const { h, leader, followers } = leaseCluster(173);
  const [other, target] = followers;
  const r = raftOf(h, leader);
  const commit = r.log.committed;
  h.isolate(target);
  h.node(leader).raw.transferLeadership(target);
  assert.equal(r.leadTransferee, target);
  const sent: Message[] = [];
  settle(h, { onSend: (m) => void sent.push(m) });
  assert.deepEqual(
    sent.map((m) => [m.type, m.to]),
    [['timeout-now', target]],
  );

  r.readIndex(bytes('during-transfer'));
  assert.deepEqual(r.readStates, [], 'not served from the lease');
  sent.length = 0;
  settle(h, { onSend: (m) => void sent.push(m) });
  assert.deepEqual(
    heartbeatsIn(sent).map((m) => m.to),
    [other, target],
  );
  assert.deepEqual(reads(h.node(leader).readStates), [[commit, 'during-transfer']], 'confirmed by a round');

  // The transfer is abandoned after an election timeout; the TimeoutNow may have been
  // delivered, so only rounds sent after it renew the lease.
  run(h, electionTicks);
  assert.equal(r.leadTransferee, 0);
  assert.deepEqual(h.leaders(), [leader]);
  r.readIndex(bytes('after'));
  assert.deepEqual(reads(r.readStates), [[commit, 'after']]);
});

test('FAULTS 19: lease-based reads without check-quorum are refused at construction', () => {
  const options = { id: 1, random: new Prng(1), readOnly: 'lease-based' as const, checkQuorum: false };
  assert.throws(
    () => new RawNode(new MemoryStorage(), options),
    (error: unknown) => error instanceof RaftError && /require check-quorum/.test(error.message),
  );
  assert.throws(() => new Harness({ raft: { readOnly: 'lease-based', checkQuorum: false } }), RaftError);
  // Either alone is fine.
  new RawNode(new MemoryStorage(), { ...options, checkQuorum: true });
  new RawNode(new MemoryStorage(), { ...options, readOnly: 'safe' });
});

for (const readOnly of ['lease-based', 'safe'] as const) {
  test(`FAULTS 19: boot lease: a restarted node with ${readOnly} reads ${readOnly === 'lease-based' ? 'ignores' : 'answers'} vote requests in its first election timeout`, () => {
    const h = new Harness({ size: 3, seed: 179, raft: { readOnly } });
    const leader = h.electLeader();
    settle(h);
    run(h, 1);
    const [f, g] = [...h.nodes.keys()].filter((id) => id !== leader) as [NodeId, NodeId];
    h.crash(f);
    h.restart(f);
    h.isolate(f);
    const r = raftOf(h, f);
    const term = r.term;
    assert.equal(r.leader, 0, 'after a restart it knows no leader');
    const vote = () =>
      r.step({
        type: 'vote',
        groupId: 1,
        from: g,
        to: f,
        term: term + 1,
        preVote: false,
        lastLogIndex: r.log.lastIndex() + 10,
        lastLogTerm: term,
        transfer: false,
      });
    const answers = () => r.msgs.filter((m) => m.type === 'vote-response');

    if (readOnly === 'safe') {
      vote();
      assert.deepEqual(
        answers().map((m) => m.type === 'vote-response' && [m.to, m.term, m.granted]),
        [[g, term + 1, true]],
      );
      return;
    }
    // Before the crash it may have promised the leader not to vote for anyone else within
    // an election timeout; it keeps that promise for its first electionTicks ticks.
    for (let t = 0; t < electionTicks; t++) {
      vote();
      assert.deepEqual(answers(), [], `ignored at tick ${t}`);
      assert.equal(r.term, term);
      tickNodes(h, [f]);
    }
    vote();
    assert.deepEqual(
      answers().map((m) => m.type === 'vote-response' && [m.to, m.term, m.granted]),
      [[g, term + 1, true]],
    );
    assert.equal(r.term, term + 1);
  });
}

test('FAULTS 19: leaseReadIndex (per-read leases with safe reads): the commit index in lease, undefined out of it, on followers and during a transfer', () => {
  const { h, leader, followers } = leaseCluster(191, { readOnly: 'safe' });
  const r = raftOf(h, leader);
  const commit = r.log.committed;
  assert.equal(r.leaseReadIndex(), commit, 'a leader whose last round a quorum acknowledged holds a lease');
  assert.deepEqual(r.msgs, [], 'asking sends nothing');
  for (const id of followers) assert.equal(raftOf(h, id).leaseReadIndex(), undefined, `follower ${id}`);

  h.isolate(leader);
  const leaseTicks = electionTicks - 1 - DEFAULT_RAFT_OPTIONS.leaseDriftTicks;
  for (let k = 1; k <= leaseTicks; k++) {
    tickNodes(h, [leader]);
    r.msgs = [];
    assert.equal(r.leaseReadIndex(), k < leaseTicks ? commit : undefined, `after ${k} ticks without acks`);
  }
  h.heal();
  settle(h);
  run(h, 1);
  assert.equal(r.leaseReadIndex(), r.log.committed, 'acknowledged again');
  r.transferLeadership(followers[0]);
  assert.equal(r.leaseReadIndex(), undefined, 'not while a transfer is pending');

  // Without check-quorum followers promise nothing: no lease, ever.
  const unchecked = leaseCluster(192, { readOnly: 'safe', checkQuorum: false });
  assert.equal(raftOf(unchecked.h, unchecked.leader).leaseReadIndex(), undefined);
});
