/**
 * The restart tests of the {@link LogStorage} conformance suite: what a reopened storage
 * keeps of entries, the hard state, snapshots, compaction and the applied membership.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { ConfState } from '../raft/types.js';
import { EMPTY_HARD_STATE } from '../raft/types.js';
import {
  assertSameState,
  assertSnapshot,
  bytes,
  confStateOf,
  makeEntries,
  makeSnapshot,
  restartedState,
  type WithStorage,
} from './conformance-harness.js';

/** Registers the tests of what a reopen keeps of entries, the hard state and snapshots. */
export function registerReopenTests(withStorage: WithStorage): void {
  test(
    'reopen keeps entries, overwrites and the hard state',
    withStorage(async (session) => {
      await session.storage.save({
        entries: makeEntries(1, 6, 1),
        hardState: { term: 1, vote: 1, commit: 2 },
      });
      await session.storage.save({
        entries: makeEntries(4, 8, 2),
        hardState: { term: 2, vote: 3, commit: 5 },
      });
      const expected = restartedState(session.storage);
      assertSameState(await session.reopen(), expected);
      await session.storage.save({ entries: makeEntries(9, 9, 2) });
      assert.equal(session.storage.lastIndex(), 9);
    }),
  );

  test(
    'reopen keeps a created snapshot and compaction',
    withStorage(async (session) => {
      await session.storage.save({
        entries: makeEntries(1, 20, 1),
        hardState: { term: 1, vote: 1, commit: 20 },
      });
      await session.storage.createSnapshot(12, confStateOf([1, 2, 3]), bytes('snapshot 12'));
      await session.storage.compact(10);
      await session.storage.save({ entries: makeEntries(21, 25, 2) });
      const expected = restartedState(session.storage);
      const storage = await session.reopen();
      assertSameState(storage, expected);
      assert.ok(storage.firstIndex() <= 13);
      assert.equal(storage.term(12), 1);
    }),
  );

  test(
    'reopen keeps a received snapshot',
    withStorage(async (session) => {
      await session.storage.save({ entries: makeEntries(1, 4, 1) });
      const snapshot = makeSnapshot(30, 4, [2, 3]);
      await session.storage.save({
        snapshot,
        entries: makeEntries(31, 33, 4),
        hardState: { term: 4, vote: 0, commit: 30 },
      });
      const expected = restartedState(session.storage);
      const storage = await session.reopen();
      assertSameState(storage, expected);
      assertSnapshot(storage.snapshot(), snapshot);
      assert.deepEqual(storage.initialState().confState, snapshot.meta.confState);
    }),
  );
}

/** Registers the tests of reopening with a membership, and with nothing stored. */
export function registerRestartTests(withStorage: WithStorage): void {
  test(
    'reopen keeps the applied membership',
    withStorage(async (session) => {
      const confState: ConfState = {
        voters: [1, 2],
        votersOutgoing: [1, 2, 3],
        learners: [4],
        learnersNext: [3],
        autoLeave: true,
        removed: [5, 7],
      };
      await session.storage.saveConfState(confState);
      assert.deepEqual(session.storage.initialState().confState, confState);
      assert.deepEqual((await session.reopen()).initialState().confState, confState);
    }),
  );

  test(
    'reopen of an empty storage is empty',
    withStorage(async (session) => {
      const storage = await session.reopen();
      assert.equal(storage.lastIndex(), 0);
      assert.deepEqual(storage.initialState().hardState, EMPTY_HARD_STATE);
    }),
  );
}
