/**
 * The host of one raft group: it drives a {@link RawNode} with real time, durable storage
 * ({@link FileStorage}), the TCP transport and a state machine behind the public interface
 * (state-machine.ts). `startNode` and `createNode` (library-host.ts) run a host with one
 * replica, for any state machine, the KV store included; later slices host many.
 *
 * One sequential loop handles each Ready in the order the core's contract requires (see
 * ready-loop.ts): send a leader's appends at once, persist with one fsync, send the rest,
 * apply, record read barriers and serve reads, advance.
 *
 * Client proposals and reads that arrive while a Ready is in flight are queued and go into
 * the core together before the next Ready, so one fsync covers all of them. Ticks come from
 * a timer but are counted by the monotonic clock: before any other input the runtime
 * delivers every tick that should have happened, so a process that was paused (SIGSTOP, a
 * long GC) learns at once that its election timeout or leader lease ran out.
 *
 * A storage failure is fatal: the loop stops before sending or applying anything that
 * depended on the failed write, every waiting request fails with `FATAL`, and `onFatal` is
 * called (the serve command exits).
 *
 * Process-wide I/O, here: startup.ts (opening and recovering the data directory), the tick
 * timer (ticker.ts), ready-loop.ts (persist and send, in order), lifecycle.ts (stop and fatal
 * failure), and the transport. The raft group's concerns are its {@link Replica}.
 *
 * A host started by {@link Host.launch} owns its transport, timer and data directory lock. A
 * group of a multi-raft host (multi-host.ts) is a host too, built on {@link HostParts} whose
 * {@link SharedIo} belongs to the process: stopping the group detaches it from them.
 */
import { mkdir } from 'node:fs/promises';
import { performance } from 'node:perf_hooks';
import {
  type ConfState,
  isRaftError,
  type Message,
  type RawNode,
  type Role,
  type SnapshotRequest,
} from '../raft/index.js';
import type { ReplicaStorage } from '../storage/index.js';
import { type SnapshotSink, TcpTransport } from '../transport/index.js';
import { type NodeCounters, newNodeCounters } from './counters.js';
import { acquireLock } from './data-dir-lock.js';
import { Lifecycle } from './lifecycle.js';
import { MachineDriver, type UnknownStateMachine } from './machine-driver.js';
import type { MemberAddress, MemberUpdate } from './member-table.js';
import type { MemberChange, PeerDirectory } from './membership.js';
import type { NodeStatus } from './node-status.js';
import { DEFAULT_RAFT_NODE_OPTIONS, type RaftNodeInit, type RaftNodeOptions } from './options.js';
import type { EnqueueOptions } from './proposals.js';
import { type ReadyHandler, ReadyLoop } from './ready-loop.js';
import { type ProposeOptions, type ReadConsistency, Replica } from './replica.js';
import { initialPeers, type RecoveredMember, recoverMember } from './startup.js';
import { TickTimer } from './ticker.js';
import { WriteTrace } from './write-trace.js';

/** What this node knows about its group, for observers. */
export type HostStatus = NodeStatus;

/** What a host is built from once its data directory is recovered. */
export interface HostParts {
  readonly recovered: RecoveredMember;
  /** Sends the group's messages (shared by every group of a multi-raft host). */
  readonly transport: Pick<TcpTransport, 'send' | 'sendSnapshot' | 'stats'>;
  /** The transport's peers as the group's membership changes may edit them. */
  readonly peers: PeerDirectory;
  readonly shared: SharedIo;
}

/**
 * What a host holds of the process's I/O: a single-group host owns its transport, timer and
 * data directory lock; a group of a multi-raft host only detaches itself from the process's.
 */
export interface SharedIo {
  /** Stops the ticks this host gets (its timer, or its place in the process's timer). */
  stopTicks(): void;
  /** Stops delivery of messages to this host (the transport it owns, or its route in a shared one). */
  detach(): Promise<void>;
  /** Releases what is left once the host's storage and state machine are closed (the lock it owns). */
  release(): Promise<void>;
  /** Whether {@link SharedIo.release} ran (nothing is left to close). */
  readonly released: boolean;
}

/** One raft group with its storage, transport and state machine. */
export class Host {
  readonly options: RaftNodeOptions;
  /** Counters for metrics. */
  readonly counters: NodeCounters = newNodeCounters();
  /**
   * Per-stage latencies of this node's writes: set `writeTrace.observe` to receive them
   * (the server exports them as a histogram; see write-trace.ts).
   */
  readonly writeTrace = new WriteTrace();

