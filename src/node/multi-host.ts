/**
 * The multi-raft host: one process hosting many raft groups, each a replica
 * ({@link GroupHost}: its own core, log storage, state machine and Ready loop), sharing what a
 * process has once:
 *
 * - **one transport** ({@link TcpTransport}, one connection per peer host and direction): an
 *   inbound message goes to the replica of its `groupId`, and one for a group this host does
 *   not run is dropped and counted (`droppedUnknownGroup`), never fatal. Each group's Ready
 *   loop sends through the shared transport, which writes everything queued for a peer in one
 *   event-loop turn as one write: the messages of every group that ran a pass in that turn.
 *   Heartbeats and their responses are coalesced further: those of every group to one peer
 *   in one turn go as one frame, expanded on receipt (coalesced-heartbeats.ts).
 * - **one tick timer**, prompting every *active* group to catch up on its ticks (each group's
 *   clock counts ticks by the monotonic clock, see ticker.ts). An idle group quiesces: it
 *   leaves the active set and costs nothing per tick until something wakes it; hosts judge each
 *   other alive by a node-level beat instead of per-group heartbeats (host-quiescence.ts,
 *   group-host.ts).
 * - **one data directory lock** and **one log** (the shared WAL, src/storage/shared-wal.ts,
 *   in `<dataDir>/wal/`): every group's records go into it, and the records of every group
 *   with something to persist when the log is free go out in one write and one fdatasync
 *   (group commit across groups). Each group's other files (member files, snapshot files,
 *   its state machine's own) stay in `<dataDir>/groups/<groupId>/` (group-dirs.ts), opened by
 *   startup.ts like a single-group node's data directory. Every few ticks the groups whose
 *   entries alone keep the log's oldest segments alive are asked to snapshot and compact.
 *
 * A replica is named `(groupId, replicaId)`: the replica id is its host's id (a group's
 * members are hosts), and its log lines start with `group <g> replica <r>:`.
 *
 * A group's fatal error (its `apply` threw) stops that group only: it is detached from the
 * transport and the timer, its waiting requests fail with `FATAL`, and the host's `onFatal`
 * is told which group failed. A failure of the shared log (a write or an fdatasync) fails
 * every group: after a failed fdatasync no group's unsynced records can be trusted.
 */
import { mkdir, stat } from 'node:fs/promises';
import { join } from 'node:path';
import type { Message } from '../raft/index.js';
import { SharedWal, type SharedWalOptions, type SharedWalStats } from '../storage/index.js';
import { type PeerAddress, TcpTransport, type TransportStats } from '../transport/index.js';
import {
  expandHeartbeats,
  HEARTBEATS_TAG,
  HeartbeatCoalescer,
  hostFrameTag,
} from './coalesced-heartbeats.js';
import { acquireLock, type DataDirLock } from './data-dir-lock.js';
import { FlotillaError } from './errors.js';
import {
  clearInterruptedRemovals,
  groupDirectory,
  isGroupId,
  removeGroupDirectory,
  storedGroups,
} from './group-dirs.js';
import { GroupHost } from './group-host.js';
import type { SharedIo } from './host.js';
import { HostQuiescence } from './host-quiescence.js';
import { MachineDriver, type UnknownStateMachine } from './machine-driver.js';
import type { MemberAddress } from './member-table.js';
import type { PeerDirectory } from './membership.js';
import { DEFAULT_RAFT_NODE_OPTIONS, type NodeLogger, type RaftNodeOptions } from './options.js';
import { recoverMember } from './startup.js';
import { TickTimer } from './ticker.js';
import type { TunedOptions } from './tuning.js';

/** Messages queued per peer host: one turn may carry a heartbeat of every group. */
const HOST_SEND_QUEUE_MESSAGES_MAX = 1 << 18;

/** The runtime options every group of a host shares (a group's own come from {@link MultiHost.openGroup}). */
export type GroupDefaults = TunedOptions;

