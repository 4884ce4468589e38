/**
 * Named fault profiles, and the drawing of a seed's parameters: random ones, sometimes overlaid
 * by a profile aimed at one class of bug.
 */
import type { Prng } from '../raft/index.js';
import { drawRandomParams, type SimParams } from './sim-params.js';

/**
 * Named fault profiles a seed may draw, each aimed at one class of bug, as Jepsen pairs a
 * nemesis with the anomaly it provokes. Everything else still comes from the seed.
 */
const PROFILES = {
  /** Leases at the edge of their declared drift bound: a cut-off leader whose clock runs slow. */
  'lease-stress': {
    readOnly: 'lease-based',
    driftRate: 0.4,
    nemesis: 'isolated-leader',
    checkQuorum: true,
    preVote: true,
    forwarding: true,
    latencyMaxMs: 2,
    dropRate: 0,
    duplicateRate: 0,
    longDelayRate: 0,
    clientTimeoutMs: 50,
    keys: 1,
    readRate: 0.6,
    serializableRate: 0,
    clients: 6,
    appendBytesMax: 1 << 20,
    inflightMessagesMax: 64,
    diskLatencyMaxMs: 1,
  },
  /** Bulk voter replacement with the outgoing voters cut off right after the change. */
  'joint-stress': { nemesis: 'membership', forwarding: true, clientTimeoutMs: 50 },
  /**
   * The nodes run a user-level state machine (a counter, through the public interface) instead
   * of the KV store, under the seed's random faults: concurrent adds and reads, retried adds.
   */
  counter: { service: 'counter' },
  /**
   * Each process hosts several raft groups (2 to 4, drawn) that share its links, clock,
   * crashes, pauses and one log for all groups (`multi-group.ts`). Membership stays fixed:
   * a process belongs to every group.
   */
  'multi-group': { membershipRate: 0 },
} as const satisfies Record<string, Partial<SimParams>>;

/**
 * The parameters of a seed: random ones (see {@link drawRandomParams}), then a roll that may
 * overlay a named profile.
 */
export function drawParams(prng: Prng, nodes: number | undefined): SimParams {
  const params = drawRandomParams(prng, nodes);
  const roll = prng.float();
  if (roll < 0.1)
    return { ...params, ...PROFILES['lease-stress'], nodes: nodes ?? 3, profile: 'lease-stress' };
  if (roll < 0.16) return { ...params, ...PROFILES['joint-stress'], profile: 'joint-stress' };
  if (roll < 0.24) return { ...params, ...PROFILES.counter, profile: 'counter' };
  if (roll < 0.32) return drawMultiGroup(prng, params, nodes);
  return params;
}

/** The multi-group profile over `params`: the number of groups, a smaller cluster, process faults. */
function drawMultiGroup(prng: Prng, params: SimParams, nodes: number | undefined): SimParams {
  return {
    ...params,
    ...PROFILES['multi-group'],
    profile: 'multi-group',
    groups: prng.range(2, 4),
    nodes: nodes ?? prng.pick([3, 3, 5]),
    nemesis: prng.pick(['mixed', 'mixed', 'leader-churn'] as const),
  };
}
