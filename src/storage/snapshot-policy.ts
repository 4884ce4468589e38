/**
 * Decides when to take a snapshot: once `entriesPerSnapshot` entries have been applied since
 * the last one, or the applied log since then holds `logSizeBytesMax` bytes. Pure: the
 * runtime reports applied entries and snapshot outcomes; at most one snapshot is in
 * progress at a time, so a slow snapshot (written asynchronously, in chunks, so the event
 * loop keeps running) is never stacked with another.
 */
import { assert } from '../raft/assert.js';
import { entrySizeBytes } from '../raft/storage.js';
import type { Entry } from '../raft/types.js';

/** Options of {@link SnapshotPolicy}. */
export interface SnapshotPolicyOptions {
  /** Snapshot after this many entries were applied since the last snapshot. Default 10 000. */
  readonly entriesPerSnapshot: number;
  /** Or after the entries applied since the last snapshot reach this size (`entrySizeBytes`). Default 64 MiB. */
  readonly logSizeBytesMax: number;
}

/** The defaults of {@link SnapshotPolicyOptions}. */
export const DEFAULT_SNAPSHOT_POLICY_OPTIONS: Readonly<SnapshotPolicyOptions> = Object.freeze({
  entriesPerSnapshot: 10_000,
  logSizeBytesMax: 64 * 1024 * 1024,
});

/** Tracks applied entries and says when a snapshot is due. */
export class SnapshotPolicy {
  private readonly options: SnapshotPolicyOptions;
  private appliedIndex: number;
  private snapshotIndex: number;
  /** Bytes of all entries applied since construction, and that count at the snapshot. */
  private appliedBytes = 0;
  private snapshotBytes = 0;
  /** The snapshot in progress: its index and the applied bytes at that index. */
  private pending: { readonly index: number; readonly bytes: number } | undefined;
  /** A snapshot was asked for (see {@link SnapshotPolicy.request}). */
  private requested = false;

  /** Starts from the state after a restart: the snapshot index, which is also the applied index. */
  constructor(options: Partial<SnapshotPolicyOptions> = {}, snapshotIndex = 0) {
    this.options = { ...DEFAULT_SNAPSHOT_POLICY_OPTIONS, ...options };
    assert(this.options.entriesPerSnapshot >= 1, 'entriesPerSnapshot must be at least 1');
    assert(this.options.logSizeBytesMax >= 1, 'logSizeBytesMax must be at least 1');
    this.appliedIndex = snapshotIndex;
    this.snapshotIndex = snapshotIndex;
  }

  /** Records entries the state machine applied, in order. */
  applied(entries: readonly Entry[]): void {
    for (const entry of entries) {
      assert(entry.index === this.appliedIndex + 1, `applied ${entry.index} after ${this.appliedIndex}`);
      this.appliedIndex = entry.index;
      this.appliedBytes += entrySizeBytes(entry);
    }
  }

  /** Whether a snapshot should be started now (never while one is in progress). */
  due(): boolean {
    if (this.pending !== undefined) return false;
    return (
      (this.requested && this.appliedIndex > this.snapshotIndex) ||
      this.appliedIndex - this.snapshotIndex >= this.options.entriesPerSnapshot ||
      this.appliedBytes - this.snapshotBytes >= this.options.logSizeBytesMax
    );
  }

  /**
   * Asks for a snapshot as soon as anything was applied since the last one, whatever the
   * thresholds (a shared log asks groups whose old entries keep its oldest file alive).
   */
  request(): void {
    this.requested = true;
  }

  /** Whether a snapshot was asked for and not yet completed. */
  get isRequested(): boolean {
    return this.requested;
  }

  /** Marks a snapshot at the current applied index as started and returns that index. */
  begin(): number {
    assert(this.pending === undefined, 'a snapshot is already in progress');
    assert(this.appliedIndex > this.snapshotIndex, `nothing applied since snapshot ${this.snapshotIndex}`);
    this.pending = { index: this.appliedIndex, bytes: this.appliedBytes };
    return this.appliedIndex;
  }

  /** The snapshot started by {@link SnapshotPolicy.begin} is durable. */
  completed(index: number): void {
    const pending = this.pending;
    assert(
      pending !== undefined && pending.index === index,
      `completed snapshot ${index} was not the one begun`,
    );
    this.snapshotIndex = index;
    this.snapshotBytes = pending.bytes;
    this.pending = undefined;
    this.requested = false;
  }

  /** The snapshot in progress failed; it may be retried. */
  abandoned(): void {
    this.pending = undefined;
  }

  /** Entries applied since the last snapshot, and their size in bytes. */
  sinceSnapshot(): { entries: number; bytes: number } {
    return { entries: this.appliedIndex - this.snapshotIndex, bytes: this.appliedBytes - this.snapshotBytes };
  }
}
