/**
 * The Raft state machine: elections (with pre-vote and check-quorum), log replication with
 * flow control and fast backtracking, snapshots, ReadIndex and leadership transfer.
 *
 * It is pure: every input is a call (`tick`, `step`, `propose`, ...), every output is data
 * collected in `msgs`, `readStates` and the log, which {@link RawNode} packages as a Ready.
 * Given the same calls and the same injected randomness it behaves identically.
 */
import { assert, assertNever } from './assert.js';
import { applyConfChangeTo, decodeConfChange, encodeConfChange, isLeaveJoint } from './confchange.js';
import { RaftError } from './errors.js';
import { RaftLog } from './log.js';
import type { Mutations } from './mutations.js';
import { NO_MUTATIONS } from './mutations.js';
import type { Random } from './prng.js';
import type { Progress } from './progress.js';
import { jointActive, jointCommitted, majorityActive } from './quorum.js';
import type { ReadRequest } from './read-only.js';
import { decodeRoundId, encodeRoundId, ReadOnly } from './read-only.js';
import type { LogReader } from './storage.js';
import { entrySizeBytes } from './storage.js';
import type { TrackerConfig } from './tracker.js';
import { configFromConfState, confStateFromConfig, isJoint, ProgressTracker } from './tracker.js';
import type {
  AppendRequest,
  AppendResponse,
  ConfChange,
  ConfChangeSingle,
  ConfState,
  Entry,
  GroupId,
  HardState,
  HeartbeatRequest,
  HeartbeatResponse,
  Message,
  NodeId,
  ProposeRequest,
  ReadIndexRequest,
  ReadState,
  Role,
  Snapshot,
  SnapshotRequest,
  SoftState,
  VoteRequest,
  VoteResponse,
} from './types.js';

/** Options of a raft node. Defaults in {@link DEFAULT_RAFT_OPTIONS}. */
export interface RaftOptions {
  /** This node's id (positive). */
  readonly id: NodeId;
  readonly groupId: GroupId;
  /** Ticks without hearing from a leader before campaigning; randomized in `[t, 2t)`. */
  readonly electionTicks: number;
  /** Ticks between leader heartbeats. Must be less than `electionTicks`. */
  readonly heartbeatTicks: number;
  /** Run a pre-vote round before incrementing the term (thesis §9.6). */
  readonly preVote: boolean;
  /** A leader steps down when it has not heard from a quorum for an election timeout. */
  readonly checkQuorum: boolean;
  /** Upper bound on the entry bytes of one append message. */
  readonly appendBytesMax: number;
  /** Append messages in flight to one follower at once. */
  readonly inflightMessagesMax: number;
  /** Entry bytes in flight to one follower at once (0 = unlimited). */
  readonly inflightBytesMax: number;
  /** Uncommitted entry bytes a leader accepts before refusing proposals (0 = unlimited). */
  readonly uncommittedBytesMax: number;
  /** Committed entry bytes handed out in one Ready. */
  readonly applyBytesMax: number;
  /** Followers forward proposals and reads to the leader (else they are refused). */
  readonly forwardProposals: boolean;
  /** The last index the application has already applied (on restart). */
  readonly applied: number;
  /** A learner is promoted only when its log is within this many entries of the leader's. */
  readonly learnerCatchUpEntriesMax: number;
  /**
   * How linearizable reads are confirmed. `safe` (default): ReadIndex, a heartbeat round per
   * batch of reads. `lease-based`: a leader that heard from a quorum recently answers at once;
   * correct only while clocks drift by less than `leaseDriftTicks` per election timeout, and
   * only with check-quorum (it is refused otherwise).
   */
  readonly readOnly: 'safe' | 'lease-based';
  /** The clock drift bound lease reads assume, in ticks per election timeout. */
  readonly leaseDriftTicks: number;
  /** Randomness for election timeouts. */
  readonly random: Random;
  /** Deliberate bugs for the simulator's checker tests; production never sets this. */
  readonly mutations: Mutations;
}

/** Defaults for every option but `id` and `random`. */
export const DEFAULT_RAFT_OPTIONS = Object.freeze({
  groupId: 1,
  electionTicks: 10,
  heartbeatTicks: 1,
  preVote: true,
  checkQuorum: true,
  appendBytesMax: 1024 * 1024,
  inflightMessagesMax: 256,
  inflightBytesMax: 0,
  uncommittedBytesMax: 0,
  applyBytesMax: 64 * 1024 * 1024,
  forwardProposals: true,
  applied: 0,
  learnerCatchUpEntriesMax: 100,
  readOnly: 'safe' as const,
  leaseDriftTicks: 1,
  mutations: NO_MUTATIONS,
});

/** A local request to read linearizably; `context` is returned in the matching ReadState. */
const LOCAL = 0;

/** The consensus state machine of one node. */
export class Raft {
  readonly id: NodeId;
  readonly options: RaftOptions;
  term = 0;
  /** The node voted for in `term`, or 0. Invariant: set at most once per term. */
  vote: NodeId = 0;
  /** The leader of `term` as far as known, or 0. */
  leader: NodeId = 0;
  role: Role = 'follower';
  readonly log: RaftLog;
  readonly tracker: ProgressTracker;
  /** Messages to send, collected until the next Ready. */
  msgs: Message[] = [];
  /** Reads released, collected until the next Ready. */
  readStates: ReadState[] = [];

  private electionElapsed = 0;
  private heartbeatElapsed = 0;
  private randomizedElectionTimeout = 0;
  /** The node a leadership transfer is handing over to, or 0. */
  leadTransferee: NodeId = 0;
  /** Index of the newest conf-change entry proposed by this leader; one at a time. */
  pendingConfIndex = 0;
  private uncommittedBytes = 0;
  private readOnly = new ReadOnly();
  /** Ticks since this node started: the clock of heartbeat rounds and leases. */
  private ticks = 0;
  /** The id of the last heartbeat round; every heartbeat broadcast starts a new one. */
  private heartbeatRound = 0;
  /** When each recent heartbeat round was sent, by round id. */
  private roundSentTick = new Map<number, number>();
  /** Per peer: the send tick of the newest heartbeat round it answered (for leases). */
  private leaseAcks = new Map<NodeId, number>();
  /** Rounds sent before this tick do not count towards a lease (set by a transfer). */
  private leaseFloorTick = 0;
  /** Nodes removed from the configuration: never members again, their messages ignored. */
  readonly removed = new Set<NodeId>();
  /** Reads that arrived before this leader committed an entry of its term. */
  private readsAwaitingCommit: ReadRequest[] = [];

