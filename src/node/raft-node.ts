/**
 * The runtime of one raft group: it drives a {@link RawNode} with real time, durable storage
 * ({@link FileStorage}), the TCP transport and the LMDB key-value state machine.
 *
 * One sequential loop handles each Ready in the order the core's contract requires:
 *
 * 1. a leader sends its `append` and `heartbeat` messages at once (thesis §10.2.1);
 * 2. `hardState`, `entries` and a received `snapshot` are made durable with one
 *    `FileStorage.save` (one fdatasync: group commit per Ready);
 * 3. every other message (votes, acknowledgements) is sent;
 * 4. a received snapshot is restored into the KV store, then committed entries are applied
 *    in order (`applyBatch`; conf changes through the core and `saveConfState`);
 * 5. read barriers (`readStates`) are recorded and reads served once applied reaches them;
 * 6. `advance`.
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
 */
import { randomInt } from 'node:crypto';
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import {
  decodeCommand,
  encodeCommand,
  type KvCommand,
  type KvEntry,
  type KvResult,
  LmdbKvBackend,
  type RangeRequest,
  type RangeResponse,
  validateCommand,
} from '../kv/index.js';
import {
  type ConfChange,
  type ConfState,
  decodeConfChange,
  EMPTY_CONF_STATE,
  type Entry,
  isRaftError,
  type Message,
  Prng,
  type RaftOptions,
  RawNode,
  type Ready,
  type Role,
  replayConfChanges,
  type Status,
} from '../raft/index.js';
import { FileStorage, SnapshotPolicy, type SnapshotPolicyOptions } from '../storage/index.js';
import { type PeerAddress, TcpTransport } from '../transport/index.js';
import { frameChunks, frameChunksAsync, newOrigin, unwrapCommand, wrapCommand } from './envelope.js';
import { NodeError } from './errors.js';
import { discoverCluster } from './join.js';
import { expiredLeases, LEASE_SCAN_INTERVAL_MS } from './lease-keeper.js';
import {
  acquireLock,
  type DataDirLock,
  type MemberFile,
  readMemberFile,
  writeMemberFile,
} from './member-file.js';
import {
  applyMemberUpdate,
  type MemberAddress,
  type MemberClientUrls,
  type MemberUpdate,
  readMembersFile,
  recordContextMember,
  snapshotChunks,
  splitSnapshotData,
  unwrapMemberUpdate,
  wrapMemberUpdate,
  writeMembersFile,
} from './member-table.js';

export type { MemberAddress, MemberClientUrls, MemberUpdate } from './member-table.js';

/** Where a runtime writes its diagnostics. */
export interface NodeLogger {
  info(message: string): void;
  warn(message: string): void;
  error(message: string): void;
}

/** Options of {@link RaftNode}. Defaults in {@link DEFAULT_RAFT_NODE_OPTIONS}. */
export interface RaftNodeOptions {
  /** This member's name. */
  readonly name: string;
  /**
   * Its id: derived from the name for founders (see identity.ts). A data directory's
   * `member.json` overrides it, and a member joining with `existing` learns it from the
   * cluster (see join.ts): after {@link RaftNode.start}, `node.options.id` is the real one.
   */
  readonly id: number;
  /** The cluster id (overridden like {@link RaftNodeOptions.id}). */
  readonly clusterId: number;
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
  readonly dataDir: string;
  /** Where to listen for peers. */
  readonly listenPeer: PeerAddress;
  /** Milliseconds per raft tick. */
  readonly tickMs: number;
  readonly electionTicks: number;
  readonly heartbeatTicks: number;
  /** Proposals accepted and not yet applied; beyond it new ones fail with `TOO_MANY_REQUESTS`. */
  readonly pendingProposalsMax: number;
  /** Linearizable reads waiting; beyond it new ones fail with `TOO_MANY_REQUESTS`. */
  readonly pendingReadsMax: number;
  /** Committed-but-unapplied entries beyond which new proposals fail with `TOO_MANY_REQUESTS`. */
  readonly applyLagEntriesMax: number;
  /** Encoded proposal bytes handed to the core in one batch. */
  readonly proposalBatchBytesMax: number;
  /** How long a proposal or a read may take, including waiting for a leader. */
  readonly requestTimeoutMs: number;
  /** When to snapshot the state machine. */
  readonly snapshotPolicy: Partial<SnapshotPolicyOptions>;
  /** Entries kept in the log behind a snapshot, so a slightly lagging follower needs no snapshot. */
  readonly snapshotKeepEntries: number;
  /** Skip LMDB fsyncs (tests and benchmarks only; see docs/kv.md). */
  readonly kvNoSync: boolean;
  readonly logger: NodeLogger;
  /** Called once when the node stops because of a fatal error. */
  readonly onFatal: (error: unknown) => void;
}

/** The defaults of {@link RaftNodeOptions} that have one. */
export const DEFAULT_RAFT_NODE_OPTIONS = Object.freeze({
  initialClusterState: 'new' as const,
  joinTimeoutMs: 30_000,
  tickMs: 100,
  electionTicks: 10,
  heartbeatTicks: 1,
  pendingProposalsMax: 8192,
  pendingReadsMax: 8192,
  applyLagEntriesMax: 10_000,
  proposalBatchBytesMax: 4 * 1024 * 1024,
  requestTimeoutMs: 5000,
  snapshotPolicy: {},
  snapshotKeepEntries: 5000,
  kvNoSync: false,
  logger: Object.freeze({ info: () => {}, warn: () => {}, error: () => {} }),
  onFatal: () => {},
});

/** Options a caller must give; every other one has a default. */
export type RaftNodeInit = Partial<RaftNodeOptions> &
  Pick<
    RaftNodeOptions,
    'name' | 'id' | 'clusterId' | 'initialCluster' | 'members' | 'dataDir' | 'listenPeer'
  >;

/** Ticks delivered at most at once after a pause: beyond it every timer has expired anyway. */
const CATCH_UP_TICKS_MAX = 1000;

/** What this node knows about the cluster, for observers (`/v1/cluster`, `status`). */
export interface NodeStatus extends Status {
  readonly name: string;
  readonly clusterId: number;
  readonly kvApplied: number;
  readonly revision: number;
  readonly confState: ConfState;
}

