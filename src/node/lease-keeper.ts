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
