/**
 * The storage port of the consensus core, and its in-memory implementation.
 *
 * The core only ever reads through {@link LogReader}, synchronously: every implementation
 * keeps the entries since the last snapshot in memory (as etcd does), and the durable
 * implementation additionally writes them to a write-ahead log. The runtime writes through
 * {@link LogStorage.save}, once per Ready.
 */
import { assert } from './assert.js';
import { RaftError } from './errors.js';
import type { ConfState, Entry, HardState, Snapshot } from './types.js';
import { EMPTY_CONF_STATE, EMPTY_HARD_STATE } from './types.js';

/** Bytes an entry counts for against message and batch size limits. */
export function entrySizeBytes(entry: Entry): number {
  // 24 bytes approximate the fixed fields (index, term, type) in any encoding.
  return entry.data.length + 24;
}

/** The read side of storage, used by the core. Ranges are `[lo, hi)`. */
export interface LogReader {
  /** The persisted hard state and the membership of the newest snapshot or conf entry. */
  initialState(): { hardState: HardState; confState: ConfState };
  /**
   * Entries in `[lo, hi)`, cut after `maxBytes` but never empty when the range is not.
   * Throws a `COMPACTED` {@link RaftError} when `lo < firstIndex()`; `hi` must be at most
   * `lastIndex() + 1`.
   */
  entries(lo: number, hi: number, maxBytes: number): Entry[];
  /**
   * Term of the entry at `index`, for `index` in `[firstIndex() - 1, lastIndex()]`; the term
   * at `firstIndex() - 1` is the snapshot's. Throws `COMPACTED` below that range and
   * `UNAVAILABLE` above it.
   */
  term(index: number): number;
  /** Index of the first entry still in the log (snapshot index + 1). */
  firstIndex(): number;
  /** Index of the last entry, or the snapshot index when the log is empty. */
  lastIndex(): number;
  /** The newest snapshot (index 0 and empty data when there is none). */
  snapshot(): Snapshot;
}

/** What one Ready asks storage to make durable, applied in the order snapshot, entries, hard state. */
export interface StorageUpdate {
  readonly hardState?: HardState | undefined;
  /** Entries to append; any stored entries at or after the first one's index are replaced. */
  readonly entries: readonly Entry[];
  /** A snapshot received from the leader; replaces the log up to its index. */
  readonly snapshot?: Snapshot | undefined;
}

/**
 * The full storage port. Obligations of every implementation (checked by the exported
 * conformance suite):
 * - `save` resolves only once everything in the update is durable; after it resolves the
 *   read side reflects the update; a failed `save` leaves the storage unusable (the node
 *   must stop, never acknowledge).
 * - `createSnapshot(index, …)` requires `index` in `[snapshot().meta.index + 1, lastIndex()]`
 *   and a committed, applied index; it does not remove entries (see `compact`).
 * - `compact(index)` discards entries `<= index`; `index` must not exceed the snapshot index.
 */
export interface LogStorage extends LogReader {
  save(update: StorageUpdate): Promise<void>;
  /**
   * Durably records the membership the application has applied (with the applied index it
   * belongs to kept by the application), reported by `initialState()` after a restart.
   */
  saveConfState(confState: ConfState): Promise<void>;
  createSnapshot(index: number, confState: ConfState, data: Uint8Array): Promise<Snapshot>;
  compact(index: number): Promise<void>;
  close(): Promise<void>;
}

/**
 * Storage held in memory. It is the core's log cache inside the durable storage and the disk
 * of the simulator. The synchronous methods mutate immediately; `save` wraps them.
 */
export class MemoryStorage implements LogStorage {
  private hardState: HardState = EMPTY_HARD_STATE;
  private snap: Snapshot = {
    meta: { index: 0, term: 0, confState: EMPTY_CONF_STATE },
    data: new Uint8Array(),
  };
  /**
   * `ents[0]` is a placeholder for the last compacted entry (its index and term only);
   * Invariant: `ents[i].index === ents[0].index + i`, and `ents[0].index <= snap.meta.index`
   * is not required: the log may keep entries the snapshot covers, for slow followers.
   */
  private ents: Entry[] = [{ index: 0, term: 0, type: 'normal', data: new Uint8Array() }];
  /** The membership the runtime last applied, reported by `initialState` on restart. */
  private confState: ConfState = EMPTY_CONF_STATE;

  /** Builds a storage from recovered state (used by the durable storage and the simulator). */
  static from(state: {
    hardState: HardState;
    snapshot?: Snapshot | undefined;
    entries: readonly Entry[];
    confState?: ConfState | undefined;
  }): MemoryStorage {
    const storage = new MemoryStorage();
    if (state.snapshot !== undefined && state.snapshot.meta.index > 0) storage.applySnapshot(state.snapshot);
    storage.append(state.entries);
    storage.setHardState(state.hardState);
    if (state.confState !== undefined) storage.confState = state.confState;
    return storage;
  }

