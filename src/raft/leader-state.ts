/**
 * The state only a leader uses: its heartbeat timer, the uncommitted-bytes budget of its
 * proposals, the reads it is confirming, and the heartbeat rounds that confirm them and renew
 * its lease. Every reset for a new term or role (`Raft.reset`) starts a fresh one, so nothing
 * carries over from one leadership to the next.
 */
import type { ReadRequest } from './read-only.js';
import { ReadOnly } from './read-only.js';
import type { NodeId } from './types.js';

/** A leader's own state; see the module comment. */
export class LeaderState {
  /** Ticks since the last heartbeat broadcast. */
  heartbeatElapsed = 0;
  /** Entry bytes appended by this leader and not committed yet (see `uncommittedBytesMax`). */
  uncommittedBytes = 0;
  /** Reads waiting for a heartbeat round to confirm leadership. */
  readonly readOnly = new ReadOnly();
  /** Reads that arrived before this leader committed an entry of its term. */
  readsAwaitingCommit: ReadRequest[] = [];
  /** When each recent heartbeat round was sent, by round id. */
  readonly roundSentTick = new Map<number, number>();
  /** Per peer: the send tick of the newest heartbeat round it answered (for leases). */
  readonly leaseAcks = new Map<NodeId, number>();
}
