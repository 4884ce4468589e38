/**
 * The raft log as the core sees it: the persisted part (read through {@link LogReader}) plus
 * an unstable tail of entries (and possibly a snapshot) not yet persisted.
 *
 * Invariants: `applied <= committed`; `committed <= lastIndex()`; the unstable entries
 * immediately follow the persisted ones (`unstableOffset <= storage.lastIndex() + 1`).
 */
import { assert } from './assert.js';
import { isRaftError } from './errors.js';
import type { LogReader } from './storage.js';
import { limitSize } from './storage.js';
import type { Entry, Snapshot } from './types.js';

/** The unstable tail: what the runtime has not yet reported as durable. */
class Unstable {
  /** A snapshot received from the leader and not yet persisted. */
  snapshot: Snapshot | undefined;
  /** Entries not yet persisted; `entries[i].index === offset + i`. */
  entries: Entry[] = [];
  offset: number;

  constructor(offset: number) {
    this.offset = offset;
  }

  maybeLastIndex(): number | undefined {
    if (this.entries.length > 0) return this.offset + this.entries.length - 1;
    if (this.snapshot !== undefined) return this.snapshot.meta.index;
    return undefined;
  }

  maybeFirstIndex(): number | undefined {
    return this.snapshot === undefined ? undefined : this.snapshot.meta.index + 1;
  }

  maybeTerm(index: number): number | undefined {
    if (index < this.offset) {
      if (this.snapshot !== undefined && this.snapshot.meta.index === index) return this.snapshot.meta.term;
      return undefined;
    }
    return this.entries[index - this.offset]?.term;
  }

  /** Entries up to (`index`, `term`) became durable. */
  stableTo(index: number, term: number): void {
    const t = this.maybeTerm(index);
    // Only if the entry was not replaced meanwhile by a conflicting append.
    if (t === term && index >= this.offset) {
      this.entries = this.entries.slice(index + 1 - this.offset);
      this.offset = index + 1;
    }
  }

  stableSnapTo(index: number): void {
    if (this.snapshot !== undefined && this.snapshot.meta.index === index) this.snapshot = undefined;
  }

  restore(snapshot: Snapshot): void {
    this.offset = snapshot.meta.index + 1;
    this.entries = [];
    this.snapshot = snapshot;
  }

  truncateAndAppend(entries: readonly Entry[]): void {
    const first = entries[0]!.index;
    if (first === this.offset + this.entries.length) {
      for (const e of entries) this.entries.push(e);
    } else if (first <= this.offset) {
      // Replaces everything unstable (and, via `offset`, shadows persisted entries from `first`).
      this.offset = first;
      this.entries = [...entries];
    } else {
      this.entries = this.entries.slice(0, first - this.offset);
      for (const e of entries) this.entries.push(e);
    }
  }
}

/** Behaviour switches that only the simulator's mutation tests turn on. */
export interface LogMutations {
  /** Keep conflicting entries instead of truncating (a deliberate bug). */
  noTruncateOnConflict: boolean;
}

/** The log: persisted entries, the unstable tail, and the commit and apply positions. */
export class RaftLog {
  readonly storage: LogReader;
  readonly unstable: Unstable;
  /** Highest index known committed. Invariant: never decreases. */
  committed: number;
  /** Highest index the application has applied. Invariant: `applied <= committed`. */
  applied: number;
  /**
   * Highest index handed to the application in a Ready and not necessarily applied yet.
   * Invariant: `applied <= applying <= committed`.
   */
  applying: number;

  constructor(
    storage: LogReader,
    private readonly mutations: LogMutations,
  ) {
    this.storage = storage;
    const first = storage.firstIndex();
    const last = storage.lastIndex();
    this.unstable = new Unstable(last + 1);
    this.committed = first - 1;
    this.applied = first - 1;
    this.applying = first - 1;
  }

  firstIndex(): number {
    return this.unstable.maybeFirstIndex() ?? this.storage.firstIndex();
  }

  lastIndex(): number {
    return this.unstable.maybeLastIndex() ?? this.storage.lastIndex();
  }

  /** The last index that is durable (persisted by the runtime and reported via `advance`). */
  stableLastIndex(): number {
    if (this.unstable.snapshot !== undefined) return 0;
    return this.unstable.offset - 1;
  }

  lastTerm(): number {
    return this.term(this.lastIndex());
  }

  /**
   * Term at `index`, or 0 when it is outside `[firstIndex() - 1, lastIndex()]` (compacted or
   * not yet written). Term 0 never matches a real entry, so callers can compare safely.
   */
  term(index: number): number {
    const t = this.unstable.maybeTerm(index);
    if (t !== undefined) return t;
    if (index < this.firstIndex() - 1 || index > this.lastIndex()) return 0;
    try {
      return this.storage.term(index);
    } catch (error) {
      if (isRaftError(error, 'COMPACTED') || isRaftError(error, 'UNAVAILABLE')) return 0;
      throw error;
    }
  }

  matchTerm(index: number, term: number): boolean {
    return this.term(index) === term;
  }

  /** Whether a log ending at (`lastIndex`, `lastTerm`) is at least as up to date as ours (§5.4.1). */
  isUpToDate(lastIndex: number, lastTerm: number): boolean {
    const ourTerm = this.lastTerm();
    return lastTerm > ourTerm || (lastTerm === ourTerm && lastIndex >= this.lastIndex());
  }

