/**
 * The runtime's handle on the core: it feeds in ticks, messages and requests, and takes out
 * {@link Ready} batches of work, acknowledging each with {@link RawNode.advance}.
 */
import { assert } from './assert.js';
import { Raft } from './raft.js';
import type { RaftOptions } from './raft-options.js';
import type { LogReader } from './storage.js';
import type {
  ConfChange,
  ConfState,
  Entry,
  HardState,
  Message,
  NodeId,
  Ready,
  Role,
  SoftState,
} from './types.js';
import { hardStateEqual } from './types.js';

/** A snapshot of a node's state for observers and tests. */
export interface Status {
  readonly id: NodeId;
  readonly role: Role;
  readonly leader: NodeId;
  readonly term: number;
  readonly vote: NodeId;
  readonly commit: number;
  readonly applied: number;
  readonly lastIndex: number;
  readonly firstIndex: number;
}

/** Wraps {@link Raft} with the Ready/advance protocol. */
export class RawNode {
  readonly raft: Raft;
  private prevSoftState: SoftState;
  private prevHardState: HardState;
  /** The Ready handed out and not yet advanced. Invariant: at most one. */
  private outstanding: Ready | undefined;

  constructor(storage: LogReader, options: Partial<RaftOptions> & Pick<RaftOptions, 'id' | 'random'>) {
    this.raft = new Raft(storage, options);
    this.prevSoftState = this.raft.softState();
    this.prevHardState = storage.initialState().hardState;
  }

  /** Advances the logical clock by one tick. */
  tick(): void {
    this.raft.tick();
  }

  /**
   * Delivers `ticks` ticks that passed while the runtime did not tick this group (it was
   * quiesced), without firing elections, heartbeats or check-quorum: a leader's lease from
   * before expires as it would have, and a follower keeps following its leader. See
   * quiesce.ts.
   */
  tickQuiesced(ticks: number): void {
    this.raft.tickQuiesced(ticks);
  }

  /**
   * Whether this node is a leader that may stop ticking (quiesce): nothing in flight, every
   * member holds, and this node has committed and applied, its whole log, an entry of its term
   * among it; no transfer, read or configuration change pending; no Ready outstanding or due.
   */
  canQuiesce(): boolean {
    return this.raft.canQuiesce() && this.settled;
  }

  /** Whether the runtime has nothing to do: no Ready outstanding and none due. */
  get settled(): boolean {
    return this.outstanding === undefined && !this.hasReady();
  }

  /**
   * Takes a quiesce notice from `from`, the leader of `term`, whose log is committed up to its
   * last index `commit`: true when this follower's log ends at the same entry (it then takes
   * the commit index and may stop ticking), false otherwise (nothing changed).
   */
  quiesceFollower(from: NodeId, term: number, commit: number): boolean {
    return this.raft.quiesceFollower(from, term, commit);
  }

  /**
   * Forgets the current leader on a follower whose runtime believes it dead (etcd-io/raft's
   * `ForgetLeader`): it then grants (pre-)votes to a candidate with an up-to-date log instead
   * of refusing them on the leader's behalf. Refused (false) until an election timeout has
   * passed on this node's clock since it last heard from the leader: the promise lease reads
   * rely on is kept. Hearing from the leader again restores it.
   */
  forgetLeader(): boolean {
    return this.raft.forgetLeader();
  }

  /** Starts an election now (tests and manual failover). */
  campaign(): void {
    this.raft.hup(false);
  }

  /** Handles a message from a peer or a local report. Messages for other groups are a bug. */
  step(message: Message): void {
    assert(message.groupId === this.raft.options.groupId, `message for group ${message.groupId}`);
    this.raft.step(message);
  }

  /**
   * Proposes `data` to be appended to the log. On a follower it is forwarded to the leader.
   * Throws `NOT_LEADER` when no leader is known, `PROPOSAL_DROPPED` when the leader refuses
   * more uncommitted data, `TRANSFER_IN_PROGRESS` during a leadership transfer.
   */
  propose(data: Uint8Array): void {
    this.raft.propose([{ index: 0, term: 0, type: 'normal', data }]);
  }

  /** Proposes several entries at once (they are appended as one batch). */
  proposeBatch(data: readonly Uint8Array[]): void {
    const entries: Entry[] = data.map((d) => ({ index: 0, term: 0, type: 'normal', data: d }));
    this.raft.propose(entries);
  }

  /**
   * Asks for a linearizable read. A ReadState with the same `context` appears in a later
   * Ready; the read may be served once the applied index reaches its `index`. Throws
   * `NOT_LEADER` when no leader is known to confirm the read.
   */
  readIndex(context: Uint8Array): void {
    this.raft.readIndex(context);
  }

  /**
   * The index a read may be served at now without a heartbeat round, when this node is a
   * leader holding a lease (a quorum answered within the election timeout less the clock
   * drift bound, and an entry of its term is committed); undefined otherwise. Correct only
   * while clocks drift by less than `leaseDriftTicks` per election timeout, and only when
   * the caller has delivered every tick due (a paused process must catch up first).
   */
  leaseReadIndex(): number | undefined {
    return this.raft.leaseReadIndex();
  }

