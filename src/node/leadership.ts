/**
 * Leader tracking for one raft group: notices when the leader or term changes between
 * Readies and wakes those waiting for a leader to be known.
 */
import type { RawNode } from '../raft/index.js';

/** What {@link LeaderWatch} needs from the runtime. */
export interface LeaderWatchDeps {
  /** This node's id. */
  readonly selfId: number;
  /** The group's core, whose leader and term are watched. */
  readonly raw: Pick<RawNode, 'leader' | 'term'>;
  /** Called when the leader changed (0: none known), before waiters are woken. */
  readonly onLeaderChange: (leader: number, term: number) => void;
}

/** Follows one group's leader and term. */
export class LeaderWatch {
  private lastLeader = 0;
  private lastTerm = 0;
  private readonly waiters = new Set<() => void>();

  constructor(private readonly deps: LeaderWatchDeps) {}

  /** Whether a leader is known. */
  hasLeader(): boolean {
    return this.deps.raw.leader !== 0;
  }

  /** Compares the core's leader and term with the last seen and reacts to a change. */
  observe(): void {
    const { leader, term } = this.deps.raw;
    if (leader === this.lastLeader && term === this.lastTerm) return;
    if (leader !== this.lastLeader) this.deps.onLeaderChange(leader, term);
    this.lastLeader = leader;
    this.lastTerm = term;
    if (leader !== 0) this.wakeWaiters();
  }

  /** Resolves once a leader is known (immediately if one is), or false after `timeoutMs`. */
  waitForLeader(timeoutMs: number): Promise<boolean> {
    if (this.hasLeader()) return Promise.resolve(true);
    return new Promise((resolve) => {
      const done = (): void => {
        clearTimeout(timer);
        this.waiters.delete(done);
        resolve(this.hasLeader());
      };
      const timer = setTimeout(done, timeoutMs);
      this.waiters.add(done);
    });
  }

  /** Wakes every waiter, each resolving with whether a leader is known (also on stop). */
  wakeWaiters(): void {
    for (const waiter of [...this.waiters]) waiter();
  }
}
