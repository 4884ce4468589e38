/**
 * Quiescence in the core (src/raft/quiesce.ts), driven tick by tick on the in-process harness:
 * when a leader may stop ticking, when a follower may follow it, the ticks delivered on waking,
 * and forgetting a leader believed dead (etcd-io/raft's `ForgetLeader`) so that followers that
 * were not ticked can elect another one — without breaking the promise lease reads rely on.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { Message, NodeId, VoteResponse } from '../src/raft/index.js';
import { DEFAULT_RAFT_OPTIONS } from '../src/raft/index.js';
import { Harness } from '../src/sim/harness.js';
import { bytes, SafetyMonitor } from './support/cluster.js';

const electionTicks = DEFAULT_RAFT_OPTIONS.electionTicks;

/** A three-node cluster with a leader elected and everything replicated and applied. */
function settled(seed = 3): { h: Harness; leader: NodeId; followers: NodeId[] } {
  const h = new Harness({ size: 3, seed });
  const leader = h.electLeader();
  h.propose(leader, 'x');
  // One more heartbeat round carries the commit index to every follower.
  h.tick();
  const followers = [1, 2, 3].filter((id) => id !== leader);
  return { h, leader, followers };
}

/** Quiesces the group as a runtime would: the leader checks, each follower takes the notice. */
function quiesce(h: Harness, leader: NodeId, followers: readonly NodeId[]): void {
  const raw = h.node(leader).raw;
  assert.equal(raw.canQuiesce(), true, 'the leader may quiesce');
  const { term, commit } = raw.status();
  for (const f of followers) assert.equal(h.node(f).raw.quiesceFollower(leader, term, commit), true);
}

/** Delivers the queue, returning the vote responses among what was delivered. */
function voteResponses(h: Harness): VoteResponse[] {
  const seen: Message[] = [];
  for (let i = 0; i < 10; i++) {
    h.processReadies();
    const batch = h.queue;
    h.queue = [];
    seen.push(...batch);
    for (const m of batch) h.deliver(m);
  }
  return seen.filter((m): m is VoteResponse => m.type === 'vote-response');
}

test('a leader may quiesce only with every member caught up and nothing in flight', () => {
  const h = new Harness({ size: 3, seed: 5 });
  const leader = h.electLeader();
  const raw = h.node(leader).raw;
  h.tick();
  assert.equal(raw.canQuiesce(), true, 'idle after the election');
  assert.equal(h.node(leader === 1 ? 2 : 1).raw.canQuiesce(), false, 'a follower never');

  // A proposal not yet acknowledged by every member.
  raw.propose(bytes('a'));
  assert.equal(raw.canQuiesce(), false, 'an entry not yet persisted');
  h.processReadies();
  assert.equal(raw.canQuiesce(), false, 'an entry not yet replicated');
  h.stabilize();
  h.tick();
  assert.equal(raw.canQuiesce(), true);

  // A follower cut off misses an entry: a quorum commits it, but not every member holds it.
  const lagging = leader === 3 ? 2 : 3;
  h.isolate(lagging);
  h.propose(leader, 'b');
  h.tick();
  assert.equal(raw.canQuiesce(), false, 'a member lags');
  h.heal();
  h.tick(2);
  assert.equal(raw.canQuiesce(), true, 'caught up again');

  // A read waiting for its heartbeat round.
  raw.readIndex(bytes('r'));
  assert.equal(raw.canQuiesce(), false, 'a read in flight');
  h.stabilize();
  assert.equal(raw.canQuiesce(), true, 'the read was released');

  // A leadership transfer in progress.
  h.isolate(lagging);
  raw.transferLeadership(lagging);
  assert.equal(raw.canQuiesce(), false, 'a transfer in progress');
});

