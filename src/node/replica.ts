/**
 * One raft group's replica: its core, its state machine and the concerns around them —
 * proposals, reads, applying committed entries, snapshot policy, membership and leader
 * tracking — wired together. It knows the state machine only through the public interface
 * (state-machine.ts, driven by machine-driver.ts): commands and queries are opaque values. It is the group's side of each Ready (a
 * {@link ReadyHandler}); the process-wide I/O (the Ready loop's persist and send, the
 * transport, the tick timer, the lifecycle) belongs to the host (host.ts) and is
 * reached through {@link ReplicaDeps}.
 */
import type { Entry, RawNode, ReadState, Snapshot } from '../raft/index.js';
import type { ReplicaStorage } from '../storage/index.js';
import { Applier } from './apply.js';
import type { NodeCounters } from './counters.js';
import { type SessionTag, wrapCommand, wrapRegister } from './envelope.js';
import type { FlotillaError } from './errors.js';
import { LeaderWatch } from './leadership.js';
import type { Lifecycle } from './lifecycle.js';
import type { MachineDriver } from './machine-driver.js';
import {
  type MemberAddress,
  type MemberClientUrls,
  type MemberUpdate,
  wrapMemberUpdate,
} from './member-table.js';
import { type MemberChange, Membership, type PeerDirectory, publishUntilApplied } from './membership.js';
import type { RaftNodeOptions } from './options.js';
import { type EnqueueOptions, ProposalTracker } from './proposals.js';
import { ReadTracker } from './reads.js';
import type { ReadyHandler } from './ready-loop.js';
import type { ClientSessions } from './sessions.js';
import type { SnapshotSpool } from './snapshot-spool.js';
import { SnapshotScheduler } from './snapshots.js';
import { TickClock } from './ticker.js';
import type { WriteTrace } from './write-trace.js';

/** How a command is proposed: {@link EnqueueOptions}, and its client session if any. */
export interface ProposeOptions extends EnqueueOptions {
  /**
   * The command's place in a client session opened with `openSession`: a retry with the same
   * tag is applied at most once and gets the first application's result (sessions.ts).
   */
  readonly session?: SessionTag;
}

function checkSessionTag(tag: SessionTag): void {
  const ok = (n: number): boolean => Number.isSafeInteger(n) && n > 0;
  if (!ok(tag.clientId) || !ok(tag.seq)) {
    throw new TypeError(
      `a session tag needs a positive integer clientId and seq, got ${JSON.stringify(tag)}`,
    );
  }
}

/**
 * How a read is served: `linearizable` after a ReadIndex barrier confirmed by a quorum;
 * `lease` at once on a leader holding a lease (else as `linearizable`); `serializable` from
 * local state, possibly stale.
 */
export type ReadConsistency = 'linearizable' | 'lease' | 'serializable';

/** What a {@link Replica} needs from the runtime that hosts it. */
export interface ReplicaDeps {
  readonly options: RaftNodeOptions;
  readonly counters: NodeCounters;
  /** Per-stage write latencies (proposals report theirs when applied). */
  readonly trace: WriteTrace;
  /** The group's core. */
  readonly raw: RawNode;
  /** The group's log storage (applied configurations, snapshot files, compaction). */
  readonly storage: ReplicaStorage;
  /** The group's state machine. */
  readonly machine: MachineDriver;
  /** The transport's peers, which membership changes edit. */
  readonly peers: PeerDirectory;
  /** The member table recovered on start. */
  readonly members: ReadonlyMap<number, MemberAddress>;
  /** Where state received from the leader waits for its restore (on-disk state machines). */
  readonly spool: SnapshotSpool;
  /** The client sessions recovered on start. */
  readonly sessions: ClientSessions;
  /** Whether the runtime runs; a fatal error stops it. */
  readonly lifecycle: Pick<Lifecycle, 'stopped' | 'ensureRunning' | 'fail'>;
  /** Schedules the Ready loop. */
  readonly wake: () => void;
  /**
   * An input (a message, a request, a report) reached the group while its clock is paused
   * (quiesced, see ticker.ts): the runtime wakes the group before the input goes on.
   */
  readonly onQuiescedInput: () => void;
}

