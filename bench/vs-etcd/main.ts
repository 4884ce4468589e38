/**
 * `npm run bench:vs-etcd`: the whole comparison, from the flags to the report. See
 * bench/vs-etcd.ts for what it measures and docs/benchmarks.md for how to read it.
 */
import { execFileSync } from 'node:child_process';
import { mkdtemp, readFile } from 'node:fs/promises';
import { cpus, loadavg, release, totalmem } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { type Args, parseArgs } from './args.js';
import { Breakdown } from './breakdown.js';
import { buildNeutral, type Client } from './clients.js';
import { type Cluster, startEtcd, startFlotilla, waitReady } from './clusters.js';
import { type Limits, measureLimits } from './limits.js';
import { log, run, type System } from './processes.js';
import { type Meta, report, writeResults } from './report.js';
import { type Bench, runRounds, warmUp } from './rounds.js';
import { summarize, type WorkloadSummary, workloadJson } from './summary.js';
import { watchFields } from './watch-rows.js';
import { activeWorkloads, type Sizing, type Workload, type WorkloadKey } from './workloads.js';

const PACKAGE_JSON = fileURLToPath(new URL('../../../package.json', import.meta.url));

/** The 1-minute load average. */
function loadAverage(): string {
  return (loadavg()[0] ?? 0).toFixed(1);
}

/** The `etcd` binary's version, or 'unknown'. */
export function etcdVersion(): string {
  try {
    return execFileSync('etcd', ['--version'], { encoding: 'utf8' })
      .split('\n')[0]!
      .replace('etcd Version: ', '');
  } catch {
    return 'unknown';
  }
}

/** etcd-load's path, built now; undefined with --no-neutral. Exits 1 if it cannot be built. */
async function neutralClient(args: Args): Promise<string | undefined> {
  if (!args.neutral) {
    log('--no-neutral: every row is run with flotilla bench only');
    return undefined;
  }
  log('building the neutral client (bench/etcd-load/build.sh)...');
  try {
    const binary = await buildNeutral();
    log(`neutral client: ${binary}`);
    return binary;
  } catch (error) {
    throw new Error(
      `cannot build the neutral client etcd-load (bench/etcd-load/build.sh): ${(error as Error).message}\n` +
        'run with --no-neutral to compare with flotilla bench alone',
    );
  }
}

async function startClusters(root: string): Promise<Record<System, Cluster>> {
  log('starting a 3-node etcd and a 3-node Flotilla...');
  const clusters = {
    etcd: await startEtcd(join(root, 'etcd')),
    flotilla: await startFlotilla(join(root, 'flotilla')),
  };
  await waitReady(clusters.etcd, 30_000);
  await waitReady(clusters.flotilla, 30_000);
  log(`etcd: ${clusters.etcd.endpoints.join(',')}; flotilla: ${clusters.flotilla.endpoints.join(',')}`);
  return clusters;
}

async function meta(
  args: Args,
  limits: Limits,
  started: number,
  loadBefore: string,
  neutral: string,
): Promise<Meta> {
  const pkg = JSON.parse(await readFile(PACKAGE_JSON, 'utf8')) as { version: string };
  const cpuList = cpus();
  return {
    date: new Date().toISOString().replace(/\.\d+Z$/, 'Z'),
    machine: `${cpuList.length} x ${cpuList[0]?.model.trim() ?? 'unknown CPU'}, ${Math.round(totalmem() / 2 ** 30)} GiB, Linux ${release()}`,
    versions: `Flotilla ${pkg.version}, etcd ${etcdVersion()}, Node ${process.versions.node}`,
    disk: limits.disk,
    args,
    cores: cpuList.length,
    durationS: (performance.now() - started) / 1000,
    loadBefore,
    loadAfter: loadAverage(),
    neutral,
  };
}

/** Each workload's arguments per client, as the report lists them. */
function commands(
  workloads: readonly Workload[],
  sizing: Sizing,
  neutral: boolean,
): Map<WorkloadKey, Record<Client, string>> {
  return new Map(
    workloads.map((w) => [
      w.key,
      { ours: w.ours(sizing).join(' '), neutral: neutral && w.neutral ? w.neutral(sizing).join(' ') : '' },
    ]),
  );
}

export async function main(): Promise<void> {
  const args = parseArgs(process.argv.slice(2));
  const started = performance.now();
  const loadBefore = loadAverage();
  const sizing: Sizing = {
    quick: args.quick,
    total: (normal, quick) => (args.quick ? quick : Math.max(1, Math.round(normal * args.scale))),
  };
  const neutralBinary = await neutralClient(args);
  const root = await mkdtemp(join(args.dir, 'flotilla-vs-etcd-'));
  run.root = root;
  log(`data under ${root}`);

  const limitSeconds = args.quick ? 0.3 : 2;
  log(`measuring the physical limits (${limitSeconds} s each)...`);
  const limits = await measureLimits(root, limitSeconds);
  log(
    `fdatasync ${limits.fdatasync_per_s}/s (${limits.fdatasync_ms} ms); loopback round trip ${limits.tcp_rtt_us} µs (${limits.tcp_round_trips_per_s}/s)`,
  );

  const bench: Bench = {
    args,
    sizing,
    clusters: await startClusters(root),
    neutralBinary,
    timeoutMs: args.quick ? 60_000 : 600_000,
    breakdown: args.breakdown ? new Breakdown() : undefined,
  };
  await warmUp(bench);
  const records = await runRounds(bench);

  const cores = cpus().length;
  const workloads = activeWorkloads(args.watchers100k);
  const summaries = new Map<WorkloadKey, WorkloadSummary>(
    workloads.map((w) => [
      w.key,
      summarize(records.get(w.key)!, neutralBinary !== undefined && w.neutral !== undefined, cores),
    ]),
  );
  const rowsJson = workloads.map((w) => {
    const note = neutralBinary === undefined ? 'run with --no-neutral' : w.noNeutral;
    return [w.key, { ...(watchFields(w, summaries) ?? {}), ...workloadJson(summaries.get(w.key)!, note) }];
  });
  const breakdownJson = bench.breakdown === undefined ? {} : { breakdown: bench.breakdown.json() };
  const json = JSON.stringify({ ...Object.fromEntries(rowsJson), limits, ...breakdownJson });
  const neutral =
    neutralBinary === undefined ? 'not run (--no-neutral)' : 'etcd-load (bench/etcd-load, etcd clientv3)';
  const section = report({
    meta: await meta(args, limits, started, loadBefore, neutral),
    limits,
    summaries,
    commands: commands(workloads, sizing, neutralBinary !== undefined),
    breakdown: bench.breakdown,
    json,
  });
  if (args.write) log(`wrote ${await writeResults(section)}`);
  console.log(section);
  if (args.json) console.log(json);
}
