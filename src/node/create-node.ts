/**
 * The library's entry point: `createNode` runs a user's state machine (state-machine.ts) on
 * the same runtime as the KV database — a {@link Host} with one replica — and returns a
 * small typed handle: propose a command, read with a query, status, close.
 */

import { NodeError } from './errors.js';
import { Host, type HostParts, type HostStatus } from './host.js';
import { type ClusterMember, clusterIdFrom, parseHostPort } from './identity.js';
import type { MemberAddress } from './member-table.js';
import { DEFAULT_RAFT_NODE_OPTIONS, type NodeLogger, type RaftNodeInit } from './options.js';
import type { StateMachine } from './state-machine.js';

/** Options of {@link createNode}; only the first five are required. */
export interface NodeConfig<C, R, Q, A> {
  /** This member's id (a positive integer, unique in the cluster). */
  readonly id: number;
  /** Where the node keeps its log, snapshots and member files (created if missing). */
  readonly dataDir: string;
  /** Where to listen for peers, `host:port`. */
  readonly listen: string;
  /** Every initial member's id and peer address `host:port`, this one included. */
  readonly peers: Readonly<Record<number, string>>;
  /** The state machine this node replicates. */
  readonly stateMachine: StateMachine<C, R, Q, A>;
  /** Milliseconds per raft tick. Default 100. */
  readonly tickMs?: number;
  /** Ticks without a leader before an election (randomized up to twice this). Default 10. */
  readonly electionTicks?: number;
  /** Default timeout of `propose` and `read`, in milliseconds. Default 5000. */
  readonly requestTimeoutMs?: number;
  /** Snapshot the state machine after this many applied entries. Default 10 000. */
  readonly snapshotEntries?: number;
  /** Entries kept in the log behind a snapshot. Default 5000. */
  readonly snapshotKeepEntries?: number;
  /** Client sessions kept; opening one more evicts the one used longest ago. Default 10 000. */
  readonly sessionsMax?: number;
  /** Where diagnostics go. Default: nowhere. */
  readonly logger?: NodeLogger;
  /** Called once if the node stops on a fatal error (storage failure, a throwing `apply`). */
  readonly onFatal?: (error: unknown) => void;
}

/** Options of {@link FlotillaNode.propose}. */
export interface ProposeOptions {
  /** How long to wait for the result, including for a leader. Default: the node's `requestTimeoutMs`. */
  readonly timeoutMs?: number;
  /** Stops waiting (rejects with the signal's reason); a proposal already made may still apply. */
  readonly signal?: AbortSignal;
  /**
   * The command's place in a client session from {@link FlotillaNode.openSession}: `seq` is
   * 1 for its first command and one more for each next one; a retry repeats it. A command is
   * applied at most once per tag and a retry resolves with the first application's result;
   * see docs/library.md, "Exactly once".
   */
  readonly session?: { readonly clientId: number; readonly seq: number };
}

/** Options of {@link FlotillaNode.read}. */
export interface ReadOptions {
  /**
   * `linearizable` (default): a ReadIndex barrier confirmed by a quorum, then the query once
   * this node has applied up to it; `serializable`: the query on local state at once.
   */
  readonly consistency?: 'linearizable' | 'serializable';
}

/** A running member of a cluster replicating one state machine. */
export interface FlotillaNode<C, R, Q, A> {
  /** This member's id. */
  readonly id: number;
  /**
   * Replicates `command` and resolves with its `apply` result once applied on this node
   * (any member may propose: followers forward to the leader). Rejects with a `NodeError`:
   * `NO_LEADER` and `TOO_MANY_REQUESTS` (nothing was written; retry), `TIMEOUT` (outcome
   * unknown), `PROPOSAL_DROPPED`, `STOPPED`, `FATAL`.
   */
  propose(command: C, options?: ProposeOptions): Promise<R>;
  /**
   * Opens a client session (a replicated entry) and resolves with its id, the `clientId` of
   * {@link ProposeOptions.session}. Rejects like `propose`.
   */
  openSession(options?: Pick<ProposeOptions, 'timeoutMs' | 'signal'>): Promise<number>;
  /** The state machine's answer to `query` (see {@link ReadOptions}); rejects like `propose`. */
  read(query: Q, options?: ReadOptions): Promise<A>;
  /** This node's view of the group: role, term, leader id, commit and applied indexes, members. */
  status(): HostStatus;
  /** Stops the node: waiting requests fail with `STOPPED`; closes storage and the state machine. */
  close(): Promise<void>;
}