  initialState(): { hardState: HardState; confState: ConfState } {
    return { hardState: this.hardState, confState: this.confState };
  }

  /** Records the membership the runtime has applied, reported by `initialState` on restart. */
  setConfState(confState: ConfState): void {
    this.confState = confState;
  }

  private get offset(): number {
    return this.ents[0]!.index;
  }

  firstIndex(): number {
    return this.offset + 1;
  }

  lastIndex(): number {
    return this.offset + this.ents.length - 1;
  }

  term(index: number): number {
    const offset = this.offset;
    if (index < offset)
      throw new RaftError('COMPACTED', `entry ${index} is compacted (log starts after ${offset})`);
    const entry = this.ents[index - offset];
    if (entry === undefined) throw new RaftError('UNAVAILABLE', `entry ${index} is beyond the last index`);
    return entry.term;
  }

  entries(lo: number, hi: number, maxBytes: number): Entry[] {
    const offset = this.offset;
    if (lo <= offset)
      throw new RaftError('COMPACTED', `entries from ${lo} are compacted (log starts after ${offset})`);
    assert(hi <= this.lastIndex() + 1, `entries [${lo}, ${hi}) out of range: last index ${this.lastIndex()}`);
    return limitSize(this.ents.slice(lo - offset, hi - offset), maxBytes);
  }

  snapshot(): Snapshot {
    return this.snap;
  }

  /** Stores the hard state. */
  setHardState(hardState: HardState): void {
    this.hardState = hardState;
  }

  /** Appends entries, replacing any stored entries at or after the first one's index. */
  append(entries: readonly Entry[]): void {
    const first = entries[0];
    if (first === undefined) return;
    const offset = this.offset;
    assert(
      first.index <= this.lastIndex() + 1,
      `gap: appending ${first.index} after last ${this.lastIndex()}`,
    );
    // Entries at or below the compaction point are committed and identical; skip them.
    const skip = Math.max(0, offset + 1 - first.index);
    if (skip >= entries.length) return;
    this.ents.length = first.index + skip - offset;
    for (let i = skip; i < entries.length; i++) this.ents.push(entries[i]!);
  }

  /** Replaces the whole log with a snapshot received from the leader. */
  applySnapshot(snapshot: Snapshot): void {
    assert(
      snapshot.meta.index > this.snap.meta.index,
      `snapshot ${snapshot.meta.index} is not newer than ${this.snap.meta.index}`,
    );
    this.snap = snapshot;
    this.ents = [
      { index: snapshot.meta.index, term: snapshot.meta.term, type: 'normal', data: new Uint8Array() },
    ];
    this.confState = snapshot.meta.confState;
  }

  async save(update: StorageUpdate): Promise<void> {
    this.saveSync(update);
  }

  async saveConfState(confState: ConfState): Promise<void> {
    this.setConfState(confState);
  }

  /** `save` without the promise, for the deterministic simulator. */
  saveSync(update: StorageUpdate): void {
    if (update.snapshot !== undefined) this.applySnapshot(update.snapshot);
    this.append(update.entries);
    if (update.hardState !== undefined) this.setHardState(update.hardState);
  }

  async createSnapshot(index: number, confState: ConfState, data: Uint8Array): Promise<Snapshot> {
    return this.createSnapshotSync(index, confState, data);
  }

  /** `createSnapshot` without the promise. Keeps the entries; `compact` releases them. */
  createSnapshotSync(index: number, confState: ConfState, data: Uint8Array): Snapshot {
    assert(index > this.snap.meta.index, `snapshot index ${index} is not after ${this.snap.meta.index}`);
    assert(index <= this.lastIndex(), `snapshot index ${index} is beyond the last index ${this.lastIndex()}`);
    this.snap = { meta: { index, term: this.term(index), confState }, data };
    // On restart the core starts from the snapshot's membership and re-applies the
    // conf-change entries after it, so the stored membership is the snapshot's.
    this.confState = confState;
    return this.snap;
  }

  async compact(index: number): Promise<void> {
    this.compactSync(index);
  }

  /** Discards entries up to `index`, which the snapshot must already cover. */
  compactSync(index: number): void {
    assert(index <= this.snap.meta.index, `compact ${index} beyond the snapshot ${this.snap.meta.index}`);
    const offset = this.offset;
    if (index <= offset) return;
    const head: Entry = { index, term: this.term(index), type: 'normal', data: new Uint8Array() };
    this.ents = [head, ...this.ents.slice(index - offset + 1)];
  }

  async close(): Promise<void> {}
}

/** Cuts `entries` after `maxBytes`, keeping at least one entry. */
export function limitSize(entries: Entry[], maxBytes: number): Entry[] {
  let size = 0;
  for (let i = 0; i < entries.length; i++) {
    size += entrySizeBytes(entries[i]!);
    if (size > maxBytes && i > 0) return entries.slice(0, i);
  }
  return entries;
}
