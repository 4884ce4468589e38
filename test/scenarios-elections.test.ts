/**
 * Scripted election scenarios, FAULTS.md items 1–5. Each drives the in-process harness tick
 * by tick and asserts exact roles, terms, leaders and messages.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { Message, NodeId, VoteRequest } from '../src/raft/index.js';
import { DEFAULT_RAFT_OPTIONS, Prng } from '../src/raft/index.js';
import { Harness } from '../src/sim/harness.js';
import {
  ids,
  leadersAmong,
  run,
  runUntil,
  SafetyMonitor,
  settle,
  storedLogOf,
  tickNodes,
} from './support/cluster.js';

const electionTicks = DEFAULT_RAFT_OPTIONS.electionTicks;

function termOf(h: Harness, id: NodeId): number {
  return h.node(id).raw.raft.term;
}

function roleOf(h: Harness, id: NodeId): string {
  return h.node(id).raw.raft.role;
}

/** Cuts every link into `id` (it can still send). */
function cutIncoming(h: Harness, id: NodeId): void {
  for (const other of ids(h)) if (other !== id) h.cut.add(`${other}->${id}`);
}

test('FAULTS 1: initial election with no faults elects exactly one leader and the term stays stable', () => {
  const h = new Harness({ size: 3, seed: 7 });
  // Nobody has anything to say before an election timeout: ticks in [electionTicks, 2*electionTicks).
  let ticks = 0;
  while (h.queue.length === 0) {
    tickNodes(h);
    h.processReadies();
    ticks++;
    assert.ok(ticks < 2 * electionTicks, 'no node campaigned within the randomized timeout bound');
  }
  assert.ok(ticks >= electionTicks, `campaign after ${ticks} ticks, before the election timeout`);

  // The first campaigner sends a pre-vote for term 1 to each peer; nothing is persisted yet.
  const preVotes = h.queue as VoteRequest[];
  assert.equal(preVotes.length, 2);
  const candidate = preVotes[0]!.from;
  for (const m of preVotes) {
    assert.deepEqual(
      { type: m.type, from: m.from, term: m.term, preVote: m.preVote, last: [m.lastLogIndex, m.lastLogTerm] },
      { type: 'vote', from: candidate, term: 1, preVote: true, last: [0, 0] },
    );
  }
  assert.deepEqual(
    preVotes.map((m) => m.to).sort(),
    ids(h).filter((id) => id !== candidate),
  );
  assert.equal(roleOf(h, candidate), 'pre-candidate');
  assert.equal(termOf(h, candidate), 0, 'a pre-vote must not change the term');

  // Both peers grant the pre-vote; the candidate then runs the real election for term 1.
  h.deliverAll();
  h.processReadies();
  assert.deepEqual(
    h.queue.map((m) => m.type === 'vote-response' && [m.from, m.to, m.term, m.preVote, m.granted]),
    preVotes.map((m) => [m.to, candidate, 1, true, true]),
  );
  h.deliverAll();
  h.processReadies();
  const votes = h.queue.filter((m): m is VoteRequest => m.type === 'vote');
  assert.equal(votes.length, 2);
  for (const m of votes) assert.deepEqual([m.term, m.preVote, m.from], [1, false, candidate]);
  assert.deepEqual(h.node(candidate).storage.initialState().hardState, {
    term: 1,
    vote: candidate,
    commit: 0,
  });

  settle(h);
  assert.deepEqual(h.leaders(), [candidate]);
  for (const id of ids(h)) {
    assert.deepEqual(h.node(id).storage.initialState().hardState, { term: 1, vote: candidate, commit: 1 });
    assert.deepEqual(storedLogOf(h, id), [[1, 1, '']], 'the leader no-op of term 1 is replicated');
    assert.equal(h.node(id).raw.raft.leader, candidate);
  }

  // Many more election timeouts pass: heartbeats keep everyone quiet; no vote is ever sent.
  const monitor = new SafetyMonitor(h);
  let voteMessages = 0;
  const hooks = monitor.hooks({ onSend: (m) => void (m.type === 'vote' && voteMessages++) });
  for (let i = 0; i < 50 * electionTicks; i++) {
    run(h, 1, hooks);
    monitor.observe();
    assert.deepEqual(h.leaders(), [candidate]);
  }
  assert.equal(voteMessages, 0);
  for (const id of ids(h)) assert.equal(termOf(h, id), 1);
});

