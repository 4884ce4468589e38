/**
 * One group's replica on a multi-raft host (multi-host.ts): a {@link LibraryHost} built on the
 * process's shared transport and timer instead of its own, so a `FlotillaNode` handle drives
 * it exactly as it drives a single-group node.
 *
 * Its quiescence (CockroachDB's `replica_raft_quiesce.go`): an idle group stops ticking, and so
 * costs its host nothing per tick.
 *
 * - **Leader.** At a tick, a leader whose group has been idle for {@link QUIESCE_AFTER_TICKS}
 *   ticks — the core's `canQuiesce` (every member holds, and this leader has committed and
 *   applied, its whole log; no transfer, read or configuration change pending), no proposal
 *   or read waiting here, its Ready loop idle, every member's host alive — sends each member a
 *   quiesce notice (term, commit) in its host's next beat and stops ticking.
 * - **Follower.** A notice from the leader of its term quiesces a follower whose log ends at
 *   the leader's commit (the core's `quiesceFollower`); one that cannot follow it (its log
 *   differs or lags) asks the leader to wake, so it is caught up and quiesces next time.
 * - **Waking.** Any input wakes the group: a request or membership change or transfer (through
 *   `wake`), a raft message of the group (but a late success answer of the leader's term to a
 *   heartbeat or append from before quiescence, which a quiesced leader drops), a report.
 *   The ticks due meanwhile go to the core's
 *   `tickQuiesced` (a leader's lease from before quiescence has run out as it would have; no
 *   timer fires). A follower woken by anything but its leader asks the leader's host to wake
 *   the group too, so the leader heartbeats and the followers stay with it rather than time
 *   out. A follower whose leader's host is judged dead (host-liveness.ts) wakes and forgets
 *   the leader (the core's `forgetLeader`, refused while it still owes the leader its lease),
 *   so it and the other followers can elect another.
 */
import type { Message } from '../raft/index.js';
import type { HostParts } from './host.js';
import type { QuiesceNotice } from './host-beat.js';
import { LibraryHost } from './library-host.js';

/** Idle ticks (every condition holding) before a leader quiesces its group. */
export const QUIESCE_AFTER_TICKS = 3;

/** Why a quiesced group wakes. */
export type WakeReason = 'input' | 'leader-message' | 'peer-message' | 'leader-dead';

/** What a group's quiescence needs from its multi-raft host. */
export interface QuiesceCoordinator {
  /** Whether groups quiesce at all (`false`: every group ticks, as before quiescence). */
  readonly enabled: boolean;
  /** Whether host `id` was heard from within an election timeout. */
  isLive(id: number): boolean;
  /** `group` stopped ticking; `leader` is its leader's host (this host's id for a leader). */
  quiesced(group: GroupHost, leader: number): void;
  /** `group` ticks again. */
  woke(group: GroupHost): void;
  /** Queues a quiesce notice for host `peer` (sent in the next beat). */
  notifyQuiesce(peer: number, notice: QuiesceNotice): void;
  /** Asks host `peer`, the group's leader, to wake group `groupId` (sent at once). */
  requestWake(peer: number, groupId: number): void;
}

/** A replica of one group, hosted with others in one process. */
export class GroupHost extends LibraryHost {
  /** The leader's host while quiesced (this host's id when it leads); undefined while ticking. */
  private quiescedUnder: number | undefined;
  /** Consecutive ticks at which the group could have quiesced. */
  private idleTicks = 0;
  /** A quiesce notice waiting for this replica to settle (a Ready pass in flight). */
  private notice: { readonly from: number; readonly term: number; readonly commit: number } | undefined;
  private coordinator!: QuiesceCoordinator;

  /** Builds the replica from its recovered parts; the caller starts delivering to it, then wakes it. */
  static open(parts: HostParts, coordinator: QuiesceCoordinator): GroupHost {
    const group = new GroupHost(parts);
    group.coordinator = coordinator;
    return group;
  }

  /**
   * Frees the shared log's oldest file of this group's entries: a snapshot now and compaction
   * behind it (snapshots.ts `releaseLog`). Local work only: a quiesced group stays quiesced.
   */
  releaseLog(): void {
    this.replica.snapshots.releaseLog();
  }

  /** Whether the group is quiesced here (ticks nothing until woken). */
  get quiesced(): boolean {
    return this.quiescedUnder !== undefined;
  }

