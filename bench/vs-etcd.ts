/**
 * Flotilla against etcd, side by side on one machine:
 *
 *   npm run bench:vs-etcd [-- --rounds N] [--scale X] [--json] [--quick] [--dir D] [--no-write]
 *
 * Starts a 3-node etcd (the `etcd` binary) and a 3-node Flotilla (`flotilla cluster start`)
 * on loopback, both with their data under one temporary directory (one disk) and both
 * syncing to disk (etcd's default; Flotilla without `--kv-no-sync`), and runs the same
 * workloads against each with the same client, `flotilla bench` (etcd's benchmark tool's
 * semantics), each run in its own child process. Runs alternate between the systems (the
 * system that goes first swaps every round), and each figure is the median over the rounds:
 *
 *   put_1        put, 1 client over 1 connection
 *   put_100      put, 100 clients over 10 connections
 *   put_1000     put, 1000 clients over 100 connections
 *                (puts: 8-byte keys out of a 100,000-key space, at random; 256-byte values)
 *   range_l_100  linearizable range of one key, 100 clients over 10 connections
 *   range_s_100  serializable range of one key, 100 clients over 10 connections
 *   watch_latency  watch-latency: 10 streams of 10 watchers, puts at 100/s
 *
 * In the same run it measures the machine's physical limits: the rate of 4 KiB write +
 * fdatasync on the data disk, and the round trip of a 1-byte ping-pong over loopback TCP.
 *
 * It prints a table (and with `--json`, a last line `{"put_1": {...}, ..., "limits": {...}}`)
 * and replaces its section of bench/RESULTS.md (between `<!-- vs-etcd:start -->` and
 * `<!-- vs-etcd:end -->`; not with `--quick` or `--no-write`). `--quick`: tiny totals, one
 * round, short limit measurements (a smoke test). Every process it started and the
 * temporary directory are removed on exit, on errors and on Ctrl-C.
 */
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { closeSync, fdatasyncSync, openSync, writeSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { createServer, type Server, connect as tcpConnect } from 'node:net';
import { cpus, loadavg, release, tmpdir, totalmem } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Connection, etcdMethod } from '../src/benchmark/connections.js';

const MAIN = fileURLToPath(new URL('../src/cli/main.js', import.meta.url));
const RESULTS = fileURLToPath(new URL('../../bench/RESULTS.md', import.meta.url));
const PACKAGE_JSON = fileURLToPath(new URL('../../package.json', import.meta.url));
const START_MARKER = '<!-- vs-etcd:start -->';
const END_MARKER = '<!-- vs-etcd:end -->';
type System = 'flotilla' | 'etcd';
const SYSTEMS: readonly System[] = ['flotilla', 'etcd'];

// ---------------------------------------------------------------------------------------
// Flags

interface Args {
  rounds: number;
  scale: number;
  json: boolean;
  quick: boolean;
  write: boolean;
  dir: string;
}

function usage(message: string): never {
  console.error(`error: ${message}`);
  console.error(
    'usage: npm run bench:vs-etcd [-- --rounds N] [--scale X] [--json] [--quick] [--dir D] [--no-write]',
  );
  process.exit(2);
}

function parseArgs(argv: readonly string[]): Args {
  const args: Args = { rounds: 3, scale: 1, json: false, quick: false, write: true, dir: tmpdir() };
  let roundsGiven = false;
  for (let i = 0; i < argv.length; i++) {
    const flag = argv[i]!;
    const value = (): string => {
      const v = argv[++i];
      if (v === undefined) usage(`${flag} needs a value`);
      return v;
    };
    if (flag === '--rounds') {
      const text = value();
      args.rounds = Number(text);
      roundsGiven = true;
      if (!/^\d+$/.test(text) || args.rounds < 1 || args.rounds > 99)
        usage(`--rounds must be in [1, 99], got '${text}'`);
    } else if (flag === '--scale') {
      const text = value();
      args.scale = Number(text);
      if (!Number.isFinite(args.scale) || args.scale <= 0 || args.scale > 1000) {
        usage(`--scale must be a positive number, got '${text}'`);
      }
    } else if (flag === '--json') args.json = true;
    else if (flag === '--quick') args.quick = true;
    else if (flag === '--no-write') args.write = false;
    else if (flag === '--dir') args.dir = value();
    else usage(`unknown option '${flag}'`);
  }
  if (args.quick) {
    args.write = false;
    if (!roundsGiven) args.rounds = 1;
  }
  return args;
}

