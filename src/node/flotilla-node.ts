/**
 * The handle `createNode` returns: a running member replicating one state machine. Requests
 * are promises that reject with the {@link FlotillaError} family; status changes are
 * `EventEmitter` events and an async iterator ({@link FlotillaNode.watchStatus}).
 */
import { EventEmitter, once } from 'node:events';
import { isRaftError, type Role } from '../raft/index.js';
import type { TransportStats } from '../transport/index.js';
import type { NodeCounters } from './counters.js';
import {
  FlotillaError,
  NotLeaderError,
  RefusedError,
  RemovedError,
  StoppedError,
  TimeoutError,
} from './errors.js';
import { parseHostPort } from './identity.js';
import type { LibraryHost } from './library-host.js';
import type { MemberAddress, MemberClientUrls } from './member-table.js';
import type { MemberChange } from './membership.js';
import type { NodeStatus } from './node-status.js';
import type { NodeOptions } from './options.js';
import type { WriteStageObserver } from './write-trace.js';

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
   * this node has applied up to it. `lease`: on a leader that holds a lease (a quorum heard
   * from within an election timeout, less a drift bound) the quorum round is skipped; on
   * any other member, or without a lease, as `linearizable`. Correct while clocks drift by
   * less than one tick per election timeout. `serializable`: the query on local state at
   * once, possibly stale.
   */
  readonly consistency?: 'linearizable' | 'lease' | 'serializable';
  /** Stops waiting (rejects with the signal's reason). */
  readonly signal?: AbortSignal;
}

/** Options of the membership calls and {@link FlotillaNode.transferLeadership}. */
export interface ChangeOptions {
  /** Stops waiting (rejects with the signal's reason); a change already proposed may still apply. */
  readonly signal?: AbortSignal;
}

/** Options of {@link FlotillaNode.transferLeadership}. */
export interface TransferOptions extends ChangeOptions {
  /** How long to wait for the new leader. Default: the node's `requestTimeoutMs`. */
  readonly timeoutMs?: number;
}

/** Options of {@link FlotillaNode.addLearner} and {@link FlotillaNode.addVoter}. */
export interface AddMemberOptions extends ChangeOptions {
  /**
   * The new member's name ({@link MemberInfo.name}). Default: its id in decimal. `''` leaves
   * it unnamed until the member starts: a member publishes its own name after every start.
   */
  readonly name?: string;
}

/** Options of {@link FlotillaNode.waitForLeader}. */
export interface WaitOptions {
  /** How long to wait. Default: the node's `requestTimeoutMs`. */
  readonly timeoutMs?: number;
  /** Stops waiting (rejects with the signal's reason). */
  readonly signal?: AbortSignal;
}

/** A member of the group as this node knows it (its applied configuration). */
export interface MemberInfo {
  readonly id: number;
  /**
   * Its name: the one it was added with, then the one it publishes when it starts ('' for a
   * member added unnamed that has not started yet).
   */
  readonly name: string;
  /** Its peer address `host:port`, an IPv6 host in brackets ('' when unknown). */
  readonly address: string;
  readonly role: 'voter' | 'learner';
  /** Where it serves clients, as it published them when it last started (`startNode`'s `clientUrls`). */
  readonly clientUrls?: MemberClientUrls;
}

/** What {@link FlotillaNode.stats} reports: totals since this node started. */
export interface NodeStats {
  /** The runtime's counters: Ready passes, saves, proposals, reads, snapshots, messages. */
  readonly counters: Readonly<NodeCounters>;
  /** The peer transport's counters, per peer. */
  readonly transport: TransportStats;
}

/**
 * The events of a {@link FlotillaNode}, each with the status it was noticed in. They are
 * emitted after the Ready pass that made the change, on a later tick of the event loop (a
 * throwing listener cannot disturb the node); several changes in one pass come in the order
 * role, leader, applied.
 */