/** Runtime counters (exported as metrics). */
export interface NodeCounters {
  readies: number;
  saves: number;
  entriesPersisted: number;
  entriesApplied: number;
  proposalsAccepted: number;
  proposalsRejected: number;
  proposalsApplied: number;
  proposalTimeouts: number;
  readsServed: number;
  readTimeouts: number;
  snapshotsTaken: number;
  snapshotsInstalled: number;
  leaderChanges: number;
  ticks: number;
  messagesSent: number;
  messagesReceived: number;
  /** Sum and count of proposal latencies (ms), from acceptance to local apply. */
  proposalLatencyMsSum: number;
  proposalLatencyCount: number;
  /** Sum and count of fdatasync'd save durations (ms). */
  saveMsSum: number;
}

interface PendingProposal {
  readonly seq: number;
  readonly data: Uint8Array;
  readonly startedMs: number;
  /** With the KV result; with undefined for a member update. */
  readonly resolve: (result: KvResult | undefined) => void;
  readonly reject: (error: Error) => void;
  readonly timer: NodeJS.Timeout;
  /** Handed to the core (else still queued, e.g. while no leader is known). */
  proposed: boolean;
}

interface PendingRead {
  readonly request: RangeRequest;
  readonly resolve: (response: RangeResponse) => void;
  readonly reject: (error: Error) => void;
  readonly timer: NodeJS.Timeout;
  done: boolean;
}

interface ReadBatch {
  readonly reads: PendingRead[];
  readonly issuedTick: number;
  /** The read index released by the leader, once known. */
  index: number;
}

/** One raft group with its storage, transport and state machine. */
export class RaftNode {
  readonly options: RaftNodeOptions;
  /** Counters for metrics. */
  readonly counters: NodeCounters = {
    readies: 0,
    saves: 0,
    entriesPersisted: 0,
    entriesApplied: 0,
    proposalsAccepted: 0,
    proposalsRejected: 0,
    proposalsApplied: 0,
    proposalTimeouts: 0,
    readsServed: 0,
    readTimeouts: 0,
    snapshotsTaken: 0,
    snapshotsInstalled: 0,
    leaderChanges: 0,
    ticks: 0,
    messagesSent: 0,
    messagesReceived: 0,
    proposalLatencyMsSum: 0,
    proposalLatencyCount: 0,
    saveMsSum: 0,
  };

  private readonly origin = newOrigin();
  private readonly originHex = Buffer.from(this.origin).toString('hex');
  private seq = 0;
  private readonly proposals = new Map<number, PendingProposal>();
  private queuedProposals: PendingProposal[] = [];
  private queuedReads: PendingRead[] = [];
  private readonly readBatches = new Map<string, ReadBatch>();
  private readBatchSeq = 0;
  private pendingReadCount = 0;
  private readonly clockStartMs = performance.now();
  private ticksDelivered = 0;
  private tickTimer: NodeJS.Timeout | undefined;
  private driving = false;
  private driveScheduled = false;
  private drivePromise: Promise<void> = Promise.resolve();
  private stopped = false;
  private fatalError: unknown;
  private lastLeader = 0;
  private lastTerm = 0;
  private policy: SnapshotPolicy;
  private snapshotTask: Promise<void> | undefined;
  private readonly leaderWaiters = new Set<() => void>();
  /** Wall-clock time this node last became leader (0 when not leader), for lease expiry. */
  private leaderSinceMs = 0;
  private lastLeaseScanMs = 0;
  /** Leases whose revoke this leader has proposed and not yet seen applied. */
  private readonly revoking = new Set<number>();
  /** Node id → name and peer address of every member ever known (initial, file, conf changes). */
  private readonly memberTable = new Map<number, MemberAddress>();
  private readonly memberWaiters = new Map<string, (error?: Error) => void>();

  private constructor(
    options: RaftNodeOptions,
    private readonly raw: RawNode,
    private readonly storage: FileStorage,
    private readonly kv: LmdbKvBackend,
    private readonly transport: TcpTransport,
    private readonly lock: DataDirLock,
  ) {
    this.options = options;
    this.policy = new SnapshotPolicy(options.snapshotPolicy, kv.appliedIndex);
  }

  /**
   * Opens (or bootstraps) the data directory, recovers storage and the state machine,
   * starts the transport and the tick timer. Throws `INVALID_CONFIG` when the data
   * directory belongs to another member or cluster.
   */
  static async start(init: RaftNodeInit): Promise<RaftNode> {
    let options: RaftNodeOptions = { ...DEFAULT_RAFT_NODE_OPTIONS, ...init };
    await mkdir(options.dataDir, { recursive: true });
    const lock = await acquireLock(options.dataDir);
    try {
      const member = await checkMemberFile(options);
      if (member !== undefined) {
        options = { ...options, id: member.id, clusterId: member.clusterId };
      } else if (options.initialClusterState === 'existing') {
        options = await joinOptions(options);
      }
      const storage = await FileStorage.open(join(options.dataDir, 'raft'));
      const kv = LmdbKvBackend.open(join(options.dataDir, 'kv'), { noSync: options.kvNoSync });
      if (member === undefined) await bootstrap(options, storage, kv);
      await recoverKv(storage, kv, options.logger);
      const replayed = await deriveMembership(storage, kv.appliedIndex);
      const table = await loadMemberTable(options, storage, replayed.entries);
      const raw = new RawNode(storage, raftOptions(options, kv.appliedIndex));
      const removed = new Set(raw.confState().removed ?? []);
      const peers = new Map<number, PeerAddress>();
      for (const [id, m] of table)
        if (id !== options.id && !removed.has(id)) peers.set(id, { host: m.host, port: m.port });
      let node: RaftNode | undefined;
      const transport = new TcpTransport({
        nodeId: options.id,
        clusterId: options.clusterId,
        listen: options.listenPeer,
        peers,
        onMessage: (m) => node?.onMessage(m),
        onUnreachable: (peer) => node?.onReport(() => raw.reportUnreachable(peer)),
        onSnapshotStatus: (peer, ok) => node?.onReport(() => raw.reportSnapshot(peer, ok)),
        onError: (error) => options.logger.warn(`transport: ${error.message}`),
        logger: { warn: (m) => options.logger.warn(m), error: (m) => options.logger.error(m) },
        clusterInfo: () => JSON.stringify(node?.clusterInfo() ?? {}),
      });
      node = new RaftNode(options, raw, storage, kv, transport, lock);
      for (const [id, m] of table) node.memberTable.set(id, m);
      await transport.start();
      node.tickTimer = setInterval(() => node?.onTimer(), options.tickMs);
      options.logger.info(
        `node ${options.name} (${options.id}) started: applied ${kv.appliedIndex}, ` +
          `voters [${raw.confState().voters.join(',')}]`,
      );
      node.wake();
      if (options.clientUrls !== undefined) node.publishLoop(options.clientUrls);
      return node;
    } catch (error) {
      await lock.release();
      throw error;
    }
  }

