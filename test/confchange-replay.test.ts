import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { ConfChange, ConfState, Entry } from '../src/raft/index.js';
import { EMPTY_CONF_STATE, encodeConfChange, replayConfChanges } from '../src/raft/index.js';

function confEntry(index: number, cc: ConfChange): Entry {
  return { index, term: 1, type: 'conf-change', data: encodeConfChange(cc) };
}

function normal(index: number): Entry {
  return { index, term: 1, type: 'normal', data: new Uint8Array([1]) };
}

const start: ConfState = { ...EMPTY_CONF_STATE, voters: [1, 2, 3] };

test('replaying conf changes from a snapshot gives the membership of the applied index', () => {
  const entries = [
    normal(2),
    confEntry(3, { changes: [{ type: 'add-learner', node: 4 }] }),
    normal(4),
    confEntry(5, {
      changes: [
        { type: 'add-voter', node: 4 },
        { type: 'remove', node: 1 },
        { type: 'remove', node: 2 },
      ],
    }),
    confEntry(6, { changes: [], leaveJoint: true }),
  ];
  assert.deepEqual(replayConfChanges(start, entries.slice(0, 2)), { ...start, learners: [4] });
  assert.deepEqual(replayConfChanges(start, entries.slice(0, 4)), {
    voters: [3, 4],
    votersOutgoing: [1, 2, 3],
    learners: [],
    learnersNext: [],
    autoLeave: true,
  });
  assert.deepEqual(replayConfChanges(start, entries), {
    voters: [3, 4],
    votersOutgoing: [],
    learners: [],
    learnersNext: [],
    autoLeave: false,
    removed: [1, 2],
  });
});

test('replay keeps the removed ids the starting membership already had', () => {
  const from: ConfState = { ...start, removed: [9] };
  const after = replayConfChanges(from, [confEntry(2, { changes: [{ type: 'remove', node: 3 }] })]);
  assert.deepEqual(after.removed, [3, 9]);
  assert.deepEqual(after.voters, [1, 2]);
});

test('replay of no conf changes returns the starting membership', () => {
  assert.deepEqual(replayConfChanges(start, [normal(2), normal(3)]), start);
});