// ---------------------------------------------------------------------------------------
// Workloads

type WorkloadKey = 'put_1' | 'put_100' | 'put_1000' | 'range_l_100' | 'range_s_100' | 'watch_latency';

interface Workload {
  readonly key: WorkloadKey;
  readonly label: string;
  /** `flotilla bench` arguments (without --endpoints and --json). */
  args(size: Sizing): string[];
}

/** Picks a run's size: `total(normal, quick)` is `normal` times --scale, or `quick` with --quick. */
interface Sizing {
  readonly quick: boolean;
  total(normal: number, quick: number): number;
}

const PUT = ['--key-size', '8', '--val-size', '256', '--key-space-size', '100000'];
/** The key the range workloads read (written with a 256-byte value before them). */
const RANGE_KEY = 'foo';
const RANGE = ['--clients', '100', '--conns', '10', '--total'];

const WORKLOADS: readonly Workload[] = [
  {
    key: 'put_1',
    label: 'put, 1 client / 1 conn',
    args: (s) => ['put', '--clients', '1', '--conns', '1', '--total', String(s.total(1000, 30)), ...PUT],
  },
  {
    key: 'put_100',
    label: 'put, 100 clients / 10 conns',
    args: (s) => [
      'put',
      '--clients',
      '100',
      '--conns',
      '10',
      '--total',
      String(s.total(15_000, 300)),
      ...PUT,
    ],
  },
  {
    key: 'put_1000',
    label: 'put, 1000 clients / 100 conns',
    args: (s) => [
      'put',
      '--clients',
      '1000',
      '--conns',
      '100',
      '--total',
      String(s.total(20_000, 1000)),
      ...PUT,
    ],
  },
  {
    key: 'range_l_100',
    label: 'range (linearizable), 100 clients / 10 conns',
    args: (s) => ['range', RANGE_KEY, '--consistency', 'l', ...RANGE, String(s.total(20_000, 300))],
  },
  {
    key: 'range_s_100',
    label: 'range (serializable), 100 clients / 10 conns',
    args: (s) => ['range', RANGE_KEY, '--consistency', 's', ...RANGE, String(s.total(20_000, 300))],
  },
  {
    key: 'watch_latency',
    label: 'watch latency, 10 streams x 10 watchers, 100 puts/s',
    args: (s) => [
      'watch-latency',
      '--put-total',
      String(s.total(500, 20)),
      '--put-rate',
      '100',
      '--streams',
      s.quick ? '2' : '10',
      '--watchers-per-stream',
      s.quick ? '2' : '10',
    ],
  },
];

/** What one run of `flotilla bench --json` reported (the fields used here). */
interface BenchJson {
  total: number;
  succeeded: number;
  errors: number;
  rps: number;
  latency_ms: { p50: number; p99: number; max: number };
  error_counts: Record<string, number>;
  put?: { rps: number; latency_ms: { p50: number; p99: number } };
}

interface RunRecord {
  readonly round: number;
  readonly system: System;
  readonly rps: number | null;
  readonly p50: number | null;
  readonly p99: number | null;
  readonly succeeded: number;
  readonly errors: number;
  readonly failure?: string;
}

// ---------------------------------------------------------------------------------------
// Processes and cleanup

const children = new Set<ChildProcess>();
const pidsToKill = new Set<number>();
let root: string | undefined;
let cleaning: Promise<void> | undefined;

/** Why each cluster stopped before the end of the run, once it did (the run is then void). */
const stopped: Partial<Record<System, string>> = {};

/** Why a process could not be started (the `etcd` binary missing, say), once one could not. */
let spawnFailure: Error | undefined;

function track(child: ChildProcess): ChildProcess {
  children.add(child);
  child.on('exit', () => children.delete(child));
  child.on('error', (error) => {
    children.delete(child);
    spawnFailure ??= new Error(`cannot start ${child.spawnfile}: ${error.message}`);
  });
  return child;
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

async function waitFor(condition: () => boolean, timeoutMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (condition()) return true;
    await sleep(50);
  }
  return condition();
}