  // ------------------------------------------------------------------ client API

  /**
   * Proposes a KV command and resolves with its outcome once it has been applied on this
   * node (a deterministic KV error is an outcome, `{ok: false}`). Rejects with a
   * {@link NodeError}: `TOO_MANY_REQUESTS` (back-pressure), `NO_LEADER` (no leader within
   * the timeout; nothing was proposed), `TIMEOUT` (proposed, outcome unknown),
   * `PROPOSAL_DROPPED`, `STOPPED`, `FATAL`; or with a `KvError` for an invalid command.
   */
  async propose(command: KvCommand): Promise<KvResult> {
    this.ensureRunning();
    validateCommand(command, this.kv.options);
    this.checkBackPressure();
    const result = await this.enqueueProposal((seq) => wrapCommand(this.origin, seq, encodeCommand(command)));
    return result as KvResult;
  }

  /**
   * Reads a range. `linearizable` waits for a ReadIndex barrier confirmed by a quorum and
   * for this node to apply up to it (followers ask the leader); `serializable` answers from
   * local state at once (possibly stale). Rejects like {@link RaftNode.propose}, or with a
   * `KvError` (`COMPACTED`, `FUTURE_REV`, `INVALID_ARGUMENT`).
   */
  async read(
    request: RangeRequest,
    consistency: 'linearizable' | 'serializable' = 'linearizable',
  ): Promise<RangeResponse> {
    this.ensureRunning();
    if (consistency === 'serializable') {
      this.counters.readsServed++;
      return this.kv.range(request);
    }
    validateCommand({ type: 'range', ...request }, this.kv.options);
    if (this.pendingReadCount >= this.options.pendingReadsMax) {
      throw new NodeError('TOO_MANY_REQUESTS', `too many pending reads (${this.options.pendingReadsMax})`);
    }
    return new Promise<RangeResponse>((resolve, reject) => {
      const read: PendingRead = {
        request,
        resolve,
        reject,
        done: false,
        timer: setTimeout(() => this.expireRead(read), this.options.requestTimeoutMs),
      };
      this.pendingReadCount++;
      this.queuedReads.push(read);
      this.wake();
    });
  }

  /** Resolves once a leader is known (immediately if one is), or false after `timeoutMs`. */
  waitForLeader(timeoutMs: number): Promise<boolean> {
    if (this.raw.status().leader !== 0) return Promise.resolve(true);
    return new Promise((resolve) => {
      const done = (): void => {
        clearTimeout(timer);
        this.leaderWaiters.delete(done);
        resolve(this.raw.status().leader !== 0);
      };
      const timer = setTimeout(done, timeoutMs);
      this.leaderWaiters.add(done);
    });
  }

  /** This node's view of the group. */
  status(): NodeStatus {
    return {
      ...this.raw.status(),
      name: this.options.name,
      clusterId: this.options.clusterId,
      kvApplied: this.kv.appliedIndex,
      revision: this.kv.revision,
      confState: this.raw.confState(),
    };
  }

  /** The node's role, for a quick check. */
  get role(): Role {
    return this.raw.status().role;
  }

  /** The current raft term (cheaper than {@link RaftNode.status}; etcd response headers carry it). */
  get term(): number {
    return this.raw.status().term;
  }

  /** The local key-value backend (for watches and lease queries served locally). */
  get backend(): LmdbKvBackend {
    return this.kv;
  }

  /** The transport's counters. */
  transportStats(): ReturnType<TcpTransport['stats']> {
    return this.transport.stats();
  }

  /** Asks the leader to hand leadership to `transferee`. */
  transferLeadership(transferee: number): void {
    this.ensureRunning();
    this.catchUpTicks();
    this.raw.transferLeadership(transferee);
    this.wake();
  }

  /**
   * Name, peer address and client URLs of every member this node knows of (removed ones
   * included; the configuration is in {@link RaftNode.status}'s `confState`).
   */
  members(): ReadonlyMap<number, MemberAddress> {
    return this.memberTable;
  }

  /** Whether `id` is in the applied configuration (a voter or a learner, joint halves included). */
  isMember(id: number): boolean {
    const cs = this.raw.confState();
    return (
      cs.voters.includes(id) ||
      cs.learners.includes(id) ||
      cs.votersOutgoing.includes(id) ||
      cs.learnersNext.includes(id)
    );
  }

  /**
   * What this node answers a joining member's cluster query with (see join.ts): the cluster
   * id and the configured members.
   */
  clusterInfo(): { clusterId: number; members: unknown[] } {
    const cs = this.raw.confState();
    const voters = new Set([...cs.voters, ...cs.votersOutgoing]);
    const ids = new Set([...voters, ...cs.learners, ...cs.learnersNext]);
    const members: unknown[] = [];
    for (const id of ids) {
      const m = this.memberTable.get(id);
      if (m === undefined) continue;
      members.push({
        id,
        name: m.name,
        host: m.host,
        port: m.port,
        ...(m.clientUrls === undefined ? {} : { clientUrls: m.clientUrls }),
        learner: !voters.has(id),
      });
    }
    return { clusterId: this.options.clusterId, members };
  }

  /**
   * Proposes a replicated change of a member's attributes (see member-table.ts: `publish`
   * of its own name and client URLs, `peer` for etcd's `MemberUpdate`) and resolves once this
   * node has applied it. Rejects like {@link RaftNode.propose}.
   */
  async proposeMemberUpdate(update: MemberUpdate): Promise<void> {
    this.ensureRunning();
    this.checkBackPressure();
    await this.enqueueProposal((seq) => wrapMemberUpdate(this.origin, seq, update));
  }

