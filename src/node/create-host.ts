/**
 * The library's multi-raft entry point: `createHost` starts one host per process that runs
 * many raft groups, each replicating its own state machine, over one transport and one tick
 * timer (multi-host.ts). Each open group is a {@link FlotillaNode}, the same handle
 * `createNode` returns.
 */

import type { NodeConfig } from './create-node.js';
import { FlotillaError } from './errors.js';
import { FlotillaNode } from './flotilla-node.js';
import { groupDirectory, isGroupId } from './group-dirs.js';
import { type ClusterMember, clusterIdFrom, parseHostPort } from './identity.js';
import type { MemberAddress } from './member-table.js';
import { MultiHost } from './multi-host.js';
import { DEFAULT_RAFT_NODE_OPTIONS } from './options.js';
import type { StateMachine } from './state-machine.js';
import { tunedOptions } from './tuning.js';

/**
 * Options of {@link createHost}: `id`, `dataDir`, `listen` and `peers` are required. The
 * tuning options are {@link NodeConfig}'s, for every group of the host; log lines of a group
 * start with `group <groupId> replica <id>:`.
 */
export interface HostConfig
  extends Pick<
    NodeConfig<unknown, unknown, unknown, unknown>,
    | 'tickMs'
    | 'electionTicks'
    | 'requestTimeoutMs'
    | 'snapshotEntries'
    | 'snapshotKeepEntries'
    | 'sessionsMax'
    | 'logger'
  > {
  /** This host's id (a positive integer, unique among the hosts): its replicas' id in every group. */
  readonly id: number;
  /** Where the host keeps every group's files, one directory per group (created if missing). */
  readonly dataDir: string;
  /** Where to listen for peer hosts, `host:port`: this host's address in `peers`. */
  readonly listen: string;
  /** Every host's id and peer address `host:port`, this one included (the same on every host). */
  readonly peers: Readonly<Record<number, string>>;
  /** Called once for each group that stops on a fatal error (the host and its other groups run on). */
  readonly onFatal?: (error: unknown, groupId: number) => void;
  /**
   * Whether idle groups quiesce (default true): a group with nothing in flight and every
   * member caught up stops ticking and heartbeating until a request or a message wakes it,
   * and hosts check each other's liveness with one node-level heartbeat per pair of hosts
   * instead (docs/runtime-design.md, "Quiescence and node liveness"). `false` keeps every
   * open group ticking. Set it the same on every host: a host that does not quiesce keeps
   * timing out the leaders that do.
   */
  readonly quiesce?: boolean;
  /**
   * Size at which the host's one log (every group's records) rolls over to a new segment
   * file, in bytes; default 64 MiB. A segment is deleted once every group has compacted its
   * entries in it; groups whose entries alone keep old segments are asked to snapshot.
   */
  readonly logSegmentBytes?: number;
}

/** Options of {@link FlotillaHost.openGroup}. */
export interface GroupConfig<C, R, Q, A> {
  /** The state machine this group replicates (one instance per group). */
  readonly stateMachine: StateMachine<C, R, Q, A>;
  /**
   * The group's founding members: host ids, this host's among them, the same on every
   * member. Used when the group has no data on this host yet; a group reopened from its
   * directory keeps the membership it recorded. Give either `members` or `join`.
   */
  readonly members?: readonly number[];
  /**
   * Joins a running group instead of founding it: when this host has no data for the group,
   * the replica starts with an empty log, and the group's leader, which added this host
   * (`addLearner` or `addVoter` with this host's id and peer address), sends it the state
   * (a snapshot) and the log. A group with data here is reopened as always. Opening a host
   * added to a running group with `members` instead would found a second, different first
   * entry of the group on it.
   */
  readonly join?: boolean;
}

/** Counters of a {@link FlotillaHost}. */
export interface HostStats {
  /** Groups open on this host. */
  readonly groups: number;
  /** Open groups that tick: not quiesced (all of them with `quiesce: false`). */
  readonly activeGroups: number;
  /** Open groups that are quiesced: they cost no tick and send nothing until woken. */
  readonly quiescedGroups: number;
  /** Messages received for a group not open here (dropped; raft resends what matters). */
  readonly droppedUnknownGroup: number;
  /** Messages received and handed to their group. */
  readonly messagesRouted: number;
  /** The host's transport, per peer host id: what this host sent it and received from it. */
  readonly peers: ReadonlyMap<number, HostPeerStats>;
  /** The host's one log, which every group writes (group commit across groups). */
  readonly log: HostLogStats;
}