  /**
   * Appends entries received from the leader after (`prevIndex`, `prevTerm`). Returns the
   * index of the last new entry, or undefined when the previous entry does not match.
   * The commit index moves to `min(commit, lastNew)`: never past what this append proved to
   * match the leader's log.
   */
  maybeAppend(
    prevIndex: number,
    prevTerm: number,
    commit: number,
    entries: readonly Entry[],
  ): number | undefined {
    if (!this.matchTerm(prevIndex, prevTerm)) return undefined;
    const lastNew = prevIndex + entries.length;
    const conflict = this.findConflict(entries);
    if (conflict !== 0) {
      assert(
        conflict > this.committed,
        `entry ${conflict} conflicts with committed entry (commit ${this.committed})`,
      );
      const from = entries.slice(conflict - (prevIndex + 1));
      if (this.mutations.noTruncateOnConflict) {
        // Deliberate bug: keep our conflicting entries and only add what lies beyond them.
        const beyond = from.filter((e) => e.index > this.lastIndex());
        if (beyond.length > 0) this.append(beyond);
      } else {
        this.append(from);
      }
    }
    this.commitTo(Math.min(commit, lastNew));
    return lastNew;
  }

  /** Appends entries (overwriting any unstable suffix they conflict with). Returns the last index. */
  append(entries: readonly Entry[]): number {
    if (entries.length === 0) return this.lastIndex();
    const after = entries[0]!.index - 1;
    assert(after >= this.committed, `append after ${after} would overwrite committed ${this.committed}`);
    this.unstable.truncateAndAppend(entries);
    return this.lastIndex();
  }

  /**
   * The index of the first entry that is new or conflicts with ours (different term at the
   * same index), or 0 when every entry is already present.
   */
  findConflict(entries: readonly Entry[]): number {
    for (const e of entries) {
      if (!this.matchTerm(e.index, e.term)) return e.index;
    }
    return 0;
  }

  /**
   * Fast backtracking: the largest index `<= index` whose term is `<= term`, with that term
   * (0 when unknown or compacted). Both sides use it to skip a whole term per round trip.
   */
  findConflictByTerm(index: number, term: number): { index: number; term: number } {
    for (let i = index; i > 0; i--) {
      const t = this.term(i);
      if (t === 0) return { index: i, term: 0 };
      if (t <= term) return { index: i, term: t };
    }
    return { index: 0, term: 0 };
  }

  /** Moves the commit index forward (never back). */
  commitTo(index: number): void {
    if (index <= this.committed) return;
    assert(index <= this.lastIndex(), `commit ${index} is beyond the last index ${this.lastIndex()}`);
    this.committed = index;
  }

  /**
   * Commits up to `index` if its entry is from `term` (the current term): an entry of an
   * earlier term is never committed by counting replicas (§5.4.2, Figure 8).
   */
  maybeCommit(index: number, term: number, commitPriorTerm: boolean): boolean {
    if (index > this.committed && (commitPriorTerm || this.term(index) === term)) {
      this.commitTo(index);
      return true;
    }
    return false;
  }

  appliedTo(index: number): void {
    if (index === 0) return;
    assert(index <= this.committed, `applied ${index} beyond committed ${this.committed}`);
    assert(index >= this.applied, `applied ${index} goes back from ${this.applied}`);
    this.applied = index;
    if (this.applying < index) this.applying = index;
  }

  /** Entries in `[lo, hi)` (persisted then unstable), cut after `maxBytes`. */
  slice(lo: number, hi: number, maxBytes: number): Entry[] {
    assert(lo >= this.firstIndex(), `slice from ${lo} below the first index ${this.firstIndex()}`);
    assert(hi <= this.lastIndex() + 1, `slice to ${hi} beyond the last index ${this.lastIndex()}`);
    if (lo === hi) return [];
    let result: Entry[] = [];
    const uOffset = this.unstable.offset;
    if (lo < uOffset) {
      result = this.storage.entries(lo, Math.min(hi, uOffset), maxBytes);
      // The stored part was cut short by the byte limit: do not add unstable entries.
      if (result.length < Math.min(hi, uOffset) - lo) return result;
    }
    if (hi > uOffset) {
      const from = Math.max(lo, uOffset);
      const tail = this.unstable.entries.slice(from - uOffset, hi - uOffset);
      result = result.length === 0 ? tail : result.concat(tail);
    }
    return limitSize(result, maxBytes);
  }

  /** Entries from `index` to the end, or undefined if `index` is compacted. */
  entriesFrom(index: number, maxBytes: number): Entry[] | undefined {
    if (index < this.firstIndex()) return undefined;
    if (index > this.lastIndex()) return [];
    return this.slice(index, this.lastIndex() + 1, maxBytes);
  }

  /** The unstable entries the runtime must persist. */
  unstableEntries(): readonly Entry[] {
    return this.unstable.entries;
  }

  /** Whether committed entries wait to be applied. */
  hasNextCommittedEntries(): boolean {
    return this.committed > this.applied && this.unstable.snapshot === undefined;
  }

  /** Committed entries not yet applied, up to `maxBytes`. */
  nextCommittedEntries(maxBytes: number): Entry[] {
    if (!this.hasNextCommittedEntries()) return [];
    const lo = Math.max(this.applied + 1, this.firstIndex());
    return this.slice(lo, this.committed + 1, maxBytes);
  }

  /** The newest snapshot: the unstable one if any, else the storage's. */
  snapshot(): Snapshot {
    return this.unstable.snapshot ?? this.storage.snapshot();
  }

  /** Replaces the log with a snapshot from the leader. */
  restore(snapshot: Snapshot): void {
    assert(snapshot.meta.index > this.committed, `restoring snapshot ${snapshot.meta.index} behind commit`);
    this.committed = snapshot.meta.index;
    this.unstable.restore(snapshot);
  }

  stableTo(index: number, term: number): void {
    this.unstable.stableTo(index, term);
  }

  stableSnapTo(index: number): void {
    this.unstable.stableSnapTo(index);
  }
}