  /**
   * Queues the entry `encode` builds for the next proposal number; resolves with its outcome
   * once applied here (a KV result, or undefined for a member update), or rejects when it
   * expires or the node stops.
   */
  private enqueueProposal(encode: (seq: number) => Uint8Array): Promise<KvResult | undefined> {
    const seq = ++this.seq;
    const data = encode(seq);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => this.expireProposal(seq), this.options.requestTimeoutMs);
      const pending: PendingProposal = {
        seq,
        data,
        startedMs: performance.now(),
        resolve,
        reject,
        timer,
        proposed: false,
      };
      this.proposals.set(seq, pending);
      this.queuedProposals.push(pending);
      this.counters.proposalsAccepted++;
      this.wake();
    });
  }

  /**
   * Publishes this member's name and client URLs once it is in the configuration and a
   * leader is known, retrying until it is applied or the node stops. Unconditional on every
   * start (as etcd's `publish`): a member that just restarted may not have applied its own
   * latest publish yet, so comparing with its table could skip a needed one.
   */
  private publishLoop(clientUrls: MemberClientUrls): void {
    const update: MemberUpdate = { op: 'publish', id: this.options.id, name: this.options.name, clientUrls };
    const attempt = async (): Promise<void> => {
      while (!this.stopped) {
        if (this.isMember(this.options.id) && this.raw.status().leader !== 0) {
          try {
            await this.proposeMemberUpdate(update);
            this.options.logger.info(
              `published name ${update.name} and client URLs ${JSON.stringify(clientUrls)}`,
            );
            return;
          } catch (error) {
            if (this.stopped) return;
            this.options.logger.warn(`publishing client URLs: ${(error as Error).message}; retrying`);
          }
        }
        await new Promise((resolve) => setTimeout(resolve, PUBLISH_RETRY_MS).unref());
      }
    };
    void attempt();
  }

  /**
   * Proposes a membership change on the leader and resolves once this node has applied it.
   * The entry's context carries the member's name and peer address (JSON), so every node
   * learns the address when it applies the change. Throws a `RaftError` when the core
   * refuses (`NOT_LEADER`, `CONF_CHANGE_IN_PROGRESS`, `NODE_ID_REUSED`, `LEARNER_NOT_READY`,
   * `INVALID_CONF_CHANGE`); rejects with `TIMEOUT` when not applied within the request timeout.
   */
  async proposeMemberChange(change: MemberChange): Promise<void> {
    this.ensureRunning();
    this.catchUpTicks();
    const token = `${this.originHex}-${++this.seq}`;
    const known = this.memberTable.get(change.id);
    const member = change.member ?? known;
    const context: MemberChangeContext = {
      token,
      id: change.id,
      ...(member === undefined ? {} : { name: member.name, host: member.host, port: member.port }),
    };
    const done = new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.memberWaiters.delete(token);
        reject(
          new NodeError(
            'TIMEOUT',
            `membership change not applied within ${this.options.requestTimeoutMs} ms`,
          ),
        );
      }, this.options.requestTimeoutMs);
      this.memberWaiters.set(token, (error) => {
        clearTimeout(timer);
        this.memberWaiters.delete(token);
        if (error === undefined) resolve();
        else reject(error);
      });
    });
    try {
      this.raw.proposeConfChange({
        changes: [{ type: change.type, node: change.id }],
        context: Buffer.from(JSON.stringify(context)),
      });
    } catch (error) {
      this.memberWaiters.get(token)?.();
      throw error;
    }
    this.wake();
    return done;
  }

  /** The fatal error that stopped the node, if any. */
  get failure(): unknown {
    return this.fatalError;
  }

  /** Stops the node: fails waiting requests with `STOPPED`, closes transport, storage and KV. */
  async stop(): Promise<void> {
    if (this.stopped && this.fatalError === undefined) return;
    const wasStopped = this.stopped;
    this.stopped = true;
    if (this.tickTimer !== undefined) clearInterval(this.tickTimer);
    this.failAll(new NodeError('STOPPED', 'node is stopping'));
    if (wasStopped && this.fatalError !== undefined && this.lock.released) return;
    await this.transport.stop().catch(() => {});
    await this.drivePromise.catch(() => {});
    await this.snapshotTask?.catch(() => {});
    await this.storage.close().catch(() => {});
    await this.kv.close().catch(() => {});
    await this.lock.release();
  }

  // ------------------------------------------------------------------ inputs

  private onTimer(): void {
    if (this.stopped) return;
    this.catchUpTicks();
    this.reissueStaleReads();
    this.expireLeases();
    this.wake();
  }

  /** On the leader: proposes a revoke for every lease whose time is up (see lease-keeper.ts). */
  private expireLeases(): void {
    const now = Date.now();
    if (this.leaderSinceMs === 0 || now - this.lastLeaseScanMs < LEASE_SCAN_INTERVAL_MS) return;
    this.lastLeaseScanMs = now;
    const leases = this.kv.leaseList();
    const live = new Set(leases.map((l) => l.id));
    for (const id of this.revoking) if (!live.has(id)) this.revoking.delete(id);
    for (const id of expiredLeases(leases, this.leaderSinceMs, now)) {
      if (this.revoking.has(id) || this.proposals.size >= this.options.pendingProposalsMax) continue;
      this.revoking.add(id);
      this.propose({ type: 'leaseRevoke', id }).then(
        () => this.revoking.delete(id),
        () => this.revoking.delete(id),
      );
      this.options.logger.info(`lease ${id} expired: revoking`);
    }
  }

  private onMessage(message: Message): void {
    if (this.stopped) return;
    this.counters.messagesReceived++;
    this.catchUpTicks();
    try {
      this.raw.step(message);
    } catch (error) {
      // A refused local request (e.g. a forwarded proposal at a non-leader) is not fatal.
      if (!isRaftError(error)) throw error;
    }
    this.wake();
  }

  private onReport(report: () => void): void {
    if (this.stopped) return;
    this.catchUpTicks();
    report();
    this.wake();
  }

  /** Delivers every tick the monotonic clock says is due, before any other input. */
  private catchUpTicks(): void {
    const due = Math.floor((performance.now() - this.clockStartMs) / this.options.tickMs);
    const missed = due - this.ticksDelivered;
    if (missed <= 0) return;
    const count = Math.min(missed, CATCH_UP_TICKS_MAX);
    for (let i = 0; i < count; i++) this.raw.tick();
    this.counters.ticks += count;
    this.ticksDelivered = due;
  }

  // ------------------------------------------------------------------ the Ready loop

  /** Schedules the loop; calls in one event-loop turn share one pass (one Ready, one fsync). */
  private wake(): void {
    if (this.stopped || this.driving || this.driveScheduled) return;
    this.driveScheduled = true;
    setImmediate(() => {
      this.driveScheduled = false;
      if (this.stopped || this.driving) return;
      this.driving = true;
      this.drivePromise = this.drive().finally(() => {
        this.driving = false;
      });
    });
  }

  private async drive(): Promise<void> {
    try {
      while (!this.stopped) {
        this.catchUpTicks();
        this.flushProposals();
        this.flushReads();
        this.observeSoftState();
        if (!this.raw.hasReady()) break;
        await this.handleReady(this.raw.ready());
      }
    } catch (error) {
      this.fail(error);
    }
  }

  private async handleReady(rd: Ready): Promise<void> {
    this.counters.readies++;
    const held: Message[] = [];
    const early: Message[] = [];
    for (const m of rd.messages) (m.type === 'append' || m.type === 'heartbeat' ? early : held).push(m);
    this.send(early);
    if (rd.snapshot !== undefined) await this.snapshotTask;
    if (rd.hardState !== undefined || rd.entries.length > 0 || rd.snapshot !== undefined) {
      const started = performance.now();
      await this.storage.save({ hardState: rd.hardState, entries: rd.entries, snapshot: rd.snapshot });
      this.counters.saves++;
      this.counters.saveMsSum += performance.now() - started;
      this.counters.entriesPersisted += rd.entries.length;
    }
    if (this.stopped) return;
    this.send(held);
    if (rd.snapshot !== undefined) await this.installSnapshot(rd.snapshot.meta.index, rd.snapshot.data);
    await this.applyEntries(rd.committedEntries);
    for (const rs of rd.readStates) {
      const batch = this.readBatches.get(Buffer.from(rs.context).toString('hex'));
      if (batch !== undefined) batch.index = rs.index;
    }
    this.raw.advance(rd);
    this.serveReads();
    this.maybeSnapshot();
  }

  private send(messages: readonly Message[]): void {
    if (messages.length === 0) return;
    this.counters.messagesSent += messages.length;
    this.transport.send(messages);
  }

  private async installSnapshot(index: number, data: Uint8Array): Promise<void> {
    const { members, kvChunks } = splitSnapshotData(data);
    if (members !== undefined) {
      // The table at the snapshot's index is authoritative for the members it lists.
      for (const [id, m] of members) this.memberTable.set(id, m);
      await writeMembersFile(this.options.dataDir, this.memberTable);
    }
    await this.kv.restore(kvChunks);
    if (this.kv.appliedIndex !== index) {
      throw new Error(`snapshot at index ${index} restored a state machine at ${this.kv.appliedIndex}`);
    }
    this.syncTransportPeers();
    this.policy = new SnapshotPolicy(this.options.snapshotPolicy, index);
    this.counters.snapshotsInstalled++;
    this.options.logger.info(`installed a snapshot at index ${index}`);
  }

  /**
   * Applies committed entries in order. A conf change is made durable (`saveConfState`)
   * before the KV applied index moves past it: after a restart the core does not replay
   * entries the KV store has applied, so the membership must already be on disk.
   */
  private async applyEntries(entries: readonly Entry[]): Promise<void> {
    let batch: KvEntry[] = [];
    let ids: (number | undefined)[] = [];
    for (const entry of entries) {
      if (entry.type === 'conf-change') {
        this.applyKv(batch, ids);
        batch = [];
        ids = [];
        const cc = decodeConfChange(entry.data);
        const confState = this.raw.applyConfChange(cc);
        await this.storage.saveConfState(confState);
        await this.applyMemberContext(cc, confState);
        this.options.logger.info(
          `applied conf change at ${entry.index}: voters [${confState.voters.join(',')}]`,
        );
        batch.push({ index: entry.index, command: null });
        ids.push(undefined);
        continue;
      }
      const update = entry.type === 'normal' ? unwrapMemberUpdate(entry.data) : undefined;
      if (update !== undefined) {
        this.applyKv(batch, ids);
        batch = [];
        ids = [];
        await this.applyMemberUpdate(update.update);
        if (update.id.origin === this.originHex) {
          this.settleProposal(update.id.seq, (p) => p.resolve(undefined));
        }
        batch.push({ index: entry.index, command: null });
        ids.push(undefined);
        continue;
      }
      const { command, seq } = this.decodeEntry(entry);
      batch.push({ index: entry.index, command });
      ids.push(seq);
    }
    this.applyKv(batch, ids);
    this.policy.applied(entries);
    this.counters.entriesApplied += entries.length;
  }

  /**
   * Updates the member table and the transport's peers after a conf change, and records the
   * table in `members.json` (durably). The file is a cache: on restart the conf changes
   * still in the log after the snapshot are folded in again (see {@link loadMemberTable}).
   */
  private async applyMemberContext(cc: ConfChange, confState: ConfState): Promise<void> {
    const context = parseMemberContext(cc.context);
    if (context !== undefined) {
      if (context.name !== undefined && context.host !== undefined && context.port !== undefined) {
        recordContextMember(this.memberTable, context.id, {
          name: context.name,
          host: context.host,
          port: context.port,
        });
      }
      await writeMembersFile(this.options.dataDir, this.memberTable);
    }
    const removed = new Set(confState.removed ?? []);
    for (const change of cc.changes) {
      if (change.node === this.options.id) continue;
      if (change.type === 'remove' || removed.has(change.node)) {
        this.transport.removePeer(change.node);
        continue;
      }
      const m = this.memberTable.get(change.node);
      if (m === undefined) continue;
      if (this.transport.hasPeer(change.node))
        this.transport.updatePeer(change.node, { host: m.host, port: m.port });
      else this.transport.addPeer(change.node, { host: m.host, port: m.port });
    }
    if (context !== undefined) this.memberWaiters.get(context.token)?.();
  }

  /**
   * Applies a replicated member update: the table, `members.json` (before the KV applied
   * index moves past the entry, like conf changes) and the transport's address of the peer.
   */
  private async applyMemberUpdate(update: MemberUpdate): Promise<void> {
    const next = applyMemberUpdate(this.memberTable, update);
    if (next === undefined) return;
    await writeMembersFile(this.options.dataDir, this.memberTable);
    if (update.op === 'peer') {
      this.options.logger.info(`member ${update.id} now has peer address ${update.host}:${update.port}`);
      if (update.id !== this.options.id && this.transport.hasPeer(update.id)) {
        this.transport.updatePeer(update.id, { host: update.host, port: update.port });
      }
    }
  }

  /**
   * Points the transport at every configured member with a known address (after a snapshot
   * brought a new configuration and member table).
   */
  private syncTransportPeers(): void {
    const cs = this.raw.confState();
    const removed = new Set(cs.removed ?? []);
    for (const id of new Set([...cs.voters, ...cs.learners, ...cs.votersOutgoing, ...cs.learnersNext])) {
      if (id === this.options.id || removed.has(id)) continue;
      const m = this.memberTable.get(id);
      if (m === undefined) continue;
      if (this.transport.hasPeer(id)) this.transport.updatePeer(id, { host: m.host, port: m.port });
      else this.transport.addPeer(id, { host: m.host, port: m.port });
    }
    for (const id of removed) if (this.transport.hasPeer(id)) this.transport.removePeer(id);
  }

  private decodeEntry(entry: Entry): { command: KvCommand | null; seq: number | undefined } {
    const unwrapped = unwrapCommand(entry.data);
    if (unwrapped === undefined) return { command: null, seq: undefined };
    const mine = unwrapped.id.origin === this.originHex ? unwrapped.id.seq : undefined;
    try {
      return { command: decodeCommand(unwrapped.command), seq: mine };
    } catch (error) {
      if (mine !== undefined) this.settleProposal(mine, (p) => p.reject(error as Error));
      return { command: null, seq: undefined };
    }
  }

  private applyKv(batch: KvEntry[], ids: (number | undefined)[]): void {
    if (batch.length === 0) return;
    const results = this.kv.applyBatch(batch);
    for (let i = 0; i < ids.length; i++) {
      const seq = ids[i];
      const result = results[i];
      if (seq === undefined || result === undefined || result === null) continue;
      this.settleProposal(seq, (p) => {
        this.counters.proposalsApplied++;
        this.counters.proposalLatencyMsSum += performance.now() - p.startedMs;
        this.counters.proposalLatencyCount++;
        p.resolve(result);
      });
    }
  }

  private settleProposal(seq: number, settle: (p: PendingProposal) => void): void {
    const pending = this.proposals.get(seq);
    if (pending === undefined) return;
    this.proposals.delete(seq);
    clearTimeout(pending.timer);
    settle(pending);
  }

  // ------------------------------------------------------------------ proposals and reads

  private checkBackPressure(): void {
    const o = this.options;
    if (this.proposals.size >= o.pendingProposalsMax) {
      this.counters.proposalsRejected++;
      throw new NodeError('TOO_MANY_REQUESTS', `too many pending proposals (${o.pendingProposalsMax})`);
    }
    const lag = this.raw.status().commit - this.kv.appliedIndex;
    if (lag > o.applyLagEntriesMax) {
      this.counters.proposalsRejected++;
      throw new NodeError(
        'TOO_MANY_REQUESTS',
        `apply lags commit by ${lag} entries (max ${o.applyLagEntriesMax})`,
      );
    }
  }

  /** Hands queued proposals to the core in batches; keeps them queued while no leader is known. */
  private flushProposals(): void {
    if (this.queuedProposals.length === 0 || this.raw.status().leader === 0) return;
    const queue = this.queuedProposals.filter((p) => this.proposals.has(p.seq));
    this.queuedProposals = [];
    let start = 0;
    while (start < queue.length) {
      let end = start;
      let bytes = 0;
      while (
        end < queue.length &&
        (end === start || bytes + queue[end]!.data.length <= this.options.proposalBatchBytesMax)
      ) {
        bytes += queue[end]!.data.length;
        end++;
      }
      const slice = queue.slice(start, end);
      try {
        this.raw.proposeBatch(slice.map((p) => p.data));
        for (const p of slice) p.proposed = true;
      } catch (error) {
        if (isRaftError(error, 'NOT_LEADER')) {
          this.queuedProposals = queue.slice(start);
          return;
        }
        const refused = new NodeError('PROPOSAL_DROPPED', `proposal refused: ${(error as Error).message}`, {
          cause: error,
        });
        for (const p of slice) this.settleProposal(p.seq, (q) => q.reject(refused));
        if (!isRaftError(error)) throw error;
      }
      start = end;
    }
  }

  private expireProposal(seq: number): void {
    this.settleProposal(seq, (p) => {
      this.counters.proposalTimeouts++;
      p.reject(
        p.proposed
          ? new NodeError(
              'TIMEOUT',
              `proposal not applied within ${this.options.requestTimeoutMs} ms; outcome unknown`,
            )
          : new NodeError(
              'NO_LEADER',
              `no leader within ${this.options.requestTimeoutMs} ms; nothing was written`,
            ),
      );
    });
  }

  /** Starts one ReadIndex barrier for every read queued since the last. */
  private flushReads(): void {
    const reads = this.queuedReads.filter((r) => !r.done);
    this.queuedReads = [];
    if (reads.length === 0) return;
    if (this.raw.status().leader === 0) {
      this.queuedReads = reads;
      return;
    }
    const context = new Uint8Array(8);
    new DataView(context.buffer).setBigUint64(0, BigInt(++this.readBatchSeq));
    try {
      this.raw.readIndex(context);
    } catch (error) {
      if (!isRaftError(error)) throw error;
      this.queuedReads = reads;
      return;
    }
    this.readBatches.set(Buffer.from(context).toString('hex'), {
      reads,
      issuedTick: this.ticksDelivered,
      index: 0,
    });
  }

  /** Serves released reads whose index this node has applied. */
  private serveReads(): void {
    const applied = this.kv.appliedIndex;
    for (const [key, batch] of this.readBatches) {
      if (batch.index === 0 || batch.index > applied) continue;
      this.readBatches.delete(key);
      for (const read of batch.reads) this.finishRead(read, () => read.resolve(this.kv.range(read.request)));
    }
  }

  private finishRead(read: PendingRead, serve: () => void): void {
    if (read.done) return;
    read.done = true;
    this.pendingReadCount--;
    clearTimeout(read.timer);
    try {
      serve();
      this.counters.readsServed++;
    } catch (error) {
      read.reject(error as Error);
    }
  }

  /**
   * Re-issues read barriers that got no answer within an election timeout (the request or
   * its answer was lost, or the leader changed): a fresh barrier is as good as the old one.
   */
  private reissueStaleReads(): void {
    for (const [key, batch] of this.readBatches) {
      if (batch.index !== 0 || this.ticksDelivered - batch.issuedTick < this.options.electionTicks) continue;
      this.readBatches.delete(key);
      this.queuedReads.push(...batch.reads.filter((r) => !r.done));
    }
  }

  private expireRead(read: PendingRead): void {
    if (read.done) return;
    this.counters.readTimeouts++;
    const error =
      this.raw.status().leader === 0
        ? new NodeError('NO_LEADER', `no leader within ${this.options.requestTimeoutMs} ms`)
        : new NodeError('TIMEOUT', `read not confirmed within ${this.options.requestTimeoutMs} ms`);
    this.finishRead(read, () => {
      throw error;
    });
  }

  private observeSoftState(): void {
    const { leader, term } = this.raw.status();
    if (leader === this.lastLeader && term === this.lastTerm) return;
    if (leader !== this.lastLeader) {
      this.counters.leaderChanges++;
      const name = this.memberTable.get(leader)?.name ?? String(leader);
      this.options.logger.info(leader === 0 ? `term ${term}: no leader` : `term ${term}: leader is ${name}`);
      // Barriers sent to the old leader will not be answered: ask the new one.
      for (const [key, batch] of this.readBatches) {
        if (batch.index !== 0) continue;
        this.readBatches.delete(key);
        this.queuedReads.push(...batch.reads);
      }
    }
    this.lastLeader = leader;
    this.lastTerm = term;
    const isLeader = leader === this.options.id;
    if (isLeader && this.leaderSinceMs === 0) this.leaderSinceMs = Date.now();
    if (!isLeader) this.leaderSinceMs = 0;
    if (leader !== 0) for (const waiter of [...this.leaderWaiters]) waiter();
  }

  // ------------------------------------------------------------------ snapshots

  /**
   * Takes a snapshot when the policy says so. The KV snapshot (a read transaction) and a copy
   * of the membership are taken together, synchronously, so they describe the same applied
   * index; encoding the store (yielding to the event loop between chunks: a large store
   * would otherwise stall heartbeats for longer than an election timeout), writing the file
   * and compacting the log run in the background (storage serializes them with saves).
   */
  private maybeSnapshot(): void {
    if (!this.policy.due() || this.snapshotTask !== undefined) return;
    const policy = this.policy;
    const index = policy.begin();
    if (index !== this.kv.appliedIndex) {
      policy.abandoned();
      return;
    }
    const confState = this.raw.confState();
    const chunks = snapshotChunks(new Map(this.memberTable), this.kv.snapshot());
    this.snapshotTask = (async () => {
      const data = await frameChunksAsync(chunks);
      await this.kv.sync();
      await this.storage.createSnapshot(index, confState, data);
      const compactTo = index - this.options.snapshotKeepEntries;
      if (compactTo >= this.storage.firstIndex()) await this.storage.compact(compactTo);
      if (this.policy === policy) policy.completed(index);
      this.counters.snapshotsTaken++;
      this.options.logger.info(`snapshot at index ${index} (${data.length} bytes)`);
    })()
      .catch((error: unknown) => this.fail(error))
      .finally(() => {
        this.snapshotTask = undefined;
      });
  }

  // ------------------------------------------------------------------ failure

  private ensureRunning(): void {
    if (this.fatalError !== undefined) throw new NodeError('FATAL', 'node stopped after a fatal error');
    if (this.stopped) throw new NodeError('STOPPED', 'node is stopped');
  }

  private failAll(error: NodeError): void {
    for (const seq of [...this.proposals.keys()]) this.settleProposal(seq, (p) => p.reject(error));
    this.queuedProposals = [];
    const reads = [...this.queuedReads];
    for (const batch of this.readBatches.values()) reads.push(...batch.reads);
    this.queuedReads = [];
    this.readBatches.clear();
    for (const read of reads) {
      this.finishRead(read, () => {
        throw error;
      });
    }
    for (const waiter of [...this.leaderWaiters]) waiter();
    for (const waiter of [...this.memberWaiters.values()]) waiter(error);
  }

  /** Stops everything after a fatal error: nothing more is sent, applied or acknowledged. */
  private fail(error: unknown): void {
    if (this.fatalError !== undefined) return;
    this.fatalError = error;
    this.stopped = true;
    if (this.tickTimer !== undefined) clearInterval(this.tickTimer);
    this.options.logger.error(
      `fatal: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}`,
    );
    this.failAll(new NodeError('FATAL', 'node stopped after a fatal error', { cause: error }));
    void this.transport.stop().catch(() => {});
    this.options.onFatal(error);
  }
}