  constructor(storage: LogReader, options: Partial<RaftOptions> & Pick<RaftOptions, 'id' | 'random'>) {
    this.options = { ...DEFAULT_RAFT_OPTIONS, ...options };
    const o = this.options;
    assert(o.id > 0, 'node id must be positive');
    assert(
      o.heartbeatTicks > 0 && o.heartbeatTicks < o.electionTicks,
      'need 0 < heartbeatTicks < electionTicks',
    );
    assert(o.inflightMessagesMax > 0, 'inflightMessagesMax must be positive');
    if (o.readOnly === 'lease-based' && !o.checkQuorum) {
      throw new RaftError('INVALID_OPTIONS', 'lease-based reads require check-quorum');
    }
    assert(
      o.leaseDriftTicks >= 0 && o.leaseDriftTicks < o.electionTicks,
      'need 0 <= leaseDriftTicks < electionTicks',
    );
    this.id = o.id;
    this.log = new RaftLog(storage, { noTruncateOnConflict: o.mutations.noTruncateOnConflict });
    const { hardState, confState } = storage.initialState();
    this.tracker = new ProgressTracker(
      configFromConfState(confState),
      o.inflightMessagesMax,
      o.inflightBytesMax,
    );
    this.tracker.applyConfig(this.tracker.config, this.log.lastIndex() + 1);
    for (const id of confState.removed ?? []) this.removed.add(id);
    if (hardState.term > 0 || hardState.commit > 0) this.loadHardState(hardState);
    if (o.applied > this.log.committed) {
      // A runtime may persist commit-only HardState changes without waiting for them to be
      // durable (as etcd does: the commit index can always be learned again), so after a
      // crash the application can have applied, hence seen committed, entries beyond the
      // persisted commit. They were committed; they must still be in the log.
      assert(
        o.applied <= this.log.lastIndex(),
        `applied ${o.applied} beyond the last log index ${this.log.lastIndex()}`,
      );
      this.log.commitTo(o.applied);
    }
    if (o.applied > 0) this.log.appliedTo(o.applied);
    this.becomeFollower(this.term, 0);
  }

  private loadHardState(hs: HardState): void {
    assert(
      hs.commit >= this.log.committed && hs.commit <= this.log.lastIndex(),
      `persisted commit ${hs.commit} outside [${this.log.committed}, ${this.log.lastIndex()}]`,
    );
    this.log.committed = hs.commit;
    this.term = hs.term;
    this.vote = hs.vote;
  }

  /** The state that must be persisted. */
  hardState(): HardState {
    return { term: this.term, vote: this.vote, commit: this.log.committed };
  }

  softState(): SoftState {
    return { role: this.role, leader: this.leader };
  }

  /** Whether this node may campaign: a voter of the current configuration. */
  promotable(): boolean {
    return this.tracker.isVoter(this.id);
  }

  // ---------------------------------------------------------------- role transitions

  becomeFollower(term: number, leader: NodeId): void {
    this.reset(term);
    this.leader = leader;
    this.role = 'follower';
  }

  private becomePreCandidate(): void {
    assert(this.role !== 'leader', 'leader cannot become pre-candidate');
    // Pre-vote changes neither term nor vote: a rejected pre-candidate disrupts nothing.
    this.tracker.resetVotes();
    this.leader = 0;
    this.role = 'pre-candidate';
  }

  private becomeCandidate(): void {
    assert(this.role !== 'leader', 'leader cannot become candidate');
    this.reset(this.term + 1);
    this.vote = this.id;
    this.role = 'candidate';
  }

  private becomeLeader(): void {
    assert(this.role === 'candidate', `${this.role} cannot become leader`);
    this.reset(this.term);
    this.leader = this.id;
    this.role = 'leader';
    const self = this.tracker.progress.get(this.id)!;
    self.becomeReplicate();
    // Conf changes wait until everything up to here is applied (one change at a time).
    this.pendingConfIndex = this.log.lastIndex();
    // A no-op entry of the new term lets the leader commit, and thereby learn the commit
    // index of earlier terms, without waiting for a client (§5.4.2, §6.4).
    this.appendEntries([{ index: 0, term: 0, type: 'normal', data: new Uint8Array() }]);
  }

  private reset(term: number): void {
    if (this.term !== term) {
      assert(term > this.term, `term goes back from ${this.term} to ${term}`);
      this.term = term;
      this.vote = 0;
    }
    this.leader = 0;
    this.electionElapsed = 0;
    this.heartbeatElapsed = 0;
    this.randomizedElectionTimeout =
      this.options.electionTicks + this.options.random.int(this.options.electionTicks);
    this.leadTransferee = 0;
    this.tracker.resetVotes();
    const next = this.log.lastIndex() + 1;
    for (const [id, pr] of this.tracker.progress) {
      pr.becomeProbe();
      pr.matchIndex = id === this.id ? this.log.stableLastIndex() : 0;
      pr.nextIndex = next;
      pr.recentActive = id === this.id;
    }
    this.pendingConfIndex = 0;
    this.uncommittedBytes = 0;
    this.readOnly = new ReadOnly();
    this.readsAwaitingCommit = [];
    this.roundSentTick = new Map();
    this.leaseAcks = new Map();
  }

  // ---------------------------------------------------------------- time

  /** Advances the logical clock by one tick. */
  tick(): void {
    this.ticks++;
    if (this.role === 'leader') this.tickHeartbeat();
    else this.tickElection();
  }

  private tickElection(): void {
    this.electionElapsed++;
    if (this.promotable() && this.electionElapsed >= this.randomizedElectionTimeout) {
      this.electionElapsed = 0;
      this.hup(false);
    }
  }