export interface NodeEvents {
  /** This node's role changed (`follower`, `pre-candidate`, `candidate`, `leader`, `learner`...). */
  role: [role: Role, status: NodeStatus];
  /** The leader this node knows changed (0: none known, an election is running). */
  leader: [leader: number, status: NodeStatus];
  /** The state machine's applied index moved. */
  applied: [index: number, status: NodeStatus];
  /** This member was removed from the group; the node stops (requests fail with `RemovedError`). */
  removed: [];
}

/** A running member of a cluster replicating one state machine; made by `createNode`. */
export class FlotillaNode<C, R, Q, A> extends EventEmitter<NodeEvents> {
  /** This member's id. */
  readonly id: number;
  readonly #host: LibraryHost;
  /** Internal change notifications for {@link FlotillaNode.watchStatus}. */
  readonly #changes = new EventEmitter().setMaxListeners(0);
  #version = 0;
  /** Open {@link FlotillaNode.watchStatus} iterators (they are told of every applied index). */
  #watchers = 0;
  /** The applied index when the last Ready pass was observed. */
  #applied: number;
  #closed = false;
  #removing = false;
  #last: NodeStatus;

  /** @internal Made by `createNode`. */
  constructor(host: LibraryHost) {
    super();
    this.id = host.options.id;
    this.#host = host;
    this.#last = host.status();
    this.#applied = this.#last.machineApplied;
    host.observe(() => this.#observe());
  }

  /**
   * Replicates `command` and resolves with its `apply` result once applied on this node
   * (any member may propose: followers forward to the leader). Rejects with
   * {@link NotLeaderError} `NO_LEADER` or `TooManyRequestsError` (nothing was written;
   * retry), {@link TimeoutError} (outcome unknown), `ProposalDroppedError`, `StoppedError`,
   * {@link RemovedError}, `FatalError`; or with the signal's reason.
   */
  propose(command: C, options: ProposeOptions = {}): Promise<R> {
    return this.#call(() => this.#host.proposeCommand(command, options)) as Promise<R>;
  }

  /**
   * Opens a client session (a replicated entry) and resolves with its id, the `clientId` of
   * {@link ProposeOptions.session}. Rejects like `propose`. A command proposed in a session
   * and refused rejects with `SessionExpiredError` (the session is not open: open another)
   * or `DuplicateError` (applied already; its result is not kept).
   */
  openSession(options: Pick<ProposeOptions, 'timeoutMs' | 'signal'> = {}): Promise<number> {
    return this.#call(() => this.#host.openSession(options)) as Promise<number>;
  }

  /** The state machine's answer to `query` (see {@link ReadOptions}); rejects like `propose`. */
  read(query: Q, options: ReadOptions = {}): Promise<A> {
    const consistency = options.consistency ?? 'linearizable';
    const answer = this.#call(() => this.#host.readQuery(query, consistency));
    return abortable(answer, options.signal) as Promise<A>;
  }

  /**
   * Adds member `id`, listening for peers at `address` (`host:port`), as a learner: it
   * receives the log (a snapshot first) but does not vote. Start it with `createNode({ join })`
   * at that address. Call on the leader: elsewhere it rejects with {@link NotLeaderError}
   * naming the leader. Resolves once this node has applied the change; rejects with
   * {@link RefusedError} when the leader refuses (`CONF_CHANGE_IN_PROGRESS`: retry) and
   * {@link TimeoutError} when not applied in time.
   */
  async addLearner(id: number, address: string, options: AddMemberOptions = {}): Promise<void> {
    const member = { name: options.name ?? String(id), ...parseHostPort(address, 'address') };
    return this.#change({ type: 'add-learner', id, member }, options);
  }

  /**
   * Adds member `id`, listening for peers at `address`, as a voter at once: the quorum grows
   * before the new member has caught up (until it has, a failure of one more member stops
   * the group), so {@link FlotillaNode.addLearner} then {@link FlotillaNode.promote} is the
   * safer way. Otherwise like {@link FlotillaNode.addLearner}.
   */
  async addVoter(id: number, address: string, options: AddMemberOptions = {}): Promise<void> {
    const member = { name: options.name ?? String(id), ...parseHostPort(address, 'address') };
    return this.#change({ type: 'add-voter', id, member }, options);
  }

  /**
   * Makes learner `id` a voter. Refused with {@link RefusedError} `LEARNER_NOT_READY` while its
   * log lags the leader's (retry once it caught up). Otherwise like {@link FlotillaNode.addLearner}.
   */
  promote(id: number, options: ChangeOptions = {}): Promise<void> {
    return this.#change({ type: 'add-voter', id }, options);
  }

  /**
   * Removes member `id` (a voter or a learner; the leader may remove itself, then steps
   * down). Its id is never reused; the removed member stops once it applies its removal.
   * Otherwise like {@link FlotillaNode.addLearner}.
   */
  remove(id: number, options: ChangeOptions = {}): Promise<void> {
    return this.#change({ type: 'remove', id }, options);
  }

  /**
   * Moves member `id`'s peer address to `address` (`host:port`), a replicated change any
   * member may propose (start the member at its new address once it resolves). Resolves once
   * this node has applied it; rejects like `propose`.
   */
  updateMemberAddress(id: number, address: string, options: ChangeOptions = {}): Promise<void> {
    const { host, port } = parseHostPort(address, 'address');
    const update = this.#call(() => this.#host.proposeMemberUpdate({ op: 'peer', id, host, port }));
    return abortable(update, options.signal);
  }

  /**
   * Resolves with the leader's id once a leader is known (at once if one is). Rejects with
   * {@link NotLeaderError} `NO_LEADER` when none is known within `timeoutMs`, with
   * `StoppedError` once closed, or with the signal's reason.
   */
  async waitForLeader(options: WaitOptions = {}): Promise<number> {
    const timeoutMs = options.timeoutMs ?? this.#host.options.requestTimeoutMs;
    const found = await abortable(
      this.#call(() => this.#host.waitForLeader(timeoutMs)),
      options.signal,
    );
    const leader = this.status().leader;
    if (found && leader !== 0) return leader;
    if (this.#closed) throw this.#stoppedError();
    throw new NotLeaderError('NO_LEADER', `no leader known within ${timeoutMs} ms`);
  }

  /**
   * Asks the leader to hand leadership to voter `id` (thesis §3.10; followers forward the
   * request) and resolves once this node sees `id` lead. The request is repeated every
   * election timeout (a leader abandons a transfer that did not finish within one, e.g. when
   * `id` had not yet applied its promotion). Rejects with {@link TimeoutError} when `id` does
   * not lead within `timeoutMs`, with {@link RefusedError} `INVALID_TRANSFER_TARGET` when
   * `id` is not a voter in this leader's configuration.
   */
  async transferLeadership(id: number, options: TransferOptions = {}): Promise<void> {
    const { requestTimeoutMs, electionTicks, tickMs } = this.#host.options;
    const timeoutMs = options.timeoutMs ?? requestTimeoutMs;
    const deadline = Date.now() + timeoutMs;
    let askedAt = Number.NEGATIVE_INFINITY;
    while (this.status().leader !== id) {
      if (this.#closed) throw this.#stoppedError();
      options.signal?.throwIfAborted();
      const now = Date.now();
      if (now >= deadline)
        throw new TimeoutError('TIMEOUT', `${id} did not take over leadership within ${timeoutMs} ms`);
      if (now - askedAt >= electionTicks * tickMs) {
        await this.#call(async () => this.#host.transferLeadership(id));
        askedAt = now;
      }
      await this.#nextChange(Math.min(electionTicks * tickMs, deadline - now), options.signal);
    }
  }

  /** The group's voters and learners as this node knows them (its applied configuration). */
  members(): MemberInfo[] {
    const cs = this.status().confState;
    const voters = new Set([...cs.voters, ...cs.votersOutgoing]);
    const learners = [...new Set([...cs.learners, ...cs.learnersNext])].filter((id) => !voters.has(id));
    const table = this.#host.members();
    const info = (id: number, role: MemberInfo['role']): MemberInfo => memberInfo(id, table.get(id), role);
    return [...[...voters].map((id) => info(id, 'voter')), ...learners.map((id) => info(id, 'learner'))];
  }

  /** This node's current raft term: `status().term` without building the whole status. */
  get term(): number {
    return this.#host.term;
  }

  /**
   * The options this node runs with, defaults filled in. `id` and `clusterId` are the real
   * ones: those a joining member learned from the cluster, or its data directory's.
   */
  get options(): Readonly<NodeOptions> {
    return this.#host.options;
  }

  /** The error that stopped this node (a storage failure, a throwing `apply`); undefined otherwise. */
  get fatalError(): unknown {
    return this.#host.failure;
  }

  /** This node's counters and its transport's, for metrics (a copy, totals since start). */
  stats(): NodeStats {
    return { counters: { ...this.#host.counters }, transport: this.#host.transportStats() };
  }

  /**
   * Receives the latency of each stage of this node's writes as they happen (`queue`,
   * `append`, the WAL's `wal_encode`/`wal_write`/`wal_sync`, `commit`, `apply`, `total`, a
   * leader's `replicate` per follower, a follower's `follower_persist`: {@link WRITE_STAGES}),
   * in seconds. One observer at a time; `undefined` stops the observations (recording costs
   * nothing without an observer).
   */
  observeWriteStages(observer: WriteStageObserver | undefined): void {
    this.#host.writeTrace.observe = observer;
  }

  /** This node's view of the group: role, term, leader id, commit and applied indexes, members. */
  status(): NodeStatus {
    return this.#host.status();
  }

  /**
   * The status now, then again each time role, leader, term, applied index or configuration
   * changed (changes between two `next()` calls coalesce into the latest status; it agrees
   * with the events). Ends when the node closes or `signal` aborts.
   */
  async *watchStatus(options: { readonly signal?: AbortSignal } = {}): AsyncGenerator<NodeStatus, void> {
    const { signal } = options;
    const ended = (): boolean => this.#closed || signal?.aborted === true;
    if (ended()) return;
    this.#watchers++;
    try {
      let seen = this.#version;
      yield this.#host.status();
      while (!ended()) {
        if (seen !== this.#version) {
          seen = this.#version;
          yield this.#last;
          continue;
        }
        try {
          await once(this.#changes, 'change', signal === undefined ? {} : { signal });
        } catch {
          return; // aborted
        }
      }
    } finally {
      this.#watchers--;
    }
  }

  /** Stops the node: waiting requests fail with `StoppedError`; closes storage and the state machine. */
  async close(): Promise<void> {
    try {
      await this.#host.stop();
    } finally {
      this.#closed = true;
      this.#changes.emit('change');
    }
  }

  /** Resolves at the next status change or after `ms`; rejects with the signal's reason when it aborts. */
  async #nextChange(ms: number, signal: AbortSignal | undefined): Promise<void> {
    const wait = AbortSignal.timeout(ms);
    try {
      await once(this.#changes, 'change', {
        signal: signal === undefined ? wait : AbortSignal.any([wait, signal]),
      });
    } catch (error) {
      if (signal?.aborted === true) throw signal.reason;
      if (!wait.aborted) throw error;
    }
  }

  /** Runs a request, failing with {@link RemovedError} once removed, and maps raft refusals. */
  #call<T>(request: () => Promise<T>): Promise<T> {
    if (this.#host.removed) {
      return Promise.reject(new RemovedError('REMOVED', `member ${this.id} was removed from the group`));
    }
    // One derived promise per call (an async wrapper around `await` made two).
    let answer: Promise<T>;
    try {
      answer = request();
    } catch (error) {
      return Promise.reject(this.#translate(error));
    }
    return answer.then(undefined, (error: unknown) => {
      throw this.#translate(error);
    });
  }

  #change(change: MemberChange, options: ChangeOptions): Promise<void> {
    if (!Number.isSafeInteger(change.id) || change.id < 1) {
      return Promise.reject(
        new FlotillaError('INVALID_CONFIG', `member id: expected a positive integer, got ${change.id}`),
      );
    }
    return abortable(
      this.#call(() => this.#host.proposeMemberChange(change)),
      options.signal,
    );
  }

  /** The {@link FlotillaError} for what the runtime or the raft core threw. */
  #translate(error: unknown): unknown {
    if (isRaftError(error)) {
      if (error.code !== 'NOT_LEADER') return new RefusedError(error.code, error.message, { cause: error });
      const leader = error.leaderHint !== 0 ? error.leaderHint : this.status().leader;
      return this.#notLeader('NOT_LEADER', error.message, leader, error);
    }
    if (error instanceof NotLeaderError && error.leaderId !== 0 && error.leaderAddress === undefined) {
      return this.#notLeader(error.code, error.message, error.leaderId, error);
    }
    if (error instanceof FlotillaError && error.code === 'STOPPED' && this.#host.removed) {
      return new RemovedError('REMOVED', `member ${this.id} was removed from the group`, { cause: error });
    }
    return error;
  }

  #notLeader(code: NotLeaderError['code'], message: string, leader: number, cause: unknown): NotLeaderError {
    const m = leader === 0 ? undefined : this.#host.members().get(leader);
    return new NotLeaderError(code, message, {
      leaderHint: leader,
      cause,
      ...(m === undefined ? {} : { leaderAddress: `${m.host}:${m.port}` }),
    });
  }

  #stoppedError(): FlotillaError {
    return this.#host.removed
      ? new RemovedError('REMOVED', `member ${this.id} was removed from the group`)
      : new StoppedError('STOPPED', 'node is stopped');
  }