/** Stops everything this run started and removes its directory (once). */
function cleanup(): Promise<void> {
  cleaning ??= (async () => {
    for (const child of children) child.kill('SIGTERM');
    await waitFor(() => children.size === 0, 5000);
    for (const child of children) child.kill('SIGKILL');
    for (const pid of pidsToKill) {
      if (alive(pid)) {
        try {
          process.kill(pid, 'SIGKILL');
        } catch {
          // gone meanwhile
        }
      }
    }
    await waitFor(() => children.size === 0 && [...pidsToKill].every((p) => !alive(p)), 3000);
    if (root !== undefined) await rm(root, { recursive: true, force: true });
  })();
  return cleaning;
}

for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
  process.on(signal, () => {
    console.error(`\n${signal}: stopping the clusters and removing ${root ?? 'the data'}`);
    void cleanup().finally(() => process.exit(signal === 'SIGINT' ? 130 : 143));
  });
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** `count` distinct free TCP ports on 127.0.0.1 (all held open together, then released). */
async function freePorts(count: number): Promise<number[]> {
  const servers: Server[] = [];
  const ports: number[] = [];
  for (let i = 0; i < count; i++) {
    const server = createServer();
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(0, '127.0.0.1', () => resolve());
    });
    servers.push(server);
    const address = server.address();
    ports.push(typeof address === 'object' && address !== null ? address.port : 0);
  }
  await Promise.all(servers.map((s) => new Promise((resolve) => s.close(resolve))));
  return ports;
}

function log(message: string): void {
  console.error(message);
}

// ---------------------------------------------------------------------------------------
// The two clusters

/** Starts a 3-node etcd; resolves with its client endpoints. */
async function startEtcd(directory: string): Promise<string[]> {
  await mkdir(directory, { recursive: true });
  const ports = await freePorts(6);
  const names = ['e1', 'e2', 'e3'];
  const peer = (i: number): string => `http://127.0.0.1:${ports[2 * i + 1]}`;
  const client = (i: number): string => `127.0.0.1:${ports[2 * i]}`;
  const initialCluster = names.map((n, i) => `${n}=${peer(i)}`).join(',');
  names.forEach((name, i) => {
    const child = spawn(
      'etcd',
      [
        '--name',
        name,
        '--data-dir',
        join(directory, name),
        '--listen-client-urls',
        `http://${client(i)}`,
        '--advertise-client-urls',
        `http://${client(i)}`,
        '--listen-peer-urls',
        peer(i),
        '--initial-advertise-peer-urls',
        peer(i),
        '--initial-cluster',
        initialCluster,
        '--initial-cluster-state',
        'new',
        '--initial-cluster-token',
        `vs-etcd-${process.pid}`,
        '--logger',
        'zap',
        '--log-outputs',
        join(directory, `${name}.log`),
      ],
      { stdio: 'ignore' },
    );
    track(child);
    if (child.pid !== undefined) pidsToKill.add(child.pid);
    child.on('exit', (code, signal) => {
      if (cleaning === undefined) {
        stopped.etcd ??= `etcd ${name} exited (${signal ?? `code ${code}`})`;
        log(`${stopped.etcd}; see ${directory}`);
      }
    });
  });
  return names.map((_, i) => client(i));
}

/** Starts `flotilla cluster start --nodes 3`; resolves with its etcd endpoints. */
async function startFlotilla(directory: string): Promise<string[]> {
  const child = track(
    spawn(
      process.execPath,
      [MAIN, 'cluster', 'start', '--nodes', '3', '--data-dir', directory, '--base-port', '0'],
      {
        stdio: ['ignore', 'pipe', 'pipe'],
      },
    ),
  );
  let output = '';
  child.stdout?.on('data', (d: Buffer) => {
    output += d.toString();
  });
  child.stderr?.on('data', (d: Buffer) => {
    output += d.toString();
  });
  const up = await waitFor(
    () => /etcd endpoints: (\S+)/.test(output) || child.exitCode !== null || spawnFailure !== undefined,
    60_000,
  );
  if (spawnFailure !== undefined) throw spawnFailure;
  const match = /etcd endpoints: (\S+)/.exec(output);
  if (!up || match === null) throw new Error(`flotilla cluster start did not come up:\n${output}`);
  try {
    const info = JSON.parse(await readFile(join(directory, 'cluster.json'), 'utf8')) as {
      nodes: { pid: number }[];
    };
    for (const node of info.nodes) pidsToKill.add(node.pid);
  } catch {
    // the endpoints line came after cluster.json was written; without it, SIGTERM to the parent still stops the nodes
  }
  child.on('exit', (code, signal) => {
    if (cleaning === undefined) {
      stopped.flotilla ??= `flotilla cluster start exited (${signal ?? `code ${code}`})`;
      log(`${stopped.flotilla}; see ${directory}`);
    }
  });
  return match[1]!.split(',');
}