  private tickHeartbeat(): void {
    this.heartbeatElapsed++;
    this.electionElapsed++;
    if (this.electionElapsed >= this.options.electionTicks) {
      this.electionElapsed = 0;
      if (this.options.checkQuorum) this.checkQuorumActive();
      if (this.role !== 'leader') return;
      // A transfer that has not completed within an election timeout is abandoned.
      this.leadTransferee = 0;
    }
    if (this.heartbeatElapsed >= this.options.heartbeatTicks) {
      this.heartbeatElapsed = 0;
      const round = this.broadcastHeartbeat();
      // Pending reads ride on every heartbeat round: a round lost on the way is retried by the
      // next one, whose confirmation also confirms every older round (read-only.ts).
      if (this.readOnly.pendingCount > 0) this.readOnly.startRound(this.id, round);
    }
  }

  /** An isolated leader steps down: it cannot commit, and must not serve lease reads. */
  private checkQuorumActive(): void {
    if (!this.tracker.quorumActive(this.id)) {
      this.becomeFollower(this.term, 0);
      return;
    }
    for (const [id, pr] of this.tracker.progress) if (id !== this.id) pr.recentActive = false;
  }

  // ---------------------------------------------------------------- elections

  /** Starts an election (after pre-vote, if enabled). `transfer` bypasses pre-vote and leases. */
  hup(transfer: boolean): void {
    if (this.role === 'leader' || !this.promotable()) return;
    if (this.hasUnappliedConfChange()) return;
    if (this.options.preVote && !transfer) this.campaign('pre-vote', false);
    else this.campaign('vote', transfer);
  }

  /** A node must not campaign while it knows of a conf change it has not applied yet. */
  private hasUnappliedConfChange(): boolean {
    if (this.log.committed <= this.log.applied) return false;
    const lo = Math.max(this.log.applied + 1, this.log.firstIndex());
    const entries = this.log.slice(lo, this.log.committed + 1, Number.MAX_SAFE_INTEGER);
    return entries.some((e) => e.type === 'conf-change');
  }

  private campaign(kind: 'pre-vote' | 'vote', transfer: boolean): void {
    let term: number;
    if (kind === 'pre-vote') {
      this.becomePreCandidate();
      term = this.term + 1;
    } else {
      this.becomeCandidate();
      term = this.term;
    }
    this.tracker.recordVote(this.id, true);
    if (this.tracker.voteResult() === 'won') {
      // A single-voter group wins at once.
      if (kind === 'pre-vote') this.campaign('vote', transfer);
      else this.becomeLeader();
      return;
    }
    const lastLogIndex = this.log.lastIndex();
    const lastLogTerm = this.log.lastTerm();
    for (const id of this.tracker.voterIds()) {
      if (id === this.id) continue;
      this.send({
        type: 'vote',
        groupId: this.options.groupId,
        from: this.id,
        to: id,
        term,
        preVote: kind === 'pre-vote',
        lastLogIndex,
        lastLogTerm,
        transfer,
      });
    }
  }

  private handleVoteRequest(m: VoteRequest): void {
    // We may vote again for the same candidate (a retransmission); for a new candidate only
    // if we have not voted and know no leader in this term; a pre-vote for a future term
    // commits us to nothing.
    const canVote =
      this.vote === m.from || (this.vote === 0 && this.leader === 0) || (m.preVote && m.term > this.term);
    const logOk =
      this.options.mutations.voteWithoutLogCheck || this.log.isUpToDate(m.lastLogIndex, m.lastLogTerm);
    const granted = canVote && logOk;
    this.send({
      type: 'vote-response',
      groupId: this.options.groupId,
      from: this.id,
      to: m.from,
      // A granted vote answers in the candidate's term; a rejection tells it ours.
      term: granted ? m.term : this.term,
      preVote: m.preVote,
      granted,
    });
    if (granted && !m.preVote) {
      this.electionElapsed = 0;
      this.vote = m.from;
    }
  }

  private handleVoteResponse(m: VoteResponse): void {
    const expected = this.role === 'pre-candidate';
    if (m.preVote !== expected) return;
    this.tracker.recordVote(m.from, m.granted);
    const result = this.tracker.voteResult();
    if (result === 'won') {
      if (this.role === 'pre-candidate') this.campaign('vote', false);
      else {
        this.becomeLeader();
        this.broadcastAppend();
      }
    } else if (result === 'lost') {
      this.becomeFollower(this.term, 0);
    }
  }

  // ---------------------------------------------------------------- step

  /** Handles a message from a peer (or a local request with term 0). */
  step(m: Message): void {
    assert(m.to === this.id || m.term === LOCAL, `message for ${m.to} delivered to ${this.id}`);
    // A removed node that comes back is not a member: it must not disturb the cluster.
    if (this.removed.has(m.from) && m.from !== this.id) return;
    if (m.term !== LOCAL && !this.stepTerm(m)) return;
    switch (m.type) {
      case 'vote':
        this.handleVoteRequest(m);
        return;
      case 'vote-response':
        if (this.role === 'pre-candidate' || this.role === 'candidate') this.handleVoteResponse(m);
        return;
      default:
        this.stepRole(m);
    }
  }

  private stepRole(m: Message): void {
    try {
      if (this.role === 'leader') this.stepLeader(m);
      else this.stepFollower(m);
    } catch (error) {
      // A request a peer forwarded to us may be refused (a transfer in progress, too much
      // uncommitted data): the peer's client times out and retries. Only a local caller
      // gets the error.
      if (m.term === LOCAL && m.from !== this.id && error instanceof RaftError) return;
      throw error;
    }
  }

  /** The term rules common to every role (§5.1). Returns false if the message is done with. */
  private stepTerm(m: Message): boolean {
    if (m.term > this.term) return this.stepHigherTerm(m);
    if (m.term < this.term) {
      this.stepLowerTerm(m);
      return false;
    }
    return true;
  }

