/**
 * What a run reports: the counters that prove the faults and the workload happened, and the
 * verdict of one seed, built from a violated property or from the linearizability check.
 */
import { AssertionError } from '../raft/index.js';
import { SafetyViolation } from './checkers.js';
import type { CheckResult } from './linearizability.js';

/** Counters that prove the faults and the workload really happened. */
export interface SimStats {
  nodes: number;
  ops: number;
  reads: number;
  elections: number;
  crashes: number;
  pauses: number;
  partitions: number;
  snapshotsInstalled: number;
  snapshotsTaken: number;
  /** Snapshot streams that reached their end (src/sim/sim-snapshot-stream.ts). */
  snapshotStreamsEnded: number;
  /** Snapshot streams cut after their first piece (a crash at either end, a cut link). */
  snapshotStreamsCut: number;
  /** Snapshot streams that ended after the receiver's log overtook them (refused by its core). */
  snapshotStreamsOvertaken: number;
  confChanges: number;
  transfers: number;
  serializableReads: number;
  maxTerm: number;
  messagesDelivered: number;
  messagesDropped: number;
  duplicatesSuppressed: number;
  /**
   * Proposals delivered on their second hop: handed on by a node that no longer led when they
   * reached it, at once or after holding them until it learned the leader (step-follower.ts).
   */
  proposalsHandedOn: number;
  /** Multi-group runs: Readies in flight at a crash that reached the shared log whole. */
  inFlightWritesKept: number;
  /** Multi-group runs: torn records cut off the tail of a shared log on recovery. */
  tornRecordsCut: number;
}

/** Every counter at zero. */
export function emptySimStats(): SimStats {
  return {
    nodes: 0,
    ops: 0,
    reads: 0,
    elections: 0,
    crashes: 0,
    pauses: 0,
    partitions: 0,
    snapshotsInstalled: 0,
    snapshotsTaken: 0,
    snapshotStreamsEnded: 0,
    snapshotStreamsCut: 0,
    snapshotStreamsOvertaken: 0,
    confChanges: 0,
    transfers: 0,
    serializableReads: 0,
    maxTerm: 0,
    messagesDelivered: 0,
    messagesDropped: 0,
    duplicatesSuppressed: 0,
    proposalsHandedOn: 0,
    inFlightWritesKept: 0,
    tornRecordsCut: 0,
  };
}

/** The outcome of one seed. */
export interface SimResult {
  readonly seed: number;
  /** The profile the seed drew (`random` for none). */
  readonly profile: string;
  readonly status: 'ok' | 'failed' | 'unknown';
  /** The violated property and what showed it, when failed or unknown. */
  readonly property?: string;
  readonly detail?: string;
  readonly stats: SimStats;
}

/**
 * The result of a run a checker stopped: the violated property. Errors that are neither a
 * violation nor a core invariant failing are bugs of the simulator, and are rethrown.
 */
export function failureResult(seed: number, profile: string, error: unknown, stats: SimStats): SimResult {
  if (error instanceof SafetyViolation) {
    return { seed, profile, status: 'failed', property: error.property, detail: error.message, stats };
  }
  if (error instanceof AssertionError) {
    return { seed, profile, status: 'failed', property: 'invariant', detail: error.message, stats };
  }
  throw error;
}

/** The result of a run every checker passed, given the linearizability verdict on its history. */
export function historyResult(
  seed: number,
  profile: string,
  verdict: CheckResult,
  stats: SimStats,
): SimResult {
  if (verdict.result === 'ok') return { seed, profile, status: 'ok', stats };
  if (verdict.result === 'unknown') {
    return { seed, profile, status: 'unknown', property: 'linearizability', detail: verdict.reason, stats };
  }
  return {
    seed,
    profile,
    status: 'failed',
    property: 'linearizability',
    detail: `key ${verdict.key}: ${verdict.detail}`,
    stats,
  };
}
