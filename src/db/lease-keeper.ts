/**
 * Lease expiry, decided by the leader (docs/kv.md, "Notes for the runtime"): the state
 * machine never reads a clock, so the leader scans the replicated lease table with its own
 * clock and proposes a `leaseRevoke` for each lease whose time is up.
 *
 * A lease's expiry is `max(anchorMs, leaderSinceMs) + remainingTtlSeconds * 1000`: a new
 * leader restarts the remaining countdown from the moment it became leader, so clock skew
 * between the old and the new leader can only make a lease live longer, never expire early.
 * A keep-alive is replicated as a `leaseCheckpoint` with the full TTL at the proposer's
 * clock, which moves the anchor.
 *
 * {@link LeaseKeeper} is the scan: the KV node (kv-node.ts) calls it every
 * {@link LEASE_SCAN_INTERVAL_MS} while it leads, and it looks at the table at most that often.
 */
import type { LeaseInfo } from '../kv/index.js';

/** How often the leader scans for expired leases, in milliseconds. */
export const LEASE_SCAN_INTERVAL_MS = 500;

/** The leases among `leases` that expired by `nowMs`, for a leader since `leaderSinceMs`. */
export function expiredLeases(leases: readonly LeaseInfo[], leaderSinceMs: number, nowMs: number): number[] {
  const expired: number[] = [];
  for (const lease of leases) {
    const base = Math.max(lease.anchorMs, leaderSinceMs);
    if (base + lease.remainingTtlSeconds * 1000 <= nowMs) expired.push(lease.id);
  }
  return expired;
}

/** What {@link LeaseKeeper} needs from the KV node. */
export interface LeaseKeeperDeps {
  /** Wall-clock time this node became leader; 0 when it is not leader. */
  readonly leaderSinceMs: () => number;
  /** The replicated lease table. */
  readonly leases: () => readonly LeaseInfo[];
  /**
   * Proposes the revoke of lease `id`; settles once it is applied here or fails (a revoke
   * refused by back-pressure is proposed again by a later scan).
   */
  readonly revoke: (id: number) => Promise<unknown>;
  readonly logger: { info(message: string): void };
}

/** The leader's lease-expiry scan: at most one pending revoke per lease. */
export class LeaseKeeper {
  private lastScanMs = 0;
  /** Leases whose revoke this leader has proposed and not yet seen applied. */
  private readonly revoking = new Set<number>();

  constructor(private readonly deps: LeaseKeeperDeps) {}

  /** On the leader: proposes a revoke for every lease whose time is up. */
  scan(): void {
    const now = Date.now();
    const leaderSinceMs = this.deps.leaderSinceMs();
    if (leaderSinceMs === 0 || now - this.lastScanMs < LEASE_SCAN_INTERVAL_MS) return;
    this.lastScanMs = now;
    const leases = this.deps.leases();
    const live = new Set(leases.map((l) => l.id));
    for (const id of this.revoking) if (!live.has(id)) this.revoking.delete(id);
    for (const id of expiredLeases(leases, leaderSinceMs, now)) {
      if (this.revoking.has(id)) continue;
      this.revoking.add(id);
      this.deps.revoke(id).then(
        () => this.revoking.delete(id),
        () => this.revoking.delete(id),
      );
      this.deps.logger.info(`lease ${id} expired: revoking`);
    }
  }
}