/** One raft group's replica concerns, wired together. */
export class Replica implements ReadyHandler {
  /** Proposals accepted here and not yet applied. */
  readonly proposals: ProposalTracker;
  /** Linearizable reads waiting for a barrier or for apply. */
  readonly reads: ReadTracker;
  /** The member table and conf changes. */
  readonly membership: Membership;
  /** The group's leader, and waiting for one. */
  readonly leadership: LeaderWatch;
  /** Snapshot policy, taking and installing snapshots. */
  readonly snapshots: SnapshotScheduler;
  private readonly clock: TickClock;
  private readonly applier: Applier;

  constructor(private readonly deps: ReplicaDeps) {
    const { options, counters, raw, storage, machine, wake } = deps;
    const { id: selfId, dataDir, requestTimeoutMs, logger } = options;
    this.clock = new TickClock(options.tickMs, () => raw.tick());
    const ticks = (): number => this.clock.delivered;
    const proposals = new ProposalTracker({
      raw,
      appliedIndex: () => machine.appliedIndex,
      options,
      counters,
      trace: deps.trace,
      wake,
    });
    this.proposals = proposals;
    this.reads = new ReadTracker({ raw, machine, options, counters, ticks, wake });
    const peers = deps.peers;
    const membership = new Membership(
      { selfId, dataDir, raw, peers, requestTimeoutMs, logger },
      deps.members,
    );
    this.membership = membership;
    const onLeaderChange = (leader: number, term: number): void => this.onLeaderChange(leader, term);
    this.leadership = new LeaderWatch({ selfId, raw, onLeaderChange });
    const fail = (error: unknown): void => deps.lifecycle.fail(error);
    // Background work of the state machine that fails (a KV commit) is as fatal as a WAL failure.
    machine.onFailure(fail);
    const { spool, sessions } = deps;
    this.snapshots = new SnapshotScheduler({
      options,
      raw,
      storage,
      machine,
      spool,
      sessions,
      membership,
      counters,
      fail,
    });
    this.applier = new Applier({ raw, storage, machine, proposals, membership, sessions, counters, logger });
  }

  /**
   * Delivers every tick the monotonic clock says is due, before any other input; a quiesced
   * group is woken first (its clock resumes).
   */
  catchUpTicks(): void {
    if (this.clock.quiesced) this.deps.onQuiescedInput();
    this.deps.counters.ticks += this.clock.catchUp();
  }

  /** Pauses the group's clock (it quiesced): no tick is delivered until {@link Replica.resumeTicks}. */
  quiesceTicks(): void {
    this.clock.quiesce();
  }

  /** Resumes the group's clock; returns the ticks that came due while it was paused. */
  resumeTicks(): number {
    return this.clock.resume();
  }

  /** Whether no proposal nor read waits here (nothing a quiesced group would leave hanging). */
  get idle(): boolean {
    return this.proposals.size === 0 && this.reads.pending === 0 && this.snapshots.pending === undefined;
  }

  /** The tick timer's work: catch up on ticks, re-issue stale read barriers. */
  onTimer(): void {
    this.catchUpTicks();
    this.reads.reissueStale();
  }

  /**
   * Proposes a state machine command (encoded by its codec); resolves with the state
   * machine's result once applied here. See `Host.proposeCommand`.
   */
  propose(command: unknown, options: ProposeOptions = {}): Promise<unknown> {
    // Not async: the caller gets the tracker's own promise, not one more wrapped around it.
    try {
      this.deps.lifecycle.ensureRunning();
      this.proposals.checkBackPressure();
      const bytes = this.deps.machine.codec.encode(command);
      const { session } = options;
      if (session !== undefined) checkSessionTag(session);
      return this.proposals.enqueue((origin, seq) => wrapCommand(origin, seq, bytes, session), options);
    } catch (error) {
      return Promise.reject(error);
    }
  }

