/**
 * From runs to figures: each run's record (the client's report, the servers' and the
 * client's CPU time), the medians over the rounds per system and client, the ratios
 * Flotilla / etcd, and the JSON row of each workload.
 */
import type { Client } from './clients.js';
import type { System } from './processes.js';

/** One run of one client against one system. */
export interface RunRecord {
  readonly round: number;
  readonly system: System;
  readonly client: Client;
  readonly rps: number | null;
  readonly p50: number | null;
  readonly p99: number | null;
  readonly succeeded: number;
  readonly errors: number;
  /** The client process's wall time, s. */
  readonly wallS: number | null;
  /** CPU time of each server process of the system under test during the run, ms. */
  readonly serverCpuMs: readonly number[] | null;
  /** CPU time of the client process, ms. */
  readonly clientCpuMs: number | null;
  /** Rows with idle watchers: the members' resident memory growth per watcher, bytes. */
  readonly rssBytesPerWatcher?: number;
  readonly failure?: string;
}

/** The figures of one system driven by one client: medians over the rounds, sums of counts. */
export interface Figures {
  readonly rps: number | null;
  readonly p50: number | null;
  readonly p99: number | null;
  readonly ok: number;
  readonly errors: number;
  /** Server CPU (all members) per successful request, ms. */
  readonly cpuMsPerReq: number | null;
  /** Successful requests per server CPU-second (all members together). */
  readonly reqPerCpuS: number | null;
  /** Successful requests per CPU-second of each member, in member order. */
  readonly reqPerCpuSPerProcess: readonly (number | null)[] | null;
  /** The client's CPU time over its wall time, as a share of all the machine's cores. */
  readonly clientCpuShare: number | null;
}

/** Both systems under one client, and the ratios Flotilla / etcd. */
export interface ClientSummary {
  readonly flotilla: Figures;
  readonly etcd: Figures;
  readonly rpsRatio: number | null;
  readonly p99Ratio: number | null;
  readonly cpuRatio: number | null;
}

export interface WorkloadSummary {
  readonly ours: ClientSummary;
  /** Null where the row has no neutral counterpart, or with --no-neutral. */
  readonly neutral: ClientSummary | null;
  readonly records: readonly RunRecord[];
}

export function median(values: readonly number[]): number | null {
  if (values.length === 0) return null;
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}

export function ratio(a: number | null, b: number | null): number | null {
  return a === null || b === null || b === 0 ? null : Math.round((a / b) * 1000) / 1000;
}

export function round(value: number | null, digits: number): number | null {
  return value === null ? null : Math.round(value * 10 ** digits) / 10 ** digits;
}

const sum = (values: readonly number[]): number => values.reduce((a, b) => a + b, 0);

/** The median of `pick` over the records where it is a number. */
function medianOf(records: readonly RunRecord[], pick: (r: RunRecord) => number | null): number | null {
  return median(records.flatMap((r) => (r.succeeded > 0 ? [pick(r)].filter((v) => v !== null) : [])));
}

function reqPerCpuS(succeeded: number, cpuMs: number): number | null {
  return cpuMs > 0 ? succeeded / (cpuMs / 1000) : null;
}

/** Server CPU per successful request of one run, ms (all members together). */
const cpuPerRequest = (r: RunRecord): number | null =>
  r.serverCpuMs === null ? null : sum(r.serverCpuMs) / r.succeeded;

/** The client's CPU over its wall time, as a share of all `cores`. */
const clientShare = (r: RunRecord, cores: number): number | null =>
  r.clientCpuMs === null || r.wallS === null || r.wallS <= 0
    ? null
    : r.clientCpuMs / (r.wallS * 1000 * cores);

/** The figures of one system under one client (unrounded: the JSON rounds them). */
function figures(records: readonly RunRecord[], cores: number): Figures {
  const members = Math.max(0, ...records.map((r) => r.serverCpuMs?.length ?? 0));
  const perProcess = (i: number): number | null =>
    medianOf(records, (r) => {
      const ms = r.serverCpuMs?.[i];
      return ms === undefined ? null : reqPerCpuS(r.succeeded, ms);
    });
  return {
    rps: medianOf(records, (r) => r.rps),
    p50: medianOf(records, (r) => r.p50),
    p99: medianOf(records, (r) => r.p99),
    ok: sum(records.map((r) => r.succeeded)),
    errors: sum(records.map((r) => r.errors)),
    cpuMsPerReq: medianOf(records, cpuPerRequest),
    reqPerCpuS: medianOf(records, (r) =>
      r.serverCpuMs === null ? null : reqPerCpuS(r.succeeded, sum(r.serverCpuMs)),
    ),
    reqPerCpuSPerProcess: members === 0 ? null : Array.from({ length: members }, (_, i) => perProcess(i)),
    clientCpuShare: medianOf(records, (r) => clientShare(r, cores)),
  };
}

