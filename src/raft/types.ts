/**
 * Data types of the consensus core: log entries, persistent state, snapshots, messages and
 * the Ready batch. Everything here is plain data so it can be serialized by any codec and
 * compared structurally in tests.
 */

/** Identifies a node. Ids are positive integers and are never reused. */
export type NodeId = number;

/** Identifies a raft group hosted by a process; every message carries one. */
export type GroupId = number;

/** What an entry carries. */
export type EntryType = 'normal' | 'conf-change';

/**
 * One log entry. Invariant: `index >= 1`, `term >= 1`; `data` is opaque to the core except
 * for conf-change entries, whose `data` is an encoded {@link ConfChange}.
 */
export interface Entry {
  readonly index: number;
  readonly term: number;
  readonly type: EntryType;
  readonly data: Uint8Array;
}

/**
 * State that must be durable before any message depending on it is sent.
 * `term` and `vote` change together on every election; `commit` is persisted so a restarted
 * node never reports a smaller commit index than it acknowledged.
 */
export interface HardState {
  readonly term: number;
  /** The node voted for in `term`, or 0 for none. */
  readonly vote: NodeId;
  readonly commit: number;
}

/** The membership of a group. A joint configuration has both `voters` and `votersOutgoing`. */
export interface ConfState {
  readonly voters: readonly NodeId[];
  /** Voters of the outgoing half of a joint configuration; empty when not joint. */
  readonly votersOutgoing: readonly NodeId[];
  readonly learners: readonly NodeId[];
  /** Learners to add once the joint configuration is left (voters being demoted). */
  readonly learnersNext: readonly NodeId[];
  /** Whether the joint configuration is left automatically once committed. */
  readonly autoLeave: boolean;
  /** Nodes removed from the group: their ids are never members again. */
  readonly removed?: readonly NodeId[];
}

/** A change of membership, proposed as one log entry. */
export interface ConfChange {
  /** Single changes apply at once when there is one voter change; several enter a joint config. */
  readonly changes: readonly ConfChangeSingle[];
  /** Leave a joint configuration (an empty change list with `leaveJoint`). */
  readonly leaveJoint?: boolean;
  /**
   * Opaque application data replicated with the change (like etcd's `ConfChange.Context`),
   * e.g. a new member's name and peer address. The core never interprets it.
   */
  readonly context?: Uint8Array;
}

/** One membership edit. */
export interface ConfChangeSingle {
  readonly type: 'add-voter' | 'add-learner' | 'remove';
  readonly node: NodeId;
}

/** Describes a snapshot: the log prefix `[1, index]` it replaces and the membership at `index`. */
export interface SnapshotMeta {
  readonly index: number;
  readonly term: number;
  readonly confState: ConfState;
}

/** A snapshot: metadata plus the state machine's opaque serialized state. */
export interface Snapshot {
  readonly meta: SnapshotMeta;
  readonly data: Uint8Array;
}

/** Role of a node. Learners are followers that never vote or campaign. */
export type Role = 'follower' | 'pre-candidate' | 'candidate' | 'leader';

/** Volatile state reported for observers; not persisted. */
export interface SoftState {
  readonly role: Role;
  /** The known leader of the current term, or 0. */
  readonly leader: NodeId;
}

/**
 * A linearizable read that may be served once the state machine has applied `index`.
 * `context` is the caller's request handle, returned unchanged.
 */
export interface ReadState {
  readonly index: number;
  readonly context: Uint8Array;
}

interface MessageBase {
  readonly groupId: GroupId;
  readonly from: NodeId;
  readonly to: NodeId;
  /** Sender's term; 0 marks a local message (proposal, read request) that carries no term. */
  readonly term: number;
}

/** Vote request (or pre-vote request when `preVote`). */
export interface VoteRequest extends MessageBase {
  readonly type: 'vote';
  readonly preVote: boolean;
  readonly lastLogIndex: number;
  readonly lastLogTerm: number;
  /** Set when campaigning because of a leadership transfer: bypasses the leader lease. */
  readonly transfer: boolean;
}

/** Reply to a vote request. For a pre-vote, `term` echoes the term the candidate would use. */
export interface VoteResponse extends MessageBase {
  readonly type: 'vote-response';
  readonly preVote: boolean;
  readonly granted: boolean;
}

/**
 * AppendEntries: `entries` follow the entry at (`prevLogIndex`, `prevLogTerm`); `commit` is
 * the leader's commit index.
 */
export interface AppendRequest extends MessageBase {
  readonly type: 'append';
  readonly prevLogIndex: number;
  readonly prevLogTerm: number;
  readonly entries: readonly Entry[];
  readonly commit: number;
}

/**
 * Reply to an append. On success `index` is the last index the follower now matches. On
 * rejection `index` is the rejected `prevLogIndex` and (`hintIndex`, `hintTerm`) let the
 * leader skip a whole term of conflicting entries at once (fast backtracking).
 */
export interface AppendResponse extends MessageBase {
  readonly type: 'append-response';
  readonly reject: boolean;
  readonly index: number;
  readonly hintIndex: number;
  readonly hintTerm: number;
}