  /** Opens a client session (sessions.ts); resolves with its id once applied here. */
  async openSession(options: EnqueueOptions = {}): Promise<number> {
    this.deps.lifecycle.ensureRunning();
    this.proposals.checkBackPressure();
    return (await this.proposals.enqueue((origin, seq) => wrapRegister(origin, seq), options)) as number;
  }

  /** Answers a query from the state machine; see `Host.readQuery`. */
  async read(query: unknown, consistency: ReadConsistency): Promise<unknown> {
    this.deps.lifecycle.ensureRunning();
    if (consistency === 'serializable') {
      this.deps.counters.readsServed++;
      return this.deps.machine.query(query);
    }
    if (consistency === 'lease') {
      // The lease is counted in ticks: deliver every tick due before trusting it.
      this.catchUpTicks();
      const index = this.deps.raw.leaseReadIndex();
      if (index !== undefined) return this.reads.enqueueAt(query, index);
    }
    return this.reads.enqueue(query);
  }

  /** Proposes a replicated change of a member's attributes; see `Host.proposeMemberUpdate`. */
  async proposeMemberUpdate(update: MemberUpdate): Promise<void> {
    this.deps.lifecycle.ensureRunning();
    this.proposals.checkBackPressure();
    await this.proposals.enqueue((origin, seq) => wrapMemberUpdate(origin, seq, update));
  }

  /** Proposes a membership change; see `Host.proposeMemberChange`. */
  async proposeMemberChange(change: MemberChange): Promise<void> {
    this.deps.lifecycle.ensureRunning();
    this.catchUpTicks();
    const done = this.membership.propose(change, this.proposals.nextToken());
    this.deps.wake();
    return done;
  }

  /** Publishes this member's name and client URLs after a start (see {@link publishUntilApplied}). */
  publish(clientUrls: MemberClientUrls): void {
    const { id, name, logger } = this.deps.options;
    void publishUntilApplied(
      { op: 'publish', id, name, clientUrls },
      {
        stopped: () => this.deps.lifecycle.stopped,
        canPublish: () => this.membership.isMember(id) && this.leadership.hasLeader(),
        propose: (update) => this.proposeMemberUpdate(update),
        logger,
      },
    );
  }

  /** Fails every waiting request: proposals, reads, leader waiters, conf change waiters. */
  failAll(error: FlotillaError): void {
    this.proposals.failAll(error);
    this.reads.failAll(error);
    this.leadership.wakeWaiters();
    this.membership.failAll(error);
  }

  /** Feeds due ticks, queued proposals and reads into the core; notices a leader change. */
  prepare(): void {
    // Not an input: a quiesced group's pass (applying what it committed) leaves it quiesced.
    this.deps.counters.ticks += this.clock.catchUp();
    this.proposals.flush();
    this.reads.flush();
    this.leadership.observe();
  }

  /** The snapshot being taken, if any (a received one must wait for it). */
  snapshotSettled(): Promise<void> | undefined {
    return this.snapshots.pending;
  }

  /** Restores a received snapshot (already durable). */
  async install(snapshot: Snapshot): Promise<void> {
    await this.snapshots.install(snapshot.meta.index, snapshot.data);
  }

  /** Applies committed entries in order and tells the snapshot policy. */
  async applyEntries(entries: readonly Entry[]): Promise<void> {
    if (entries.length === 0) return;
    await this.applier.apply(entries);
    this.snapshots.applied(entries);
  }

  /** Records the read indexes a Ready released. */
  released(readStates: readonly ReadState[]): void {
    this.reads.released(readStates);
  }

  /** After `advance`: serves reads whose index is applied, takes a snapshot when due. */
  advanced(): void {
    this.reads.serve();
    this.snapshots.maybeTake();
  }

  /** Counts and logs a leader change, and re-asks read barriers the old leader will not answer. */
  private onLeaderChange(leader: number, term: number): void {
    this.deps.counters.leaderChanges++;
    const name = this.membership.nameOf(leader);
    this.deps.options.logger.info(
      leader === 0 ? `term ${term}: no leader` : `term ${term}: leader is ${name}`,
    );
    // Barriers sent to the old leader will not be answered: ask the new one.
    this.reads.reissueUnreleased();
  }
}
