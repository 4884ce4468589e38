/**
 * Simulated clocks: the tick every node's core runs on, each node's drift from it, and the clock
 * skew the nemesis applies against leases.
 */
import type { Prng } from '../raft/index.js';
import type { SimParams } from './sim-params.js';

/** The nominal tick interval, in virtual milliseconds. */
export const TICK_MS = 10;
/** Election timeout, in ticks. */
export const ELECTION_TICKS = 10;
/** Heartbeat interval, in ticks. */
export const HEARTBEAT_TICKS = 2;

/**
 * The lease drift bound a node declares: how many ticks a follower's clock can gain on the
 * leader's over the election timeout, for clocks off by up to `driftRate` either way.
 */
export function leaseDriftTicks(driftRate: number): number {
  return Math.ceil(((ELECTION_TICKS - 1) * 2 * driftRate) / (1 + driftRate));
}

/** Draws a new node's tick interval: its clock may drift from the others' by up to `driftRate`. */
export function drawTickMs(prng: Prng, params: SimParams): number {
  // Lease seeds put every clock at an edge of the declared bound, the worst case for leases.
  const spread = params.readOnly === 'lease-based' ? prng.pick([-1, 1]) : prng.float() * 2 - 1;
  const drift = spread * params.driftRate;
  return Math.round(TICK_MS * (1 + drift));
}

/** A tick interval at the slow (`slow`) or fast edge of the drift bound `driftRate`. */
export function skewedTickMs(driftRate: number, slow: boolean): number {
  return Math.round(TICK_MS * (slow ? 1 + driftRate : 1 - driftRate));
}

/**
 * The ticks a node paused at `pausedAt` missed by `now`, capped at a few election timeouts
 * (enough for every timer to have run out).
 */
export function missedTicks(now: number, pausedAt: number, tickMs: number): number {
  return Math.min(Math.floor((now - pausedAt) / tickMs), 3 * ELECTION_TICKS);
}