  // The group's storage, and the process-wide I/O it uses (owned, or shared by many groups).
  private readonly storage: ReplicaStorage;
  private readonly transport: HostParts['transport'];
  private readonly shared: SharedIo;
  private readonly spool: RecoveredMember['spool'];
  private readonly lifecycle: Lifecycle;
  private readonly loop: ReadyLoop;
  // The raft group: its core, its state machine and its replica concerns.
  protected readonly raw: RawNode;
  /** The configuration `status()` last reported, and what identified it (see `confState`). */
  private confCache: { config: unknown; removed: number; confState: ConfState } | undefined;
  private readonly machine: MachineDriver;
  protected readonly replica: Replica;

  protected constructor({ recovered, transport, peers, shared }: HostParts) {
    const { options, raw, storage, machine } = recovered;
    const { counters } = this;
    this.options = options;
    this.raw = raw;
    this.storage = storage;
    this.machine = machine;
    this.transport = transport;
    this.shared = shared;
    this.spool = recovered.spool;
    const lifecycle = new Lifecycle({
      stopTimer: () => shared.stopTicks(),
      failAll: (error) => this.replica.failAll(error),
      stopTransport: () => shared.detach(),
      close: () => this.close(),
      lockReleased: () => shared.released,
      logger: options.logger,
      onFatal: options.onFatal,
    });
    this.lifecycle = lifecycle;
    const wake = (): void => this.wake();
    const { members, spool, sessions } = recovered;
    const trace = this.writeTrace;
    const deps = {
      options,
      counters,
      trace,
      raw,
      storage,
      machine,
      peers,
      members,
      spool,
      sessions,
      lifecycle,
      wake,
      onQuiescedInput: () => this.onQuiescedInput(),
    };
    const replica = new Replica(deps);
    this.replica = replica;
    const handler: ReadyHandler = {
      prepare: () => replica.prepare(),
      snapshotSettled: () => replica.snapshotSettled(),
      install: (snapshot) => replica.install(snapshot),
      applyEntries: (entries) => replica.applyEntries(entries),
      released: (readStates) => replica.released(readStates),
      advanced: () => {
        replica.advanced();
        this.onAdvanced();
      },
    };
    this.loop = new ReadyLoop({
      raw,
      storage,
      transport,
      counters,
      trace,
      handler,
      sendSnapshot: (m) => this.sendSnapshot(m),
      stopped: () => lifecycle.stopped,
      fail: (error) => lifecycle.fail(error),
    });
  }

  /**
   * Opens (or bootstraps) the data directory, recovers storage and `stateMachine`, starts
   * the transport and the tick timer; `make` builds the host (a subclass) from its parts.
   * Throws `INVALID_CONFIG` when the data directory belongs to another member or cluster.
   */
  protected static async launch<H extends Host>(
    init: RaftNodeInit,
    stateMachine: UnknownStateMachine,
    make: (parts: HostParts) => H,
  ): Promise<H> {
    const given: RaftNodeOptions = { ...DEFAULT_RAFT_NODE_OPTIONS, ...init };
    await mkdir(given.dataDir, { recursive: true });
    const lock = await acquireLock(given.dataDir);
    try {
      const recovered = await recoverMember(given, new MachineDriver(stateMachine));
      const { options, raw, machine } = recovered;
      let node: H | undefined;
      const transport = new TcpTransport({
        nodeId: options.id,
        clusterId: options.clusterId,
        listen: options.listenPeer,
        peers: initialPeers(options.id, recovered.members, raw.confState()),
        onMessage: (m) => node?.onMessage(m),
        onUnreachable: (peer) => node?.reportUnreachable(peer),
        onSnapshotStatus: (peer, ok) => node?.reportSnapshot(peer, ok),
        onError: (error) => options.logger.warn(`transport: ${error.message}`),
        logger: { warn: (m) => options.logger.warn(m), error: (m) => options.logger.error(m) },
        clusterInfo: () => JSON.stringify(node?.clusterInfo() ?? {}),
        // An on-disk state machine's state arrives as a stream, written to disk before delivery.
        ...(machine.onDisk ? { openSnapshotSink: (_from, m) => node?.snapshotSink(m) } : {}),
      });
      const timer = new TickTimer();
      const shared: SharedIo = {
        stopTicks: () => timer.stop(),
        detach: () => transport.stop(),
        release: () => lock.release(),
        get released() {
          return lock.released;
        },
      };
      node = make({ recovered, transport, peers: transport, shared });
      await transport.start();
      const started = node;
      timer.start(options.tickMs, () => started.onTimer());
      options.logger.info(
        `node ${options.name} (${options.id}) started: applied ${machine.appliedIndex}, ` +
          `voters [${raw.confState().voters.join(',')}]`,
      );
      started.wake();
      if (options.clientUrls !== undefined) started.replica.publish(options.clientUrls);
      return started;
    } catch (error) {
      await stateMachine.close().catch(() => {});
      await lock.release();
      throw error;
    }
  }

  // ------------------------------------------------------------------ client API

