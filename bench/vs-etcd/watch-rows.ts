/**
 * What the watch rows add to a run: the idle watchers held around a `put_100_with_*_watchers`
 * run (bench/vs-etcd/watch-holder.ts, a child process on the `etcd3` npm client), the
 * members' resident memory per watcher, and the JSON fields `watch_slowdown` (a system's
 * put rate without watchers over its rate with them) and `rss_bytes_per_watcher`.
 */
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import type { Client } from './clients.js';
import type { Cluster } from './clusters.js';
import { checkInterrupted, spawnCollecting, waitFor } from './processes.js';
import { median, type RunRecord, ratio, type WorkloadSummary } from './summary.js';
import type { Workload, WorkloadKey } from './workloads.js';

const HOLDER = fileURLToPath(new URL('./watch-holder.js', import.meta.url));
const PAGE_BYTES = 4096;

/** Resident memory of every process in `pids` together, bytes (0 for one that is gone). */
export function rssBytes(pids: readonly number[]): number {
  let bytes = 0;
  for (const pid of pids) {
    try {
      bytes += Number(readFileSync(`/proc/${pid}/statm`, 'utf8').split(' ')[1]) * PAGE_BYTES;
    } catch {
      // gone, or not Linux
    }
  }
  return bytes;
}

/** Idle watchers held on a cluster; `stop` ends them. */
export interface HeldWatchers {
  /** The growth of the members' resident memory while the watchers were created, per watcher. */
  readonly rssBytesPerWatcher: number;
  stop(): Promise<void>;
}

/** Starts the holder with `count` watchers on `cluster` and waits until all are created. */
export async function holdWatchers(
  cluster: Cluster,
  count: number,
  timeoutMs: number,
): Promise<HeldWatchers> {
  checkInterrupted();
  const rssBefore = rssBytes(cluster.pids);
  const args = [
    HOLDER,
    '--endpoints',
    cluster.endpoints.join(','),
    '--watchers',
    String(count),
    '--conns',
    '10',
  ];
  const { child, output } = spawnCollecting(process.execPath, args);
  const ready = await waitFor(() => output().includes('ready') || child.exitCode !== null, timeoutMs);
  if (!ready || !output().includes('ready')) {
    child.kill('SIGKILL');
    throw new Error(`the watch holder did not get ready: ${output().trim() || 'timed out'}`);
  }
  const rssBytesPerWatcher = (rssBytes(cluster.pids) - rssBefore) / count;
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  return {
    rssBytesPerWatcher,
    stop: async () => {
      if (child.exitCode === null) child.kill('SIGTERM');
      await exited;
    },
  };
}

type Rates = Record<Client, { flotilla: number | null; etcd: number | null }>;

function rates(summary: WorkloadSummary | undefined): Rates {
  const of = (c: WorkloadSummary['ours'] | null | undefined) => ({
    flotilla: c?.flotilla.rps ?? null,
    etcd: c?.etcd.rps ?? null,
  });
  return { ours: of(summary?.ours), neutral: of(summary?.neutral) };
}

function rssPerWatcher(records: readonly RunRecord[], system: 'flotilla' | 'etcd'): number | null {
  const values = records.flatMap((r) =>
    r.system === system && r.rssBytesPerWatcher !== undefined ? [r.rssBytesPerWatcher] : [],
  );
  const value = median(values);
  return value === null ? null : Math.round(value);
}

/** The watch figures of a row with idle watchers (as they appear in its JSON). */
export interface WatchFigures {
  readonly flotilla_watch_slowdown: number | null;
  readonly etcd_watch_slowdown: number | null;
  readonly neutral_flotilla_watch_slowdown: number | null;
  readonly neutral_etcd_watch_slowdown: number | null;
  readonly flotilla_rss_bytes_per_watcher: number | null;
  readonly etcd_rss_bytes_per_watcher: number | null;
}

/** The watch figures of `workload`; undefined for a row without idle watchers. */
export function watchFields(
  workload: Workload,
  summaries: ReadonlyMap<WorkloadKey, WorkloadSummary>,
): WatchFigures | undefined {
  if (workload.baseline === undefined) return undefined;
  const summary = summaries.get(workload.key);
  const without = rates(summaries.get(workload.baseline));
  const withWatchers = rates(summary);
  return {
    flotilla_watch_slowdown: ratio(without.ours.flotilla, withWatchers.ours.flotilla),
    etcd_watch_slowdown: ratio(without.ours.etcd, withWatchers.ours.etcd),
    neutral_flotilla_watch_slowdown: ratio(without.neutral.flotilla, withWatchers.neutral.flotilla),
    neutral_etcd_watch_slowdown: ratio(without.neutral.etcd, withWatchers.neutral.etcd),
    flotilla_rss_bytes_per_watcher: rssPerWatcher(summary?.records ?? [], 'flotilla'),
    etcd_rss_bytes_per_watcher: rssPerWatcher(summary?.records ?? [], 'etcd'),
  };
}
