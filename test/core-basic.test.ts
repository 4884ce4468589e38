import assert from 'node:assert/strict';
import { test } from 'node:test';
import { PROPOSE_HOPS_MAX, type ProposeRequest } from '../src/raft/index.js';
import { Harness } from '../src/sim/harness.js';

test('three nodes elect exactly one leader and replicate a proposal to all', () => {
  const h = new Harness({ size: 3, seed: 7 });
  const leader = h.electLeader();
  assert.deepEqual(h.leaders(), [leader]);
  h.propose(leader, 'x=1');
  h.tick(2);
  for (const id of [1, 2, 3]) assert.deepEqual(h.appliedText(id), ['x=1']);
  const terms = [1, 2, 3].map((id) => h.node(id).raw.status().term);
  assert.equal(new Set(terms).size, 1);
});

test('a follower forwards a proposal to the leader', () => {
  const h = new Harness({ size: 3, seed: 3 });
  const leader = h.electLeader();
  const follower = [1, 2, 3].find((id) => id !== leader)!;
  h.propose(follower, 'via-follower');
  h.tick(2);
  for (const id of [1, 2, 3]) assert.deepEqual(h.appliedText(id), ['via-follower']);
});

/** A proposal as follower `from` forwards it to `to`, forwarded `hops` times so far. */
function forwarded(from: number, to: number, text: string, hops: number): ProposeRequest {
  const data = new TextEncoder().encode(text);
  return {
    type: 'propose',
    groupId: 1,
    from,
    to,
    term: 0,
    entries: [{ index: 0, term: 0, type: 'normal', data }],
    hops,
  };
}

test('a deposed leader hands a proposal sent to it on to the new leader, within the hop limit', () => {
  const h = new Harness({ size: 3, seed: 3 });
  const old = h.electLeader();
  const [next, other] = [1, 2, 3].filter((id) => id !== old) as [number, number];
  h.node(old).raw.transferLeadership(next);
  h.stabilize();
  h.tick(2);
  assert.deepEqual(h.leaders(), [next]);
  assert.equal(h.node(old).raw.raft.leader, next);
  // The other follower sent it to the old leader before it heard of the new one.
  assert.equal(h.deliver(forwarded(other, old, 'late', 1)), true);
  h.stabilize();
  for (const id of [1, 2, 3]) assert.deepEqual(h.appliedText(id), ['late']);
  // One forwarded as often as allowed is dropped.
  assert.equal(h.deliver(forwarded(other, old, 'too-far', PROPOSE_HOPS_MAX)), true);
  h.tick(2);
  for (const id of [1, 2, 3]) assert.deepEqual(h.appliedText(id), ['late']);
});

test('a node that knows no leader holds a forwarded proposal until it learns one', () => {
  const h = new Harness({ size: 3, seed: 5 });
  const leader = h.electLeader();
  const [cut, other] = [1, 2, 3].filter((id) => id !== leader) as [number, number];
  h.isolate(cut);
  const raft = h.node(cut).raw.raft;
  for (let i = 0; i < 100 && raft.leader !== 0; i++) h.tick();
  assert.equal(raft.leader, 0);
  // Arrives (from the other follower, as to a leader it knew) while no leader is known here.
  h.node(cut).raw.step(forwarded(other, cut, 'held', 1));
  assert.equal(raft.heldProposals.length, 1);
  h.tick(2);
  assert.deepEqual(h.appliedText(leader), []);
  h.heal();
  for (let i = 0; i < 100 && h.appliedText(leader).length === 0; i++) h.tick();
  assert.equal(raft.heldProposals.length, 0);
  for (const id of [1, 2, 3]) assert.deepEqual(h.appliedText(id), ['held']);
});