  /**
   * Proposes a state machine command and resolves with its result once it has been applied
   * on this node. Rejects with a {@link FlotillaError}: `TOO_MANY_REQUESTS` (back-pressure),
   * `NO_LEADER` (no leader within the timeout; nothing was proposed), `TIMEOUT` (proposed,
   * outcome unknown), `PROPOSAL_DROPPED`, `STOPPED`, `FATAL`; or with the signal's reason.
   */
  proposeCommand(command: unknown, options: ProposeOptions = {}): Promise<unknown> {
    return this.replica.propose(command, options);
  }

  /**
   * Opens a client session and resolves with its id once applied here: commands proposed
   * with `{ session: { clientId: id, seq } }` (seq 1, 2, ...) are then applied at most once
   * however often they are retried (see sessions.ts). Rejects like {@link Host.proposeCommand}.
   */
  openSession(options: EnqueueOptions = {}): Promise<number> {
    return this.replica.openSession(options);
  }

  /**
   * Answers a query from the state machine. `linearizable` waits for a ReadIndex barrier
   * confirmed by a quorum and for this node to apply up to it (followers ask the leader);
   * `lease` answers on a leader that holds a lease without the quorum round (elsewhere as
   * `linearizable`); `serializable` answers from local state at once (possibly stale).
   * Rejects like {@link Host.proposeCommand}, or with what the state machine's `query` throws.
   */
  readQuery(query: unknown, consistency: ReadConsistency): Promise<unknown> {
    return this.replica.read(query, consistency);
  }

  /** Resolves once a leader is known (immediately if one is), or false after `timeoutMs`. */
  waitForLeader(timeoutMs: number): Promise<boolean> {
    return this.replica.leadership.waitForLeader(timeoutMs);
  }

  /** This node's view of the group. */
  status(): HostStatus {
    return {
      ...this.raw.status(),
      name: this.options.name,
      groupId: this.options.groupId,
      clusterId: this.options.clusterId,
      machineApplied: this.machine.appliedIndex,
      confState: this.confState(),
    };
  }

  /**
   * The applied configuration; the same object until it changes (the status is built after
   * every Ready pass). The core replaces its configuration object on every change (they are
   * frozen) and only ever adds removed ids, so the two identify what `confState()` reports.
   */
  protected confState(): ConfState {
    const raft = this.raw.raft;
    const cached = this.confCache;
    if (cached?.config === raft.tracker.config && cached.removed === raft.removed.size)
      return cached.confState;
    const confState = this.raw.confState();
    this.confCache = { config: raft.tracker.config, removed: raft.removed.size, confState };
    return confState;
  }

  /** The state machine's applied index (as `status().machineApplied`, without building it). */
  get machineApplied(): number {
    return this.machine.appliedIndex;
  }

  /** Whether role, leader, term or configuration differ from `last` (no status built). */
  statusChangedSince(last: HostStatus): boolean {
    const r = this.raw.raft;
    return (
      r.role !== last.role ||
      r.leader !== last.leader ||
      r.term !== last.term ||
      this.confState() !== last.confState
    );
  }

  /** The node's role, for a quick check. */
  get role(): Role {
    return this.raw.raft.role;
  }

  /** The current raft term (cheaper than {@link Host.status}; etcd response headers carry it). */
  get term(): number {
    return this.raw.term;
  }

  /** The transport's counters (the process's, on a multi-raft host). */
  transportStats(): ReturnType<TcpTransport['stats']> {
    return this.transport.stats();
  }

  /** Asks the leader to hand leadership to `transferee`. */
  transferLeadership(transferee: number): void {
    this.lifecycle.ensureRunning();
    this.replica.catchUpTicks();
    this.raw.transferLeadership(transferee);
    this.wake();
  }

  /** Name, peer address and client URLs of every member known here (removed ones included). */
  members(): ReadonlyMap<number, MemberAddress> {
    return this.replica.membership.members;
  }

  /** Whether `id` is in the applied configuration (a voter or a learner, joint halves included). */
  isMember(id: number): boolean {
    return this.replica.membership.isMember(id);
  }

  /** What this node answers a joining member's cluster query with (join.ts): cluster id, members. */
  clusterInfo(): { clusterId: number; members: unknown[] } {
    return { clusterId: this.options.clusterId, members: this.replica.membership.configuredMembers() };
  }

  /**
   * Proposes a replicated change of a member's attributes (see member-table.ts: `publish`
   * of its own name and client URLs, `peer` for etcd's `MemberUpdate`) and resolves once this
   * node has applied it. Rejects like {@link Host.proposeCommand}.
   */
  proposeMemberUpdate(update: MemberUpdate): Promise<void> {
    return this.replica.proposeMemberUpdate(update);
  }