  private stepHigherTerm(m: Message): boolean {
    if (m.type === 'vote') {
      // Leader lease (§4.2.3): a node that heard from a leader within the minimum election
      // timeout ignores vote requests, so a removed or partitioned node cannot depose a
      // healthy leader. A transfer explicitly asks to bypass it.
      const timeout = this.options.electionTicks;
      // With lease reads on, a restarted node also keeps the promise it may have made before
      // the crash: no vote for a new leader within an election timeout of hearing one.
      const bootLease = this.options.readOnly === 'lease-based' && this.ticks < timeout;
      const inLease =
        this.options.checkQuorum && ((this.leader !== 0 && this.electionElapsed < timeout) || bootLease);
      if (inLease && !m.transfer) return false;
      // A pre-vote changes nothing here; a real vote moves us to its term first.
      if (!m.preVote) this.becomeFollower(m.term, 0);
      return true;
    }
    if (m.type === 'vote-response' && m.preVote && m.granted) return true;
    if (m.type === 'append' || m.type === 'heartbeat' || m.type === 'snapshot') {
      this.becomeFollower(m.term, m.from);
    } else {
      this.becomeFollower(m.term, 0);
    }
    return true;
  }

  private stepLowerTerm(m: Message): void {
    if (
      (this.options.checkQuorum || this.options.preVote) &&
      (m.type === 'heartbeat' || m.type === 'append')
    ) {
      // A stale leader (e.g. back from a partition) learns our term and steps down; without
      // this, with pre-vote on, it could keep the cluster from electing anyone.
      this.send({
        type: 'append-response',
        groupId: this.options.groupId,
        from: this.id,
        to: m.from,
        term: this.term,
        reject: false,
        index: 0,
        hintIndex: 0,
        hintTerm: 0,
      });
    } else if (m.type === 'vote') {
      // Tell the (pre-)candidate our term (Figure 2: "reply false if term < currentTerm").
      // Without this, a candidate whose term fell behind can stay behind for good when no
      // one with a newer term ever sends to it, e.g. after membership changes.
      this.send({
        type: 'vote-response',
        groupId: this.options.groupId,
        from: this.id,
        to: m.from,
        term: this.term,
        preVote: m.preVote,
        granted: false,
      });
    }
  }

  private stepLeader(m: Message): void {
    switch (m.type) {
      case 'propose':
        this.leaderPropose(m.entries);
        return;
      case 'read-index':
        this.leaderReadIndex({ from: m.from, context: m.context, index: this.log.committed });
        return;
      case 'append-response':
        this.handleAppendResponse(m);
        return;
      case 'heartbeat-response':
        this.handleHeartbeatResponse(m);
        return;
      case 'snapshot-status':
        this.handleSnapshotStatus(m.from, m.reject);
        return;
      case 'unreachable': {
        // Streaming optimistically to an unreachable peer only fills its window: probe instead.
        const pr = this.tracker.progress.get(m.from);
        if (pr !== undefined && pr.state === 'replicate') pr.becomeProbe();
        return;
      }
      case 'transfer-leader':
        this.handleTransferLeader(m.transferee);
        return;
      case 'append':
      case 'heartbeat':
      case 'snapshot':
        // Two leaders in one term would violate election safety (§5.2).
        assert(false, `leader ${this.id} got ${m.type} from ${m.from} in its own term ${this.term}`);
        return;
      case 'timeout-now':
      case 'read-index-response':
      case 'vote':
      case 'vote-response':
        return;
      default:
        assertNever(m, 'message');
    }
  }

  private stepFollower(m: Message): void {
    switch (m.type) {
      case 'propose':
      case 'read-index':
        this.forwardToLeader(m);
        return;
      case 'read-index-response':
        if (m.index > 0) this.readStates.push({ index: m.index, context: m.context });
        return;
      case 'append':
        this.followLeader(m.from);
        this.handleAppend(m);
        return;
      case 'heartbeat':
        this.followLeader(m.from);
        this.handleHeartbeat(m);
        return;
      case 'snapshot':
        this.followLeader(m.from);
        this.handleSnapshot(m);
        return;
      case 'timeout-now':
        // The leader asks us to take over now (leadership transfer), bypassing pre-vote.
        this.hup(true);
        return;
      case 'transfer-leader':
        if (this.leader !== 0) this.send({ ...m, to: this.leader, term: LOCAL });
        return;
      case 'append-response':
      case 'heartbeat-response':
      case 'snapshot-status':
      case 'unreachable':
      case 'vote':
      case 'vote-response':
        return;
      default:
        assertNever(m, 'message');
    }
  }

  /**
   * Forwards a proposal or read to the leader. A local request that cannot be forwarded is
   * refused with `NOT_LEADER`; one forwarded to us by a peer that thought we lead is dropped
   * (its client times out and retries), never forwarded again, so requests cannot loop.
   */
  private forwardToLeader(m: ProposeRequest | ReadIndexRequest): void {
    const local = m.from === this.id;
    if (local && this.role === 'follower' && this.leader !== 0 && this.options.forwardProposals) {
      this.send({ ...m, to: this.leader, term: LOCAL });
      return;
    }
    if (!local) return;
    const what = m.type === 'propose' ? 'accept a proposal' : 'confirm a read';
    throw new RaftError('NOT_LEADER', `node ${this.id} knows no leader to ${what}`, this.leader);
  }

  /** A candidate that hears from the leader of its term steps back to follower. */
  private followLeader(leader: NodeId): void {
    if (this.role !== 'follower') this.becomeFollower(this.term, leader);
    this.electionElapsed = 0;
    this.leader = leader;
  }

  // ---------------------------------------------------------------- proposals

  /** Appends `data` entries to the log if leader (or forwards them); throws when refused. */
  propose(entries: readonly Entry[]): void {
    this.step({
      type: 'propose',
      groupId: this.options.groupId,
      from: this.id,
      to: this.id,
      term: LOCAL,
      entries,
    });
  }

