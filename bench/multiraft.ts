/**
 * The multi-raft benchmark: three host processes on loopback (bench/multiraft-host.ts), each a
 * multi-raft host running the same counter groups.
 *
 * - Idle: N groups (default 1, 100, 1000) elected and settled, nothing written: CPU per host
 *   process (process.cpuUsage, averaged over the three) and bytes/s between the processes
 *   (the transports' bytes sent), over `--seconds`. Also how long the N groups took to open
 *   and elect a leader everywhere, and again after every process restarted from its data
 *   directory. Groups quiesce when idle (`--no-quiesce` keeps every group ticking): the
 *   sample starts once no group ticks on any host (or after a bound), and the row says how
 *   long that took after the last election (`quiesce_ms`) and how many groups still ticked.
 * - Active: G groups (default 1, 8, 64) under the same total client load (`--clients`, 64):
 *   each group gets clients/G clients proposing one after another on its leader's host;
 *   aggregate committed writes/s and the p99 latency, and how many records (one per group
 *   per persisted Ready) one fdatasync of a host's shared log made durable on average.
 *
 *   npm run bench:multiraft -- [--json] [--idle 1,100,1000] [--active 1,8,64] [--seconds S] [--clients C]
 *                              [--no-quiesce] [--no-restart]
 *
 * The last line with `--json` is `{"idle":[{"groups","cpu_pct","net_bytes_per_s",...}],
 * "active":[{"groups","writes_per_s","p99_ms",...}]}`.
 */
import { type ChildProcess, fork } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { freePorts } from '../src/cli/cluster-command.js';
import type { HostConfig } from '../src/index.js';
import type { HostRequest } from './multiraft-host.js';

const HOST_SCRIPT = fileURLToPath(new URL('./multiraft-host.js', import.meta.url));
const HOSTS = 3;

/** A host's answer to `status`. */
interface StatusReply {
  readonly led: number;
  readonly leading: number[];
  /** Open groups that tick (not quiesced). */
  readonly active: number;
}

/** A host's answer to `sample`. */
interface SampleReply {
  readonly cpuMicros: number;
  readonly bytesSent: number;
  readonly rss: number;
  readonly logRecords: number;
  readonly logSyncs: number;
}

/** A host's answer to `load`. */
interface LoadReply {
  readonly errors: number;
  readonly latencies: number[];
}

interface Reply {
  readonly type: string;
  readonly message?: string;
}

/** One host process and its one request in flight. */
class HostProcess {
  private pending: { resolve: (r: Reply) => void; reject: (e: Error) => void } | undefined;
  private readonly ready: Promise<void>;

  constructor(readonly child: ChildProcess) {
    let started: () => void = () => {};
    this.ready = new Promise((resolve) => {
      started = resolve;
    });
    child.on('message', (reply: Reply) => {
      if (reply.type === 'ready') return started();
      const pending = this.pending;
      this.pending = undefined;
      if (reply.type === 'error') pending?.reject(new Error(String(reply.message)));
      else pending?.resolve(reply);
    });
    child.on('exit', (code) => this.pending?.reject(new Error(`host process exited with ${code}`)));
  }

  static start(config: HostConfig): HostProcess {
    const env = { ...process.env, FLOTILLA_BENCH_HOST: JSON.stringify(config) };
    return new HostProcess(fork(HOST_SCRIPT, [], { env, stdio: ['ignore', 'inherit', 'inherit', 'ipc'] }));
  }

  async request<T = Reply>(request: HostRequest): Promise<T> {
    await this.ready;
    return new Promise<T>((resolve, reject) => {
      this.pending = { resolve: (reply) => resolve(reply as T), reject };
      this.child.send(request);
    });
  }

  async close(): Promise<void> {
    const exited = new Promise((resolve) => this.child.once('exit', resolve));
    await this.request({ type: 'close' }).catch(() => {});
    await exited;
  }
}

interface Cluster {
  readonly root: string;
  readonly configs: readonly HostConfig[];
  hosts: HostProcess[];
}

async function newCluster(): Promise<Cluster> {
  const root = await mkdtemp(join(tmpdir(), 'flotilla-bench-multiraft-'));
  const ports = await freePorts(HOSTS);
  const peers: Record<number, string> = {};
  for (const [i, port] of ports.entries()) peers[i + 1] = `127.0.0.1:${port}`;
  const quiesce = !process.argv.includes('--no-quiesce');
  const configs = ports.map((port, i) => ({
    quiesce,
    id: i + 1,
    dataDir: join(root, `host-${i + 1}`),
    listen: `127.0.0.1:${port}`,
    peers,
  }));
  return { root, configs, hosts: configs.map((c) => HostProcess.start(c)) };
}