function raftOptions(
  options: RaftNodeOptions,
  applied: number,
): Partial<RaftOptions> & Pick<RaftOptions, 'id' | 'random'> {
  return {
    id: options.id,
    groupId: 1,
    random: new Prng(randomInt(2 ** 31)),
    electionTicks: options.electionTicks,
    heartbeatTicks: options.heartbeatTicks,
    applied,
  };
}

/**
 * Checks the data directory's member file against the flags; undefined for a fresh
 * directory. The file's id is this member's (a member that joined through etcd's `MemberAdd`
 * has an id the cluster chose, not its name's). With `new` the cluster id from the flags must
 * be the file's; with `existing` the file's is taken (a member that joined later cannot
 * derive it from its flags, see join.ts).
 */
async function checkMemberFile(options: RaftNodeOptions): Promise<MemberFile | undefined> {
  const member = await readMemberFile(options.dataDir);
  if (member === undefined) return undefined;
  if (member.name !== options.name) {
    throw new NodeError(
      'INVALID_CONFIG',
      `data directory ${options.dataDir} belongs to member ${member.name} (${member.id}), not ${options.name}`,
    );
  }
  if (options.initialClusterState === 'new' && member.clusterId !== options.clusterId) {
    throw new NodeError(
      'INVALID_CONFIG',
      `data directory ${options.dataDir} belongs to cluster ${hex(member.clusterId)} (--initial-cluster ` +
        `'${member.initialCluster}'), not ${hex(options.clusterId)} (a member that joined a running ` +
        'cluster restarts with --initial-cluster-state existing)',
    );
  }
  return member;
}