/** Options of {@link MultiHost.start}. */
export interface MultiHostOptions {
  /** This host's id: the replica id of every replica it runs. */
  readonly id: number;
  readonly dataDir: string;
  /** Every host of the cluster by id (this one included), where it listens for peers. */
  readonly hosts: ReadonlyMap<number, MemberAddress>;
  /** The cluster's id (peers presenting another one are refused). */
  readonly clusterId: number;
  readonly groupDefaults: GroupDefaults;
  readonly logger: NodeLogger;
  /** Called when a group stops on a fatal error (the other groups run on). */
  readonly onFatal: (error: unknown, groupId: number) => void;
  /** Whether idle groups quiesce (stop ticking and heartbeating); default true. */
  readonly quiesce?: boolean;
  /** The shared log's settings (tests make its segments small); defaults otherwise. */
  readonly log?: Partial<Pick<SharedWalOptions, 'segmentSizeBytes' | 'preallocate'>>;
}

/** Counters of a multi-raft host. */
export interface MultiHostStats {
  /** Groups open (running) on this host. */
  readonly groups: number;
  /** Open groups that tick (not quiesced). */
  readonly activeGroups: number;
  /** Open groups that are quiesced: they tick nothing and send nothing until woken. */
  readonly quiescedGroups: number;
  /** Messages received for a group this host does not run (dropped). */
  readonly droppedUnknownGroup: number;
  /** Messages received and handed to a group. */
  readonly messagesRouted: number;
  /** The shared transport's counters. */
  readonly transport: TransportStats;
  /** The shared log's counters: every group's records, written together (group commit). */
  readonly log: SharedWalStats;
}

/** The shared log's directory under a host's data directory. */
export const LOG_DIRECTORY = 'wal';

/** Ticks between two checks of which groups keep the shared log's old segments alive. */
const PIN_CHECK_TICKS = 20;

/**
 * Segments the shared log may hold before the groups keeping the oldest alive are asked to
 * snapshot: the older ones are slack for followers a little behind, which a forced
 * compaction would send a snapshot instead of entries.
 */
export const LOG_SEGMENTS_KEPT = 4;

/** Many raft groups in one process, sharing one transport, one timer and one data directory lock. */
export class MultiHost {
  /** Open groups, by id: where inbound messages and ticks go. */
  private readonly routes = new Map<number, GroupHost>();
  /** Every group opened and not yet closed, by id (a failed group stays until it is closed). */
  private readonly opened = new Map<number, Promise<GroupHost>>();
  private readonly timer = new TickTimer();
  /** The active set, liveness and node-level beats. */
  private readonly quiescence: HostQuiescence;
  /** What groups send through: heartbeats batched per peer host and turn. */
  private readonly sender: HeartbeatCoalescer;
  private droppedUnknownGroup = 0;
  private messagesRouted = 0;
  private ticks = 0;
  private stopping: Promise<void> | undefined;

  private constructor(
    readonly options: MultiHostOptions,
    private readonly transport: TcpTransport,
    private readonly lock: DataDirLock,
    private readonly log: SharedWal,
  ) {
    const { tickMs, electionTicks } = options.groupDefaults;
    this.sender = new HeartbeatCoalescer(transport);
    this.quiescence = new HostQuiescence({
      selfId: options.id,
      peers: transport.peers(),
      enabled: options.quiesce ?? true,
      timeoutMs: tickMs * electionTicks,
      transport,
      group: (groupId) => this.routes.get(groupId),
      logger: options.logger,
    });
  }