test('a follower quiesces only on a notice of its term and leader with its log ending at the commit', () => {
  const { h, leader, followers } = settled();
  const [a, b] = followers as [NodeId, NodeId];
  const { term, commit } = h.node(leader).raw.status();
  const fa = h.node(a).raw;
  assert.equal(fa.quiesceFollower(leader, term + 1, commit), false, 'another term');
  assert.equal(fa.quiesceFollower(b, term, commit), false, 'not its leader');
  assert.equal(fa.quiesceFollower(leader, term, commit + 1), false, 'a log shorter than the commit');
  assert.equal(fa.quiesceFollower(leader, term, commit - 1), false, 'a log longer than the commit');
  assert.equal(fa.quiesceFollower(leader, term, commit), true);
  assert.equal(h.node(leader).raw.quiesceFollower(leader, term, commit), false, 'the leader itself');

  // A follower that has the entries but not yet the commit index takes it from the notice.
  h.node(leader).raw.propose(bytes('late'));
  h.processReadies();
  h.deliverAll();
  // The followers append and answer; the commit broadcast that follows never reaches b.
  h.filter = (m) => !(m.to === b && m.type === 'append' && m.entries.length === 0);
  h.stabilize();
  h.filter = () => true;
  const status = h.node(leader).raw.status();
  const fb = h.node(b).raw;
  assert.equal(fb.status().lastIndex, status.lastIndex);
  assert.ok(fb.status().commit < status.commit, 'b has not learned the commit index');
  assert.equal(fb.quiesceFollower(leader, status.term, status.commit), true);
  assert.equal(fb.status().commit, status.commit);
});

test('quiesced followers refuse pre-votes for their leader until they forget it, then elect another', () => {
  const { h, leader, followers } = settled(11);
  const [a, b] = followers as [NodeId, NodeId];
  quiesce(h, leader, followers);
  const monitor = new SafetyMonitor(h);
  const oldTerm = h.node(leader).raw.status().term;
  // The leader's host dies. Nobody ticks the quiesced followers for a long while.
  h.crash(leader);

  // Follower a wakes (its host saw the leader's host die) and campaigns at once.
  const ra = h.node(a).raw;
  const rb = h.node(b).raw;
  assert.equal(ra.forgetLeader(), false, 'within its promise to the leader: refused');
  ra.tickQuiesced(5 * electionTicks);
  assert.equal(ra.forgetLeader(), true);
  assert.equal(ra.status().leader, 0);
  ra.campaign();
  const refused = voteResponses(h);
  assert.ok(refused.length === 0, 'b, still in lease of the leader, ignores the pre-vote');
  assert.equal(ra.status().role, 'pre-candidate');
  assert.equal(rb.status().leader, leader);

  // b's host saw the leader die too: its quiesced ticks and a forget let the election through.
  rb.tickQuiesced(5 * electionTicks);
  assert.equal(rb.forgetLeader(), true);
  ra.campaign();
  const granted = voteResponses(h);
  assert.ok(
    granted.some((m) => m.granted && m.preVote),
    'pre-vote granted',
  );
  assert.ok(
    granted.some((m) => m.granted && !m.preVote),
    'vote granted',
  );
  assert.equal(ra.status().role, 'leader');
  assert.equal(ra.status().term, oldTerm + 1);
  monitor.observe();

  // The old leader restarts and follows the new one: one leader per term.
  h.restart(leader);
  h.tick(2);
  assert.deepEqual(h.leaders(), [a]);
  h.propose(a, 'after');
  assert.ok(h.appliedText(leader).includes('after'));
  monitor.observe();
});

test('a forgotten leader that is alive is followed again as soon as it is heard', () => {
  const { h, leader, followers } = settled(17);
  quiesce(h, leader, followers);
  const f = h.node(followers[0]!).raw;
  f.tickQuiesced(electionTicks);
  assert.equal(f.forgetLeader(), true);
  assert.equal(f.forgetLeader(), false, 'nothing left to forget');
  // The leader wakes (say, for a proposal) and its next heartbeat restores the follower.
  h.node(leader).raw.tickQuiesced(electionTicks);
  h.tick();
  assert.equal(f.status().leader, leader);
  assert.equal(f.forgetLeader(), false, 'just heard from it: refused');
});

test('ticks delivered on waking expire a leader lease without firing elections or step-downs', () => {
  const { h, leader, followers } = settled(23);
  const raw = h.node(leader).raw;
  h.tick(2);
  assert.notEqual(raw.leaseReadIndex(), undefined, 'a lease while heartbeats are answered');
  quiesce(h, leader, followers);
  const term = raw.status().term;
  for (const id of [leader, ...followers]) h.node(id).raw.tickQuiesced(100 * electionTicks);
  assert.equal(raw.leaseReadIndex(), undefined, 'the lease ran out while quiesced');
  h.stabilize();
  assert.equal(h.queue.length, 0, 'no campaign, no heartbeat from the quiesced ticks alone');
  // Ticking again: the leader heartbeats at once and keeps its term; no follower campaigns.
  h.tick(3 * electionTicks);
  assert.deepEqual(h.leaders(), [leader]);
  assert.equal(raw.status().term, term);
  assert.notEqual(raw.leaseReadIndex(), undefined, 'a fresh lease from the new rounds');
});