/**
 * Groups opened at once on every host before waiting for their leaders. Every group opened
 * campaigns within two election timeouts: 10,000 at once is an election storm (tens of
 * thousands of fsyncs and ticks late on two shared cores, so timeouts fire again) in which
 * no run settled within ten minutes; in stages of this size each stage elects and quiesces
 * before the next opens.
 */
const OPEN_STAGE_GROUPS = 1000;

/**
 * Opens the groups on every host (`'stored'`: those on disk) and waits until every group has
 * a leader everywhere, in stages of {@link OPEN_STAGE_GROUPS}; the ms it took.
 */
async function openAll(cluster: Cluster, groups: number[] | 'stored', count: number): Promise<number> {
  const started = performance.now();
  const all = groups === 'stored' ? ids(count) : groups;
  const stages: (number[] | 'stored')[] = [];
  if (groups === 'stored' && count <= OPEN_STAGE_GROUPS) stages.push('stored');
  else
    for (let i = 0; i < all.length; i += OPEN_STAGE_GROUPS) stages.push(all.slice(i, i + OPEN_STAGE_GROUPS));
  let opened = 0;
  for (const stage of stages) {
    await Promise.all(cluster.hosts.map((h) => h.request({ type: 'open', groups: stage })));
    opened = stage === 'stored' ? count : opened + stage.length;
    await untilLed(cluster, opened);
  }
  return performance.now() - started;
}

/** Waits until `count` groups have a leader on every host. */
async function untilLed(cluster: Cluster, count: number): Promise<void> {
  const deadline = Date.now() + 120_000 + count * 20;
  for (;;) {
    const statuses = await Promise.all(cluster.hosts.map((h) => h.request<StatusReply>({ type: 'status' })));
    if (statuses.every((s) => s.led === count)) return;
    if (Date.now() > deadline)
      throw new Error(`groups without a leader: ${JSON.stringify(statuses.map((s) => s.led))}`);
    await sleep(50);
  }
}

/** Waits until no group ticks on any host (or `timeoutMs` passed); the ms it took. */
async function untilQuiesced(cluster: Cluster, timeoutMs: number): Promise<number> {
  const started = performance.now();
  while (performance.now() - started < timeoutMs) {
    const statuses = await Promise.all(cluster.hosts.map((h) => h.request<StatusReply>({ type: 'status' })));
    if (statuses.every((s) => s.active === 0)) break;
    await sleep(100);
  }
  return performance.now() - started;
}

function ids(count: number): number[] {
  return Array.from({ length: count }, (_, i) => i + 1);
}

interface IdleRow {
  groups: number;
  quiesce: boolean;
  /** From every group led to no group ticking (0 without quiescence). */
  quiesce_ms: number;
  /** Groups that still ticked at the end of the sample, over the three hosts. */
  active_groups: number;
  cpu_pct: number;
  cpu_pct_max: number;
  net_bytes_per_s: number;
  rss_mb: number;
  open_ms: number;
  /** Every process restarted from its directory until every group is led; -1 with `--no-restart`. */
  restart_ms: number;
}

async function idle(groups: number, seconds: number): Promise<IdleRow> {
  const cluster = await newCluster();
  try {
    const openMs = await openAll(cluster, ids(groups), groups);
    const quiesce = cluster.configs[0]!.quiesce !== false;
    const quiesceMs = quiesce ? await untilQuiesced(cluster, 60_000 + groups * 10) : 0;
    await sleep(2000);
    const before = await Promise.all(cluster.hosts.map((h) => h.request<SampleReply>({ type: 'sample' })));
    const t0 = performance.now();
    await sleep(seconds * 1000);
    const after = await Promise.all(cluster.hosts.map((h) => h.request<SampleReply>({ type: 'sample' })));
    const elapsedMs = performance.now() - t0;
    const cpu = after.map((a, i) => ((a.cpuMicros - before[i]!.cpuMicros) / 1000 / elapsedMs) * 100);
    const bytes = after.reduce((sum, a, i) => sum + a.bytesSent - before[i]!.bytesSent, 0);
    const rss = Math.max(...after.map((a) => a.rss));
    const statuses = await Promise.all(cluster.hosts.map((h) => h.request<StatusReply>({ type: 'status' })));
    const cpuPct = round(cpu.reduce((a, b) => a + b, 0) / cpu.length);
    const bytesPerS = Math.round(bytes / (elapsedMs / 1000));
    // Printed before the restart, which takes longest with many groups.
    console.log(`idle ${groups} groups sampled: ${cpuPct}% CPU per process, ${bytesPerS} B/s; restarting`);
    let restartMs = -1;
    if (!process.argv.includes('--no-restart')) {
      await Promise.all(cluster.hosts.map((h) => h.close()));
      cluster.hosts = cluster.configs.map((c) => HostProcess.start(c));
      restartMs = await openAll(cluster, 'stored', groups);
    }
    return {
      groups,
      quiesce,
      quiesce_ms: Math.round(quiesceMs),
      active_groups: statuses.reduce((n, s) => n + s.active, 0),
      cpu_pct: cpuPct,
      cpu_pct_max: round(Math.max(...cpu)),
      net_bytes_per_s: bytesPerS,
      rss_mb: Math.round(rss / 2 ** 20),
      open_ms: Math.round(openMs),
      restart_ms: Math.round(restartMs),
    };
  } finally {
    await closeCluster(cluster);
  }
}