/**
 * The options of a member joining a running cluster with a fresh data directory: the
 * cluster's id, this member's id and the member table, learned from a running member (see
 * join.ts). The peers to ask are the other members of `options.members` (the flags).
 */
async function joinOptions(options: RaftNodeOptions): Promise<RaftNodeOptions> {
  const self = [...options.members.values()].find((m) => m.name === options.name) ?? options.listenPeer;
  const peers = [...options.members.values()]
    .filter((m) => m.name !== options.name && !(m.host === self.host && m.port === self.port))
    .map((m) => ({ host: m.host, port: m.port }));
  const joined = await discoverCluster({
    name: options.name,
    self: { host: self.host, port: self.port },
    peers,
    timeoutMs: options.joinTimeoutMs,
    logger: options.logger,
  });
  options.logger.info(
    `joining cluster ${hex(joined.clusterId)} as member ${joined.id} (learned from ${joined.from})`,
  );
  return { ...options, id: joined.id, clusterId: joined.clusterId, members: joined.members };
}

function hex(n: number): string {
  return `0x${n.toString(16).padStart(8, '0')}`;
}

/**
 * Bootstraps a fresh data directory. With `new`, the initial membership becomes a snapshot
 * at index 1 (term 1) whose data is the KV store after applying an empty entry 1, exactly
 * as the simulator does: a node added later with an empty log then starts from a snapshot
 * that carries the membership. Every step is idempotent, so a crash midway is redone.
 */
