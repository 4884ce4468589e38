/**
 * The runtime's counters: what the Ready loop, proposals, reads, snapshots and the transport
 * glue count, exported as metrics (see src/server/metrics.ts).
 */

/** Runtime counters (exported as metrics). */
export interface NodeCounters {
  readies: number;
  saves: number;
  entriesPersisted: number;
  entriesApplied: number;
  proposalsAccepted: number;
  proposalsRejected: number;
  proposalsApplied: number;
  proposalTimeouts: number;
  readsServed: number;
  readTimeouts: number;
  snapshotsTaken: number;
  snapshotsInstalled: number;
  /** On-disk state sent to followers that needed a snapshot (streams started). */
  snapshotsStreamed: number;
  leaderChanges: number;
  ticks: number;
  messagesSent: number;
  messagesReceived: number;
  /** Sum and count of proposal latencies (ms), from acceptance to local apply. */
  proposalLatencyMsSum: number;
  proposalLatencyCount: number;
  /** Sum and count of fdatasync'd save durations (ms). */
  saveMsSum: number;
}

/** A fresh set of counters, all zero. */
export function newNodeCounters(): NodeCounters {
  return {
    readies: 0,
    saves: 0,
    entriesPersisted: 0,
    entriesApplied: 0,
    proposalsAccepted: 0,
    proposalsRejected: 0,
    proposalsApplied: 0,
    proposalTimeouts: 0,
    readsServed: 0,
    readTimeouts: 0,
    snapshotsTaken: 0,
    snapshotsInstalled: 0,
    snapshotsStreamed: 0,
    leaderChanges: 0,
    ticks: 0,
    messagesSent: 0,
    messagesReceived: 0,
    proposalLatencyMsSum: 0,
    proposalLatencyCount: 0,
    saveMsSum: 0,
  };
}
