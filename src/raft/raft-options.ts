/**
 * The options of a raft node and their defaults: timing, pre-vote and check-quorum, flow
 * control, how reads are confirmed, and the injected randomness and mutation flags.
 */
import type { Mutations } from './mutations.js';
import { NO_MUTATIONS } from './mutations.js';
import type { Random } from './prng.js';
import type { GroupId, NodeId } from './types.js';

/** Options of a raft node. Defaults in {@link DEFAULT_RAFT_OPTIONS}. */
export interface RaftOptions {
  /** This node's id (positive). */
  readonly id: NodeId;
  readonly groupId: GroupId;
  /** Ticks without hearing from a leader before campaigning; randomized in `[t, 2t)`. */
  readonly electionTicks: number;
  /** Ticks between leader heartbeats. Must be less than `electionTicks`. */
  readonly heartbeatTicks: number;
  /** Run a pre-vote round before incrementing the term (thesis §9.6). */
  readonly preVote: boolean;
  /** A leader steps down when it has not heard from a quorum for an election timeout. */
  readonly checkQuorum: boolean;
  /** Upper bound on the entry bytes of one append message. */
  readonly appendBytesMax: number;
  /** Append messages in flight to one follower at once. */
  readonly inflightMessagesMax: number;
  /** Entry bytes in flight to one follower at once (0 = unlimited). */
  readonly inflightBytesMax: number;
  /** Uncommitted entry bytes a leader accepts before refusing proposals (0 = unlimited). */
  readonly uncommittedBytesMax: number;
  /** Committed entry bytes handed out in one Ready. */
  readonly applyBytesMax: number;
  /** Followers forward proposals and reads to the leader (else they are refused). */
  readonly forwardProposals: boolean;
  /** The last index the application has already applied (on restart). */
  readonly applied: number;
  /** A learner is promoted only when its log is within this many entries of the leader's. */
  readonly learnerCatchUpEntriesMax: number;
  /**
   * How linearizable reads are confirmed. `safe` (default): ReadIndex, a heartbeat round per
   * batch of reads. `lease-based`: a leader that heard from a quorum recently answers at once;
   * correct only while clocks drift by less than `leaseDriftTicks` per election timeout, and
   * only with check-quorum (it is refused otherwise).
   */
  readonly readOnly: 'safe' | 'lease-based';
  /** The clock drift bound lease reads assume, in ticks per election timeout. */
  readonly leaseDriftTicks: number;
  /** Randomness for election timeouts. */
  readonly random: Random;
  /** Deliberate bugs for the simulator's checker tests; production never sets this. */
  readonly mutations: Mutations;
}

/** Defaults for every option but `id` and `random`. */
export const DEFAULT_RAFT_OPTIONS = Object.freeze({
  groupId: 1,
  electionTicks: 10,
  heartbeatTicks: 1,
  preVote: true,
  checkQuorum: true,
  appendBytesMax: 1024 * 1024,
  inflightMessagesMax: 256,
  inflightBytesMax: 0,
  uncommittedBytesMax: 0,
  applyBytesMax: 64 * 1024 * 1024,
  forwardProposals: true,
  applied: 0,
  learnerCatchUpEntriesMax: 100,
  readOnly: 'safe' as const,
  leaseDriftTicks: 1,
  mutations: NO_MUTATIONS,
});
