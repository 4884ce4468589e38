/**
 * Rebuilds storage state from WAL records, with exactly the semantics `MemoryStorage` gives
 * the same operations, and checks the records' structure as it goes: every entry must follow
 * the previous one (a `TRUNCATE` record precedes any overwrite), truncations stay inside the
 * log, snapshot markers only move forward.
 */
import { assertNever } from '../raft/assert.js';
import type { ConfState, Entry, HardState, SnapshotMeta } from '../raft/types.js';
import type { CarriedState, WalRecord } from './codec.js';

/** A record that cannot follow the state before it: the log is damaged (or was never valid). */
export class ReplayError extends Error {
  override readonly name = 'ReplayError';
}

/** The snapshot the WAL points to: index 0 means none. */
export interface SnapshotPointer {
  readonly index: number;
  readonly term: number;
}

/** The outcome of a replay. */
export interface ReplayResult {
  readonly hardState: HardState;
  readonly confState: ConfState;
  readonly snapshot: SnapshotPointer;
  /** The entries after the snapshot, contiguous from `snapshot.index + 1`. */
  readonly entries: Entry[];
}

/** Replays records on top of the state a segment header carries. */
export class WalReplay {
  private hardState: HardState;
  private confState: ConfState;
  private snapshot: SnapshotPointer;
  /**
   * The entry before `entries[0]`: only its index and term are known. When older segments
   * were deleted it can lie above the snapshot; `finish` then reports the missing entries.
   * Its term is unknown after a truncation into the deleted part (see `truncate`).
   */
  private base: { readonly index: number; readonly term: number | undefined };
  /** Invariant: `entries[i].index === base.index + 1 + i`. */
  private entries: Entry[] = [];

  constructor(start: CarriedState) {
    this.hardState = start.hardState;
    this.confState = start.confState;
    this.snapshot = { index: start.snapshotIndex, term: start.snapshotTerm };
    this.base = { index: start.lastIndex, term: start.lastTerm };
  }

  /** The index of the last entry. */
  get lastIndex(): number {
    return this.base.index + this.entries.length;
  }

  /** The state a segment created now would carry. */
  carry(): CarriedState {
    return {
      hardState: this.hardState,
      confState: this.confState,
      snapshotIndex: this.snapshot.index,
      snapshotTerm: this.snapshot.term,
      lastIndex: this.lastIndex,
      // -1 never matches a real term: a carried state compared with it reports the loss.
      lastTerm: this.entries.at(-1)?.term ?? this.base.term ?? -1,
    };
  }

  /** Applies one record; throws {@link ReplayError} when it cannot follow the current state. */
  apply(record: WalRecord): void {
    switch (record.type) {
      case 'entry':
        this.appendEntry(record.entry);
        break;
      case 'truncate':
        this.truncate(record.index);
        break;
      case 'hard-state':
        this.hardState = record.hardState;
        break;
      case 'conf-state':
        this.confState = record.confState;
        break;
      case 'snapshot':
        if (record.kind === 'created') this.createdSnapshot(record.meta);
        else this.receivedSnapshot(record.meta.index, record.meta.term, record.meta.confState);
        break;
      default:
        assertNever(record, 'WAL record');
    }
  }

  private appendEntry(entry: Entry): void {
    if (entry.index !== this.lastIndex + 1)
      throw new ReplayError(`entry ${entry.index} does not follow the last index ${this.lastIndex}`);
    this.entries.push(entry);
  }

  private truncate(index: number): void {
    if (index > this.lastIndex + 1 || index < 1)
      throw new ReplayError(`truncation at ${index} beyond the last index ${this.lastIndex}`);
    if (index > this.base.index) {
      this.entries.length = index - 1 - this.base.index;
      return;
    }
    // The truncation reaches into segments deleted since it was written (they held only
    // entries a later compaction covered). The entries it keeps there are gone, so the log
    // now starts after index - 1, whose term is unknown; `finish` checks the snapshot covers it.
    this.base = { index: index - 1, term: undefined };
    this.entries = [];
  }

  private createdSnapshot(meta: SnapshotMeta): void {
    this.checkNewer(meta.index);
    if (meta.index > this.lastIndex)
      throw new ReplayError(`snapshot ${meta.index} is beyond the last index ${this.lastIndex}`);
    const term = this.termAt(meta.index);
    if (term !== undefined && term !== meta.term)
      throw new ReplayError(`snapshot ${meta.index} has term ${meta.term} but the log has term ${term}`);
    this.snapshot = { index: meta.index, term: meta.term };
    // As MemoryStorage.createSnapshotSync: the stored membership becomes the snapshot's.
    this.confState = meta.confState;
  }

  private receivedSnapshot(index: number, term: number, confState: ConfState): void {
    this.checkNewer(index);
    // As MemoryStorage.applySnapshot: the snapshot replaces the whole log and its membership.
    this.snapshot = { index, term };
    this.base = { index, term };
    this.entries = [];
    this.confState = confState;
  }

  private checkNewer(index: number): void {
    if (index <= this.snapshot.index)
      throw new ReplayError(`snapshot ${index} is not newer than snapshot ${this.snapshot.index}`);
  }

  private termAt(index: number): number | undefined {
    if (index === this.base.index) return this.base.term;
    return this.entries[index - this.base.index - 1]?.term;
  }

  /**
   * The replayed state. Throws {@link ReplayError} when entries after the snapshot are
   * missing, which happens when a segment before the first one found was lost.
   */
  finish(): ReplayResult {
    if (this.base.index > this.snapshot.index)
      throw new ReplayError(
        `entries ${this.snapshot.index + 1} to ${this.base.index} are missing (the snapshot ends at ${this.snapshot.index})`,
      );
    const skip = this.snapshot.index - this.base.index;
    return {
      hardState: this.hardState,
      confState: this.confState,
      snapshot: this.snapshot,
      entries: skip === 0 ? this.entries : this.entries.slice(skip),
    };
  }
}

/** Whether two carried states are equal. */
export function carriedStateEqual(a: CarriedState, b: CarriedState): boolean {
  return (
    a.hardState.term === b.hardState.term &&
    a.hardState.vote === b.hardState.vote &&
    a.hardState.commit === b.hardState.commit &&
    a.snapshotIndex === b.snapshotIndex &&
    a.snapshotTerm === b.snapshotTerm &&
    a.lastIndex === b.lastIndex &&
    a.lastTerm === b.lastTerm &&
    confStateEqual(a.confState, b.confState)
  );
}

/** Whether two memberships are equal (same lists in the same order). */
export function confStateEqual(a: ConfState, b: ConfState): boolean {
  return (
    a.autoLeave === b.autoLeave &&
    listEqual(a.voters, b.voters) &&
    listEqual(a.votersOutgoing, b.votersOutgoing) &&
    listEqual(a.learners, b.learners) &&
    listEqual(a.learnersNext, b.learnersNext) &&
    listEqual(a.removed ?? [], b.removed ?? [])
  );
}

function listEqual(a: readonly number[], b: readonly number[]): boolean {
  return a.length === b.length && a.every((value, i) => value === b[i]);
}