/** The generic host: a {@link Host} with nothing added (its constructor is protected). */
class GenericHost extends Host {
  static start(init: RaftNodeInit, stateMachine: StateMachine<unknown, unknown, unknown, unknown>) {
    return Host.launch(init, stateMachine, (parts: HostParts) => new GenericHost(parts));
  }
}

/**
 * Starts a member: opens (or bootstraps) `dataDir`, recovers the state machine (an
 * in-memory one from the latest snapshot plus the log), joins the peers. Throws a
 * `NodeError` `INVALID_CONFIG` for bad options or a data directory of another member.
 */
export async function createNode<C, R, Q, A>(
  config: NodeConfig<C, R, Q, A>,
): Promise<FlotillaNode<C, R, Q, A>> {
  const host = await GenericHost.start(hostInit(config), config.stateMachine);
  return {
    id: config.id,
    propose: async (command, options = {}) => (await host.proposeCommand(command, options)) as R,
    openSession: (options = {}) => host.openSession(options),
    read: async (query, options = {}) =>
      (await host.readQuery(query, options.consistency ?? 'linearizable')) as A,
    status: () => host.status(),
    close: () => host.stop(),
  };
}

/** The runtime options of a {@link NodeConfig}. */
function hostInit(config: NodeConfig<unknown, unknown, unknown, unknown>): RaftNodeInit {
  const { id } = config;
  if (!Number.isSafeInteger(id) || id < 1)
    throw new NodeError('INVALID_CONFIG', `id: expected a positive integer, got ${id}`);
  const cluster: ClusterMember[] = [];
  for (const [key, address] of Object.entries(config.peers)) {
    const peerId = Number(key);
    if (!Number.isSafeInteger(peerId) || peerId < 1)
      throw new NodeError('INVALID_CONFIG', `peers: bad id '${key}'`);
    cluster.push({ name: String(peerId), id: peerId, ...parseHostPort(address, `peers[${key}]`) });
  }
  if (!cluster.some((m) => m.id === id))
    throw new NodeError('INVALID_CONFIG', `peers: no address for this node's id ${id}`);
  const members = new Map<number, MemberAddress>(
    cluster.map((m) => [m.id, { name: m.name, host: m.host, port: m.port }]),
  );
  const d = DEFAULT_RAFT_NODE_OPTIONS;
  return {
    name: String(id),
    id,
    clusterId: clusterIdFrom(cluster),
    initialCluster: cluster.map((m) => `${m.name}=${m.host}:${m.port}`).join(','),
    members,
    dataDir: config.dataDir,
    listenPeer: parseHostPort(config.listen, 'listen'),
    tickMs: config.tickMs ?? d.tickMs,
    electionTicks: config.electionTicks ?? d.electionTicks,
    requestTimeoutMs: config.requestTimeoutMs ?? d.requestTimeoutMs,
    snapshotPolicy:
      config.snapshotEntries === undefined ? {} : { entriesPerSnapshot: config.snapshotEntries },
    snapshotKeepEntries: config.snapshotKeepEntries ?? d.snapshotKeepEntries,
    sessionsMax: config.sessionsMax ?? d.sessionsMax,
    logger: config.logger ?? d.logger,
    onFatal: config.onFatal ?? d.onFatal,
  };
}