  private leaderPropose(entries: readonly Entry[]): void {
    if (this.leadTransferee !== 0) {
      throw new RaftError(
        'TRANSFER_IN_PROGRESS',
        `leadership is being transferred to ${this.leadTransferee}`,
      );
    }
    if (!this.tracker.progress.has(this.id)) {
      throw new RaftError('NOT_LEADER', `node ${this.id} was removed from the configuration`);
    }
    const conf = entries.findIndex((e) => e.type === 'conf-change');
    if (conf >= 0) this.checkConfChangeAllowed(entries.filter((e) => e.type === 'conf-change').length);
    else if (this.removingSelf()) {
      throw new RaftError('NOT_LEADER', `leader ${this.id} is being removed from the configuration`);
    }
    this.appendEntries(entries);
    if (conf >= 0) this.pendingConfIndex = this.log.lastIndex() - (entries.length - 1 - conf);
    this.broadcastAppend();
  }

  /**
   * Whether this leader has proposed (or inherited) a change that removes it. It then accepts
   * no more proposals: its log must not grow past the entry removing it, which commits only
   * with the new voters' acknowledgements. Otherwise a removed leader could hold entries no
   * new voter has, refuse them its vote as out of date, and leave a joint configuration that
   * still needs that vote without a leader (a liveness hole of applying changes on commit).
   */
  private removingSelf(): boolean {
    let config = this.tracker.config;
    if (!config.voters.incoming.has(this.id)) return true;
    if (this.pendingConfIndex <= this.log.applied) return false;
    const lo = Math.max(this.log.applied + 1, this.log.firstIndex());
    for (const e of this.log.slice(lo, this.log.lastIndex() + 1, Number.MAX_SAFE_INTEGER)) {
      if (e.type !== 'conf-change') continue;
      try {
        config = applyConfChangeTo(config, decodeConfChange(e.data));
      } catch (error) {
        if (!(error instanceof RaftError)) throw error;
      }
    }
    return !config.voters.incoming.has(this.id);
  }

  private checkConfChangeAllowed(count: number): void {
    if (count > 1) throw new RaftError('INVALID_CONF_CHANGE', 'one configuration change per proposal');
    if (this.pendingConfIndex > this.log.applied) {
      throw new RaftError('CONF_CHANGE_IN_PROGRESS', 'a configuration change is still being applied');
    }
    // A new leader must first commit an entry of its own term (raft-dev, 2015).
    if (this.log.term(this.log.committed) !== this.term) {
      throw new RaftError('CONF_CHANGE_IN_PROGRESS', 'the leader has not yet committed an entry of its term');
    }
  }

  /** Assigns term and index to new entries and appends them to the leader's log. */
  private appendEntries(entries: readonly Entry[]): void {
    let bytes = 0;
    for (const e of entries) bytes += entrySizeBytes(e);
    const max = this.options.uncommittedBytesMax;
    if (max > 0 && this.uncommittedBytes > 0 && this.uncommittedBytes + bytes > max) {
      throw new RaftError('PROPOSAL_DROPPED', `too many uncommitted bytes (${this.uncommittedBytes})`);
    }
    this.uncommittedBytes += bytes;
    let index = this.log.lastIndex();
    const stamped = entries.map((e) => ({ index: ++index, term: this.term, type: e.type, data: e.data }));
    this.log.append(stamped);
    // The leader's own acknowledgement comes from `persisted`, once the write is durable.
  }

  /**
   * The runtime made entries up to (`index`, `term`) durable. Called by {@link RawNode.advance}.
   */
  persisted(index: number, term: number): void {
    this.log.stableTo(index, term);
    if (this.role !== 'leader') return;
    const self = this.tracker.progress.get(this.id);
    if (self !== undefined && this.log.term(index) === term && self.maybeUpdate(index))
      this.maybeCommitAndBroadcast();
  }

  // ---------------------------------------------------------------- replication (leader)

  /** Sends appends to every follower that has something to receive. */
  broadcastAppend(): void {
    for (const id of this.tracker.progress.keys()) if (id !== this.id) this.maybeSendAppend(id, true);
  }

  /**
   * Sends the next append (or a snapshot) to `to`, unless its progress is paused. Sends an
   * empty append only when `sendIfEmpty` (to carry a commit index or probe). Returns
   * whether a message was sent.
   */
  private maybeSendAppend(to: NodeId, sendIfEmpty: boolean): boolean {
    const pr = this.tracker.progress.get(to);
    if (pr === undefined || pr.isPaused()) return false;
    const prevLogIndex = pr.nextIndex - 1;
    const prevLogTerm = this.log.term(prevLogIndex);
    const entries = this.log.entriesFrom(pr.nextIndex, this.options.appendBytesMax);
    if (entries === undefined || (prevLogTerm === 0 && prevLogIndex > 0)) return this.sendSnapshot(to, pr);
    if (entries.length === 0 && !sendIfEmpty) return false;
    let bytes = 0;
    for (const e of entries) bytes += entrySizeBytes(e);
    const message: AppendRequest = {
      type: 'append',
      groupId: this.options.groupId,
      from: this.id,
      to,
      term: this.term,
      prevLogIndex,
      prevLogTerm,
      entries,
      commit: this.log.committed,
    };
    this.send(message);
    pr.sentEntries(prevLogIndex + entries.length, entries.length, bytes);
    return true;
  }

  private sendSnapshot(to: NodeId, pr: Progress): boolean {
    // Snapshots are expensive: only send to a peer we have recently heard from.
    if (!pr.recentActive) return false;
    const snapshot = this.log.snapshot();
    assert(snapshot.meta.index > 0, `follower ${to} needs a snapshot but none exists`);
    const message: SnapshotRequest = {
      type: 'snapshot',
      groupId: this.options.groupId,
      from: this.id,
      to,
      term: this.term,
      snapshot,
    };
    this.send(message);
    pr.becomeSnapshot(snapshot.meta.index);
    return true;
  }

