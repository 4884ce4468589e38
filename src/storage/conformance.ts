/**
 * The conformance suite of the {@link LogStorage} port: every implementation must pass it.
 * Call {@link runLogStorageConformance} from a `node:test` file; it registers the tests.
 *
 * Restart semantics checked by "reopen" tests: everything a resolved `save`, `createSnapshot`,
 * `compact` (and `saveConfState`, where implemented) made durable is there after a reopen;
 * the log may then start right after the snapshot (entries the snapshot covers need not
 * survive a restart).
 */
import assert from 'node:assert/strict';
import { describe, type TestContext, test } from 'node:test';
import fc from 'fast-check';
import { isRaftError } from '../raft/errors.js';
import type { LogStorage, StorageUpdate } from '../raft/storage.js';
import { entrySizeBytes, MemoryStorage } from '../raft/storage.js';
import type { ConfState, Entry, HardState, Snapshot } from '../raft/types.js';
import { EMPTY_CONF_STATE, EMPTY_HARD_STATE } from '../raft/types.js';

/** Opens fresh storages and restarts them. */
export interface LogStorageFactory {
  /** A new, empty storage. */
  open(): Promise<LogStorage>;
  /** Closes `storage` and opens it again from what it made durable. */
  reopen(storage: LogStorage): Promise<LogStorage>;
}

/**
 * What `storage` must hold after a restart, as a {@link MemoryStorage}: `MemoryStorage.from`
 * of its durable state (the log then starts right after the snapshot). It is also how the
 * suite "reopens" a MemoryStorage.
 */
export function restartedState(storage: LogStorage): MemoryStorage {
  return MemoryStorage.from({
    hardState: storage.initialState().hardState,
    confState: storage.initialState().confState,
    snapshot: storage.snapshot(),
    entries: allEntries(storage),
  });
}

/** Registers the conformance tests for the storage `factory` opens, under `name`. */
export function runLogStorageConformance(name: string, factory: LogStorageFactory): void {
  const withStorage =
    (body: (session: Session, context: TestContext) => Promise<void>) => async (context: TestContext) => {
      const session = new Session(factory, await factory.open());
      try {
        await body(session, context);
      } finally {
        await session.storage.close();
      }
    };
  describe(`LogStorage conformance: ${name}`, () => {
    registerLogTests(withStorage);
    registerUpdateTests(withStorage);
    registerSnapshotTests(withStorage);
    registerReopenTests(withStorage);
    registerRestartTests(withStorage);
    registerPropertyTest(factory);
  });
}

/** One storage under test, replaced by `reopen`. */
class Session {
  constructor(
    private readonly factory: LogStorageFactory,
    public storage: LogStorage,
  ) {}

  async reopen(): Promise<LogStorage> {
    this.storage = await this.factory.reopen(this.storage);
    return this.storage;
  }
}

type WithStorage = (
  body: (session: Session, context: TestContext) => Promise<void>,
) => (context: TestContext) => Promise<void>;

