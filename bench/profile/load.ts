/**
 * The load: `bench/etcd-load` (a closed-loop generator on etcd's own Go client, so the
 * client is neither system's code), built when missing or older than its source, and the
 * workloads the profiler knows.
 */
import type { ChildProcess } from 'node:child_process';
import { existsSync, statSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { runProcess } from '../run-process.js';
import { MAIN } from './cluster.js';

const BINARY = fileURLToPath(new URL('../etcd-load', import.meta.url));
const SOURCE_DIR = fileURLToPath(new URL('../../../bench/etcd-load/', import.meta.url));

export interface Workload {
  /** etcd-load's `-op`. */
  readonly op: 'put' | 'range-l' | 'txn-put';
  readonly clients: number;
  readonly conns: number;
  /** Requests when `--total` is not given: a run of roughly 5-10 s on a 2-core machine. */
  readonly total: number;
  /** Whether the workload reads key `foo`, which must be written first. */
  readonly reads: boolean;
}

export const WORKLOADS: Readonly<Record<string, Workload>> = {
  put_1: { op: 'put', clients: 1, conns: 1, total: 2_000, reads: false },
  put_100: { op: 'put', clients: 100, conns: 10, total: 20_000, reads: false },
  range_l_100: { op: 'range-l', clients: 100, conns: 10, total: 80_000, reads: true },
  txn_put_100: { op: 'txn-put', clients: 100, conns: 10, total: 20_000, reads: false },
};

/** etcd-load's JSON line. */
export interface LoadResult {
  readonly op: string;
  readonly total: number;
  readonly succeeded: number;
  readonly errors: number;
  readonly duration_s: number;
  readonly rps: number;
  readonly p50_ms: number;
  readonly p90_ms: number;
  readonly p99_ms: number;
  readonly max_ms: number;
  readonly error_kinds: Record<string, number> | null;
}

/** Child processes of this module still running, for cleanup. */
const running = new Set<ChildProcess>();
let stopped = false;

/** Kills the load generator (or `put`) if one is running, and refuses to start another. */
export function killLoad(): void {
  stopped = true;
  for (const child of running) child.kill('SIGKILL');
}

/** Runs `command args`, resolving its stdout; rejects on a non-zero exit with its stderr. */
async function run(command: string, args: readonly string[], what: string): Promise<string> {
  if (stopped) throw new Error(`${what}: stopped`);
  let child: ChildProcess | undefined;
  const finished = await runProcess(command, args, {
    onSpawn: (c) => {
      child = c;
      running.add(c);
    },
  });
  if (child !== undefined) running.delete(child);
  if (finished.code !== 0) {
    const how = finished.signal ?? (finished.code === null ? 'not started' : `exit ${finished.code}`);
    throw new Error(`${what} failed (${how}):\n${finished.stderr}${finished.stdout}`);
  }
  return finished.stdout;
}

/** The path of etcd-load, building it (`bench/etcd-load/build.sh`) when missing or stale. */
export async function etcdLoadBinary(log: (message: string) => void): Promise<string> {
  const source = `${SOURCE_DIR}main.go`;
  if (existsSync(BINARY) && statSync(BINARY).mtimeMs >= statSync(source).mtimeMs) return BINARY;
  log('building bench/etcd-load (Go)...');
  const out = await run('bash', [`${SOURCE_DIR}build.sh`, BINARY], 'bench/etcd-load/build.sh');
  return out.trim().split('\n').pop() ?? BINARY;
}

/** Runs `workload` with `total` requests against `endpoints` (comma-separated host:port). */
export async function runLoad(
  binary: string,
  endpoints: string,
  workload: Workload,
  total: number,
): Promise<LoadResult> {
  const args = [
    ['-endpoints', endpoints],
    ['-op', workload.op],
    ['-clients', String(workload.clients)],
    ['-conns', String(workload.conns)],
    ['-total', String(total)],
    ['-key-size', '8'],
    ['-val-size', '256'],
    ['-key-space', '100000'],
  ].flat();
  const out = await run(binary, args, `etcd-load ${workload.op}`);
  const line = out.trim().split('\n').pop() ?? '';
  return JSON.parse(line) as LoadResult;
}

/** Writes key `foo` (256 bytes), which the range workloads read, through the CLI. */
export async function putReadKey(clientUrls: string): Promise<void> {
  await run(process.execPath, [MAIN, 'put', 'foo', 'v'.repeat(256), '--endpoints', clientUrls], 'put foo');
}
