/** Runs many simulator seeds and summarizes them. */
import type { MutationName } from '../raft/index.js';
import { runSimulation, type SimResult } from './simulator.js';

/** Aggregate over a set of seeds; the counters prove the faults really happened. */
export interface SimSummary {
  seeds: number;
  failed: number;
  unknown: number;
  ops: number;
  reads: number;
  elections: number;
  crashes: number;
  pauses: number;
  partitions: number;
  snapshots_installed: number;
  snapshots_taken: number;
  conf_changes: number;
  transfers: number;
  serializable_reads: number;
  max_term: number;
  messages_delivered: number;
  messages_dropped: number;
  failures: { seed: number; property: string; detail: string }[];
}

/** Options of a multi-seed run. */
export interface RunSeedsOptions {
  /** First seed; seeds are `first, first + 1, ...`. */
  readonly first: number;
  readonly count: number;
  readonly nodes?: number | undefined;
  readonly mutation?: MutationName | undefined;
  /** Stop at the first failing seed (mutation checks want only to know it is caught). */
  readonly stopOnFailure?: boolean;
  /** Called after each seed (progress output). */
  readonly onResult?: (result: SimResult) => void;
  /** Narrates every seed's notable events. */
  readonly narrate?: ((line: string) => void) | undefined;
}

/** Runs `count` seeds and returns the summary. */
export function runSeeds(options: RunSeedsOptions): SimSummary {
  const summary: SimSummary = {
    seeds: 0,
    failed: 0,
    unknown: 0,
    ops: 0,
    reads: 0,
    elections: 0,
    crashes: 0,
    pauses: 0,
    partitions: 0,
    snapshots_installed: 0,
    snapshots_taken: 0,
    conf_changes: 0,
    transfers: 0,
    serializable_reads: 0,
    max_term: 0,
    messages_delivered: 0,
    messages_dropped: 0,
    failures: [],
  };
  for (let i = 0; i < options.count; i++) {
    const seed = options.first + i;
    const result = runSimulation({
      seed,
      nodes: options.nodes,
      mutation: options.mutation,
      narrate: options.narrate,
    });
    add(summary, result);
    options.onResult?.(result);
    if (options.stopOnFailure === true && result.status === 'failed') break;
  }
  return summary;
}

function add(summary: SimSummary, result: SimResult): void {
  const s = result.stats;
  summary.seeds++;
  if (result.status === 'failed') summary.failed++;
  if (result.status === 'unknown') summary.unknown++;
  if (result.status !== 'ok') {
    summary.failures.push({
      seed: result.seed,
      property: result.property ?? '',
      detail: result.detail ?? '',
    });
  }
  summary.ops += s.ops;
  summary.reads += s.reads;
  summary.elections += s.elections;
  summary.crashes += s.crashes;
  summary.pauses += s.pauses;
  summary.partitions += s.partitions;
  summary.snapshots_installed += s.snapshotsInstalled;
  summary.snapshots_taken += s.snapshotsTaken;
  summary.conf_changes += s.confChanges;
  summary.transfers += s.transfers;
  summary.serializable_reads += s.serializableReads;
  summary.max_term = Math.max(summary.max_term, s.maxTerm);
  summary.messages_delivered += s.messagesDelivered;
  summary.messages_dropped += s.messagesDropped;
}