  /** Locks the data directory, starts the transport and the timer. No group is open yet. */
  static async start(options: MultiHostOptions): Promise<MultiHost> {
    await mkdir(options.dataDir, { recursive: true });
    const lock = await acquireLock(options.dataDir);
    let log: SharedWal | undefined;
    try {
      await clearInterruptedRemovals(options.dataDir);
      log = await openLog(options);
      const self = options.hosts.get(options.id);
      if (self === undefined) throw invalid(`hosts: no address for this host's id ${options.id}`);
      let host: MultiHost | undefined;
      const peers = new Map<number, PeerAddress>();
      for (const [id, m] of options.hosts)
        if (id !== options.id) peers.set(id, { host: m.host, port: m.port });
      const { logger } = options;
      const transport = new TcpTransport({
        nodeId: options.id,
        clusterId: options.clusterId,
        listen: { host: self.host, port: self.port },
        peers,
        sendQueueMessagesMax: HOST_SEND_QUEUE_MESSAGES_MAX,
        onMessage: (m) => host?.route(m),
        onHostMessage: (from, value) => host?.onHostFrame(from, value),
        onUnreachable: (peer) => host?.unreachable(peer),
        onSnapshotStatus: (peer, ok, groupId) => host?.routes.get(groupId)?.reportSnapshot(peer, ok),
        openSnapshotSink: (_from, m) => host?.routes.get(m.groupId)?.snapshotSink(m),
        onError: (error) => logger.warn(`transport: ${error.message}`),
        logger: { warn: (m) => logger.warn(m), error: (m) => logger.error(m) },
      });
      host = new MultiHost(options, transport, lock, log);
      await transport.start();
      const started = host;
      started.timer.start(options.groupDefaults.tickMs, () => started.tick());
      logger.info(
        `host ${options.id} started: ${(await storedGroups(options.dataDir)).length} groups on disk, ` +
          `shared log recovered from ${log.recovery.segments} segment(s)`,
      );
      return started;
    } catch (error) {
      await log?.close().catch(() => {});
      await lock.release();
      throw error;
    }
  }

  /**
   * Opens group `groupId` with `stateMachine`: recovers it from its directory, or, when it
   * has none, founds it with `members` (host ids, this one among them; the same on every
   * member) or, with `'join'`, starts it with an empty log for its leader to fill (a host the
   * running group added as a member: no bootstrap, which would give this replica a first
   * entry of its own). Throws `INVALID_CONFIG` for a bad id or members, a group already open,
   * or a directory of another member or cluster; `STOPPED` once the host is stopping.
   */
  async openGroup(
    groupId: number,
    stateMachine: UnknownStateMachine,
    members: readonly number[] | 'join',
  ): Promise<GroupHost> {
    if (this.stopping !== undefined) throw new FlotillaError('STOPPED', 'host is stopping');
    if (!isGroupId(groupId)) throw invalid(`group id: expected an integer in [1, 2^32 - 1], got ${groupId}`);
    if (this.opened.has(groupId))
      throw invalid(`group ${groupId} is already open on host ${this.options.id}`);
    const options = this.groupOptions(groupId, members);
    const opening = this.launchGroup(options, stateMachine);
    this.opened.set(groupId, opening);
    try {
      return await opening;
    } catch (error) {
      this.opened.delete(groupId);
      throw error;
    }
  }

  /** The open group `groupId`, if any (a group that stopped on a fatal error is not open). */
  group(groupId: number): GroupHost | undefined {
    return this.routes.get(groupId);
  }

  /** The ids of the open groups, ascending. */
  groupIds(): number[] {
    return [...this.routes.keys()].sort((a, b) => a - b);
  }

  /** Whether group `groupId` is opened or opening (closing it makes room to open it again). */
  isOpened(groupId: number): boolean {
    return this.opened.has(groupId);
  }

  /** The ids of the groups with a directory on this host, open or not. */
  storedGroups(): Promise<number[]> {
    return storedGroups(this.options.dataDir);
  }

  /**
   * Deletes group `groupId`'s files, which must not be open here (close it first). Throws
   * `INVALID_CONFIG` when it is open.
   */
  async removeGroupData(groupId: number): Promise<void> {
    if (!isGroupId(groupId)) throw invalid(`group id: expected an integer in [1, 2^32 - 1], got ${groupId}`);
    if (this.opened.has(groupId)) throw invalid(`group ${groupId} is open on host ${this.options.id}`);
    // The directory first: a crash before the log's drop record leaves records of a group with
    // no directory, which the next start drops (see `openLog`).
    await removeGroupDirectory(this.options.dataDir, groupId);
    await this.log.dropGroup(groupId);
    this.options.logger.info(`group ${groupId} replica ${this.options.id}: data deleted`);
  }

