/**
 * What the growth benchmark reads of each member of a running cluster: resident memory by
 * kind (/proc/PID/status), heap (Flotilla's `flotilla_process_heap_used_bytes`, etcd's Go
 * `go_memstats_heap_alloc_bytes`, both from the member's /metrics) and disk (the blocks its
 * data directory's files take). A sampler reads resident memory every 250 ms throughout the
 * load, so the peak between progress samples is seen too.
 */
import { readdir, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { residentMemory } from '../../src/server/process-metrics.js';
import type { Cluster } from '../vs-etcd/clusters.js';

const MB = 1e6;

/** One member at one moment, in MB (10^6 bytes); null where it could not be read. */
export interface MemberSample {
  readonly rss_anon_mb: number | null;
  readonly rss_file_mb: number | null;
  readonly heap_mb: number | null;
  readonly disk_mb: number;
}

/** Bytes the files under `path` occupy on disk (allocated blocks, so sparse files count as written). */
export async function diskBytes(path: string): Promise<number> {
  let total = 0;
  let entries: import('node:fs').Dirent[];
  try {
    entries = await readdir(path, { withFileTypes: true });
  } catch {
    return 0;
  }
  for (const entry of entries) {
    const full = join(path, entry.name);
    if (entry.isDirectory()) total += await diskBytes(full);
    else if (entry.isFile())
      total += await stat(full).then(
        (s) => s.blocks * 512,
        () => 0,
      );
  }
  return total;
}

/** The member's heap in use, bytes, from its /metrics; null if it does not answer. */
async function heapBytes(cluster: Cluster, member: number): Promise<number | null> {
  const flotilla = cluster.system === 'flotilla';
  const base = flotilla ? cluster.clientUrls[member] : `http://${cluster.endpoints[member]}`;
  const metric = flotilla ? 'flotilla_process_heap_used_bytes' : 'go_memstats_heap_alloc_bytes';
  try {
    const text = await (await fetch(`${base}/metrics`, { signal: AbortSignal.timeout(5000) })).text();
    const match = new RegExp(`^${metric} (\\S+)$`, 'm').exec(text);
    return match === null ? null : Number(match[1]);
  } catch {
    return null;
  }
}

/** Every member of `cluster` now. */
export async function sampleMembers(cluster: Cluster): Promise<MemberSample[]> {
  return Promise.all(
    cluster.pids.map(async (pid, member) => {
      const resident = residentMemory(pid);
      const heap = await heapBytes(cluster, member);
      return {
        rss_anon_mb: resident === undefined ? null : round(resident.anonBytes / MB),
        rss_file_mb: resident === undefined ? null : round(resident.fileBytes / MB),
        heap_mb: heap === null ? null : round(heap / MB),
        disk_mb: round((await diskBytes(cluster.dataDirs[member]!)) / MB),
      };
    }),
  );
}

/** Tracks the peak resident memory (anonymous + file-backed) of each member until stopped. */
export class PeakSampler {
  /** Peak RSS per member, bytes. */
  readonly peakBytes: number[];
  private readonly timer: NodeJS.Timeout;

  constructor(private readonly pids: readonly number[]) {
    this.peakBytes = pids.map(() => 0);
    this.sample();
    this.timer = setInterval(() => this.sample(), 250);
  }

  /** Stops sampling; the peaks per member, MB. */
  stop(): number[] {
    clearInterval(this.timer);
    this.sample();
    return this.peakBytes.map((bytes) => round(bytes / MB));
  }

  private sample(): void {
    this.pids.forEach((pid, member) => {
      const resident = residentMemory(pid);
      if (resident === undefined) return;
      const total = resident.anonBytes + resident.fileBytes;
      if (total > this.peakBytes[member]!) this.peakBytes[member] = total;
    });
  }
}

/** `value` to one decimal. */
export function round(value: number): number {
  return Math.round(value * 10) / 10;
}