  private handleAppendResponse(m: AppendResponse): void {
    const pr = this.tracker.progress.get(m.from);
    if (pr === undefined) return;
    pr.recentActive = true;
    if (m.reject) {
      // Skip a whole term of conflicting entries per round trip (§5.3, fast backtracking).
      let hint = m.hintIndex;
      if (m.hintTerm > 0) hint = this.log.findConflictByTerm(m.hintIndex, m.hintTerm).index;
      if (pr.maybeDecrTo(m.index, hint)) {
        if (pr.state === 'replicate') pr.becomeProbe();
        this.maybeSendAppend(m.from, true);
      }
      return;
    }
    const wasPaused = pr.isPaused();
    // A probe answered exactly at the known match proves the follower is caught up: stop
    // probing too, or an idle follower stays in probe state forever (an empty append per
    // heartbeat, new entries held back until the next heartbeat answer), etcd-io/raft#52.
    const caughtUpProbe = pr.state === 'probe' && m.index === pr.matchIndex;
    if (!pr.maybeUpdate(m.index) && !caughtUpProbe) return;
    if (pr.state === 'probe') pr.becomeReplicate();
    else if (pr.state === 'snapshot' && pr.matchIndex + 1 >= this.log.firstIndex()) {
      pr.becomeProbe();
      pr.becomeReplicate();
    } else if (pr.state === 'replicate') pr.inflights.freeLE(m.index);
    if (this.maybeCommitAndBroadcast()) {
      // Every follower was just sent the new commit index.
    } else if (wasPaused) {
      this.maybeSendAppend(m.from, true);
    }
    // Stream as much as the window allows.
    while (this.maybeSendAppend(m.from, false)) {}
    if (m.from === this.leadTransferee && pr.matchIndex === this.log.lastIndex()) this.sendTimeoutNow(m.from);
  }

  /** Moves the commit index if a quorum matches more; on success tells everyone. */
  private maybeCommitAndBroadcast(): boolean {
    const committed = this.quorumCommitted();
    const before = this.log.committed;
    if (!this.log.maybeCommit(committed, this.term, this.options.mutations.commitPriorTerm)) return false;
    this.releaseUncommitted(before);
    this.onCommitInTerm();
    this.broadcastAppend();
    return true;
  }

  private quorumCommitted(): number {
    if (!this.options.mutations.noJointQuorum) return this.tracker.committed();
    // Deliberate bug: decide with the incoming half of a joint configuration only.
    const incoming = { incoming: this.tracker.config.voters.incoming, outgoing: new Set<NodeId>() };
    const saved = this.tracker.config;
    this.tracker.config = { ...saved, voters: incoming };
    const result = this.tracker.committed();
    this.tracker.config = saved;
    return result;
  }

  private releaseUncommitted(before: number): void {
    if (this.uncommittedBytes === 0) return;
    const entries = this.log.slice(
      Math.max(before + 1, this.log.firstIndex()),
      this.log.committed + 1,
      Number.MAX_SAFE_INTEGER,
    );
    for (const e of entries) this.uncommittedBytes = Math.max(0, this.uncommittedBytes - entrySizeBytes(e));
  }

  private handleHeartbeatResponse(m: HeartbeatResponse): void {
    const pr = this.tracker.progress.get(m.from);
    if (pr === undefined) return;
    pr.recentActive = true;
    pr.probeSent = false;
    if (pr.state === 'replicate' && pr.inflights.full()) pr.inflights.freeFirstOne();
    if (pr.matchIndex < this.log.lastIndex() || pr.state === 'probe') this.maybeSendAppend(m.from, true);
    const round = decodeRoundId(m.context);
    if (round === 0) return;
    const sent = this.roundSentTick.get(round);
    if (sent !== undefined && sent > (this.leaseAcks.get(m.from) ?? -1)) this.leaseAcks.set(m.from, sent);
    const released = this.readOnly.ack(round, m.from, (acks) => this.isQuorum(acks));
    for (const request of released) this.releaseRead(request);
  }

  private handleSnapshotStatus(from: NodeId, reject: boolean): void {
    const pr = this.tracker.progress.get(from);
    if (pr === undefined || pr.state !== 'snapshot') return;
    if (reject) pr.pendingSnapshot = 0;
    pr.becomeProbe();
    // Wait for the next heartbeat response before probing: the peer may still be busy.
    pr.probeSent = true;
  }

  /**
   * Sends heartbeats to every peer as a new round, whose id travels in the context so that
   * answers can confirm ReadIndex batches and renew the lease. Returns the round id.
   */
  private broadcastHeartbeat(): number {
    const round = ++this.heartbeatRound;
    this.roundSentTick.set(round, this.ticks);
    // Only rounds younger than an election timeout can matter; keep the map bounded.
    if (this.roundSentTick.size > 4 * this.options.electionTicks) {
      const oldest = this.roundSentTick.keys().next().value;
      if (oldest !== undefined) this.roundSentTick.delete(oldest);
    }
    const context = encodeRoundId(round);
    for (const [id, pr] of this.tracker.progress) {
      if (id === this.id) continue;
      const message: HeartbeatRequest = {
        type: 'heartbeat',
        groupId: this.options.groupId,
        from: this.id,
        to: id,
        term: this.term,
        // Never tell a follower to commit past what it is known to match (§5.3, and
        // hashicorp/raft 695): its log beyond `matchIndex` may still differ from ours.
        commit: Math.min(pr.matchIndex, this.log.committed),
        context,
      };
      this.send(message);
    }
    return round;
  }

  // ---------------------------------------------------------------- replication (follower)

  private handleAppend(m: AppendRequest): void {
    if (m.prevLogIndex < this.log.committed) {
      // Everything up to our commit index already matches: say how far.
      this.sendAppendResponse(m.from, false, this.log.committed, 0, 0);
      return;
    }
    const lastNew = this.log.maybeAppend(m.prevLogIndex, m.prevLogTerm, m.commit, m.entries);
    if (lastNew !== undefined) {
      this.sendAppendResponse(m.from, false, lastNew, 0, 0);
      return;
    }
    // Hint the last index whose term is at most the leader's prevLogTerm, so the leader can
    // skip all our entries of a term it does not have.
    const hint = this.log.findConflictByTerm(Math.min(m.prevLogIndex, this.log.lastIndex()), m.prevLogTerm);
    this.sendAppendResponse(m.from, true, m.prevLogIndex, hint.index, hint.term);
  }