  /**
   * The host's tick, before `onTimer`: quiesces a leader whose group has been idle long
   * enough (see the module comment). Returns true when it quiesced (it is then not ticked).
   */
  maybeQuiesce(): boolean {
    if (!this.coordinator.enabled || this.stopped || this.quiescedUnder !== undefined) return false;
    if (!this.mayQuiesceAsLeader()) {
      this.idleTicks = 0;
      return false;
    }
    if (++this.idleTicks < QUIESCE_AFTER_TICKS) return false;
    const { id: self, groupId } = this.options;
    const { term, commit } = this.raw;
    for (const id of this.raw.raft.tracker.progress.keys()) {
      if (id !== self) this.coordinator.notifyQuiesce(id, { groupId, term, commit });
    }
    this.enter(self);
    return true;
  }

  /** A quiesce notice from host `from`, the leader of this group in `term` (see the module comment). */
  onQuiesceNotice(from: number, term: number, commit: number): void {
    if (!this.coordinator.enabled || this.stopped || this.quiescedUnder !== undefined) return;
    this.notice = { from, term, commit };
    this.tryFollowerQuiesce();
  }

  /** Host `from` asks this group, which it believes this host leads, to tick again. */
  onWakeRequest(): void {
    this.unquiesce('peer-message');
  }

  /** The host judged this group's leader's host dead (or restarted): wake, forget it, elect another. */
  onLeaderHostDead(): void {
    this.unquiesce('leader-dead');
  }

  /** Schedules the Ready loop, waking a quiesced group first (a request, a change, a transfer). */
  override wake(): void {
    if (this.quiescedUnder !== undefined) this.unquiesce('input');
    super.wake();
  }

  override onMessage(message: Message): void {
    this.notice = undefined;
    const under = this.quiescedUnder;
    if (under !== undefined) {
      const term = this.raw.term;
      // A late answer to the rounds before quiescence tells a quiesced leader nothing it needs
      // (no read waits, every member matched): dropping it is a lost message, not a wake-up.
      if (under === this.options.id && isLateAnswer(message, term)) return;
      const fromLeader = message.from === under && message.term === term;
      this.unquiesce(fromLeader ? 'leader-message' : 'peer-message');
    }
    super.onMessage(message);
  }

  protected override onQuiescedInput(): void {
    this.unquiesce('input');
  }

  protected override onAdvanced(): void {
    super.onAdvanced();
    if (this.notice !== undefined) this.tryFollowerQuiesce();
  }

  private mayQuiesceAsLeader(): boolean {
    if (!this.readyIdle || !this.replica.idle || !this.raw.canQuiesce()) return false;
    const self = this.options.id;
    for (const id of this.raw.raft.tracker.progress.keys()) {
      if (id !== self && !this.coordinator.isLive(id)) return false;
    }
    return true;
  }

  /**
   * Follows the pending notice if this replica can: settled (no Ready outstanding or due, no
   * request waiting) and its log ending at the leader's commit. A replica with a pass in
   * flight retries after it; one whose log differs asks the leader to wake.
   */
  private tryFollowerQuiesce(): void {
    const notice = this.notice;
    if (notice === undefined || !this.replica.idle) return;
    if (!this.raw.quiesceFollower(notice.from, notice.term, notice.commit)) {
      this.notice = undefined;
      this.coordinator.requestWake(notice.from, this.options.groupId);
      return;
    }
    // The notice may have moved the commit index: apply first, then quiesce (onAdvanced).
    if (this.raw.hasReady() || !this.raw.settled) {
      super.wake();
      return;
    }
    this.notice = undefined;
    this.enter(notice.from);
  }

  private enter(leader: number): void {
    this.quiescedUnder = leader;
    this.idleTicks = 0;
    this.replica.quiesceTicks();
    this.coordinator.quiesced(this, leader);
  }

  private unquiesce(reason: WakeReason): void {
    const leader = this.quiescedUnder;
    if (leader === undefined) return;
    this.quiescedUnder = undefined;
    this.raw.tickQuiesced(this.replica.resumeTicks());
    this.coordinator.woke(this);
    if (leader === this.options.id) return;
    if (reason === 'leader-dead') this.raw.forgetLeader();
    if (reason !== 'leader-message') this.coordinator.requestWake(leader, this.options.groupId);
  }
}

/** A success answer of `term` to a heartbeat or an append: what a quiesced leader may drop. */
function isLateAnswer(m: Message, term: number): boolean {
  if (m.term !== term) return false;
  return m.type === 'heartbeat-response' || (m.type === 'append-response' && !m.reject);
}