/** Waits until a put through every endpoint succeeds; then writes the range workloads' key. */
async function waitReady(system: System, endpoints: readonly string[], timeoutMs: number): Promise<void> {
  const put = etcdMethod('KV', 'Put');
  const deadline = Date.now() + timeoutMs;
  let last = '';
  for (const endpoint of endpoints) {
    for (;;) {
      let connection: Connection | undefined;
      try {
        connection = await Connection.open(0, endpoint, 2000);
        await connection.unary(
          put.path,
          put.serialize({ key: Buffer.from('vs-etcd-ready'), value: Buffer.from('1') }),
          3000,
        );
        break;
      } catch (error) {
        last = (error as Error).message;
        if (spawnFailure !== undefined) throw spawnFailure;
        if (Date.now() > deadline) throw new Error(`${system} at ${endpoint} does not take puts: ${last}`);
        await sleep(200);
      } finally {
        connection?.close();
      }
    }
  }
  const connection = await Connection.open(0, endpoints[0]!, 2000);
  try {
    await connection.unary(
      put.path,
      put.serialize({ key: Buffer.from(RANGE_KEY), value: Buffer.alloc(256, 0x61) }),
      5000,
    );
  } finally {
    connection.close();
  }
}

/** Runs `flotilla bench <args> --endpoints ... --json` in a child process. */
async function runBench(
  endpoints: readonly string[],
  args: readonly string[],
  timeoutMs: number,
): Promise<BenchJson> {
  if (cleaning !== undefined) throw new Error('interrupted');
  const child = track(
    spawn(process.execPath, [MAIN, 'bench', ...args, '--endpoints', endpoints.join(','), '--json'], {
      stdio: ['ignore', 'pipe', 'pipe'],
    }),
  );
  let stdout = '';
  let stderr = '';
  child.stdout?.on('data', (d: Buffer) => {
    stdout += d.toString();
  });
  child.stderr?.on('data', (d: Buffer) => {
    stderr += d.toString();
  });
  const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
  const code = await new Promise<number | null>((resolve) => child.on('exit', (c) => resolve(c)));
  clearTimeout(timer);
  const last = stdout.trim().split('\n').pop() ?? '';
  if (code !== 0 || !last.startsWith('{')) {
    throw new Error(`bench ${args.join(' ')} failed (exit ${code}): ${stderr.trim() || stdout.trim()}`);
  }
  return JSON.parse(last) as BenchJson;
}

// ---------------------------------------------------------------------------------------
// Physical limits

interface Limits {
  fdatasync_per_s: number;
  fdatasync_ms: number;
  tcp_round_trips_per_s: number;
  tcp_rtt_us: number;
  tcp_rtt_p99_us: number;
  disk: string;
}

/** 4 KiB write + fdatasync in a loop for `seconds`, into a preallocated file. */
function measureFdatasync(directory: string, seconds: number): { perSecond: number; ms: number } {
  const path = join(directory, 'fdatasync.probe');
  const fd = openSync(path, 'w+');
  const block = Buffer.alloc(4096, 0xab);
  const fileBytes = 16 * 1024 * 1024;
  try {
    const zeros = Buffer.alloc(1024 * 1024);
    for (let at = 0; at < fileBytes; at += zeros.length) writeSync(fd, zeros, 0, zeros.length, at);
    fdatasyncSync(fd);
    let writes = 0;
    const start = performance.now();
    const end = start + seconds * 1000;
    while (performance.now() < end) {
      writeSync(fd, block, 0, block.length, (writes * block.length) % fileBytes);
      fdatasyncSync(fd);
      writes++;
    }
    const elapsed = (performance.now() - start) / 1000;
    return { perSecond: writes / elapsed, ms: (elapsed * 1000) / writes };
  } finally {
    closeSync(fd);
  }
}