  /** The host's counters. */
  stats(): MultiHostStats {
    return {
      groups: this.routes.size,
      activeGroups: this.quiescence.activeCount,
      quiescedGroups: this.quiescence.quiescedCount,
      droppedUnknownGroup: this.droppedUnknownGroup,
      messagesRouted: this.messagesRouted,
      transport: this.transport.stats(),
      log: { ...this.log.stats },
    };
  }

  /**
   * Stops every group (their waiting requests fail with `STOPPED`), then the transport, and
   * releases the data directory lock.
   */
  stop(): Promise<void> {
    this.stopping ??= this.stopAll();
    return this.stopping;
  }

  private async stopAll(): Promise<void> {
    this.timer.stop();
    const groups = await Promise.allSettled([...this.opened.values()]);
    await Promise.all(groups.map((g) => (g.status === 'fulfilled' ? g.value.stop() : undefined)));
    await this.transport.stop();
    await this.log.close().catch(() => {});
    await this.lock.release();
    this.options.logger.info(`host ${this.options.id} stopped`);
  }

  /** The runtime options of group `groupId`, bootstrapped with `members` when it is new. */
  private groupOptions(groupId: number, founding: readonly number[] | 'join'): RaftNodeOptions {
    const { id, hosts, clusterId, dataDir, groupDefaults, logger } = this.options;
    // A joining replica learns the group's members from its leader's snapshot; until then its
    // table lists every host (addresses by host id, which is all a table is for here).
    const members = founding === 'join' ? [...hosts.keys()] : founding;
    if (members.length === 0 || !members.includes(id))
      throw invalid(`group ${groupId}: members [${members.join(',')}] must include this host's id ${id}`);
    const table = new Map<number, MemberAddress>();
    for (const member of [...new Set(members)].sort((a, b) => a - b)) {
      const address = hosts.get(member);
      if (address === undefined)
        throw invalid(`group ${groupId}: member ${member} is not a host of the cluster`);
      table.set(member, { name: String(member), host: address.host, port: address.port });
    }
    const prefix = `group ${groupId} replica ${id}: `;
    const self = table.get(id)!;
    return {
      ...DEFAULT_RAFT_NODE_OPTIONS,
      ...groupDefaults,
      name: String(id),
      id,
      groupId,
      clusterId,
      initialCluster: [...table].map(([m, a]) => `${m}=${a.host}:${a.port}`).join(','),
      members: table,
      initialClusterState: founding === 'join' ? 'existing' : 'new',
      dataDir: groupDirectory(dataDir, groupId),
      listenPeer: { host: self.host, port: self.port },
      logger: {
        info: (m) => logger.info(prefix + m),
        warn: (m) => logger.warn(prefix + m),
        error: (m) => logger.error(prefix + m),
      },
      onFatal: (error) => this.options.onFatal(error, groupId),
    };
  }

  /** Recovers (or bootstraps) a group and starts delivering messages and ticks to it. */
  private async launchGroup(options: RaftNodeOptions, stateMachine: UnknownStateMachine): Promise<GroupHost> {
    await mkdir(options.dataDir, { recursive: true });
    const { groupId } = options;
    try {
      await refuseOwnLog(options.dataDir, groupId);
      const recovered = await recoverMember(options, new MachineDriver(stateMachine), {
        openStorage: () => this.log.openGroup(groupId, join(options.dataDir, 'raft', 'snap')),
        discover: false,
      });
      const group = GroupHost.open(
        {
          recovered,
          transport: this.sender,
          peers: this.peerDirectory(),
          shared: this.sharedIo(groupId),
        },
        this.quiescence.coordinator,
      );
      if (this.stopping !== undefined) {
        await group.stop();
        throw new FlotillaError('STOPPED', 'host is stopping');
      }
      this.routes.set(groupId, group);
      this.quiescence.add(group);
      options.logger.info(`opened: applied ${recovered.machine.appliedIndex}`);
      group.wake();
      return group;
    } catch (error) {
      await stateMachine.close().catch(() => {});
      throw error;
    }
  }

