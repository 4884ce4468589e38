/**
 * The options of the node runtime (`startNode`, and `createNode` through it): what a caller
 * gives, the defaults of the rest, and the logger the runtime writes to.
 */
import type { SnapshotPolicyOptions } from '../storage/index.js';
import type { PeerAddress } from '../transport/index.js';
import type { MemberAddress, MemberClientUrls } from './member-table.js';

/** Where a runtime writes its diagnostics. */
export interface NodeLogger {
  info(message: string): void;
  warn(message: string): void;
  error(message: string): void;
}

/**
 * The runtime's options, as `startNode` takes them (the ones with a default may be left
 * out: {@link NodeInit}) and as a running node reports them ({@link FlotillaNode.options}).
 * Defaults in {@link DEFAULT_NODE_OPTIONS}.
 */
export interface NodeOptions {
  /** This member's name (the cluster's members know it by it; unique in the cluster). */
  readonly name: string;
  /**
   * Its id, unique in the cluster and never reused (`nodeIdFromName` derives one from a
   * name, as the command line does for founders). A data directory's
   * `member.json` overrides it, and a member joining with `existing` learns it from the
   * cluster (see join.ts): a started node's {@link FlotillaNode.options} has the real one.
   */
  readonly id: number;
  /** The cluster id (overridden like {@link NodeOptions.id}). */
  readonly clusterId: number;
  /**
   * The raft group this member replicates: 1 for a single-group node, the group's id on a
   * multi-raft host (multi-host.ts). Every message carries it.
   */
  readonly groupId: number;
  /** The initial cluster as given (recorded in the data directory on bootstrap). */
  readonly initialCluster: string;
  /** Node id → name and peer address of every initial member, this one included. */
  readonly members: ReadonlyMap<number, MemberAddress>;
  /**
   * `new` bootstraps an empty data directory with the initial membership; `existing` joins a
   * running cluster: a fresh data directory asks the members in `members` for the cluster's
   * id, this member's id and the member table (see join.ts), then waits to be sent a snapshot.
   */
  readonly initialClusterState: 'new' | 'existing';
  /** How long a joining member keeps asking the cluster about itself before giving up. */
  readonly joinTimeoutMs: number;
  /**
   * Where this member serves clients: published to the cluster (replicated) after each start,
   * so every member lists them (etcd `MemberList` clientURLs, `/v1/members`).
   */
  readonly clientUrls?: MemberClientUrls;
  /** Where the node keeps its log, snapshots and member files (created if missing). */
  readonly dataDir: string;
  /** Where to listen for peers. */
  readonly listenPeer: PeerAddress;
  /** Milliseconds per raft tick. */
  readonly tickMs: number;
  /** Ticks without a leader before an election (randomized up to twice this). */
  readonly electionTicks: number;
  /** Ticks between a leader's heartbeats. */
  readonly heartbeatTicks: number;
  /** Client sessions kept (sessions.ts); opening one more evicts the one used longest ago. */
  readonly sessionsMax: number;
  /** Proposals accepted and not yet applied; beyond it new ones fail with `TOO_MANY_REQUESTS`. */
  readonly pendingProposalsMax: number;
  /** Linearizable reads waiting; beyond it new ones fail with `TOO_MANY_REQUESTS`. */
  readonly pendingReadsMax: number;
  /**
   * Committed-but-unapplied entries beyond which new proposals fail with `TOO_MANY_REQUESTS`
   * (etcd's `maxGapBetweenApplyAndCommitIndex`, 5000).
   */
  readonly applyLagEntriesMax: number;
  /** Encoded proposal bytes handed to the core in one batch. */
  readonly proposalBatchBytesMax: number;
  /** How long a proposal or a read may take, including waiting for a leader. */
  readonly requestTimeoutMs: number;
  /** When to snapshot the state machine. */
  readonly snapshotPolicy: Partial<SnapshotPolicyOptions>;
  /** Entries kept in the log behind a snapshot, so a slightly lagging follower needs no snapshot. */
  readonly snapshotKeepEntries: number;
  /** Where diagnostics go. */
  readonly logger: NodeLogger;
  /** Called once when the node stops because of a fatal error. */
  readonly onFatal: (error: unknown) => void;
}

/** The defaults of the {@link NodeOptions} that have one. */
export const DEFAULT_NODE_OPTIONS = Object.freeze({
  initialClusterState: 'new' as const,
  groupId: 1,
  joinTimeoutMs: 30_000,
  tickMs: 100,
  electionTicks: 10,
  heartbeatTicks: 1,
  pendingProposalsMax: 8192,
  sessionsMax: 10_000,
  pendingReadsMax: 8192,
  applyLagEntriesMax: 5000,
  proposalBatchBytesMax: 4 * 1024 * 1024,
  requestTimeoutMs: 5000,
  snapshotPolicy: {},
  snapshotKeepEntries: 5000,
  logger: Object.freeze({ info: () => {}, warn: () => {}, error: () => {} }),
  onFatal: () => {},
});

/** The {@link NodeOptions} a caller gives: those without a default are required. */
export type NodeInit = Partial<NodeOptions> &
  Pick<NodeOptions, 'name' | 'id' | 'clusterId' | 'initialCluster' | 'members' | 'dataDir' | 'listenPeer'>;

/** @internal The runtime's modules' name for {@link NodeOptions}. */
export type RaftNodeOptions = NodeOptions;
/** @internal The runtime's modules' name for {@link NodeInit}. */
export type RaftNodeInit = NodeInit;
/** @internal The runtime's modules' name for {@link DEFAULT_NODE_OPTIONS}. */
export const DEFAULT_RAFT_NODE_OPTIONS = DEFAULT_NODE_OPTIONS;