/** Ping-pong of one byte with an echo server in another process, for `seconds`. */
async function measureLoopback(
  seconds: number,
): Promise<{ perSecond: number; meanUs: number; p99Us: number }> {
  const server = track(
    spawn(
      process.execPath,
      [
        '-e',
        "const s=require('net').createServer(c=>{c.setNoDelay(true);c.on('data',d=>c.write(d))});" +
          "s.listen(0,'127.0.0.1',()=>console.log(s.address().port))",
      ],
      { stdio: ['ignore', 'pipe', 'inherit'] },
    ),
  );
  try {
    const port = await new Promise<number>((resolve, reject) => {
      server.stdout?.once('data', (d: Buffer) => resolve(Number(d.toString().trim())));
      server.once('exit', () => reject(new Error('the echo server exited')));
    });
    const socket = tcpConnect({ host: '127.0.0.1', port, noDelay: true });
    await new Promise<void>((resolve, reject) => {
      socket.once('connect', resolve);
      socket.once('error', reject);
    });
    const samples: number[] = [];
    const start = performance.now();
    const end = start + seconds * 1000;
    const ping = Buffer.from([1]);
    await new Promise<void>((resolve) => {
      let sent = performance.now();
      socket.on('data', () => {
        const now = performance.now();
        samples.push((now - sent) * 1000);
        if (now >= end) {
          resolve();
          return;
        }
        sent = performance.now();
        socket.write(ping);
      });
      socket.write(ping);
    });
    const elapsed = (performance.now() - start) / 1000;
    socket.destroy();
    samples.sort((a, b) => a - b);
    return {
      perSecond: samples.length / elapsed,
      meanUs: samples.reduce((a, b) => a + b, 0) / samples.length,
      p99Us: samples[Math.floor(samples.length * 0.99)] ?? 0,
    };
  } finally {
    server.kill('SIGKILL');
  }
}

function diskOf(directory: string): string {
  try {
    const line = execFileSync('df', ['-PT', directory], { encoding: 'utf8' }).trim().split('\n')[1] ?? '';
    const [device, type] = line.split(/\s+/);
    return `${device ?? '?'} (${type ?? '?'})`;
  } catch {
    return 'unknown';
  }
}

// ---------------------------------------------------------------------------------------
// Results

function median(values: readonly number[]): number | null {
  if (values.length === 0) return null;
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}

function ratio(a: number | null, b: number | null): number | null {
  return a === null || b === null || b === 0 ? null : Math.round((a / b) * 1000) / 1000;
}

function round(value: number | null, digits: number): number | null {
  return value === null ? null : Math.round(value * 10 ** digits) / 10 ** digits;
}

interface WorkloadSummary {
  flotilla_rps: number | null;
  etcd_rps: number | null;
  flotilla_p99_ms: number | null;
  etcd_p99_ms: number | null;
  rps_ratio: number | null;
  p99_ratio: number | null;
  flotilla_p50_ms: number | null;
  etcd_p50_ms: number | null;
  flotilla_ok: number;
  etcd_ok: number;
  flotilla_errors: number;
  etcd_errors: number;
  rounds: {
    round: number;
    system: System;
    rps: number | null;
    p50_ms: number | null;
    p99_ms: number | null;
    errors: number;
    failure?: string;
  }[];
}