  /** What a group holds of the process: its route and its place in the timer. */
  private sharedIo(groupId: number): SharedIo {
    let released = false;
    const forget = (): void => {
      const group = this.routes.get(groupId);
      if (group !== undefined) this.quiescence.remove(group);
      this.routes.delete(groupId);
    };
    return {
      stopTicks: forget,
      detach: async () => forget(),
      release: async () => {
        if (released) return;
        released = true;
        this.opened.delete(groupId);
      },
      get released() {
        return released;
      },
    };
  }

  /**
   * The transport's peers as seen by a group's membership: hosts, shared by every group. A
   * group learns a host's address (add, update) but never removes a host another group may
   * still replicate with.
   */
  private peerDirectory(): PeerDirectory {
    const transport = this.transport;
    return {
      hasPeer: (id) => transport.hasPeer(id),
      addPeer: (id, address) => {
        if (id !== this.options.id && !transport.hasPeer(id)) {
          transport.addPeer(id, address);
          this.quiescence.watch(id);
        }
      },
      updatePeer: (id, address) => transport.updatePeer(id, address),
      removePeer: () => {},
    };
  }

  private route(message: Message): void {
    this.quiescence.heard(message.from);
    const group = this.routes.get(message.groupId);
    if (group === undefined) {
      this.droppedUnknownGroup++;
      return;
    }
    this.messagesRouted++;
    group.onMessage(message);
  }

  /** A HOST frame from host `from`: coalesced heartbeats (expanded and routed), or a beat. */
  private onHostFrame(from: number, value: unknown): void {
    if (hostFrameTag(value) !== HEARTBEATS_TAG) {
      this.quiescence.onHostMessage(from, value);
      return;
    }
    for (const m of expandHeartbeats(value, from, this.options.id)) this.route(m);
  }

  /** Told to the groups that tick: a quiesced group has nothing in flight to a peer. */
  private unreachable(peer: number): void {
    for (const group of this.quiescence.activeGroups()) group.reportUnreachable(peer);
  }

  private tick(): void {
    this.quiescence.tick();
    if (++this.ticks % PIN_CHECK_TICKS === 0) this.releasePinnedLog();
  }

  /**
   * Once the shared log holds more than {@link LOG_SEGMENTS_KEPT} segments, asks the groups
   * whose entries alone keep its oldest segments alive to snapshot and compact (snapshots.ts
   * `releaseLog`), so the log's size follows what groups have not compacted rather than its
   * oldest idle group.
   */
  private releasePinnedLog(): void {
    if (this.log.segmentPaths.length <= LOG_SEGMENTS_KEPT) return;
    for (const groupId of this.log.pinningGroups()) this.routes.get(groupId)?.releaseLog();
  }
}

/**
 * Opens the host's shared log and drops the records of groups that have no directory (their
 * deletion was interrupted between removing the directory and recording the drop).
 */
async function openLog(options: MultiHostOptions): Promise<SharedWal> {
  const log = await SharedWal.open(join(options.dataDir, LOG_DIRECTORY), options.log ?? {});
  try {
    const stored = new Set(await storedGroups(options.dataDir));
    for (const groupId of log.groups()) if (!stored.has(groupId)) await log.dropGroup(groupId);
    return log;
  } catch (error) {
    await log.close().catch(() => {});
    throw error;
  }
}

/**
 * Refuses a group directory with a WAL of its own (`raft/wal`, the layout before the shared
 * log): its entries are not in the shared log, and opening it would lose them.
 */
async function refuseOwnLog(groupDir: string, groupId: number): Promise<void> {
  const own = join(groupDir, 'raft', 'wal');
  const found = await stat(own).then(
    () => true,
    (error: NodeJS.ErrnoException) => {
      if (error.code === 'ENOENT') return false;
      throw error;
    },
  );
  if (found)
    throw invalid(
      `group ${groupId}: ${own} is a log of the group's own, from before the host's shared log; ` +
        'this version cannot open it',
    );
}

function invalid(message: string): FlotillaError {
  return new FlotillaError('INVALID_CONFIG', message);
}
