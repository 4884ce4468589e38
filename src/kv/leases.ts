/**
 * The replicated part of etcd's lessor: granted leases with their TTL bookkeeping and the
 * keys attached to each. Expiry is not decided here: the leader runs the countdown with its
 * own clock and proposes a revoke; this table only stores what commands told it.
 */

import { assert } from '../raft/assert.js';
import type { LeaseInfo } from './types.js';

/** A lease and the keys (key strings) attached to it. */
export interface LeaseState {
  info: LeaseInfo;
  readonly keys: Set<string>;
}

/** All leases, by id. */
export class LeaseTable {
  private readonly leases = new Map<number, LeaseState>();

  /** How many leases exist. */
  get size(): number {
    return this.leases.size;
  }

  /** The lease `id`, if granted and not revoked. */
  get(id: number): LeaseState | undefined {
    return this.leases.get(id);
  }

  /** Adds a lease (its id must be new). */
  add(info: LeaseInfo): void {
    assert(!this.leases.has(info.id), `lease ${info.id} granted twice`);
    this.leases.set(info.id, { info, keys: new Set() });
  }

  /** Replaces the TTL bookkeeping of an existing lease. */
  update(info: LeaseInfo): void {
    const lease = this.leases.get(info.id);
    assert(lease !== undefined, `lease ${info.id} updated but not granted`);
    lease.info = info;
  }

  /** Removes lease `id`; its keys must already have been deleted. */
  remove(id: number): void {
    const lease = this.leases.get(id);
    assert(lease !== undefined && lease.keys.size === 0, `lease ${id} removed with keys attached`);
    this.leases.delete(id);
  }

  /** Moves `key` from lease `from` to lease `to` (0: none). Both must exist when non-zero. */
  move(key: string, from: number, to: number): void {
    if (from === to) return;
    if (from !== 0) {
      const removed = this.leases.get(from)?.keys.delete(key);
      assert(removed === true, `key detached from lease ${from} it was not attached to`);
    }
    if (to !== 0) {
      const lease = this.leases.get(to);
      assert(lease !== undefined, `key attached to missing lease ${to}`);
      lease.keys.add(key);
    }
  }

  /** Every lease, by ascending id. */
  list(): LeaseInfo[] {
    return [...this.leases.values()].map((lease) => lease.info).sort((a, b) => a.id - b.id);
  }

  /** Removes every lease. */
  clear(): void {
    this.leases.clear();
  }
}

/** Whole seconds of `lease` left at `nowMs` (truncated like etcd, never below 0). */
export function remainingSeconds(lease: LeaseInfo, nowMs: number): number {
  const expiresAtMs = lease.anchorMs + lease.remainingTtlSeconds * 1000;
  return Math.max(0, Math.floor((expiresAtMs - nowMs) / 1000));
}