function summarize(records: readonly RunRecord[]): WorkloadSummary {
  const of = (system: System) => records.filter((r) => r.system === system);
  const med = (system: System, field: 'rps' | 'p50' | 'p99'): number | null =>
    median(of(system).flatMap((r) => (r[field] === null ? [] : [r[field]])));
  const f = { rps: med('flotilla', 'rps'), p50: med('flotilla', 'p50'), p99: med('flotilla', 'p99') };
  const e = { rps: med('etcd', 'rps'), p50: med('etcd', 'p50'), p99: med('etcd', 'p99') };
  const sum = (system: System, field: 'succeeded' | 'errors'): number =>
    of(system).reduce((total, r) => total + r[field], 0);
  return {
    flotilla_rps: round(f.rps, 1),
    etcd_rps: round(e.rps, 1),
    flotilla_p99_ms: round(f.p99, 3),
    etcd_p99_ms: round(e.p99, 3),
    rps_ratio: ratio(f.rps, e.rps),
    p99_ratio: ratio(f.p99, e.p99),
    flotilla_p50_ms: round(f.p50, 3),
    etcd_p50_ms: round(e.p50, 3),
    flotilla_ok: sum('flotilla', 'succeeded'),
    etcd_ok: sum('etcd', 'succeeded'),
    flotilla_errors: sum('flotilla', 'errors'),
    etcd_errors: sum('etcd', 'errors'),
    rounds: records.map((r) => ({
      round: r.round,
      system: r.system,
      rps: round(r.rps, 1),
      p50_ms: round(r.p50, 3),
      p99_ms: round(r.p99, 3),
      errors: r.errors,
      ...(r.failure === undefined ? {} : { failure: r.failure }),
    })),
  };
}

const fmt = (value: number | null, digits = 0): string =>
  value === null
    ? 'n/a'
    : value.toLocaleString('en-US', { minimumFractionDigits: digits, maximumFractionDigits: digits });
const fmtRatio = (value: number | null): string => (value === null ? 'n/a' : `${value.toFixed(2)}x`);

interface Meta {
  date: string;
  machine: string;
  versions: string;
  disk: string;
  args: Args;
  durationS: number;
  loadBefore: string;
  loadAfter: string;
}

function report(
  meta: Meta,
  limits: Limits,
  summaries: ReadonlyMap<WorkloadKey, WorkloadSummary>,
  totals: ReadonlyMap<WorkloadKey, string>,
  json: string,
): string {
  const lines: string[] = [];
  lines.push('## Flotilla vs etcd', '');
  lines.push(
    '`npm run bench:vs-etcd [-- --rounds N] [--scale X] [--json]` (bench/vs-etcd.ts): a 3-node etcd and a 3-node',
    'Flotilla on loopback, data on the same disk, both syncing to disk, driven by the same client',
    '(`flotilla bench`, one child process per run). Runs alternate between the systems (which goes',
    'first swaps every round); each figure is the median over the rounds. Everything shares the',
    "machine's CPU: the servers, the idle other cluster and the client. See docs/benchmarks.md.",
    '',
  );
  lines.push(
    `Run: ${meta.date}, ${meta.args.rounds} round(s), scale ${meta.args.scale}, ${Math.round(meta.durationS)} s in all; ` +
      `load average ${meta.loadBefore} before, ${meta.loadAfter} after (other work on the machine counts too).`,
    `Machine: ${meta.machine}. Data disk: ${meta.disk}.`,
    `Versions: ${meta.versions}.`,
    '',
  );
  lines.push(
    `Physical limits (same run): 4 KiB write + fdatasync on the data disk ${fmt(limits.fdatasync_per_s)}/s ` +
      `(${limits.fdatasync_ms.toFixed(2)} ms each); loopback TCP 1-byte ping-pong between two processes ` +
      `${fmt(limits.tcp_round_trips_per_s)} round trips/s (mean ${fmt(limits.tcp_rtt_us)} µs, p99 ${fmt(limits.tcp_rtt_p99_us)} µs).`,
    '',
  );
  lines.push(
    '| workload | Flotilla req/s | etcd req/s | req/s ratio | Flotilla p50 / p99 ms | etcd p50 / p99 ms | p99 ratio | errors (Flotilla / etcd) |',
    '| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |',
  );
  for (const workload of WORKLOADS) {
    const s = summaries.get(workload.key);
    if (s === undefined) continue;
    lines.push(
      `| ${workload.key} | ${fmt(s.flotilla_rps)} | ${fmt(s.etcd_rps)} | ${fmtRatio(s.rps_ratio)} | ` +
        `${fmt(s.flotilla_p50_ms, 2)} / ${fmt(s.flotilla_p99_ms, 2)} | ${fmt(s.etcd_p50_ms, 2)} / ${fmt(s.etcd_p99_ms, 2)} | ` +
        `${fmtRatio(s.p99_ratio)} | ${fmt(s.flotilla_errors)} / ${fmt(s.etcd_errors)} |`,
    );
  }
  lines.push(
    '',
    'Ratios are Flotilla / etcd: above 1 is better for req/s, worse for p99. Requests/sec counts successful',
    'requests only; latencies are of successful requests; errors are failed requests summed over the rounds.',
    '',
  );
  lines.push('Workloads (`flotilla bench` arguments):', '');
  for (const workload of WORKLOADS)
    lines.push(`- \`${workload.key}\`: ${workload.label}: \`${totals.get(workload.key)}\``);
  lines.push(
    '',
    'watch_latency: req/s is watch events received per second (puts are paced at 100/s), latencies',
    'are from the end of each put to the arrival of its event at each watcher.',
    '',
  );
  lines.push(
    'Per round (req/s, p50 / p99 ms):',
    '',
    '| workload | round | Flotilla | etcd |',
    '| --- | ---: | ---: | ---: |',
  );
  for (const workload of WORKLOADS) {
    const s = summaries.get(workload.key);
    if (s === undefined) continue;
    for (let r = 1; r <= meta.args.rounds; r++) {
      const cell = (system: System): string => {
        const run = s.rounds.find((x) => x.round === r && x.system === system);
        if (run === undefined) return '';
        if (run.failure !== undefined) return `failed: ${run.failure.slice(0, 60)}`;
        const errors = run.errors > 0 ? `, ${run.errors} errors` : '';
        return `${fmt(run.rps)} (${fmt(run.p50_ms, 2)} / ${fmt(run.p99_ms, 2)}${errors})`;
      };
      lines.push(`| ${workload.key} | ${r} | ${cell('flotilla')} | ${cell('etcd')} |`);
    }
  }
  lines.push('', '```json', json, '```');
  return lines.join('\n');
}