/**
 * The shared log of a host: the records of every group with something to persist when the
 * log is free go out together, in one write and (when one of them must be durable) one
 * fdatasync.
 */
export interface HostLogStats {
  /** Writes to the log file, each carrying the records of one or more groups. */
  readonly writes: number;
  /** fdatasyncs of the log. */
  readonly syncs: number;
  /** Records written (one per group per persisted Ready, snapshot or membership record). */
  readonly records: number;
  /** The most groups whose records one fdatasync made durable. */
  readonly maxGroupsPerSync: number;
  /** Milliseconds spent in the log's writes. */
  readonly writeMs: number;
  /** Milliseconds spent in the log's fdatasyncs. */
  readonly syncMs: number;
}

/** What a host's transport exchanged with one peer host (bytes include frame headers). */
export interface HostPeerStats {
  readonly messagesSent: number;
  readonly messagesReceived: number;
  /** Messages to the peer dropped: its connection down, its queue full. */
  readonly messagesDropped: number;
  readonly bytesSent: number;
  readonly bytesReceived: number;
  /**
   * Socket writes to the peer: everything queued for it in one event-loop turn (the messages
   * of every group that ran a Ready pass in that turn) goes in one write.
   */
  readonly writes: number;
  /** Whether the connection to the peer is established. */
  readonly connected: boolean;
}

/**
 * A running multi-raft host: many raft groups in one process over one peer connection per
 * host pair and one tick timer; made by {@link createHost}. Each group is opened with
 * {@link FlotillaHost.openGroup} on each of its members and used through its
 * {@link FlotillaNode}.
 */
export class FlotillaHost {
  /** This host's id. */
  readonly id: number;
  readonly #host: MultiHost;
  readonly #nodes = new Map<number, FlotillaNode<unknown, unknown, unknown, unknown>>();

  /** @internal Made by `createHost`. */
  constructor(host: MultiHost) {
    this.#host = host;
    this.id = host.options.id;
  }

  /**
   * Opens group `groupId` (an integer in [1, 2^32 - 1]) on this host and resolves with its
   * handle: recovers it from this host's data directory, or, when the host has no data for
   * it, founds it with `members` or joins it (`join: true`, a host the running group added).
   * Open it on every member; until a member has opened it, messages
   * to that member are dropped (and counted) and raft retries. Rejects with
   * {@link FlotillaError} `INVALID_CONFIG` for a bad id or members, a group already open here
   * or a directory of another host or cluster, `STOPPED` once the host is closing. Closing the
   * handle closes the group here (its data stays; it may be opened again).
   */
  async openGroup<C, R, Q, A>(
    groupId: number,
    config: GroupConfig<C, R, Q, A>,
  ): Promise<FlotillaNode<C, R, Q, A>> {
    const machine = config.stateMachine as StateMachine<unknown, unknown, unknown, unknown>;
    const { members, join } = config;
    if ((join === true) === (members !== undefined))
      throw new FlotillaError('INVALID_CONFIG', `group ${groupId}: give either members or join: true`);
    const group = await this.#host.openGroup(groupId, machine, join === true ? 'join' : members!);
    const node = new FlotillaNode<C, R, Q, A>(group);
    this.#nodes.set(groupId, node as FlotillaNode<unknown, unknown, unknown, unknown>);
    return node;
  }

  /** The handle of open group `groupId`, if it is open here. */
  group(groupId: number): FlotillaNode<unknown, unknown, unknown, unknown> | undefined {
    const node = this.#nodes.get(groupId);
    return node !== undefined && this.#host.group(groupId) !== undefined ? node : undefined;
  }