/** Heartbeat: carries the commit index (capped to what the follower matches) and a read context. */
export interface HeartbeatRequest extends MessageBase {
  readonly type: 'heartbeat';
  readonly commit: number;
  /** Non-empty when this heartbeat confirms leadership for pending ReadIndex requests. */
  readonly context: Uint8Array;
}

/** Reply to a heartbeat, echoing its read context. */
export interface HeartbeatResponse extends MessageBase {
  readonly type: 'heartbeat-response';
  readonly context: Uint8Array;
}

/** InstallSnapshot: sent when the follower needs entries the leader has compacted away. */
export interface SnapshotRequest extends MessageBase {
  readonly type: 'snapshot';
  readonly snapshot: Snapshot;
}

/** Tells the target to campaign at once (leadership transfer). */
export interface TimeoutNowRequest extends MessageBase {
  readonly type: 'timeout-now';
}

/** A follower asks the leader for a read index on behalf of its own client. */
export interface ReadIndexRequest extends MessageBase {
  readonly type: 'read-index';
  readonly context: Uint8Array;
}

/** The leader's answer to a forwarded read-index request. `index` 0 means refused. */
export interface ReadIndexResponse extends MessageBase {
  readonly type: 'read-index-response';
  readonly index: number;
  readonly context: Uint8Array;
}

/**
 * A follower forwards client proposals to the leader. `hops` counts how often the proposal was
 * forwarded: 0 as the local request, 1 once a follower sent it on; a node that gets a proposal
 * after it stopped leading forwards it once more to the leader it now knows (see
 * step-follower.ts), never beyond {@link PROPOSE_HOPS_MAX}.
 */
export interface ProposeRequest extends MessageBase {
  readonly type: 'propose';
  readonly entries: readonly Entry[];
  readonly hops: number;
}

/** How often a proposal may be forwarded: by the follower it came to, then once by a deposed leader. */
export const PROPOSE_HOPS_MAX = 2;

/**
 * Local report from the runtime (term 0, `from` = the peer): a message to that peer could not
 * be delivered, so the leader stops streaming to it optimistically and probes instead.
 */
export interface UnreachableReport extends MessageBase {
  readonly type: 'unreachable';
}

/**
 * Local report from the runtime (term 0, `from` = the peer): sending a snapshot to the peer
 * finished; `reject` when it failed. The leader then probes the peer again.
 */
export interface SnapshotStatusReport extends MessageBase {
  readonly type: 'snapshot-status';
  readonly reject: boolean;
}

/** Local request (term 0): hand leadership to `transferee`. Followers forward it to the leader. */
export interface TransferLeaderRequest extends MessageBase {
  readonly type: 'transfer-leader';
  readonly transferee: NodeId;
}

/** Every message a node exchanges with its peers. */
export type Message =
  | VoteRequest
  | VoteResponse
  | AppendRequest
  | AppendResponse
  | HeartbeatRequest
  | HeartbeatResponse
  | SnapshotRequest
  | TimeoutNowRequest
  | ReadIndexRequest
  | ReadIndexResponse
  | ProposeRequest
  | UnreachableReport
  | SnapshotStatusReport
  | TransferLeaderRequest;

/** The names of all message types. */
export type MessageType = Message['type'];

/**
 * Everything the runtime must do, in this order:
 *
 * 1. Persist `hardState` (if set), `entries` and `snapshot` (if set) durably.
 * 2. Send `messages`. A message whose correctness depends on step 1 (a vote, an append
 *    acknowledgement) must not be sent before step 1 is durable. A leader's own `append`
 *    and `heartbeat` messages carry nothing it has acknowledged and may be sent while its
 *    write is in flight (Raft thesis §10.2.1): the leader counts itself towards a quorum
 *    only after `advance`, i.e. once its own write is durable.
 * 3. Apply `committedEntries` in order (after step 1: they may include entries persisted in
 *    this very Ready). If `snapshot` is set, restore the state machine from it first.
 * 4. Serve `readStates` once the applied index reaches each one's `index`.
 * 5. Call `advance(ready)`.
 *
 * No new Ready is produced until `advance` is called; `step`, `tick` and `propose` may be
 * called in between.
 */
export interface Ready {
  readonly softState: SoftState | undefined;
  readonly hardState: HardState | undefined;
  readonly entries: readonly Entry[];
  readonly snapshot: Snapshot | undefined;
  readonly committedEntries: readonly Entry[];
  readonly messages: readonly Message[];
  readonly readStates: readonly ReadState[];
}

/** An empty hard state: term 0, no vote, nothing committed. */
export const EMPTY_HARD_STATE: HardState = Object.freeze({ term: 0, vote: 0, commit: 0 });

/** An empty membership. */
export const EMPTY_CONF_STATE: ConfState = Object.freeze({
  voters: [],
  votersOutgoing: [],
  learners: [],
  learnersNext: [],
  autoLeave: false,
});

/** Whether two hard states are equal. */
export function hardStateEqual(a: HardState, b: HardState): boolean {
  return a.term === b.term && a.vote === b.vote && a.commit === b.commit;
}
