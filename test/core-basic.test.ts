import assert from 'node:assert/strict';
import { test } from 'node:test';
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
