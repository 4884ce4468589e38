/**
 * The records a compaction dropped that LMDB still holds, between the apply that dropped
 * them and the transactions that delete them (lmdb-backend.ts), and the view that hides them
 * from scans meanwhile.
 */
import type { Revision } from './store.js';

/** Records compaction dropped that LMDB may still hold, as of one moment. */
export interface CompactedSet {
  has(main: number, sub: number): boolean;
}

export const NOTHING_COMPACTED: CompactedSet = { has: () => false };

/** A set of revisions, built once from the lists it is given and never changed. */
class RevisionSet implements CompactedSet {
  private readonly keys = new Set<string>();
  /** The lowest and highest main revision held, to answer most lookups without a string. */
  private low = Number.POSITIVE_INFINITY;
  private high = Number.NEGATIVE_INFINITY;

  constructor(lists: readonly (readonly Revision[])[]) {
    for (const list of lists) {
      for (const { main, sub } of list) {
        this.keys.add(`${main}.${sub}`);
        if (main < this.low) this.low = main;
        if (main > this.high) this.high = main;
      }
    }
  }

  has(main: number, sub: number): boolean {
    return main >= this.low && main <= this.high && this.keys.has(`${main}.${sub}`);
  }
}

/**
 * The records compaction dropped and LMDB still holds, waiting to be deleted in bounded
 * transactions off the apply path (lmdb-backend.ts drains it). Each compaction's list holds
 * every key's dropped records in ascending order, and lists are deleted front to back, so a
 * crash between two deletions leaves each key a suffix of what compaction dropped: the key's
 * newest write at or below the compacted revision is still there, and a key that was deleted
 * stays deleted. Reopening compacts the key index again and finishes the job.
 */
export class CompactedBacklog {
  private readonly lists: { readonly revisions: readonly Revision[]; readonly index: number }[] = [];
  private head = 0;
  private taken: readonly Revision[] = [];
  private set: RevisionSet | undefined;
  /** At least the highest main revision pending (of every list queued since it was last empty). */
  private highestMain = 0;

  /** Queues the records compaction dropped at applied index `index`. */
  add(revisions: readonly Revision[], index: number): void {
    if (revisions.length === 0) return;
    for (const { main } of revisions) if (main > this.highestMain) this.highestMain = main;
    this.lists.push({ revisions, index });
    this.set = undefined;
  }

  /** Whether records wait to be deleted (queued or taken and not yet deleted). */
  get pending(): boolean {
    return this.lists.length > 0 || this.taken.length > 0;
  }

  /** The applied index whose commit must be in LMDB before the next records are deleted (their puts are). */
  get nextIndex(): number | undefined {
    return this.lists[0]?.index;
  }

  /**
   * Takes up to `max` records of the oldest compaction to delete now; they stay in
   * {@link view} until {@link deleted}.
   */
  take(max: number): readonly Revision[] {
    const first = this.lists[0];
    if (first === undefined) return [];
    const end = Math.min(first.revisions.length, this.head + max);
    this.taken = first.revisions.slice(this.head, end);
    this.head = end;
    if (end === first.revisions.length) {
      this.lists.shift();
      this.head = 0;
    }
    return this.taken;
  }

  /** The records taken last are deleted in LMDB's committed state. */
  deleted(): void {
    this.taken = [];
    this.set = undefined;
    if (this.lists.length === 0) this.highestMain = 0;
  }

  /** Forgets everything (the store was replaced by a restore). */
  clear(): void {
    this.lists.length = 0;
    this.head = 0;
    this.taken = [];
    this.set = undefined;
    this.highestMain = 0;
  }

  /**
   * The records still to hide from scans of revisions from `fromMain` on, as of now (later
   * deletions do not change it). Scans above every dropped record (watchers catching up from
   * a revision after the compaction's) need none.
   */
  view(fromMain = 0): CompactedSet {
    if (!this.pending || fromMain > this.highestMain) return NOTHING_COMPACTED;
    this.set ??= new RevisionSet([
      this.taken,
      ...this.lists.map((list, i) => (i === 0 ? list.revisions.slice(this.head) : list.revisions)),
    ]);
    return this.set;
  }
}