function summarizeClient(records: readonly RunRecord[], cores: number): ClientSummary {
  const flotilla = figures(
    records.filter((r) => r.system === 'flotilla'),
    cores,
  );
  const etcd = figures(
    records.filter((r) => r.system === 'etcd'),
    cores,
  );
  return {
    flotilla,
    etcd,
    rpsRatio: ratio(flotilla.rps, etcd.rps),
    p99Ratio: ratio(flotilla.p99, etcd.p99),
    cpuRatio: ratio(flotilla.cpuMsPerReq, etcd.cpuMsPerReq),
  };
}

/** The figures of one workload; `neutral` says whether its neutral runs were made. */
export function summarize(records: readonly RunRecord[], neutral: boolean, cores: number): WorkloadSummary {
  return {
    ours: summarizeClient(
      records.filter((r) => r.client === 'ours'),
      cores,
    ),
    neutral: neutral
      ? summarizeClient(
          records.filter((r) => r.client === 'neutral'),
          cores,
        )
      : null,
    records,
  };
}

/**
 * The JSON fields of one client's figures: `<prefix>flotilla_<name>` and
 * `<prefix>etcd_<name>` for each figure, and `<prefix>rps_ratio`, `p99_ratio`, `cpu_ratio`;
 * every one null when the client did not run (`summary` null).
 */
function clientFields(prefix: string, summary: ClientSummary | null): Record<string, unknown> {
  const pair = (name: string, pick: (f: Figures) => unknown): Record<string, unknown> => ({
    [`${prefix}flotilla_${name}`]: summary === null ? null : pick(summary.flotilla),
    [`${prefix}etcd_${name}`]: summary === null ? null : pick(summary.etcd),
  });
  return {
    ...pair('rps', (f) => round(f.rps, 1)),
    ...pair('p99_ms', (f) => round(f.p99, 3)),
    [`${prefix}rps_ratio`]: summary?.rpsRatio ?? null,
    [`${prefix}p99_ratio`]: summary?.p99Ratio ?? null,
    ...pair('p50_ms', (f) => round(f.p50, 3)),
    ...pair('ok', (f) => f.ok),
    ...pair('errors', (f) => f.errors),
    ...pair('cpu_ms_per_req', (f) => round(f.cpuMsPerReq, 4)),
    [`${prefix}cpu_ratio`]: summary?.cpuRatio ?? null,
    ...pair('req_per_cpu_s', (f) => round(f.reqPerCpuS, 0)),
    ...pair('req_per_cpu_s_per_process', (f) => f.reqPerCpuSPerProcess?.map((v) => round(v, 0)) ?? null),
    ...pair('client_cpu_share', (f) => round(f.clientCpuShare, 3)),
  };
}

/** One run as it appears under `rounds`. */
function roundJson(r: RunRecord): Record<string, unknown> {
  return {
    round: r.round,
    system: r.system,
    client: r.client,
    rps: round(r.rps, 1),
    p50_ms: round(r.p50, 3),
    p99_ms: round(r.p99, 3),
    errors: r.errors,
    server_cpu_ms: r.serverCpuMs?.map((ms) => Math.round(ms)) ?? null,
    client_cpu_ms: round(r.clientCpuMs, 0),
    wall_s: round(r.wallS, 3),
    ...(r.failure === undefined ? {} : { failure: r.failure }),
  };
}

/**
 * A workload's JSON: our client's figures under their historical names, the neutral
 * client's under `neutral_`, why the neutral ones are null (`neutral_note`), every run.
 */
export function workloadJson(s: WorkloadSummary, neutralNote: string | undefined): Record<string, unknown> {
  return {
    ...clientFields('', s.ours),
    ...clientFields('neutral_', s.neutral),
    ...(neutralNote === undefined ? {} : { neutral_note: neutralNote }),
    rounds: s.records.map(roundJson),
  };
}
