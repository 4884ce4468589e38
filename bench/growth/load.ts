/**
 * One system's growth run: start it (3 members), then put the keys in ten steps of a tenth
 * each with etcd-load (distinct sequential keys, `-sequential -key-offset`), sampling every
 * member after each step, and the peak resident memory throughout.
 */
import { join } from 'node:path';
import { lastJson } from '../vs-etcd/clients.js';
import { type Cluster, startEtcd, startFlotilla, waitReady } from '../vs-etcd/clusters.js';
import { log, run, runChild, type System, stopMembers } from '../vs-etcd/processes.js';
import type { GrowthArgs } from './args.js';
import { type MemberSample, PeakSampler, round, sampleMembers } from './members.js';
import { type RejoinResult, rejoin } from './rejoin.js';

/** Steps of the load: one sample per tenth. */
export const STEPS = 10;
/** Bytes per key: zero-padded decimal numbers, distinct up to 10^16 keys. */
const KEY_SIZE = 16;

/** What etcd-load prints (the fields used here). */
interface LoadJson {
  succeeded: number;
  errors: number;
  duration_s: number;
  rps: number;
  p99_ms: number;
  max_ms: number;
  error_kinds: Record<string, number> | null;
}

/** One tenth of the load and the members after it. */
export interface StepResult {
  /** Keys put by the end of the step. */
  readonly keys: number;
  readonly rps: number;
  readonly p99_ms: number;
  readonly max_ms: number;
  readonly errors: number;
  readonly members: readonly MemberSample[];
}

/** One system's whole run. */
export interface SystemResult {
  /** Successful puts per second over the whole load. */
  readonly rps: number;
  /** The highest p99 of any tenth (percentiles of different steps cannot be merged). */
  readonly p99_ms: number;
  readonly max_ms: number;
  /** Failed requests, and by error message. */
  readonly errors: number;
  readonly error_kinds: Readonly<Record<string, number>>;
  /** The last tenth's put rate over the first's. */
  readonly last_decile_over_first: number;
  /** Peak resident memory (anonymous + file-backed) per member, MB. */
  readonly peak_rss_mb: readonly number[];
  readonly steps: readonly StepResult[];
  /** Restart and catch-up with the data in place (see rejoin.ts). */
  readonly rejoin: Omit<RejoinResult, 'pids'>;
}

async function start(system: System, directory: string): Promise<Cluster> {
  const cluster = system === 'etcd' ? await startEtcd(directory) : await startFlotilla(directory);
  await waitReady(cluster, 60_000);
  return cluster;
}

/** Runs one tenth: keys `[offset, offset + total)`; or, with `offset` null, `total` puts of the first key. */
async function step(
  binary: string,
  cluster: Cluster,
  args: GrowthArgs,
  offset: number | null,
  total: number,
): Promise<LoadJson> {
  const keys = offset === null ? ['-key-space', '1'] : ['-sequential', '-key-offset', String(offset)];
  const flags = [
    ...['-op', 'put', ...keys, '-total', String(total)],
    ...['-key-size', String(KEY_SIZE), '-val-size', String(args.valueSize)],
    ...['-clients', String(args.clients), '-conns', String(args.conns)],
    ...['-endpoints', cluster.endpoints.join(',')],
  ];
  // Generous: a tenth of a million keys at a few hundred puts per second still finishes.
  const result = await runChild(binary, flags, 3_600_000);
  return lastJson<LoadJson>(`etcd-load ${flags.join(' ')}`, result);
}

/** Loads `system` with `args.keys` keys in {@link STEPS} steps; stops it afterwards. */
export async function loadSystem(
  system: System,
  binary: string,
  args: GrowthArgs,
  root: string,
): Promise<SystemResult> {
  const cluster = await start(system, join(root, system));
  // Warm-up (connections, JIT, caches), so the first tenth's rate is comparable with the
  // others': puts of the load's first key (overwritten by the load, so N keys remain).
  await step(binary, cluster, args, null, Math.min(5000, Math.max(200, Math.floor(args.keys / 20))));
  const peaks = new PeakSampler(cluster.pids);
  const steps: StepResult[] = [];
  const errorKinds: Record<string, number> = {};
  let succeeded = 0;
  let seconds = 0;
  let peakRssMb: number[] = [];
  let rejoined: RejoinResult | undefined;
  try {
    for (let i = 0; i < STEPS; i++) {
      const offset = Math.floor((args.keys * i) / STEPS);
      const total = Math.floor((args.keys * (i + 1)) / STEPS) - offset;
      const load = await step(binary, cluster, args, offset, total);
      const members = await sampleMembers(cluster);
      for (const [kind, count] of Object.entries(load.error_kinds ?? {})) {
        errorKinds[kind] = (errorKinds[kind] ?? 0) + count;
      }
      succeeded += load.succeeded;
      seconds += load.duration_s;
      const { rps, p99_ms, max_ms, errors } = load;
      steps.push({ keys: offset + total, rps: round(rps), p99_ms, max_ms, errors, members });
      const rss = members.map((m) => `${m.rss_anon_mb}+${m.rss_file_mb}`).join(' ');
      log(
        `${system} ${offset + total} keys: ${Math.round(rps)} put/s, p99 ${p99_ms} ms, RSS anon+file MB ${rss}`,
      );
    }
    peakRssMb = peaks.stop();
    rejoined = await rejoin(cluster, join(root, system));
  } finally {
    peaks.stop();
    // The clusters' exit handlers report a member that stops: say why first.
    run.stopped[system] = `${system}'s load is over`;
    await stopMembers([...cluster.pids, ...(rejoined?.pids ?? [])]);
  }
  const { pids: _pids, ...rejoinFigures } = rejoined;
  return { ...summarize(steps, errorKinds, succeeded / seconds, peakRssMb), rejoin: rejoinFigures };
}

function summarize(
  steps: readonly StepResult[],
  errorKinds: Readonly<Record<string, number>>,
  rps: number,
  peakRssMb: readonly number[],
): Omit<SystemResult, 'rejoin'> {
  const first = steps[0]!;
  const last = steps[steps.length - 1]!;
  return {
    rps: round(rps),
    p99_ms: Math.max(...steps.map((s) => s.p99_ms)),
    max_ms: Math.max(...steps.map((s) => s.max_ms)),
    errors: steps.reduce((sum, s) => sum + s.errors, 0),
    error_kinds: errorKinds,
    last_decile_over_first: first.rps > 0 ? Math.round((last.rps / first.rps) * 100) / 100 : 0,
    peak_rss_mb: peakRssMb,
    steps,
  };
}
