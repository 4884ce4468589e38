/**
 * The snapshot tests of the {@link LogStorage} conformance suite: snapshots received in an
 * update, snapshots the storage creates, compaction, and the preconditions of both.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { isRaftError } from '../raft/errors.js';
import type { LogStorage } from '../raft/storage.js';
import {
  assertEntries,
  assertSnapshot,
  bytes,
  confStateOf,
  makeEntries,
  makeSnapshot,
  type Session,
  type WithStorage,
} from './conformance-harness.js';

/** Registers the snapshot tests: received snapshots, then created snapshots and compaction. */
export function registerSnapshotTests(withStorage: WithStorage): void {
  registerReceivedSnapshotTests(withStorage);
  registerCreatedSnapshotTests(withStorage);
}

/** Snapshots that arrive in an update (from the leader). */
function registerReceivedSnapshotTests(withStorage: WithStorage): void {
  test(
    'an update applies snapshot, entries and hard state together',
    withStorage(async ({ storage }) => {
      const snapshot = makeSnapshot(10, 3, [1, 2, 3]);
      const hardState = { term: 3, vote: 1, commit: 10 };
      await storage.save({ snapshot, entries: makeEntries(11, 12, 3), hardState });
      assert.equal(storage.firstIndex(), 11);
      assert.equal(storage.lastIndex(), 12);
      assert.equal(storage.term(10), 3);
      assertSnapshot(storage.snapshot(), snapshot);
      assert.deepEqual(storage.initialState(), { hardState, confState: snapshot.meta.confState });
      assert.throws(
        () => storage.term(9),
        (error) => isRaftError(error, 'COMPACTED'),
      );
    }),
  );

  test(
    'a received snapshot replaces the whole log',
    withStorage(async ({ storage }) => {
      await storage.save({ entries: makeEntries(1, 8, 1) });
      await storage.save({ snapshot: makeSnapshot(5, 2, [1]), entries: [] });
      assert.equal(storage.firstIndex(), 6);
      assert.equal(storage.lastIndex(), 5);
      assert.equal(storage.term(5), 2);
      await storage.save({ entries: makeEntries(6, 7, 2) });
      assertEntries(storage.entries(6, 8, Infinity), makeEntries(6, 7, 2));
      await assert.rejects(storage.save({ snapshot: makeSnapshot(4, 2, [1]), entries: [] }));
    }),
  );
}

/** Snapshots the storage creates (`createSnapshot`), and compaction up to them. */
function registerCreatedSnapshotTests(withStorage: WithStorage): void {
  test(
    'createSnapshot keeps entries until compact releases them',
    withStorage(async ({ storage }) => {
      await storage.save({ entries: makeEntries(1, 10, 1) });
      const confState = confStateOf([1, 2]);
      const data = bytes('state at 5');
      const snapshot = await storage.createSnapshot(5, confState, data);
      assertSnapshot(snapshot, { meta: { index: 5, term: 1, confState }, data });
      assertSnapshot(storage.snapshot(), snapshot);
      assert.equal(storage.firstIndex(), 1);
      await storage.compact(5);
      assert.equal(storage.firstIndex(), 6);
      assert.equal(storage.term(5), 1);
      assert.throws(
        () => storage.term(4),
        (error) => isRaftError(error, 'COMPACTED'),
      );
      assert.throws(
        () => storage.entries(5, 6, Infinity),
        (error) => isRaftError(error, 'COMPACTED'),
      );
      assertEntries(storage.entries(6, 11, Infinity), makeEntries(6, 10, 1));
    }),
  );

  for (const [what, run] of snapshotPreconditionViolations()) {
    test(`rejects ${what}`, withStorage(run));
  }

  test(
    'skips appended entries at or below the compaction point',
    withStorage(async ({ storage }) => {
      await storage.save({ entries: makeEntries(1, 10, 1) });
      await storage.createSnapshot(5, confStateOf([1]), bytes('s'));
      await storage.compact(5);
      await storage.save({ entries: makeEntries(3, 12, 1) });
      assert.equal(storage.firstIndex(), 6);
      assert.equal(storage.lastIndex(), 12);
      await storage.save({ entries: makeEntries(2, 4, 1) });
      assert.equal(storage.lastIndex(), 12);
    }),
  );
}

function snapshotPreconditionViolations(): [string, (session: Session) => Promise<void>][] {
  const tenEntries = async (storage: LogStorage) => storage.save({ entries: makeEntries(1, 10, 1) });
  return [
    [
      'a snapshot beyond the last index',
      async ({ storage }) => {
        await tenEntries(storage);
        await assert.rejects(storage.createSnapshot(11, confStateOf([1]), bytes('x')));
      },
    ],
    [
      'a snapshot not newer than the current one',
      async ({ storage }) => {
        await tenEntries(storage);
        await storage.createSnapshot(5, confStateOf([1]), bytes('x'));
        await assert.rejects(storage.createSnapshot(5, confStateOf([1]), bytes('y')));
      },
    ],
    [
      'compacting beyond the snapshot',
      async ({ storage }) => {
        await tenEntries(storage);
        await storage.createSnapshot(5, confStateOf([1]), bytes('x'));
        await assert.rejects(storage.compact(6));
      },
    ],
  ];
}