async function bootstrap(options: RaftNodeOptions, storage: FileStorage, kv: LmdbKvBackend): Promise<void> {
  const empty = storage.lastIndex() === 0 && storage.snapshot().meta.index === 0;
  if (options.initialClusterState === 'new' && empty) {
    if (kv.appliedIndex === 0) kv.applyBatch([{ index: 1, command: null }]);
    if (kv.appliedIndex !== 1) {
      throw new NodeError('INVALID_CONFIG', `fresh raft log but the KV store is at index ${kv.appliedIndex}`);
    }
    await kv.sync();
    const voters = [...options.members.keys()].sort((a, b) => a - b);
    await storage.save({
      snapshot: {
        meta: { index: 1, term: 1, confState: { ...EMPTY_CONF_STATE, voters } },
        data: frameChunks(snapshotChunks(options.members, kv.snapshot())),
      },
      hardState: { term: 1, vote: 0, commit: 1 },
      entries: [],
    });
    options.logger.info(`bootstrapped cluster ${hex(options.clusterId)} with voters [${voters.join(',')}]`);
  }
  if ((await readMembersFile(options.dataDir)) === undefined) {
    await writeMembersFile(options.dataDir, options.members);
  }
  await writeMemberFile(options.dataDir, {
    name: options.name,
    id: options.id,
    clusterId: options.clusterId,
    initialCluster: options.initialCluster,
  });
}