interface ActiveRow {
  groups: number;
  clients: number;
  writes_per_s: number;
  p50_ms: number;
  p99_ms: number;
  errors: number;
  /** fdatasyncs of the shared logs per second, summed over the three hosts. */
  fsyncs_per_s: number;
  /** Records made durable per fdatasync, over the three hosts (group commit). */
  records_per_fsync: number;
}

async function active(groups: number, clients: number, seconds: number): Promise<ActiveRow> {
  const cluster = await newCluster();
  try {
    await openAll(cluster, ids(groups), groups);
    await sleep(1000);
    const statuses = await Promise.all(cluster.hosts.map((h) => h.request<StatusReply>({ type: 'status' })));
    const perGroup = Math.max(1, Math.round(clients / groups));
    const before = await Promise.all(cluster.hosts.map((h) => h.request<SampleReply>({ type: 'sample' })));
    const runs = statuses.map((s, i) => {
      const assign = s.leading.map((g): [number, number] => [g, perGroup]);
      return cluster.hosts[i]!.request<LoadReply>({ type: 'load', assign, durationMs: seconds * 1000 });
    });
    const results = await Promise.all(runs);
    const after = await Promise.all(cluster.hosts.map((h) => h.request<SampleReply>({ type: 'sample' })));
    const syncs = after.reduce((sum, a, i) => sum + a.logSyncs - before[i]!.logSyncs, 0);
    const records = after.reduce((sum, a, i) => sum + a.logRecords - before[i]!.logRecords, 0);
    const latencies = results.flatMap((r) => r.latencies).sort((a, b) => a - b);
    const errors = results.reduce((sum, r) => sum + r.errors, 0);
    return {
      groups,
      clients: perGroup * groups,
      writes_per_s: Math.round(latencies.length / seconds),
      p50_ms: round(percentile(latencies, 0.5)),
      p99_ms: round(percentile(latencies, 0.99)),
      errors,
      fsyncs_per_s: Math.round(syncs / seconds),
      records_per_fsync: round(records / Math.max(1, syncs)),
    };
  } finally {
    await closeCluster(cluster);
  }
}

async function closeCluster(cluster: Cluster): Promise<void> {
  await Promise.all(cluster.hosts.map((h) => (h.child.exitCode === null ? h.close() : undefined)));
  await rm(cluster.root, { recursive: true, force: true });
}

function percentile(sorted: readonly number[], q: number): number {
  if (sorted.length === 0) return 0;
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))]!;
}

function round(n: number): number {
  return Math.round(n * 100) / 100;
}

function listFlag(name: string, fallback: number[]): number[] {
  const at = process.argv.indexOf(name);
  if (at < 0) return fallback;
  const text = process.argv[at + 1] ?? '';
  return text === '' ? [] : text.split(',').map(Number);
}

function numberFlag(name: string, fallback: number): number {
  const at = process.argv.indexOf(name);
  return at < 0 ? fallback : Number(process.argv[at + 1]);
}

async function main(): Promise<void> {
  const json = process.argv.includes('--json');
  const seconds = numberFlag('--seconds', 5);
  const clients = numberFlag('--clients', 64);
  const idleRows: IdleRow[] = [];
  for (const groups of listFlag('--idle', [1, 100, 1000])) {
    const row = await idle(groups, seconds);
    idleRows.push(row);
    console.log(
      `idle ${groups} groups: ${row.cpu_pct}% CPU per process (max ${row.cpu_pct_max}%), ` +
        `${row.net_bytes_per_s} B/s between processes, RSS ${row.rss_mb} MiB, ` +
        `open ${row.open_ms} ms, restart ${row.restart_ms} ms, ` +
        (row.quiesce ? `quiesced ${row.quiesce_ms} ms after, ${row.active_groups} active` : 'no quiescence'),
    );
  }
  const activeRows: ActiveRow[] = [];
  for (const groups of listFlag('--active', [1, 8, 64])) {
    const row = await active(groups, clients, seconds);
    activeRows.push(row);
    console.log(
      `active ${groups} groups, ${row.clients} clients: ${row.writes_per_s} writes/s, ` +
        `p50 ${row.p50_ms} ms, p99 ${row.p99_ms} ms, ${row.errors} errors, ` +
        `${row.fsyncs_per_s} fdatasyncs/s, ${row.records_per_fsync} records per fdatasync`,
    );
  }
  if (json) console.log(JSON.stringify({ idle: idleRows, active: activeRows }));
}

await main();
