/**
 * The Raft state machine: elections (with pre-vote and check-quorum), log replication with
 * flow control and fast backtracking, snapshots, ReadIndex and leadership transfer.
 *
 * It is pure: every input is a call (`tick`, `step`, `propose`, ...), every output is data
 * collected in `msgs`, `readStates` and the log, which {@link RawNode} packages as a Ready.
 * Given the same calls and the same injected randomness it behaves identically.
 *
 * This class owns the node's state and its role transitions. As in etcd-io/raft, a role is a
 * pair of handlers that every transition swaps: a step function (step-follower.ts,
 * step-candidate.ts, step-leader.ts) and a tick function (election.ts for followers and
 * candidates, step-leader.ts for the leader). Messages first pass the term rules
 * (step-term.ts); the work is done by election.ts, replication.ts, read-index.ts and
 * conf-change-apply.ts, and what only a leader uses lives in its {@link LeaderState}. A
 * public method that only delegates calls the module function of the same name.
 */
import { assert } from './assert.js';
import {
  applyConfChange,
  applyConfig,
  confState,
  maybeAutoLeave,
  proposeConfChange,
} from './conf-change-apply.js';
import { handleVoteRequest, hup, tickElection } from './election.js';
import { RaftError } from './errors.js';
import { LeaderState } from './leader-state.js';
import { RaftLog } from './log.js';
import { canQuiesce, forgetLeader, quiesceFollower, tickQuiesced } from './quiesce.js';
import { DEFAULT_RAFT_OPTIONS, type RaftOptions } from './raft-options.js';
import { flushReads, hasUnsentReads, leaseReadIndex } from './read-index.js';
import { appendEntries, broadcastAppend, maybeCommitAndBroadcast } from './replication.js';
import { stepCandidate } from './step-candidate.js';
import { stepFollower, takeHeldProposals } from './step-follower.js';
import { stepLeader, tickHeartbeat } from './step-leader.js';
import { LOCAL, stepTerm } from './step-term.js';
import type { LogReader } from './storage.js';
import type { TrackerConfig } from './tracker.js';
import { configFromConfState, ProgressTracker } from './tracker.js';
import type {
  ConfChange,
  ConfState,
  Entry,
  HardState,
  Message,
  NodeId,
  ProposeRequest,
  ReadIndexRequest,
  ReadState,
  Role,
  SoftState,
} from './types.js';

/** A role's step function: handles a message that passed the term rules. */
type StepFunction = (r: Raft, m: Message) => void;
/** A role's tick function: advances its timers by one tick. */
type TickFunction = (r: Raft) => void;