  /** After each Ready pass: notices changes, emits their events, stops once removed. */
  #observe(): void {
    const last = this.#last;
    const removing = !this.#removing && !this.#closed && this.#host.removed;
    const applied = this.#host.machineApplied;
    const appliedMoved = applied !== this.#applied;
    this.#applied = applied;
    // Most passes (a follower's append, a leader's proposal) change nothing reported, and an
    // applied index that no one is told of builds no status (one per write otherwise).
    const appliedTold = appliedMoved && (this.#watchers > 0 || this.listenerCount('applied') > 0);
    if (!removing && !appliedTold && !this.#host.statusChangedSince(last)) return;
    const now = this.#host.status();
    this.#last = now;
    const events: (() => void)[] = [];
    if (now.role !== last.role) events.push(() => this.emit('role', now.role, now));
    if (now.leader !== last.leader) events.push(() => this.emit('leader', now.leader, now));
    if (appliedMoved) events.push(() => this.emit('applied', now.machineApplied, now));
    if (removing) {
      this.#removing = true;
      events.push(() => this.emit('removed'));
    }
    // The host hands out the same confState object until the configuration changes.
    const confChanged = now.confState !== last.confState;
    if (events.length === 0 && now.term === last.term && !confChanged) return;
    this.#version++;
    process.nextTick(() => {
      this.#changes.emit('change');
      for (const emit of events) emit();
    });
    // A failure to close is the node's own (`onFatal` and the logger have it).
    if (removing) {
      const close = (): Promise<void> => this.close();
      void this.#host
        .stopRemoved()
        .then(close, close)
        .catch(() => {});
    }
  }
}

/** A member's {@link MemberInfo} from its entry in the member table. */
function memberInfo(id: number, m: MemberAddress | undefined, role: MemberInfo['role']): MemberInfo {
  if (m === undefined) return { id, name: '', address: '', role };
  const host = m.host.includes(':') ? `[${m.host}]` : m.host;
  return {
    id,
    name: m.name,
    address: `${host}:${m.port}`,
    role,
    ...(m.clientUrls === undefined ? {} : { clientUrls: m.clientUrls }),
  };
}

/** `promise`, or the signal's reason once it aborts first. */
function abortable<T>(promise: Promise<T>, signal: AbortSignal | undefined): Promise<T> {
  if (signal === undefined) return promise;
  if (signal.aborted) return Promise.reject(signal.reason);
  return new Promise<T>((resolve, reject) => {
    const onAbort = (): void => reject(signal.reason);
    signal.addEventListener('abort', onAbort, { once: true });
    promise.then(resolve, reject).finally(() => signal.removeEventListener('abort', onAbort));
  });
}