  private sendAppendResponse(
    to: NodeId,
    reject: boolean,
    index: number,
    hintIndex: number,
    hintTerm: number,
  ): void {
    this.send({
      type: 'append-response',
      groupId: this.options.groupId,
      from: this.id,
      to,
      term: this.term,
      reject,
      index,
      hintIndex,
      hintTerm,
    });
  }

  private handleHeartbeat(m: HeartbeatRequest): void {
    this.log.commitTo(Math.min(m.commit, this.log.lastIndex()));
    this.send({
      type: 'heartbeat-response',
      groupId: this.options.groupId,
      from: this.id,
      to: m.from,
      term: this.term,
      context: m.context,
    });
  }

  private handleSnapshot(m: SnapshotRequest): void {
    // Either way the answer is how far our log now provably matches the leader's.
    if (this.restore(m.snapshot)) this.sendAppendResponse(m.from, false, this.log.lastIndex(), 0, 0);
    else this.sendAppendResponse(m.from, false, this.log.committed, 0, 0);
  }

  /** Installs a snapshot from the leader unless our log already covers it. */
  private restore(snapshot: Snapshot): boolean {
    const { index, term } = snapshot.meta;
    if (index <= this.log.committed) return false;
    // Entries handed to the application are being applied against the current membership;
    // switching to the snapshot's under them would apply their conf changes twice. The leader
    // sends the snapshot again later.
    if (this.log.applying > this.log.applied) return false;
    if (this.log.matchTerm(index, term)) {
      // Our log already has the snapshot's last entry: just fast-forward the commit index.
      this.log.commitTo(index);
      return false;
    }
    this.log.restore(snapshot);
    this.tracker.applyConfig(configFromConfState(snapshot.meta.confState), this.log.lastIndex() + 1);
    for (const id of snapshot.meta.confState.removed ?? []) this.removed.add(id);
    return true;
  }

  // ---------------------------------------------------------------- reads

  /** Requests a linearizable read; `context` comes back in a ReadState. Throws when refused. */
  readIndex(context: Uint8Array): void {
    const m: ReadIndexRequest = {
      type: 'read-index',
      groupId: this.options.groupId,
      from: this.id,
      to: this.id,
      term: LOCAL,
      context,
    };
    this.step(m);
  }

  private leaderReadIndex(request: ReadRequest): void {
    if (this.options.mutations.staleLeaderRead) {
      // Deliberate bug: answer from local state without confirming leadership.
      this.releaseRead(request);
      return;
    }
    // Until this leader commits an entry of its own term it does not know the latest commit
    // index (§6.4): hold the read.
    if (this.log.term(this.log.committed) !== this.term) {
      this.readsAwaitingCommit.push(request);
      return;
    }
    if (
      this.isQuorum(new Set([this.id])) ||
      this.options.mutations.readIndexNoHeartbeat ||
      (this.options.readOnly === 'lease-based' && this.inLease())
    ) {
      this.releaseRead(request);
      return;
    }
    this.readOnly.add(request);
  }

  private onCommitInTerm(): void {
    if (this.readsAwaitingCommit.length === 0 || this.log.term(this.log.committed) !== this.term) return;
    const waiting = this.readsAwaitingCommit;
    this.readsAwaitingCommit = [];
    for (const r of waiting) this.leaderReadIndex({ ...r, index: this.log.committed });
  }

  /** Starts one heartbeat round for every read queued since the last one (batching). */
  flushReads(): void {
    if (this.role !== 'leader' || !this.readOnly.hasUnsent()) return;
    this.readOnly.startRound(this.id, this.broadcastHeartbeat());
  }

  /**
   * Whether this leader holds a lease: a quorum answered a heartbeat round sent less than
   * `electionTicks - 1 - leaseDriftTicks` ticks ago. Followers promise not to vote for another
   * leader within `electionTicks` of their ticks after hearing from us (the leader lease of
   * `stepHigherTerm`); one tick is lost to tick granularity, and `leaseDriftTicks` to clocks
   * that may run faster than ours. A paused process must catch up its ticks before serving:
   * the runtime delivers missed ticks before any other input.
   */
  private inLease(): boolean {
    if (this.leadTransferee !== 0) return false;
    const floor = this.leaseFloorTick;
    const start = jointCommitted(this.tracker.config.voters, (id) => {
      if (id === this.id) return this.ticks;
      const acked = this.leaseAcks.get(id);
      return acked !== undefined && acked >= floor ? acked : Number.NEGATIVE_INFINITY;
    });
    const drift = this.options.mutations.leaseReadIgnoresDrift ? 0 : this.options.leaseDriftTicks;
    return this.ticks < start + this.options.electionTicks - 1 - drift;
  }

  /** Whether reads wait for a heartbeat round to be started. */
  hasUnsentReads(): boolean {
    return this.role === 'leader' && this.readOnly.hasUnsent();
  }

  private isQuorum(acks: ReadonlySet<NodeId>): boolean {
    const voters = this.tracker.config.voters;
    if (this.options.mutations.noJointQuorum) return majorityActive(voters.incoming, (id) => acks.has(id));
    return jointActive(voters, (id) => acks.has(id));
  }

  private releaseRead(request: ReadRequest): void {
    if (request.from === this.id) {
      this.readStates.push({ index: request.index, context: request.context });
      return;
    }
    this.send({
      type: 'read-index-response',
      groupId: this.options.groupId,
      from: this.id,
      to: request.from,
      term: this.term,
      index: request.index,
      context: request.context,
    });
  }

  // ---------------------------------------------------------------- leadership transfer

  /** Hands leadership to `transferee` (thesis §3.10). */
  transferLeadership(transferee: NodeId): void {
    this.step({
      type: 'transfer-leader',
      groupId: this.options.groupId,
      from: this.id,
      to: this.id,
      term: LOCAL,
      transferee,
    });
  }