/** Brings the KV store up to the raft snapshot if it is behind it (see docs/kv.md). */
async function recoverKv(storage: FileStorage, kv: LmdbKvBackend, logger: NodeLogger): Promise<void> {
  const snapshot = storage.snapshot();
  if (kv.appliedIndex >= snapshot.meta.index) return;
  logger.info(
    `KV store at ${kv.appliedIndex} is behind the snapshot at ${snapshot.meta.index}: restoring it`,
  );
  await kv.restore(splitSnapshotData(snapshot.data).kvChunks);
}

/**
 * Sets the stored membership to the one the state machine's applied index implies: the
 * snapshot's membership plus every conf change in the log up to that index. The membership
 * saved when a change was applied cannot be trusted alone: a crash between saving it and the
 * KV store recording the same entry as applied would apply that change twice on restart.
 */
async function deriveMembership(
  storage: FileStorage,
  applied: number,
): Promise<{ entries: readonly Entry[] }> {
  const snapshot = storage.snapshot();
  const from = snapshot.meta.index;
  const to = Math.min(applied, storage.lastIndex());
  const entries = to > from ? storage.entries(from + 1, to + 1, Number.MAX_SAFE_INTEGER) : [];
  await storage.saveConfState(replayConfChanges(snapshot.meta.confState, entries));
  return { entries };
}

/** A membership change for {@link RaftNode.proposeMemberChange}. */
export interface MemberChange {
  readonly type: 'add-voter' | 'add-learner' | 'remove';
  readonly id: number;
  /** Name and peer address; required to add a member the cluster has never known. */
  readonly member?: MemberAddress;
}

/** The JSON context of a conf change proposed by the runtime. */
interface MemberChangeContext {
  readonly token: string;
  readonly id: number;
  readonly name?: string;
  readonly host?: string;
  readonly port?: number;
}

function parseMemberContext(context: Uint8Array | undefined): MemberChangeContext | undefined {
  if (context === undefined) return undefined;
  try {
    const value: unknown = JSON.parse(Buffer.from(context).toString('utf8'));
    if (typeof value !== 'object' || value === null) return undefined;
    const v = value as { token?: unknown; id?: unknown; name?: unknown; host?: unknown; port?: unknown };
    if (typeof v.token !== 'string' || typeof v.id !== 'number') return undefined;
    return {
      token: v.token,
      id: v.id,
      ...(typeof v.name === 'string' && typeof v.host === 'string' && typeof v.port === 'number'
        ? { name: v.name, host: v.host, port: v.port }
        : {}),
    };
  } catch {
    return undefined;
  }
}

/** How often a member retries publishing its client URLs. */
const PUBLISH_RETRY_MS = 500;

/**
 * The member table on start: `members.json` (the initial cluster from the flags when there is
 * none yet), then the table in the raft snapshot (authoritative at its index; `members.json`
 * may be older after a crash), then the conf change contexts and member updates in the log
 * after the snapshot up to the applied index (a crash may have come between applying one and
 * writing the file). The same rules as when they were first applied (see member-table.ts).
 */
async function loadMemberTable(
  options: RaftNodeOptions,
  storage: FileStorage,
  entries: readonly Entry[],
): Promise<Map<number, MemberAddress>> {
  const table = (await readMembersFile(options.dataDir)) ?? new Map<number, MemberAddress>(options.members);
  const fromSnapshot = splitSnapshotData(storage.snapshot().data).members;
  if (fromSnapshot !== undefined) for (const [id, m] of fromSnapshot) table.set(id, m);
  for (const entry of entries) {
    if (entry.type === 'conf-change') {
      const c = parseMemberContext(decodeConfChange(entry.data).context);
      if (c?.name !== undefined && c.host !== undefined && c.port !== undefined) {
        recordContextMember(table, c.id, { name: c.name, host: c.host, port: c.port });
      }
      continue;
    }
    const update = unwrapMemberUpdate(entry.data);
    if (update !== undefined) applyMemberUpdate(table, update.update);
  }
  return table;
}
