/**
 * The log tests of the {@link LogStorage} conformance suite: appending, reading and replacing
 * entries, rejected appends and reads, the hard state, `maxBytes` and concurrent saves.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { isRaftError } from '../raft/errors.js';
import { entrySizeBytes } from '../raft/storage.js';
import { EMPTY_CONF_STATE, EMPTY_HARD_STATE } from '../raft/types.js';
import { assertEntries, makeEntries, type WithStorage } from './conformance-harness.js';

/** Registers the tests of appending and reading entries. */
export function registerLogTests(withStorage: WithStorage): void {
  test(
    'a new storage is empty',
    withStorage(async ({ storage }) => {
      assert.equal(storage.firstIndex(), 1);
      assert.equal(storage.lastIndex(), 0);
      assert.equal(storage.term(0), 0);
      assert.deepEqual(storage.entries(1, 1, Infinity), []);
      assert.deepEqual(storage.initialState(), { hardState: EMPTY_HARD_STATE, confState: EMPTY_CONF_STATE });
      assert.equal(storage.snapshot().meta.index, 0);
      assert.equal(storage.snapshot().data.length, 0);
      assert.throws(
        () => storage.term(1),
        (error) => isRaftError(error, 'UNAVAILABLE'),
      );
    }),
  );

  test(
    'appends and reads entries and terms',
    withStorage(async ({ storage }) => {
      await storage.save({ entries: makeEntries(1, 5, 1) });
      assert.equal(storage.firstIndex(), 1);
      assert.equal(storage.lastIndex(), 5);
      assert.equal(storage.term(3), 1);
      assertEntries(storage.entries(2, 4, Infinity), makeEntries(2, 3, 1));
      await storage.save({ entries: makeEntries(6, 7, 2) });
      assert.equal(storage.lastIndex(), 7);
      assert.equal(storage.term(7), 2);
      assertEntries(storage.entries(1, 8, Infinity), [...makeEntries(1, 5, 1), ...makeEntries(6, 7, 2)]);
    }),
  );

  test(
    'rejects reads outside the log',
    withStorage(async ({ storage }) => {
      await storage.save({ entries: makeEntries(1, 5, 1) });
      assert.throws(
        () => storage.entries(0, 2, Infinity),
        (error) => isRaftError(error, 'COMPACTED'),
      );
      assert.throws(() => storage.entries(1, 7, Infinity));
      assert.throws(
        () => storage.term(6),
        (error) => isRaftError(error, 'UNAVAILABLE'),
      );
    }),
  );

  test(
    'conflicting entries replace the stored tail',
    withStorage(async ({ storage }) => {
      await storage.save({ entries: makeEntries(1, 5, 1) });
      await storage.save({ entries: makeEntries(3, 4, 2) });
      assert.equal(storage.lastIndex(), 4);
      assert.equal(storage.term(2), 1);
      assert.equal(storage.term(3), 2);
      assert.throws(
        () => storage.term(5),
        (error) => isRaftError(error, 'UNAVAILABLE'),
      );
      assertEntries(storage.entries(1, 5, Infinity), [...makeEntries(1, 2, 1), ...makeEntries(3, 4, 2)]);
    }),
  );
}

/** Registers the tests of updates: gaps, the hard state, `maxBytes` and concurrent saves. */
export function registerUpdateTests(withStorage: WithStorage): void {
  test(
    'rejects an append that would leave a gap',
    withStorage(async ({ storage }) => {
      await storage.save({ entries: makeEntries(1, 3, 1) });
      await assert.rejects(storage.save({ entries: makeEntries(5, 5, 1) }));
    }),
  );

  test(
    'stores the hard state with or without entries',
    withStorage(async ({ storage }) => {
      const hardState = { term: 3, vote: 2, commit: 1 };
      await storage.save({ entries: makeEntries(1, 2, 3), hardState });
      assert.deepEqual(storage.initialState().hardState, hardState);
      await storage.save({ entries: [], hardState: { term: 4, vote: 0, commit: 2 } });
      assert.deepEqual(storage.initialState().hardState, { term: 4, vote: 0, commit: 2 });
      await storage.save({ entries: [] });
      assert.equal(storage.lastIndex(), 2);
    }),
  );

  test(
    'limits entries by maxBytes but returns at least one',
    withStorage(async ({ storage }) => {
      const entries = makeEntries(1, 5, 1, 100);
      await storage.save({ entries });
      const size = entrySizeBytes(entries[0]!);
      assert.equal(storage.entries(1, 6, 0).length, 1);
      assert.equal(storage.entries(1, 6, size).length, 1);
      assert.equal(storage.entries(1, 6, 2 * size).length, 2);
      assert.equal(storage.entries(1, 6, 2 * size + 1).length, 2);
      assert.equal(storage.entries(1, 6, Infinity).length, 5);
      assert.deepEqual(storage.entries(1, 1, 0), []);
    }),
  );

  test(
    'concurrent saves apply in call order',
    withStorage(async ({ storage }) => {
      await Promise.all([
        storage.save({ entries: makeEntries(1, 3, 1) }),
        storage.save({ entries: makeEntries(4, 6, 1) }),
        storage.save({ entries: makeEntries(5, 7, 2), hardState: { term: 2, vote: 1, commit: 3 } }),
      ]);
      assertEntries(storage.entries(1, 8, Infinity), [...makeEntries(1, 4, 1), ...makeEntries(5, 7, 2)]);
      assert.deepEqual(storage.initialState().hardState, { term: 2, vote: 1, commit: 3 });
    }),
  );
}
