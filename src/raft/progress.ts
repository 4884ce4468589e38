/**
 * The leader's view of one follower's log: how far it matches (`matchIndex`), what to send
 * next (`nextIndex`), and the replication state machine that decides how to send it.
 *
 * - `probe`: the follower's position is unknown; send one append at a time and wait for
 *   its answer (or a heartbeat response) before the next.
 * - `replicate`: the follower is known to match; stream appends optimistically, bounded
 *   by the in-flight window.
 * - `snapshot`: the follower needs a snapshot; send nothing until it is reported done.
 */
import { assert } from './assert.js';
import { Inflights } from './inflights.js';

/** Replication state of a follower. */
export type ProgressState = 'probe' | 'replicate' | 'snapshot';

/** Replication progress of one peer, kept by the leader. */
export class Progress {
  /** Invariant: `matchIndex < nextIndex`. */
  matchIndex: number;
  nextIndex: number;
  state: ProgressState = 'probe';
  /** Index of the snapshot being sent while in `snapshot` state. */
  pendingSnapshot = 0;
  /** Whether the peer was heard from since the last check-quorum round. */
  recentActive = false;
  /** In `probe` state: an append is outstanding, wait for an answer before sending another. */
  probeSent = false;
  readonly inflights: Inflights;
  isLearner: boolean;

  constructor(nextIndex: number, inflightCountMax: number, inflightBytesMax: number, isLearner: boolean) {
    this.matchIndex = 0;
    this.nextIndex = nextIndex;
    this.inflights = new Inflights(inflightCountMax, inflightBytesMax);
    this.isLearner = isLearner;
  }

  private resetState(state: ProgressState): void {
    this.probeSent = false;
    this.pendingSnapshot = 0;
    this.state = state;
    this.inflights.reset();
  }

  /** Go back to probing from just after the last known match (or after a sent snapshot). */
  becomeProbe(): void {
    if (this.state === 'snapshot') {
      const pending = this.pendingSnapshot;
      this.resetState('probe');
      this.nextIndex = Math.max(this.matchIndex + 1, pending + 1);
    } else {
      this.resetState('probe');
      this.nextIndex = this.matchIndex + 1;
    }
  }

  /** Start streaming appends from just after the match. */
  becomeReplicate(): void {
    this.resetState('replicate');
    this.nextIndex = this.matchIndex + 1;
  }

  /** Stop sending appends until the snapshot at `snapshotIndex` is reported. */
  becomeSnapshot(snapshotIndex: number): void {
    this.resetState('snapshot');
    this.pendingSnapshot = snapshotIndex;
  }

  /**
   * Records an acknowledgement up to `index`. Returns false if it was stale (adds nothing).
   */
  maybeUpdate(index: number): boolean {
    let updated = false;
    if (this.matchIndex < index) {
      this.matchIndex = index;
      updated = true;
      this.probeSent = false;
    }
    this.nextIndex = Math.max(this.nextIndex, index + 1);
    return updated;
  }

  /**
   * Records that appends up to `lastIndex` (`bytes` of payload) were sent. In `replicate`
   * the next index moves on optimistically; in `probe` further sends pause.
   */
  sentEntries(lastIndex: number, entryCount: number, bytes: number): void {
    if (this.state === 'replicate') {
      if (entryCount > 0) {
        this.nextIndex = lastIndex + 1;
        this.inflights.add(lastIndex, bytes);
      }
    } else if (this.state === 'probe') {
      this.probeSent = true;
    } else {
      assert(false, `sending appends in ${this.state} state`);
    }
  }

  /**
   * Handles a rejection of the append whose previous index was `rejected`; `hint` is the
   * highest index that might match (from the follower's conflict hint). Returns false for
   * a stale rejection.
   */
  maybeDecrTo(rejected: number, hint: number): boolean {
    if (this.state === 'replicate') {
      // A rejection at or below the match comes from an old message.
      if (rejected <= this.matchIndex) return false;
      this.nextIndex = this.matchIndex + 1;
      return true;
    }
    // In probe state only the answer to the last probe counts.
    if (this.nextIndex - 1 !== rejected) return false;
    this.nextIndex = Math.max(Math.min(rejected, hint + 1), this.matchIndex + 1);
    this.probeSent = false;
    return true;
  }

  /** Whether sending must wait. */
  isPaused(): boolean {
    switch (this.state) {
      case 'probe':
        return this.probeSent;
      case 'replicate':
        return this.inflights.full();
      case 'snapshot':
        return true;
    }
  }
}
