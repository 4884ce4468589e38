/**
 * The library's entry points: `createNode` runs a user's state machine (state-machine.ts) on
 * the same runtime as the KV database — a host with one replica (library-host.ts) — and
 * returns a typed handle, a {@link FlotillaNode}; `startNode` does the same from the
 * runtime's full options (member names, cluster ids, etcd-style bootstrap), and
 * `createNode` is built on it.
 */

import { FlotillaError, RemovedError } from './errors.js';
import { FlotillaNode } from './flotilla-node.js';
import { type ClusterMember, clusterIdFrom, parseHostPort } from './identity.js';
import { LibraryHost } from './library-host.js';
import type { MemberAddress } from './member-table.js';
import { DEFAULT_NODE_OPTIONS, type NodeInit, type NodeLogger } from './options.js';
import type { StateMachine } from './state-machine.js';
import { tunedOptions } from './tuning.js';

/**
 * Options of {@link createNode}: `id`, `dataDir`, `listen`, `stateMachine`, and exactly one
 * of `peers` (a founding member) and `join` (a member added to a running cluster) are
 * required.
 */
export interface NodeConfig<C, R, Q, A> {
  /** This member's id (a positive integer, unique in the cluster, never reused after a removal). */
  readonly id: number;
  /** Where the node keeps its log, snapshots and member files (created if missing). */
  readonly dataDir: string;
  /** Where to listen for peers, `host:port`: the address the other members know it by. */
  readonly listen: string;
  /**
   * A founding member: every initial member's id and peer address `host:port`, this one
   * included (the same on every founder). A founder restarts with the same `peers`.
   */
  readonly peers?: Readonly<Record<number, string>>;
  /**
   * A member added at runtime (`addLearner(id, listen)` on the leader first): peer addresses
   * `host:port` of running members to learn the cluster from. A fresh data directory asks
   * them for the cluster's id and members, then waits for a snapshot from the leader; a
   * joined member restarts with `join` too (its data directory then knows the cluster).
   */
  readonly join?: readonly string[];
  /** With `join`: how long to keep asking the members before giving up, in milliseconds. Default 30 000. */
  readonly joinTimeoutMs?: number;
  /** The state machine this node replicates. */
  readonly stateMachine: StateMachine<C, R, Q, A>;
  /** Milliseconds per raft tick. Default 100. */
  readonly tickMs?: number;
  /** Ticks without a leader before an election (randomized up to twice this). Default 10. */
  readonly electionTicks?: number;
  /** Default timeout of `propose`, `read`, membership changes and transfers, in milliseconds. Default 5000. */
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

/**
 * Starts a member: opens (or bootstraps, or joins with) `dataDir`, recovers the state machine
 * (an in-memory one from the latest snapshot plus the log), connects to the peers. Throws a
 * {@link FlotillaError} `INVALID_CONFIG` for bad options or a data directory of another
 * member, and {@link RemovedError} when the data directory is of a member removed from its
 * group.
 */
export async function createNode<C, R, Q, A>(
  config: NodeConfig<C, R, Q, A>,
): Promise<FlotillaNode<C, R, Q, A>> {
  return startNode(hostInit(config), config.stateMachine);
}

/**
 * Starts a member from the runtime's full options, the lower-level form of
 * {@link createNode}: members have names of their own (ids need not be chosen by hand), the
 * cluster id may be given, and a member joins a running cluster with
 * `initialClusterState: 'existing'` (a fresh data directory asks the members in `members`
 * for the cluster's id, its own id and the member table). With `clientUrls`, the member
 * publishes where it serves clients after every start ({@link MemberInfo.clientUrls}).
 * Throws like {@link createNode}.
 */
export async function startNode<C, R, Q, A>(
  options: NodeInit,
  stateMachine: StateMachine<C, R, Q, A>,
): Promise<FlotillaNode<C, R, Q, A>> {
  const host = await LibraryHost.start(options, stateMachine);
  if (host.removed) {
    await host.stop();
    throw new RemovedError('REMOVED', `member ${host.options.id} was removed from its group`);
  }
  return new FlotillaNode<C, R, Q, A>(host);
}

/** The runtime options of a {@link NodeConfig}. */
function hostInit(config: NodeConfig<unknown, unknown, unknown, unknown>): NodeInit {
  const { id } = config;
  if (!Number.isSafeInteger(id) || id < 1) invalid(`id: expected a positive integer, got ${id}`);
  if ((config.peers === undefined) === (config.join === undefined))
    invalid('give exactly one of peers and join');
  const d = DEFAULT_NODE_OPTIONS;
  const cluster = config.peers === undefined ? joiningMember(config) : foundingMember(id, config.peers);
  return {
    ...cluster,
    name: String(id),
    id,
    dataDir: config.dataDir,
    listenPeer: parseHostPort(config.listen, 'listen'),
    ...tunedOptions(config),
    logger: config.logger ?? d.logger,
    onFatal: config.onFatal ?? d.onFatal,
  };
}

/** What differs between a founding and a joining member's runtime options. */
type ClusterInit = Pick<
  NodeInit,
  'clusterId' | 'initialCluster' | 'members' | 'initialClusterState' | 'joinTimeoutMs'
>;

/** A founder's: the initial members, and the cluster id derived from them. */
function foundingMember(id: number, peers: Readonly<Record<number, string>>): ClusterInit {
  const cluster: ClusterMember[] = [];
  for (const [key, address] of Object.entries(peers)) {
    const peerId = Number(key);
    if (!Number.isSafeInteger(peerId) || peerId < 1) invalid(`peers: bad id '${key}'`);
    cluster.push({ name: String(peerId), id: peerId, ...parseHostPort(address, `peers[${key}]`) });
  }
  if (!cluster.some((m) => m.id === id)) invalid(`peers: no address for this node's id ${id}`);
  return {
    clusterId: clusterIdFrom(cluster),
    initialCluster: cluster.map((m) => `${m.name}=${m.host}:${m.port}`).join(','),
    members: new Map(cluster.map((m) => [m.id, { name: m.name, host: m.host, port: m.port }])),
    initialClusterState: 'new',
  };
}

/**
 * A joining member's: the members to ask, unnamed and under placeholder ids (only their
 * addresses are used: the cluster's answer replaces them, see join.ts).
 */
function joiningMember(config: NodeConfig<unknown, unknown, unknown, unknown>): ClusterInit {
  const join = config.join ?? [];
  if (join.length === 0) invalid('join: no member address given');
  const asked = join.map((address, i) => parseHostPort(address, `join[${i}]`));
  return {
    clusterId: 0,
    initialCluster: join.join(','),
    members: new Map<number, MemberAddress>(asked.map((a, i) => [-(i + 1), { name: '', ...a }])),
    initialClusterState: 'existing',
    joinTimeoutMs: config.joinTimeoutMs ?? DEFAULT_NODE_OPTIONS.joinTimeoutMs,
  };
}

function invalid(message: string): never {
  throw new FlotillaError('INVALID_CONFIG', message);
}