test('FAULTS 2: leader isolated past the election timeout is replaced and rejoins as follower', () => {
  const h = new Harness({ size: 3, seed: 11 });
  const old = h.electLeader();
  const term = termOf(h, old);
  h.propose(old, 'before');
  const others = ids(h).filter((id) => id !== old);

  h.isolate(old);
  // Check-quorum: without answers from a quorum the old leader steps down within two
  // check-quorum rounds (the first may still count answers from before the cut).
  const stepDownTicks = runUntil(h, () => roleOf(h, old) !== 'leader', 2 * electionTicks);
  assert.ok(stepDownTicks > 0);
  assert.equal(roleOf(h, old), 'follower');
  assert.equal(termOf(h, old), term, 'stepping down does not change the term');

  // The connected majority elects a new leader in a higher term.
  runUntil(h, () => leadersAmong(h, others).length === 1, 10 * electionTicks);
  const [leader] = leadersAmong(h, others);
  assert.ok(leader !== undefined && leader !== old);
  const newTerm = termOf(h, leader);
  assert.ok(newTerm > term, `new term ${newTerm} not above ${term}`);
  h.propose(leader, 'during');
  for (const id of others) assert.deepEqual(h.appliedText(id), ['before', 'during']);
  assert.deepEqual(h.appliedText(old), ['before']);

  // Still cut off, the old leader never becomes leader again, and pre-vote keeps its term.
  run(h, 5 * electionTicks);
  assert.notEqual(roleOf(h, old), 'leader');
  assert.equal(termOf(h, old), term);

  h.heal();
  run(h, 3);
  assert.equal(roleOf(h, old), 'follower');
  assert.equal(h.node(old).raw.raft.leader, leader);
  assert.equal(termOf(h, old), newTerm);
  assert.deepEqual(h.leaders(), [leader], 'the rejoining node did not disrupt the new leader');
  assert.deepEqual(h.appliedText(old), ['before', 'during']);
});

test('FAULTS 3: seven nodes with three random disconnects per round keep one leader per term', () => {
  const h = new Harness({ size: 7, seed: 3 });
  const prng = new Prng(2024);
  const monitor = new SafetyMonitor(h);
  const hooks = monitor.hooks();
  const all = ids(h);
  const terms = new Set<number>();
  for (let round = 0; round < 40; round++) {
    h.heal();
    const cut = new Set<NodeId>();
    while (cut.size < 3) cut.add(prng.pick(all));
    for (const id of cut) h.isolate(id);
    const connected = all.filter((id) => !cut.has(id));
    // A majority (4 of 7) is connected: it must have a leader within a bound.
    runUntil(
      h,
      () => {
        monitor.observe();
        return leadersAmong(h, connected).length === 1;
      },
      12 * electionTicks,
      hooks,
    );
    const [leader] = leadersAmong(h, connected);
    terms.add(termOf(h, leader!));
    // Let the round run on; the leader of the connected side stays and one leader per term holds.
    for (let i = 0; i < prng.range(1, 2 * electionTicks); i++) {
      run(h, 1, hooks);
      monitor.observe();
    }
    assert.deepEqual(leadersAmong(h, connected), [leader]);
  }
  assert.ok(terms.size > 5, `only ${terms.size} distinct leader terms over 40 rounds`);
  assert.ok(monitor.leaderOfTerm.size >= terms.size);
});