  private handleTransferLeader(transferee: NodeId): void {
    const pr = this.tracker.progress.get(transferee);
    if (pr === undefined || pr.isLearner) {
      throw new RaftError('INVALID_TRANSFER_TARGET', `node ${transferee} is not a voter`);
    }
    if (transferee === this.id || transferee === this.leadTransferee) return;
    this.leadTransferee = transferee;
    // The transfer must finish within an election timeout, else it is abandoned.
    this.electionElapsed = 0;
    if (pr.matchIndex === this.log.lastIndex()) this.sendTimeoutNow(transferee);
    else this.maybeSendAppend(transferee, true);
  }

  private sendTimeoutNow(to: NodeId): void {
    // The target will campaign bypassing followers' leases: ours ends here.
    this.leaseFloorTick = this.ticks + 1;
    this.send({ type: 'timeout-now', groupId: this.options.groupId, from: this.id, to, term: this.term });
  }

  // ---------------------------------------------------------------- configuration

  /**
   * Proposes a membership change. Refused with `INVALID_CONF_CHANGE` when it is not valid
   * from the current configuration, `NODE_ID_REUSED` for a removed id, `LEARNER_NOT_READY`
   * when promoting a learner that lags more than `learnerCatchUpEntriesMax` entries, and
   * `CONF_CHANGE_IN_PROGRESS` while another change is pending or the leader has not
   * committed an entry of its term yet.
   */
  proposeConfChange(cc: ConfChange): void {
    if (this.role !== 'leader') {
      throw new RaftError('NOT_LEADER', `node ${this.id} is not the leader`, this.leader);
    }
    // One change at a time: while one is pending, including the automatic leave of a joint
    // configuration, the next one is early, not invalid (the caller retries later).
    const config = this.tracker.config;
    if (
      this.pendingConfIndex > this.log.applied ||
      (isJoint(config) && config.autoLeave && !isLeaveJoint(cc))
    ) {
      throw new RaftError('CONF_CHANGE_IN_PROGRESS', 'a configuration change is still being applied');
    }
    // Validate against the configuration it will apply to (the previous one is applied).
    applyConfChangeTo(config, cc);
    for (const change of cc.changes) this.checkSingleChange(change);
    this.propose([{ index: 0, term: 0, type: 'conf-change', data: encodeConfChange(cc) }]);
  }

  private checkSingleChange(change: ConfChangeSingle): void {
    if (this.removed.has(change.node)) {
      throw new RaftError('NODE_ID_REUSED', `node id ${change.node} was removed and cannot be reused`);
    }
    if (change.type !== 'add-voter' || !this.tracker.config.learners.has(change.node)) return;
    const pr = this.tracker.progress.get(change.node);
    const lag = this.log.lastIndex() - (pr?.matchIndex ?? 0);
    if (lag > this.options.learnerCatchUpEntriesMax) {
      throw new RaftError(
        'LEARNER_NOT_READY',
        `learner ${change.node} is ${lag} entries behind (at most ${this.options.learnerCatchUpEntriesMax} allowed)`,
      );
    }
  }

  /**
   * Applies a committed membership change (the application calls this when it applies a
   * conf-change entry, in log order). Returns the new configuration.
   */
  applyConfChange(cc: ConfChange): TrackerConfig {
    const before = new Set(this.tracker.memberIds());
    const config = applyConfChangeTo(this.tracker.config, cc);
    this.applyConfig(config);
    const after = new Set(this.tracker.memberIds());
    for (const id of before) if (!after.has(id)) this.removed.add(id);
    return config;
  }

  /**
   * A leader in a joint configuration with auto-leave proposes leaving it once the entry
   * that entered it is applied (thesis §4.3: C_old,new then C_new).
   */
  maybeAutoLeave(): void {
    const config = this.tracker.config;
    if (this.role !== 'leader' || !isJoint(config) || !config.autoLeave) return;
    if (this.pendingConfIndex > this.log.applied || this.leadTransferee !== 0) return;
    try {
      this.propose([
        { index: 0, term: 0, type: 'conf-change', data: encodeConfChange({ changes: [], leaveJoint: true }) },
      ]);
    } catch (error) {
      // Refused for now (e.g. too many uncommitted bytes): the next advance tries again.
      if (!(error instanceof RaftError)) throw error;
    }
  }

  /** The membership to persist (in snapshots and storage), removed ids included. */
  confState(): ConfState {
    const removed = [...this.removed].sort((a, b) => a - b);
    return { ...confStateFromConfig(this.tracker.config), removed };
  }

  /** Installs a new configuration (after its entry was applied, or from a snapshot). */
  applyConfig(config: TrackerConfig): void {
    this.tracker.applyConfig(config, this.log.lastIndex() + 1);
    if (this.role !== 'leader') return;
    if (!this.tracker.isVoter(this.id)) {
      // A removed leader steps down once the change is committed (§4.2.2).
      this.becomeFollower(this.term, 0);
      return;
    }
    // A smaller quorum may commit more right away.
    if (!this.maybeCommitAndBroadcast()) this.broadcastAppend();
  }

  // ---------------------------------------------------------------- output

  private send(m: Message): void {
    this.msgs.push(m);
  }

  /** Checks the invariants that must hold between any two calls; throws on violation. */
  checkInvariants(): void {
    const log = this.log;
    assert(log.applied <= log.committed, `applied ${log.applied} > committed ${log.committed}`);
    assert(
      log.applied <= log.applying && log.applying <= log.committed,
      `applying ${log.applying} out of range`,
    );
    assert(log.committed <= log.lastIndex(), `committed ${log.committed} > last index ${log.lastIndex()}`);
    assert(log.firstIndex() <= log.lastIndex() + 1, `first index ${log.firstIndex()} > last + 1`);
    assert(this.vote === 0 || this.term > 0, 'vote set in term 0');
    if (this.role === 'leader') {
      assert(this.leader === this.id, `leader ${this.id} believes ${this.leader} leads`);
      assert(this.vote === this.id, `leader ${this.id} voted for ${this.vote} in its own term`);
    }
    if (this.role === 'candidate') assert(this.vote === this.id, 'candidate did not vote for itself');
    for (const [id, pr] of this.tracker.progress) {
      assert(
        pr.matchIndex < pr.nextIndex,
        `progress of ${id}: match ${pr.matchIndex} >= next ${pr.nextIndex}`,
      );
    }
  }
}