  /**
   * Proposes a membership change on the leader and resolves once this node has applied it.
   * The entry's context carries the member's name and peer address (JSON), so every node
   * learns the address when it applies the change. Throws a `RaftError` when the core
   * refuses (`NOT_LEADER`, `CONF_CHANGE_IN_PROGRESS`, `NODE_ID_REUSED`, `LEARNER_NOT_READY`,
   * `INVALID_CONF_CHANGE`); rejects with `TIMEOUT` when not applied within the request timeout.
   */
  proposeMemberChange(change: MemberChange): Promise<void> {
    return this.replica.proposeMemberChange(change);
  }

  /** The fatal error that stopped the node, if any. */
  get failure(): unknown {
    return this.lifecycle.failure;
  }

  /** Stops the node: fails waiting requests with `STOPPED`, closes transport, storage and the state machine. */
  stop(): Promise<void> {
    return this.lifecycle.stop();
  }

  // ------------------------------------------------------------------ inputs

  /**
   * An input reached the group while its clock is paused: a host that quiesces groups (a
   * multi-raft host's) wakes it here. A single-group host never pauses its clock.
   */
  protected onQuiescedInput(): void {}

  /** Whether the Ready loop is idle (no pass running or scheduled). */
  protected get readyIdle(): boolean {
    return this.loop.idle;
  }

  /** Whether the host stopped (or failed). */
  protected get stopped(): boolean {
    return this.lifecycle.stopped;
  }

  /** The tick timer's extra work for a subclass (the KV's lease expiry); runs after the replica's. */
  protected onTick(): void {}

  /**
   * A subclass's look at the group after each Ready pass (role, leader, applied index and
   * configuration may have changed); runs after the replica served reads. Must not throw.
   */
  protected onAdvanced(): void {}

  /** The tick timer: catch up on ticks, re-issue stale read barriers, then {@link Host.onTick}. */
  onTimer(): void {
    if (this.lifecycle.stopped) return;
    this.replica.onTimer();
    this.onTick();
    this.wake();
  }

  /** A message from a peer, for this group (the transport, or a multi-raft host's router). */
  onMessage(message: Message): void {
    if (this.lifecycle.stopped) return;
    this.counters.messagesReceived++;
    if (this.writeTrace.enabled) this.writeTrace.receivedMessage(message, performance.now());
    this.replica.catchUpTicks();
    try {
      this.raw.step(message);
    } catch (error) {
      // A refused local request (e.g. a forwarded proposal at a non-leader) is not fatal.
      if (!isRaftError(error)) throw error;
    }
    this.wake();
  }

  /** The transport could not reach `peer` (a dropped message, a failed connection). */
  reportUnreachable(peer: number): void {
    this.onReport(() => this.raw.reportUnreachable(peer));
  }

  /** A snapshot sent to `peer` by this group was acknowledged (`ok`) or failed. */
  reportSnapshot(peer: number, ok: boolean): void {
    this.onReport(() => this.raw.reportSnapshot(peer, ok));
  }

  /**
   * Where an on-disk state machine's state streamed by the leader is written before its
   * snapshot message is delivered (snapshot-spool.ts); undefined refuses it (an in-memory
   * state machine's state comes in the message, and a stopped host takes nothing).
   */
  snapshotSink(message: SnapshotRequest): SnapshotSink | undefined {
    if (!this.machine.onDisk || this.lifecycle.stopped) return undefined;
    return this.spool.sink(message);
  }

  private onReport(report: () => void): void {
    if (this.lifecycle.stopped) return;
    this.replica.catchUpTicks();
    report();
    this.wake();
  }

  /**
   * Sends a snapshot the core asks for: as the message's data for an in-memory state machine,
   * as a stream of the applied state for an on-disk one (see snapshots.ts).
   */
  private sendSnapshot(m: SnapshotRequest): void {
    if (!this.machine.onDisk) {
      this.transport.send([m]);
      return;
    }
    this.replica.snapshots.stream(m).then(
      (outgoing) => {
        if (this.lifecycle.stopped) {
          outgoing?.payload.close();
          return;
        }
        if (outgoing === undefined) this.reportSnapshot(m.to, false);
        else this.transport.sendSnapshot(outgoing.message, outgoing.payload);
      },
      (error: unknown) => this.lifecycle.fail(error),
    );
  }

  /** Schedules the Ready loop; calls in one event-loop turn share one pass. */
  wake(): void {
    this.loop.wake();
  }

  /**
   * Detaches from the transport, waits for work in flight, closes storage and the state
   * machine, releases what the host owns of the process (the lock of a single-group host).
   */
  private async close(): Promise<void> {
    await this.shared.detach().catch(() => {});
    await this.loop.current.catch(() => {});
    await this.replica.snapshots.pending?.catch(() => {});
    await this.storage.close().catch(() => {});
    await this.machine.close().catch(() => {});
    await this.shared.release();
  }
}