test('FAULTS 4: pre-vote + check-quorum: an isolated follower keeps its term and rejoins without disruption', () => {
  const h = new Harness({ size: 3, seed: 5 });
  const leader = h.electLeader();
  const term = termOf(h, leader);
  const follower = ids(h).find((id) => id !== leader)!;
  h.isolate(follower);

  // The isolated follower campaigns again and again, but only with pre-votes: its term stays.
  const fromFollower: Message[] = [];
  run(h, 10 * electionTicks, { onSend: (m) => void (m.from === follower && fromFollower.push(m)) });
  assert.ok(fromFollower.length > 0);
  for (const m of fromFollower) {
    assert.ok(m.type === 'vote' && m.preVote, `isolated follower sent ${m.type}`);
    assert.equal(m.term, term + 1);
  }
  assert.equal(termOf(h, follower), term);
  assert.equal(h.node(follower).storage.initialState().hardState.term, term);
  assert.deepEqual(h.leaders(), [leader], 'the connected majority kept its leader');
  h.propose(leader, 'while-cut');

  h.heal();
  run(h, 2 * electionTicks);
  assert.deepEqual(h.leaders(), [leader], 'the rejoining node did not disrupt the leader');
  for (const id of ids(h)) {
    assert.equal(termOf(h, id), term);
    assert.deepEqual(h.appliedText(id), ['while-cut']);
  }
  assert.equal(h.node(follower).raw.raft.leader, leader);
});

test('FAULTS 4: an isolated leader steps down, and an election with a term-lagging node does not stall', () => {
  // Five nodes: node `lagging` is cut off while the others go through two leader changes,
  // so it comes back two terms behind, just as the current leader crashes.
  const h = new Harness({ size: 5, seed: 9 });
  const monitor = new SafetyMonitor(h);
  const hooks = monitor.hooks();
  const first = h.electLeader();
  const lagging = ids(h).find((id) => id !== first)!;
  const laggingTerm = termOf(h, lagging);
  h.isolate(lagging);

  let leader = first;
  for (let change = 0; change < 2; change++) {
    const deposed = leader;
    h.isolate(deposed);
    const live = ids(h).filter((id) => id !== lagging && id !== deposed);
    runUntil(h, () => leadersAmong(h, live).length === 1, 10 * electionTicks, hooks);
    leader = leadersAmong(h, live)[0]!;
    // Check-quorum: the isolated leader has stepped down by now (it may already be asking
    // for pre-votes again), in its old term.
    run(h, 2 * electionTicks, hooks);
    assert.notEqual(roleOf(h, deposed), 'leader');
    assert.ok(termOf(h, deposed) < termOf(h, leader));
    // Reconnect the deposed leader (but not the lagging node).
    h.heal();
    h.isolate(lagging);
    run(h, 2, hooks);
    assert.deepEqual(h.leaders(), [leader]);
    monitor.observe();
  }
  const highTerm = termOf(h, leader);
  assert.ok(highTerm >= laggingTerm + 2);
  assert.equal(termOf(h, lagging), laggingTerm, 'pre-vote kept the lagging node at its old term');

  // The lagging node returns as the leader crashes: its pre-vote is refused with the higher
  // term, it adopts it, and the other nodes elect a leader within a bound.
  h.heal();
  h.crash(leader);
  const live = ids(h).filter((id) => id !== leader);
  const refusals: Message[] = [];
  const watch = monitor.hooks({
    onSend: (m) => void (m.to === lagging && m.type === 'vote-response' && m.preVote && refusals.push(m)),
  });
  runUntil(h, () => leadersAmong(h, live).length === 1, 10 * electionTicks, watch);
  assert.ok(
    refusals.some((m) => m.type === 'vote-response' && !m.granted && m.term >= highTerm),
    'a peer refused the lagging pre-vote and told it the current term',
  );
  const next = leadersAmong(h, live)[0]!;
  assert.notEqual(next, lagging, 'the node with a stale log cannot win');
  run(h, 2, hooks);
  monitor.observe();
  for (const id of live) {
    assert.equal(termOf(h, id), termOf(h, next));
    assert.equal(h.node(id).raw.raft.leader, next);
  }
  assert.ok(termOf(h, next) > highTerm);
});

