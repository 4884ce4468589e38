/**
 * Helpers of the {@link LogStorage} conformance suite: the factory it tests, a storage under
 * test across reopens, the state a storage must hold after a restart, and entry, snapshot
 * and assertion helpers shared by its groups of tests.
 */
import assert from 'node:assert/strict';
import type { TestContext } from 'node:test';
import type { LogStorage } from '../raft/storage.js';
import { MemoryStorage } from '../raft/storage.js';
import type { ConfState, Entry, Snapshot } from '../raft/types.js';
import { EMPTY_CONF_STATE } from '../raft/types.js';

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

/** One storage under test, replaced by `reopen`. */
export class Session {
  constructor(
    private readonly factory: LogStorageFactory,
    public storage: LogStorage,
  ) {}

  async reopen(): Promise<LogStorage> {
    this.storage = await this.factory.reopen(this.storage);
    return this.storage;
  }
}

/**
 * Wraps a test body: it gets a {@link Session} on a fresh storage, closed after the test.
 */
export type WithStorage = (
  body: (session: Session, context: TestContext) => Promise<void>,
) => (context: TestContext) => Promise<void>;

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

/** Asserts that `actual` and `expected` are the same entries (compared as plain values). */
export function assertEntries(actual: readonly Entry[], expected: readonly Entry[]): void {
  assert.deepEqual(actual.map(plainEntry), expected.map(plainEntry));
}

function plainEntry(entry: Entry): { index: number; term: number; type: string; data: number[] } {
  return { index: entry.index, term: entry.term, type: entry.type, data: [...entry.data] };
}

/** Asserts that `actual` and `expected` are the same snapshot: metadata and data. */
export function assertSnapshot(actual: Snapshot, expected: Snapshot): void {
  assert.deepEqual(actual.meta, expected.meta);
  assert.deepEqual([...actual.data], [...expected.data]);
}

/** Entries `[first, last]` of `term`; data identifies index and term, padded to `dataBytes`. */
export function makeEntries(first: number, last: number, term: number, dataBytes = 0): Entry[] {
  const entries: Entry[] = [];
  for (let index = first; index <= last; index++) {
    const data = new Uint8Array(Math.max(dataBytes, 8));
    data.set(bytes(`${index}/${term}`).subarray(0, data.length));
    entries.push({ index, term, type: index % 5 === 0 ? 'conf-change' : 'normal', data });
  }
  return entries;
}

/** A snapshot at `index` of `term` with `voters`; its data identifies index and term. */
export function makeSnapshot(index: number, term: number, voters: number[]): Snapshot {
  return { meta: { index, term, confState: confStateOf(voters) }, data: bytes(`snapshot ${index}/${term}`) };
}

/** A membership of just `voters`. */
export function confStateOf(voters: number[]): ConfState {
  return { ...EMPTY_CONF_STATE, voters };
}

/** `text` as UTF-8 bytes. */
export function bytes(text: string): Uint8Array {
  return new TextEncoder().encode(text);
}