  /** Proposes a membership change; see {@link Raft.proposeConfChange} for the refusals. */
  proposeConfChange(cc: ConfChange): void {
    this.raft.proposeConfChange(cc);
  }

  /**
   * Applies a committed conf-change entry's change, in log order, and returns the resulting
   * membership for the application to record (it belongs in the next snapshot).
   */
  applyConfChange(cc: ConfChange): ConfState {
    this.raft.applyConfChange(cc);
    return this.raft.confState();
  }

  /** The current membership, removed ids included, as it belongs in a snapshot. */
  confState(): ConfState {
    return this.raft.confState();
  }

  /** Asks the leader to hand leadership to `transferee`. */
  transferLeadership(transferee: NodeId): void {
    this.raft.transferLeadership(transferee);
  }

  /** Reports that `peer` could not be reached (the leader stops streaming to it). */
  reportUnreachable(peer: NodeId): void {
    const { groupId } = this.raft.options;
    this.raft.step({ type: 'unreachable', groupId, from: peer, to: this.raft.id, term: 0 });
  }

  /** Reports that sending a snapshot to `peer` finished (`ok` false when it failed). */
  reportSnapshot(peer: NodeId, ok: boolean): void {
    const { groupId } = this.raft.options;
    this.raft.step({ type: 'snapshot-status', groupId, from: peer, to: this.raft.id, term: 0, reject: !ok });
  }

  /** Whether there is work for the runtime (always false while a Ready is outstanding). */
  hasReady(): boolean {
    if (this.outstanding !== undefined) return false;
    const r = this.raft;
    const soft = r.softState();
    return (
      soft.role !== this.prevSoftState.role ||
      soft.leader !== this.prevSoftState.leader ||
      !hardStateEqual(r.hardState(), this.prevHardState) ||
      r.log.unstableEntries().length > 0 ||
      r.log.unstable.snapshot !== undefined ||
      r.log.hasNextCommittedEntries() ||
      r.msgs.length > 0 ||
      r.readStates.length > 0 ||
      r.hasUnsentReads()
    );
  }

  /** Takes the pending work. Call {@link advance} with it once it is done. */
  ready(): Ready {
    assert(this.outstanding === undefined, 'ready() called again before advance()');
    const r = this.raft;
    r.flushReads();
    const soft = r.softState();
    const hard = r.hardState();
    const softChanged = soft.role !== this.prevSoftState.role || soft.leader !== this.prevSoftState.leader;
    const rd: Ready = {
      softState: softChanged ? soft : undefined,
      hardState: hardStateEqual(hard, this.prevHardState) ? undefined : hard,
      entries: [...r.log.unstableEntries()],
      snapshot: r.log.unstable.snapshot,
      committedEntries: r.log.nextCommittedEntries(r.options.applyBytesMax),
      messages: r.msgs,
      readStates: r.readStates,
    };
    r.msgs = [];
    r.readStates = [];
    const lastCommitted = rd.committedEntries[rd.committedEntries.length - 1];
    if (lastCommitted !== undefined) r.log.applying = lastCommitted.index;
    if (softChanged) this.prevSoftState = soft;
    this.outstanding = rd;
    return rd;
  }

  /** Reports that everything in `rd` was done (persisted, sent, applied). */
  advance(rd: Ready): void {
    assert(rd === this.outstanding, 'advance() with a Ready that is not the outstanding one');
    this.outstanding = undefined;
    const r = this.raft;
    if (rd.hardState !== undefined) this.prevHardState = rd.hardState;
    if (rd.snapshot !== undefined) {
      r.log.stableSnapTo(rd.snapshot.meta.index);
      r.log.appliedTo(rd.snapshot.meta.index);
    }
    const lastEntry = rd.entries[rd.entries.length - 1];
    if (lastEntry !== undefined) r.persisted(lastEntry.index, lastEntry.term);
    const lastApplied = rd.committedEntries[rd.committedEntries.length - 1];
    if (lastApplied !== undefined) r.log.appliedTo(lastApplied.index);
    r.maybeAutoLeave();
  }

  /** The known leader's id, 0 when none is known (as `status().leader`, without building it). */
  get leader(): NodeId {
    return this.raft.leader;
  }

  /** The current term (as `status().term`). */
  get term(): number {
    return this.raft.term;
  }

  /** The highest index known committed (as `status().commit`). */
  get commit(): number {
    return this.raft.log.committed;
  }

  /** The node's current state. */
  status(): Status {
    const r = this.raft;
    return {
      id: r.id,
      role: r.role,
      leader: r.leader,
      term: r.term,
      vote: r.vote,
      commit: r.log.committed,
      applied: r.log.applied,
      lastIndex: r.log.lastIndex(),
      firstIndex: r.log.firstIndex(),
    };
  }

  /** Checks the core's invariants; the simulator calls it after every step. */
  checkInvariants(): void {
    this.raft.checkInvariants();
  }
}