/**
 * The consensus state machine of one node. Members marked internal are shared with the
 * modules of the core (the role handlers, election, replication, reads, conf changes) and are
 * not meant for callers.
 */
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

  /** Ticks towards the election timeout (on the leader: towards check-quorum). @internal */
  electionElapsed = 0;
  /** The election timeout of this term, randomized in `[electionTicks, 2 electionTicks)`. @internal */
  randomizedElectionTimeout = 0;
  /** The node a leadership transfer is handing over to, or 0. */
  leadTransferee: NodeId = 0;
  /** Index of the newest conf-change entry proposed by this leader; one at a time. */
  pendingConfIndex = 0;
  /** What only a leader uses; a fresh one at every reset. @internal */
  leaderState = new LeaderState();
  /** Ticks since this node started: the clock of heartbeat rounds and leases. @internal */
  ticks = 0;
  /** The id of the last heartbeat round; every heartbeat broadcast starts a new one. @internal */
  heartbeatRound = 0;
  /** Rounds sent before this tick do not count towards a lease (set by a transfer). @internal */
  leaseFloorTick = 0;
  /** On a follower: the tick it last heard from its leader (see quiesce.ts, `forgetLeader`). @internal */
  leaderHeardTick = 0;
  /** Nodes removed from the configuration: never members again, their messages ignored. */
  readonly removed = new Set<NodeId>();
  /**
   * Proposals peers forwarded to this node while it knew no leader, held (bounded, see
   * step-follower.ts) until it learns one: forwarded to it, or appended if it leads. @internal
   */
  heldProposals: ProposeRequest[] = [];
  /** The entry bytes of {@link heldProposals}. @internal */
  heldProposalBytes = 0;
  /** The current role's step function (etcd's `raft.step`), swapped by every transition. */
  private stepRole: StepFunction = stepFollower;
  /** The current role's tick function (etcd's `raft.tick`), swapped by every transition. */
  private tickRole: TickFunction = tickElection;

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
    this.switchRole('follower', stepFollower, tickElection);
  }

  /** Enters a pre-vote round (from `campaign`). @internal */
  becomePreCandidate(): void {
    assert(this.role !== 'leader', 'leader cannot become pre-candidate');
    // Pre-vote changes neither term nor vote: a rejected pre-candidate disrupts nothing.
    this.tracker.resetVotes();
    this.leader = 0;
    this.switchRole('pre-candidate', stepCandidate, tickElection);
  }

  /** Enters the next term as a candidate that votes for itself (from `campaign`). @internal */
  becomeCandidate(): void {
    assert(this.role !== 'leader', 'leader cannot become candidate');
    this.reset(this.term + 1);
    this.vote = this.id;
    this.switchRole('candidate', stepCandidate, tickElection);
  }

  /** Takes the lead of the current term after winning its election. @internal */
  becomeLeader(): void {
    assert(this.role === 'candidate', `${this.role} cannot become leader`);
    this.reset(this.term);
    this.leader = this.id;
    this.switchRole('leader', stepLeader, tickHeartbeat);
    const self = this.tracker.progress.get(this.id)!;
    self.becomeReplicate();
    // Conf changes wait until everything up to here is applied (one change at a time).
    this.pendingConfIndex = this.log.lastIndex();
    // A no-op entry of the new term lets the leader commit, and thereby learn the commit
    // index of earlier terms, without waiting for a client (§5.4.2, §6.4).
    appendEntries(this, [{ index: 0, term: 0, type: 'normal', data: new Uint8Array() }]);
    // Proposals peers sent here while no leader was known: this node leads now.
    for (const m of takeHeldProposals(this)) this.stepInRole(m);
  }

  /** Takes on `role`: from now on `step` and `tick` go to its handlers. */
  private switchRole(role: Role, step: StepFunction, tick: TickFunction): void {
    this.role = role;
    this.stepRole = step;
    this.tickRole = tick;
  }

  private reset(term: number): void {
    if (this.term !== term) {
      assert(term > this.term, `term goes back from ${this.term} to ${term}`);
      this.term = term;
      this.vote = 0;
    }
    this.leader = 0;
    this.electionElapsed = 0;
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
    this.leaderState = new LeaderState();
  }

  // ---------------------------------------------------------------- time and messages

  /** Advances the logical clock by one tick. */
  tick(): void {
    this.ticks++;
    this.tickRole(this);
  }

  /** Delivers ticks that passed while quiesced, firing no timer; see quiesce.ts. */
  tickQuiesced(ticks: number): void {
    tickQuiesced(this, ticks);
  }

  /** Whether this leader may stop ticking; see quiesce.ts. */
  canQuiesce(): boolean {
    return canQuiesce(this);
  }

  /** A quiesce notice from leader `from` of `term` at `commit`; whether to stop ticking (quiesce.ts). */
  quiesceFollower(from: NodeId, term: number, commit: number): boolean {
    return quiesceFollower(this, from, term, commit);
  }

  /** Forgets the leader once its lease ran out here; see quiesce.ts. Returns whether it did. */
  forgetLeader(): boolean {
    return forgetLeader(this);
  }

  /** Starts an election (after pre-vote, if enabled). `transfer` bypasses pre-vote and leases. */
  hup(transfer: boolean): void {
    hup(this, transfer);
  }

  /** Handles a message from a peer (or a local request with term 0). */
  step(m: Message): void {
    assert(m.to === this.id || m.term === LOCAL, `message for ${m.to} delivered to ${this.id}`);
    // A removed node that comes back is not a member: it must not disturb the cluster.
    if (this.removed.has(m.from) && m.from !== this.id) return;
    if (m.term !== LOCAL && !stepTerm(this, m)) return;
    // Every role answers vote requests; anything else is the current role's business.
    if (m.type === 'vote') handleVoteRequest(this, m);
    else this.stepInRole(m);
  }

  private stepInRole(m: Message): void {
    try {
      this.stepRole(this, m);
    } catch (error) {
      // A request a peer forwarded to us may be refused (a transfer in progress, too much
      // uncommitted data): the peer's client times out and retries. Only a local caller
      // gets the error.
      if (m.term === LOCAL && m.from !== this.id && error instanceof RaftError) return;
      throw error;
    }
  }

  /** Collects a message for the next Ready. @internal */
  send(m: Message): void {
    this.msgs.push(m);
  }

  // ---------------------------------------------------------------- requests

  /** Appends `data` entries to the log if leader (or forwards them); throws when refused. */
  propose(entries: readonly Entry[]): void {
    this.step({
      type: 'propose',
      groupId: this.options.groupId,
      from: this.id,
      to: this.id,
      term: LOCAL,
      entries,
      hops: 0,
    });
  }

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

  /** The index a lease read may be served at now, if this leader holds a lease; see read-index.ts. */
  leaseReadIndex(): number | undefined {
    return leaseReadIndex(this);
  }

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

  /**
   * Proposes a membership change. Refused with `INVALID_CONF_CHANGE` when it is not valid
   * from the current configuration, `NODE_ID_REUSED` for a removed id, `LEARNER_NOT_READY`
   * when promoting a learner that lags more than `learnerCatchUpEntriesMax` entries, and
   * `CONF_CHANGE_IN_PROGRESS` while another change is pending or the leader has not
   * committed an entry of its term yet.
   */
  proposeConfChange(cc: ConfChange): void {
    proposeConfChange(this, cc);
  }

  // ---------------------------------------------------------------- Ready plumbing

  /**
   * The runtime made entries up to (`index`, `term`) durable. Called by {@link RawNode.advance}.
   */
  persisted(index: number, term: number): void {
    this.log.stableTo(index, term);
    if (this.role !== 'leader') return;
    const self = this.tracker.progress.get(this.id);
    if (self !== undefined && this.log.term(index) === term && self.maybeUpdate(index))
      maybeCommitAndBroadcast(this);
  }

  /** Sends appends to every follower that has something to receive. */
  broadcastAppend(): void {
    broadcastAppend(this);
  }

  /** Starts one heartbeat round for every read queued since the last one (batching). */
  flushReads(): void {
    flushReads(this);
  }

  /** Whether reads wait for a heartbeat round to be started. */
  hasUnsentReads(): boolean {
    return hasUnsentReads(this);
  }

  /**
   * Applies a committed membership change (the application calls this when it applies a
   * conf-change entry, in log order). Returns the new configuration.
   */
  applyConfChange(cc: ConfChange): TrackerConfig {
    return applyConfChange(this, cc);
  }

  /**
   * A leader in a joint configuration with auto-leave proposes leaving it once the entry
   * that entered it is applied (thesis §4.3: C_old,new then C_new).
   */
  maybeAutoLeave(): void {
    maybeAutoLeave(this);
  }

  /** The membership to persist (in snapshots and storage), removed ids included. */
  confState(): ConfState {
    return confState(this);
  }

  /** Installs a new configuration (after its entry was applied, or from a snapshot). */
  applyConfig(config: TrackerConfig): void {
    applyConfig(this, config);
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
    if (this.leader !== 0) assert(this.heldProposals.length === 0, `${this.role} ${this.id} holds proposals`);
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
