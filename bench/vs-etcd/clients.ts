/**
 * The two clients that drive every row: ours, `flotilla bench` (etcd's benchmark tool's
 * semantics, our own HTTP/2 and gRPC code), and the neutral one, etcd-load
 * (bench/etcd-load/main.go, on etcd's own Go client), so that no verdict rests on a client
 * either system wrote. Each run is its own child process, and its CPU time is measured.
 */
import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { type ChildRun, runChild } from './processes.js';

const MAIN = fileURLToPath(new URL('../../src/cli/main.js', import.meta.url));
const BUILD_NEUTRAL = fileURLToPath(new URL('../../../bench/etcd-load/build.sh', import.meta.url));

export type Client = 'ours' | 'neutral';
export const CLIENT_NAMES: Record<Client, string> = { ours: 'flotilla bench', neutral: 'etcd-load' };

/** One run of a client, in the figures both clients report. */
export interface ClientResult {
  readonly succeeded: number;
  readonly errors: number;
  readonly rps: number;
  readonly p50: number;
  readonly p99: number;
  readonly errorCounts: Readonly<Record<string, number>>;
  /** The client process's wall time, ms. */
  readonly wallMs: number;
  /** The client process's user + system CPU time, ms (null where /proc cannot tell). */
  readonly clientCpuMs: number | null;
}

/** What `flotilla bench --json` reports (the fields used here). */
interface OursJson {
  succeeded: number;
  errors: number;
  rps: number;
  latency_ms: { p50: number; p99: number };
  error_counts: Record<string, number>;
}

/** What etcd-load reports. */
interface NeutralJson {
  succeeded: number;
  errors: number;
  rps: number;
  p50_ms: number;
  p99_ms: number;
  error_kinds: Record<string, number> | null;
}

/** The last line of a run's stdout as JSON; throws with the run's output if it failed. */
export function lastJson<T>(name: string, result: ChildRun): T {
  const last = result.stdout.trim().split('\n').pop() ?? '';
  if (result.code !== 0 || !last.startsWith('{')) {
    const output = result.stderr.trim() || result.stdout.trim();
    throw new Error(`${name} failed (exit ${result.code}): ${output}`);
  }
  return JSON.parse(last) as T;
}

/** Runs `flotilla bench <args> --endpoints ... --json` in a child process. */
export function runOurs(
  endpoints: readonly string[],
  args: readonly string[],
  timeoutMs: number,
): Promise<ClientResult> {
  const argv = [MAIN, 'bench', ...args, '--endpoints', endpoints.join(','), '--json'];
  return runNode(`bench ${args.join(' ')}`, argv, timeoutMs);
}

/**
 * Runs `script` of bench/vs-etcd/ (compiled) with `args --endpoints ...` in a child process;
 * it reports as `flotilla bench --json` does.
 */
export function runScript(
  endpoints: readonly string[],
  script: string,
  args: readonly string[],
  timeoutMs: number,
): Promise<ClientResult> {
  const path = fileURLToPath(new URL(`./${script}.js`, import.meta.url));
  return runNode(
    `${script} ${args.join(' ')}`,
    [path, ...args, '--endpoints', endpoints.join(',')],
    timeoutMs,
  );
}

async function runNode(name: string, argv: readonly string[], timeoutMs: number): Promise<ClientResult> {
  const result = await runChild(process.execPath, argv, timeoutMs);
  const json = lastJson<OursJson>(name, result);
  return {
    succeeded: json.succeeded,
    errors: json.errors,
    rps: json.rps,
    p50: json.latency_ms.p50,
    p99: json.latency_ms.p99,
    errorCounts: json.error_counts,
    wallMs: result.wallMs,
    clientCpuMs: result.cpuMs,
  };
}

/** Runs `etcd-load <args> -endpoints ...` in a child process. */
export async function runNeutral(
  binary: string,
  endpoints: readonly string[],
  args: readonly string[],
  timeoutMs: number,
): Promise<ClientResult> {
  const result = await runChild(binary, [...args, '-endpoints', endpoints.join(',')], timeoutMs);
  const json = lastJson<NeutralJson>(`etcd-load ${args.join(' ')}`, result);
  return {
    succeeded: json.succeeded,
    errors: json.errors,
    rps: json.rps,
    p50: json.p50_ms,
    p99: json.p99_ms,
    errorCounts: json.error_kinds ?? {},
    wallMs: result.wallMs,
    clientCpuMs: result.cpuMs,
  };
}

/**
 * Builds etcd-load with bench/etcd-load/build.sh (which installs Debian's Go and etcd
 * client sources when missing, as root, and skips the build when the binary is newer than
 * its sources); resolves with the binary's path, rejects with the script's output.
 */
export function buildNeutral(): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile('bash', [BUILD_NEUTRAL], { timeout: 600_000 }, (error, stdout, stderr) => {
      const path = stdout.trim().split('\n').pop() ?? '';
      if (error !== null || path === '') {
        reject(new Error(`${stderr.trim() || stdout.trim() || (error?.message ?? 'no output')}`));
      } else {
        resolve(path);
      }
    });
  });
}