test('FAULTS 4: followers of an isolated leader elect at once: a pre-candidate no longer defers to the old lease (etcd TestPreVoteWithCheckQuorum)', () => {
  const h = new Harness({ size: 3, seed: 19 });
  const old = h.electLeader();
  const term = termOf(h, old);
  const [a, b] = ids(h).filter((id) => id !== old) as [NodeId, NodeId];
  h.isolate(old);

  // `a` campaigns first: `b` still heard the leader recently and ignores the pre-vote.
  const answers: Message[] = [];
  const hooks = { onSend: (m: Message) => void (m.type === 'vote-response' && answers.push(m)) };
  h.node(a).raw.campaign();
  settle(h, hooks);
  assert.equal(roleOf(h, a), 'pre-candidate');
  assert.equal(answers.length, 0, 'a follower within the leader lease does not answer a pre-vote');
  assert.equal(termOf(h, a), term);

  // `b` campaigns next: `a`, a pre-candidate, follows no leader any more, so it grants the
  // pre-vote and then the vote; `b` wins without waiting for another timeout.
  h.node(b).raw.campaign();
  settle(h, hooks);
  assert.deepEqual(
    answers.map((m) => m.type === 'vote-response' && [m.from, m.to, m.preVote, m.granted, m.term]),
    [
      [a, b, true, true, term + 1],
      [a, b, false, true, term + 1],
    ],
  );
  assert.equal(roleOf(h, b), 'leader');
  assert.equal(termOf(h, b), term + 1);
  assert.equal(h.node(a).raw.raft.leader, b);
  assert.equal(h.node(a).raw.raft.vote, b);
});

test('FAULTS 5: asymmetric partition: a follower that can send but not receive does not disrupt', () => {
  const h = new Harness({ size: 3, seed: 13 });
  const leader = h.electLeader();
  const term = termOf(h, leader);
  const deaf = ids(h).find((id) => id !== leader)!;
  cutIncoming(h, deaf);

  const fromDeaf: Message[] = [];
  run(h, 10 * electionTicks, { onSend: (m) => void (m.from === deaf && fromDeaf.push(m)) });
  // It times out and asks for pre-votes, which the others ignore: they hear from the leader.
  assert.ok(fromDeaf.some((m) => m.type === 'vote' && m.preVote && m.term === term + 1));
  assert.ok(fromDeaf.every((m) => m.type === 'vote' && m.preVote));
  assert.deepEqual(h.leaders(), [leader]);
  for (const id of ids(h)) assert.equal(termOf(h, id), term);

  h.propose(leader, 'a');
  h.propose(leader, 'b');
  const majority = ids(h).filter((id) => id !== deaf);
  for (const id of majority) assert.deepEqual(h.appliedText(id), ['a', 'b']);
  assert.deepEqual(h.appliedText(deaf), []);

  h.heal();
  run(h, 3);
  assert.deepEqual(h.appliedText(deaf), ['a', 'b']);
  assert.equal(h.node(deaf).raw.raft.leader, leader);
});

test('FAULTS 5: asymmetric partition: a leader that can send but not receive is replaced', () => {
  const h = new Harness({ size: 3, seed: 17 });
  const monitor = new SafetyMonitor(h);
  const hooks = monitor.hooks();
  const deaf = h.electLeader();
  const term = termOf(h, deaf);
  cutIncoming(h, deaf);

  // Its heartbeats still arrive (so nobody times out), but it hears no answers: check-quorum
  // makes it step down, then the others elect a leader in a higher term.
  runUntil(h, () => roleOf(h, deaf) !== 'leader', 2 * electionTicks, hooks);
  const others = ids(h).filter((id) => id !== deaf);
  runUntil(h, () => leadersAmong(h, others).length === 1, 10 * electionTicks, hooks);
  const leader = leadersAmong(h, others)[0]!;
  assert.ok(termOf(h, leader) > term);

  // The cluster stays live and commits while the deaf node keeps campaigning in vain.
  run(h, 10 * electionTicks, hooks);
  monitor.observe();
  assert.deepEqual(h.leaders(), [leader]);
  assert.equal(termOf(h, deaf), term, 'it never heard a pre-vote answer, so its term stayed');
  h.propose(leader, 'x');
  for (const id of others) assert.deepEqual(h.appliedText(id), ['x']);

  h.heal();
  run(h, 3, hooks);
  monitor.observe();
  assert.deepEqual(h.leaders(), [leader]);
  assert.deepEqual(h.appliedText(deaf), ['x']);
  assert.equal(termOf(h, deaf), termOf(h, leader));
});