function registerLogTests(withStorage: WithStorage): void {
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

function registerUpdateTests(withStorage: WithStorage): void {
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

function registerSnapshotTests(withStorage: WithStorage): void {
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

function registerReopenTests(withStorage: WithStorage): void {
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

function registerRestartTests(withStorage: WithStorage): void {
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

/** An operation of the property test, applied to the storage and to a MemoryStorage model. */
type Operation =
  | { readonly kind: 'append'; readonly back: number; readonly count: number; readonly termStep: number }
  | { readonly kind: 'hard-state'; readonly hardState: HardState }
  | { readonly kind: 'create-snapshot'; readonly fraction: number }
  | { readonly kind: 'compact'; readonly fraction: number }
  | { readonly kind: 'receive-snapshot'; readonly ahead: number }
  | { readonly kind: 'conf-state'; readonly voters: number[] }
  | { readonly kind: 'reopen' };

const operationArbitrary: fc.Arbitrary<Operation> = fc.oneof(
  {
    weight: 6,
    arbitrary: fc.record({
      kind: fc.constant('append' as const),
      back: fc.nat(4),
      count: fc.nat(6),
      termStep: fc.nat(1),
    }),
  },
  {
    weight: 2,
    arbitrary: fc.record({
      kind: fc.constant('hard-state' as const),
      hardState: fc.record({ term: fc.nat(100), vote: fc.nat(5), commit: fc.nat(100) }),
    }),
  },
  {
    weight: 2,
    arbitrary: fc.record({
      kind: fc.constant('create-snapshot' as const),
      fraction: fc.double({ min: 0, max: 1, noNaN: true }),
    }),
  },
  {
    weight: 2,
    arbitrary: fc.record({
      kind: fc.constant('compact' as const),
      fraction: fc.double({ min: 0, max: 1, noNaN: true }),
    }),
  },
  {
    weight: 1,
    arbitrary: fc.record({
      kind: fc.constant('receive-snapshot' as const),
      ahead: fc.integer({ min: -3, max: 5 }),
    }),
  },
  {
    weight: 1,
    arbitrary: fc.record({
      kind: fc.constant('conf-state' as const),
      voters: fc.array(fc.integer({ min: 1, max: 9 }), { maxLength: 4 }),
    }),
  },
  { weight: 2, arbitrary: fc.constant({ kind: 'reopen' as const }) },
);

function registerPropertyTest(factory: LogStorageFactory): void {
  test('random operation sequences match the in-memory model, across reopens', async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(operationArbitrary, { minLength: 1, maxLength: 25 }), async (operations) => {
        const session = new Session(factory, await factory.open());
        let model = new MemoryStorage();
        try {
          for (const operation of operations) {
            model = await applyOperation(session, model, operation);
            assertSameState(session.storage, model);
          }
          assertSameState(await session.reopen(), restartedState(model));
        } finally {
          await session.storage.close();
        }
      }),
      { numRuns: 30 },
    );
  });
}

/** Applies `operation` to both; returns the model (replaced on reopen). */
async function applyOperation(
  session: Session,
  model: MemoryStorage,
  operation: Operation,
): Promise<MemoryStorage> {
  const storage = session.storage;
  switch (operation.kind) {
    case 'append': {
      const first = Math.max(model.firstIndex(), model.lastIndex() + 1 - operation.back);
      const term = model.term(first - 1) + operation.termStep + 1;
      const update = { entries: makeEntries(first, first + operation.count - 1, term) };
      return saveBoth(storage, model, update);
    }
    case 'hard-state':
      // A plain copy: fast-check builds records without a prototype, which deepEqual tells apart.
      return saveBoth(storage, model, { entries: [], hardState: { ...operation.hardState } });
    case 'create-snapshot': {
      const low = model.snapshot().meta.index + 1;
      if (low > model.lastIndex()) return model;
      const index = low + Math.floor(operation.fraction * (model.lastIndex() - low));
      const data = bytes(`snapshot ${index}`);
      assertSnapshot(
        await storage.createSnapshot(index, confStateOf([index % 7]), data),
        model.createSnapshotSync(index, confStateOf([index % 7]), data),
      );
      return model;
    }
    case 'compact': {
      const index = Math.floor(operation.fraction * model.snapshot().meta.index);
      await storage.compact(index);
      model.compactSync(index);
      return model;
    }
    case 'receive-snapshot': {
      const index = Math.max(model.snapshot().meta.index + 1, model.lastIndex() + operation.ahead);
      const term = model.lastIndex() >= index ? model.term(index) : model.term(model.lastIndex()) + 1;
      return saveBoth(storage, model, { entries: [], snapshot: makeSnapshot(index, term, [index % 5]) });
    }
    case 'conf-state': {
      const confState = confStateOf(operation.voters);
      await storage.saveConfState(confState);
      model.setConfState(confState);
      return model;
    }
    case 'reopen':
      await session.reopen();
      return restartedState(model);
  }
}

async function saveBoth(
  storage: LogStorage,
  model: MemoryStorage,
  update: StorageUpdate,
): Promise<MemoryStorage> {
  await storage.save(update);
  model.saveSync(update);
  return model;
}

/** Asserts that `actual` holds exactly what `expected` holds. */
export function assertSameState(actual: LogStorage, expected: LogStorage): void {
  assert.deepEqual(actual.initialState(), expected.initialState());
  assertSnapshot(actual.snapshot(), expected.snapshot());
  assert.equal(actual.firstIndex(), expected.firstIndex(), 'firstIndex');
  assert.equal(actual.lastIndex(), expected.lastIndex(), 'lastIndex');
  assert.equal(
    actual.term(actual.firstIndex() - 1),
    expected.term(expected.firstIndex() - 1),
    'term before the log',
  );
  assertEntries(allEntries(actual), allEntries(expected));
}

function allEntries(storage: LogStorage): Entry[] {
  return storage.entries(storage.firstIndex(), storage.lastIndex() + 1, Infinity);
}

function assertEntries(actual: readonly Entry[], expected: readonly Entry[]): void {
  assert.deepEqual(actual.map(plainEntry), expected.map(plainEntry));
}

function plainEntry(entry: Entry): { index: number; term: number; type: string; data: number[] } {
  return { index: entry.index, term: entry.term, type: entry.type, data: [...entry.data] };
}

function assertSnapshot(actual: Snapshot, expected: Snapshot): void {
  assert.deepEqual(actual.meta, expected.meta);
  assert.deepEqual([...actual.data], [...expected.data]);
}

/** Entries `[first, last]` of `term`; data identifies index and term, padded to `dataBytes`. */
function makeEntries(first: number, last: number, term: number, dataBytes = 0): Entry[] {
  const entries: Entry[] = [];
  for (let index = first; index <= last; index++) {
    const data = new Uint8Array(Math.max(dataBytes, 8));
    data.set(bytes(`${index}/${term}`).subarray(0, data.length));
    entries.push({ index, term, type: index % 5 === 0 ? 'conf-change' : 'normal', data });
  }
  return entries;
}

function makeSnapshot(index: number, term: number, voters: number[]): Snapshot {
  return { meta: { index, term, confState: confStateOf(voters) }, data: bytes(`snapshot ${index}/${term}`) };
}

function confStateOf(voters: number[]): ConfState {
  return { ...EMPTY_CONF_STATE, voters };
}

function bytes(text: string): Uint8Array {
  return new TextEncoder().encode(text);
}