async function writeResults(section: string): Promise<void> {
  let text = '';
  try {
    text = await readFile(RESULTS, 'utf8');
  } catch {
    text = '# Benchmark results\n';
  }
  const block = `${START_MARKER}\n${section}\n${END_MARKER}`;
  const start = text.indexOf(START_MARKER);
  const end = text.indexOf(END_MARKER);
  if (start >= 0 && end > start) {
    text = text.slice(0, start) + block + text.slice(end + END_MARKER.length);
  } else {
    text = `${text.trimEnd()}\n\n${block}\n`;
  }
  await writeFile(RESULTS, text);
}

/** The 1-minute load average. */
function loadAverage(): string {
  return (loadavg()[0] ?? 0).toFixed(1);
}

function etcdVersion(): string {
  try {
    return execFileSync('etcd', ['--version'], { encoding: 'utf8' })
      .split('\n')[0]!
      .replace('etcd Version: ', '');
  } catch {
    return 'unknown';
  }
}

// ---------------------------------------------------------------------------------------

async function main(): Promise<void> {
  const args = parseArgs(process.argv.slice(2));
  const started = performance.now();
  const loadBefore = loadAverage();
  const sizing: Sizing = {
    quick: args.quick,
    total: (normal, quick) => (args.quick ? quick : Math.max(1, Math.round(normal * args.scale))),
  };
  root = await mkdtemp(join(args.dir, 'flotilla-vs-etcd-'));
  log(`data under ${root}`);

  const limitSeconds = args.quick ? 0.3 : 2;
  log(`measuring the physical limits (${limitSeconds} s each)...`);
  const sync = measureFdatasync(root, limitSeconds);
  const loop = await measureLoopback(limitSeconds);
  const limits: Limits = {
    fdatasync_per_s: Math.round(sync.perSecond),
    fdatasync_ms: Math.round(sync.ms * 1000) / 1000,
    tcp_round_trips_per_s: Math.round(loop.perSecond),
    tcp_rtt_us: Math.round(loop.meanUs * 10) / 10,
    tcp_rtt_p99_us: Math.round(loop.p99Us * 10) / 10,
    disk: diskOf(root),
  };
  log(
    `fdatasync ${limits.fdatasync_per_s}/s (${limits.fdatasync_ms} ms); loopback round trip ${limits.tcp_rtt_us} µs (${limits.tcp_round_trips_per_s}/s)`,
  );

  log('starting a 3-node etcd and a 3-node Flotilla...');
  const endpoints: Record<System, string[]> = {
    etcd: await startEtcd(join(root, 'etcd')),
    flotilla: await startFlotilla(join(root, 'flotilla')),
  };
  await waitReady('etcd', endpoints.etcd, 30_000);
  await waitReady('flotilla', endpoints.flotilla, 30_000);
  log(`etcd: ${endpoints.etcd.join(',')}; flotilla: ${endpoints.flotilla.join(',')}`);

  const runTimeoutMs = args.quick ? 60_000 : 600_000;
  // Warm-up (not measured): connections, JIT, the first snapshot-free stretch of each log.
  for (const system of SYSTEMS) {
    await runBench(
      endpoints[system],
      ['put', '--clients', '10', '--conns', '3', '--total', String(sizing.total(1000, 50)), ...PUT],
      runTimeoutMs,
    );
  }

  const records = new Map<WorkloadKey, RunRecord[]>(WORKLOADS.map((w) => [w.key, []]));
  const totals = new Map<WorkloadKey, string>(WORKLOADS.map((w) => [w.key, w.args(sizing).join(' ')]));
  for (let r = 1; r <= args.rounds; r++) {
    const order: System[] = r % 2 === 1 ? ['flotilla', 'etcd'] : ['etcd', 'flotilla'];
    for (const workload of WORKLOADS) {
      for (const system of order) {
        if (cleaning !== undefined) throw new Error('interrupted');
        const down = stopped[system];
        if (down !== undefined) throw new Error(`${down} during the run: no comparison written`);
        const benchArgs = workload.args(sizing);
        let record: RunRecord;
        try {
          const result = await runBench(endpoints[system], benchArgs, runTimeoutMs);
          record = {
            round: r,
            system,
            rps: result.succeeded > 0 ? result.rps : null,
            p50: result.succeeded > 0 ? result.latency_ms.p50 : null,
            p99: result.succeeded > 0 ? result.latency_ms.p99 : null,
            succeeded: result.succeeded,
            errors: result.errors,
          };
          const errors =
            result.errors > 0 ? `, ${result.errors} errors: ${JSON.stringify(result.error_counts)}` : '';
          log(
            `[round ${r}/${args.rounds}] ${workload.key} ${system}: ${fmt(result.rps)} req/s, p50 ${result.latency_ms.p50} ms, p99 ${result.latency_ms.p99} ms${errors}`,
          );
        } catch (error) {
          if (cleaning !== undefined) throw new Error('interrupted');
          const failure = (error as Error).message.split('\n')[0]!;
          record = { round: r, system, rps: null, p50: null, p99: null, succeeded: 0, errors: 0, failure };
          log(`[round ${r}/${args.rounds}] ${workload.key} ${system}: FAILED: ${failure}`);
        }
        records.get(workload.key)!.push(record);
      }
    }
  }

  const summaries = new Map<WorkloadKey, WorkloadSummary>(
    WORKLOADS.map((w) => [w.key, summarize(records.get(w.key)!)]),
  );
  const json = JSON.stringify({ ...Object.fromEntries(summaries), limits });
  const pkg = JSON.parse(await readFile(PACKAGE_JSON, 'utf8')) as { version: string };
  const cpuList = cpus();
  const meta: Meta = {
    date: new Date().toISOString().replace(/\.\d+Z$/, 'Z'),
    machine: `${cpuList.length} x ${cpuList[0]?.model.trim() ?? 'unknown CPU'}, ${Math.round(totalmem() / 2 ** 30)} GiB, Linux ${release()}`,
    versions: `Flotilla ${pkg.version}, etcd ${etcdVersion()}, Node ${process.versions.node}`,
    disk: limits.disk,
    args,
    durationS: (performance.now() - started) / 1000,
    loadBefore,
    loadAfter: loadAverage(),
  };
  const section = report(meta, limits, summaries, totals, json);
  if (args.write) {
    await writeResults(section);
    log(`wrote ${RESULTS}`);
  }
  console.log(section);
  if (args.json) console.log(json);
}

try {
  await main();
} catch (error) {
  console.error(`error: ${(error as Error).message}`);
  process.exitCode = 1;
} finally {
  await cleanup();
}
