/**
 * The profiler's report: each server's summary with its CPU per request and its top
 * functions located in Flotilla's TypeScript (through the build's source maps), as text and
 * as one JSON object.
 */
import { existsSync, readFileSync } from 'node:fs';
import { SourceMap, type SourceMapPayload, type SourceMapping } from 'node:module';
import { dirname, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { FunctionTime, ProfileSummary } from './analyse.js';
import type { ProcessCpu } from './files.js';
import type { LoadResult } from './load.js';

const ROOT = fileURLToPath(new URL('../../../', import.meta.url));

/**
 * A top function with where it is: `src/raft/log.ts:42`, `lmdb/write.js:310`, `node:fs:921`;
 * for a native function, `native, from <caller> <where>`.
 */
export interface LocatedFunction extends FunctionTime {
  readonly source: string;
}

export interface ServerReport extends Omit<ProfileSummary, 'top'> {
  readonly name: string;
  readonly pid: number;
  readonly role: string;
  /** The process's CPU time over the profiled window, all threads (null if not written). */
  readonly cpu: ProcessCpu | null;
  /** Sampled busy time of the main thread per successful request. */
  readonly busy_ms_per_req: number;
  /** Process CPU time (user + system, all threads) per successful request. */
  readonly cpu_ms_per_req: number | null;
  readonly top: LocatedFunction[];
}

export interface ProfileReport {
  readonly workload: string;
  readonly clients: number;
  readonly conns: number;
  readonly total: number;
  readonly requests: number;
  readonly rps: number;
  readonly p50_ms: number;
  readonly p99_ms: number;
  readonly errors: number;
  readonly duration_s: number;
  readonly interval_us: number;
  /** Whether the leader at the end was not the leader at the start. */
  readonly leader_changed: boolean;
  /** The three servers together, per successful request. */
  readonly busy_ms_per_req: number;
  readonly cpu_ms_per_req: number | null;
  readonly leader: ServerReport;
  readonly followers: ServerReport[];
  /** Where the `.cpuprofile` files were kept (`--out`), or null. */
  readonly profiles: string | null;
}

const maps = new Map<string, SourceMap | null>();

function sourceMapOf(file: string): SourceMap | null {
  let map = maps.get(file);
  if (map === undefined) {
    const path = `${file}.map`;
    map = existsSync(path) ? new SourceMap(JSON.parse(readFileSync(path, 'utf8')) as SourceMapPayload) : null;
    maps.set(file, map);
  }
  return map;
}

/** Where a function is, for a reader: the TypeScript line for Flotilla's own code. */
export function locate(url: string, line: number, column: number): string {
  if (url === '') return '';
  if (!url.startsWith('file://')) return `${url}:${line}`;
  const file = fileURLToPath(url);
  const at = file.lastIndexOf('/node_modules/');
  if (at >= 0) return `${file.slice(at + '/node_modules/'.length)}:${line}`;
  const entry = sourceMapOf(file)?.findEntry(line - 1, Math.max(0, column - 1)) as
    | Partial<SourceMapping>
    | undefined;
  if (entry?.originalSource !== undefined && entry.originalLine !== undefined) {
    const original = resolve(dirname(file), entry.originalSource.replace(/^file:\/\//, ''));
    return `${relative(ROOT, original)}:${entry.originalLine + 1}`;
  }
  return `${relative(ROOT, file)}:${line}`;
}

const round3 = (n: number): number => Math.round(n * 1000) / 1000;

/** One server's report from its profile summary and CPU figures. */
export function serverReport(
  node: { readonly name: string; readonly pid: number; readonly role: string },
  summary: ProfileSummary,
  cpu: ProcessCpu | null,
  requests: number,
): ServerReport {
  const perRequest = (ms: number): number => (requests > 0 ? round3(ms / requests) : 0);
  return {
    ...node,
    ...summary,
    cpu,
    busy_ms_per_req: perRequest(summary.busy_ms),
    cpu_ms_per_req: cpu === null ? null : perRequest(cpu.user_ms + cpu.system_ms),
    top: summary.top.map((f) => ({
      ...f,
      source:
        f.url === '' && f.caller !== null
          ? `native, from ${f.caller.function} ${locate(f.caller.url, f.caller.line, f.caller.column)}`
          : locate(f.url, f.line, f.column),
    })),
  };
}

const fixed = (n: number, digits = 1): string => n.toFixed(digits);
const pad = (s: string, width: number): string => (s.length >= width ? s : s + ' '.repeat(width - s.length));
const padStart = (s: string, width: number): string => s.padStart(width);

function clip(s: string, width: number): string {
  return s.length <= width ? s : `${s.slice(0, width - 1)}…`;
}

/** The text block for one server. */
export function formatServer(server: ServerReport): string[] {
  const share = (ms: number): string => `${fixed(server.busy_ms > 0 ? (100 * ms) / server.busy_ms : 0)}%`;
  const cpu = server.cpu;
  const lines = [
    `${server.role} ${server.name} (pid ${server.pid})`,
    `  sampled ${fixed(server.total_ms / 1000, 2)} s: busy ${fixed(server.busy_ms, 0)} ms` +
      ` (${fixed(server.total_ms > 0 ? (100 * server.busy_ms) / server.total_ms : 0)}%),` +
      ` idle ${fixed(server.idle_ms, 0)} ms; of busy: gc ${share(server.gc_ms)}, (program) ${share(server.program_ms)}`,
    `  per request: ${fixed(server.busy_ms_per_req, 3)} ms busy (main thread, sampled)` +
      (cpu === null || server.cpu_ms_per_req === null
        ? ''
        : `; ${fixed(server.cpu_ms_per_req, 3)} ms CPU (all threads: user ${fixed(cpu.user_ms, 0)}` +
          ` + system ${fixed(cpu.system_ms, 0)} ms in ${fixed(cpu.wall_ms / 1000, 2)} s)`),
    '  categories (share of busy time):',
  ];
  for (const [name, time] of Object.entries(server.categories)) {
    lines.push(`    ${pad(name, 22)} ${padStart(fixed(time.ms), 9)} ms ${padStart(fixed(time.pct), 6)}%`);
  }
  lines.push(`  top ${server.top.length} functions by self time:`);
  lines.push(
    `    ${padStart('self ms', 9)} ${padStart('%', 6)}  ${pad('function', 36)} ${pad('category', 20)} where`,
  );
  for (const f of server.top) {
    const name = f.url === '' && f.caller !== null ? `${f.function} (native)` : f.function;
    lines.push(
      `    ${padStart(fixed(f.self_ms), 9)} ${padStart(fixed(f.self_pct), 6)}  ${pad(clip(name, 36), 36)}` +
        ` ${pad(f.category, 20)} ${f.source}`,
    );
  }
  return lines;
}

/** The whole text report: the load, the per-request totals, the leader and one follower. */
export function formatReport(report: ProfileReport): string {
  const perRequest = (s: ServerReport): string =>
    `${s.name} ${fixed(s.busy_ms_per_req, 3)} ms busy` +
    (s.cpu_ms_per_req === null ? '' : `, ${fixed(s.cpu_ms_per_req, 3)} ms CPU`);
  const lines = [
    `${report.workload}: ${report.requests} requests (${report.clients} clients, ${report.conns} conns) in` +
      ` ${fixed(report.duration_s, 2)} s: ${fixed(report.rps)} req/s, p50 ${fixed(report.p50_ms, 2)} ms,` +
      ` p99 ${fixed(report.p99_ms, 2)} ms, ${report.errors} errors`,
    `CPU per request, 3 servers together: ${fixed(report.busy_ms_per_req, 3)} ms busy (sampled, main threads)` +
      (report.cpu_ms_per_req === null ? '' : `, ${fixed(report.cpu_ms_per_req, 3)} ms CPU (all threads)`),
    `per server: ${[report.leader, ...report.followers].map(perRequest).join('; ')}`,
  ];
  if (report.leader_changed) lines.push('warning: the leader changed during the run');
  lines.push('', ...formatServer(report.leader));
  const follower = report.followers[0];
  if (follower !== undefined) lines.push('', ...formatServer(follower));
  if (report.profiles !== null) lines.push('', `profiles (open in Chrome DevTools): ${report.profiles}`);
  return lines.join('\n');
}

/** The report's figures for the load. */
export function loadFigures(
  result: LoadResult,
): Pick<ProfileReport, 'requests' | 'rps' | 'p50_ms' | 'p99_ms' | 'errors' | 'duration_s'> {
  return {
    requests: result.succeeded,
    rps: result.rps,
    p50_ms: result.p50_ms,
    p99_ms: result.p99_ms,
    errors: result.errors,
    duration_s: result.duration_s,
  };
}