  /**
   * The directory of group `groupId`'s files on this host (it exists once the group was
   * opened). An on-disk state machine may keep its own files in a subdirectory of its own
   * there (not `raft/` nor `snap-received/`): they are deleted with the group.
   */
  groupDirectory(groupId: number): string {
    if (!isGroupId(groupId)) {
      throw new FlotillaError(
        'INVALID_CONFIG',
        `group id: expected an integer in [1, 2^32 - 1], got ${groupId}`,
      );
    }
    return groupDirectory(this.#host.options.dataDir, groupId);
  }

  /** The ids of the groups open here, ascending. */
  groups(): number[] {
    return this.#host.groupIds();
  }

  /** The ids of the groups with data on this host, open or not (to reopen them after a restart). */
  storedGroups(): Promise<number[]> {
    return this.#host.storedGroups();
  }

  /**
   * Closes group `groupId` here if it is open (its waiting requests fail with `StoppedError`)
   * and deletes its data from this host. A group is destroyed by destroying it on every
   * member; its id must not be used for another group while any member still runs it.
   */
  async destroyGroup(groupId: number): Promise<void> {
    const node = this.#nodes.get(groupId);
    if (node !== undefined) {
      this.#nodes.delete(groupId);
      await node.close();
    }
    if (this.#host.isOpened(groupId)) {
      throw new FlotillaError('INVALID_CONFIG', `group ${groupId} is still opening on host ${this.id}`);
    }
    await this.#host.removeGroupData(groupId);
  }

  /** The host's counters. */
  stats(): HostStats {
    const { groups, activeGroups, quiescedGroups, droppedUnknownGroup, messagesRouted, transport, log } =
      this.#host.stats();
    const peers = new Map<number, HostPeerStats>();
    for (const [id, p] of transport.peers) {
      const { messagesSent, messagesReceived, messagesDropped, bytesSent, bytesReceived, writes, connected } =
        p;
      peers.set(id, {
        messagesSent,
        messagesReceived,
        messagesDropped,
        bytesSent,
        bytesReceived,
        writes,
        connected,
      });
    }
    const { writes, syncs, records, maxGroupsPerSync, writeMs, syncMs } = log;
    return {
      groups,
      activeGroups,
      quiescedGroups,
      droppedUnknownGroup,
      messagesRouted,
      peers,
      log: { writes, syncs, records, maxGroupsPerSync, writeMs, syncMs },
    };
  }

  /** Closes every group (their data stays), the transport, and releases the data directory. */
  async close(): Promise<void> {
    const nodes = [...this.#nodes.values()];
    this.#nodes.clear();
    await Promise.all(nodes.map((node) => node.close().catch(() => {})));
    await this.#host.stop();
  }
}

/**
 * Starts a multi-raft host: locks `dataDir`, listens at `listen` and connects to the other
 * hosts of `peers`. No group is open yet: open each with {@link FlotillaHost.openGroup} (after
 * a restart, {@link FlotillaHost.storedGroups} lists those with data here). Throws
 * {@link FlotillaError} `INVALID_CONFIG` for bad options or a data directory in use.
 */
export async function createHost(config: HostConfig): Promise<FlotillaHost> {
  const { id } = config;
  if (!Number.isSafeInteger(id) || id < 1) invalid(`id: expected a positive integer, got ${id}`);
  const cluster: ClusterMember[] = [];
  for (const [key, address] of Object.entries(config.peers)) {
    const peerId = Number(key);
    if (!Number.isSafeInteger(peerId) || peerId < 1) invalid(`peers: bad id '${key}'`);
    cluster.push({ name: String(peerId), id: peerId, ...parseHostPort(address, `peers[${key}]`) });
  }
  const self = cluster.find((m) => m.id === id);
  if (self === undefined) invalid(`peers: no address for this host's id ${id}`);
  const listen = parseHostPort(config.listen, 'listen');
  const segmentBytes = config.logSegmentBytes;
  if (segmentBytes !== undefined && (!Number.isSafeInteger(segmentBytes) || segmentBytes < 4096))
    invalid(`logSegmentBytes: expected an integer of at least 4096, got ${segmentBytes}`);
  if (listen.port !== self.port)
    invalid(`listen: port ${listen.port} is not this host's in peers (${self.port})`);
  const d = DEFAULT_RAFT_NODE_OPTIONS;
  const hosts = new Map<number, MemberAddress>(
    cluster.map((m) => [m.id, { name: m.name, host: m.id === id ? listen.host : m.host, port: m.port }]),
  );
  const host = await MultiHost.start({
    id,
    dataDir: config.dataDir,
    hosts,
    clusterId: clusterIdFrom(cluster),
    groupDefaults: tunedOptions(config),
    logger: config.logger ?? d.logger,
    onFatal: config.onFatal ?? (() => {}),
    quiesce: config.quiesce ?? true,
    log: segmentBytes === undefined ? {} : { segmentSizeBytes: segmentBytes },
  });
  return new FlotillaHost(host);
}

function invalid(message: string): never {
  throw new FlotillaError('INVALID_CONFIG', message);
}
