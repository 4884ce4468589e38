/**
 * The measured runs: every round, every workload, each system, each client (ours, then the
 * neutral one where the row has it); the system that goes first and the client that goes
 * first both swap every round. Around each run the system's member processes' CPU time is
 * sampled, and with --breakdown, for the breakdown workloads on Flotilla, their /metrics.
 */
import type { Args } from './args.js';
import { type Breakdown, type NodeScrape, scrapeCluster } from './breakdown.js';
import { CLIENT_NAMES, type Client, type ClientResult, runNeutral, runOurs, runScript } from './clients.js';
import type { Cluster } from './clusters.js';
import { cpuBetween, cpuOf } from './cpu.js';
import { placeLeader } from './leader.js';
import { checkInterrupted, log, run, type System } from './processes.js';
import type { RunRecord } from './summary.js';
import { holdWatchers } from './watch-rows.js';
import { activeWorkloads, PUT, type Sizing, type Workload, type WorkloadKey } from './workloads.js';

/** What the runs need. */
export interface Bench {
  readonly args: Args;
  readonly sizing: Sizing;
  readonly clusters: Readonly<Record<System, Cluster>>;
  /** etcd-load's path; undefined with --no-neutral. */
  readonly neutralBinary: string | undefined;
  readonly timeoutMs: number;
  /** Where --breakdown collects the per-stage histograms; undefined without it. */
  readonly breakdown: Breakdown | undefined;
}

/** Which run: the round, the workload, the system under test and the client. */
interface RunSpec {
  readonly round: number;
  readonly workload: Workload;
  readonly system: System;
  readonly client: Client;
}

const runName = (bench: Bench, spec: RunSpec): string =>
  `[round ${spec.round}/${bench.args.rounds}] ${spec.workload.key} ${spec.system} (${CLIENT_NAMES[spec.client]})`;

/** One run of `client` against `cluster`. */
function runClient(
  bench: Bench,
  workload: Workload,
  client: Client,
  cluster: Cluster,
): Promise<ClientResult> {
  if (client === 'ours' && workload.script !== undefined) {
    return runScript(cluster.endpoints, workload.script, workload.ours(bench.sizing), bench.timeoutMs);
  }
  if (client === 'ours') return runOurs(cluster.endpoints, workload.ours(bench.sizing), bench.timeoutMs);
  return runNeutral(
    bench.neutralBinary!,
    cluster.endpoints,
    workload.neutral!(bench.sizing),
    bench.timeoutMs,
  );
}

function describe(result: ClientResult, record: RunRecord): string {
  const cpuMs = record.serverCpuMs?.reduce((a, b) => a + b, 0) ?? null;
  const cpu = cpuMs === null || result.succeeded === 0 ? 'n/a' : (cpuMs / result.succeeded).toFixed(3);
  const clientCpu = result.clientCpuMs === null ? 'n/a' : `${Math.round(result.clientCpuMs)} ms`;
  const errors = result.errors > 0 ? `, ${result.errors} errors: ${JSON.stringify(result.errorCounts)}` : '';
  return (
    `${Math.round(result.rps)} req/s, p50 ${result.p50} ms, p99 ${result.p99} ms, ` +
    `server CPU ${cpu} ms/req, client CPU ${clientCpu}${errors}`
  );
}

/** Runs `workload` once with `client` against `system`, measuring the members' CPU around it. */
async function measure(bench: Bench, spec: RunSpec): Promise<RunRecord> {
  const { round, workload, system, client } = spec;
  const cluster = bench.clusters[system];
  await placeLeader(cluster, bench.args.leader, 30_000);
  const scrape = bench.breakdown !== undefined && system === 'flotilla' && workload.breakdown === true;
  const before: NodeScrape[] = scrape ? await scrapeCluster(cluster) : [];
  const watchers = workload.idleWatchers?.(bench.sizing);
  const held = watchers === undefined ? undefined : await holdWatchers(cluster, watchers, bench.timeoutMs);
  const cpuBefore = cpuOf(cluster.pids);
  let result: ClientResult;
  try {
    result = await runClient(bench, workload, client, cluster);
  } finally {
    await held?.stop();
  }
  const serverCpuMs = cpuBetween(cpuBefore, cpuOf(cluster.pids));
  if (scrape) bench.breakdown?.add(workload.key, client, before, await scrapeCluster(cluster));
  const ok = result.succeeded > 0;
  const record: RunRecord = {
    round,
    system,
    client,
    rps: ok ? result.rps : null,
    p50: ok ? result.p50 : null,
    p99: ok ? result.p99 : null,
    succeeded: result.succeeded,
    errors: result.errors,
    wallS: result.wallMs / 1000,
    serverCpuMs,
    clientCpuMs: result.clientCpuMs,
    ...(held === undefined ? {} : { rssBytesPerWatcher: held.rssBytesPerWatcher }),
  };
  const rss = held === undefined ? '' : `, members' RSS +${Math.round(held.rssBytesPerWatcher)} B/watcher`;
  log(`${runName(bench, spec)}: ${describe(result, record)}${rss}`);
  return record;
}

/** As {@link measure}, but a run that fails is recorded as failed (and the comparison goes on). */
async function measureOrFail(bench: Bench, spec: RunSpec): Promise<RunRecord> {
  checkInterrupted();
  const down = run.stopped[spec.system];
  if (down !== undefined) throw new Error(`${down} during the run: no comparison written`);
  try {
    return await measure(bench, spec);
  } catch (error) {
    checkInterrupted();
    const failure = (error as Error).message.split('\n')[0]!;
    log(`${runName(bench, spec)}: FAILED: ${failure}`);
    const none = { rps: null, p50: null, p99: null, wallS: null, serverCpuMs: null, clientCpuMs: null };
    const { round, system, client } = spec;
    return { round, system, client, ...none, succeeded: 0, errors: 0, failure };
  }
}

/** The clients that run `workload`, in round `round`'s order. */
function clientsFor(bench: Bench, workload: Workload, round: number): Client[] {
  const neutral = bench.neutralBinary !== undefined && workload.neutral !== undefined;
  const clients: Client[] = neutral ? ['ours', 'neutral'] : ['ours'];
  return round % 2 === 1 ? clients : clients.reverse();
}

/** Warms both systems up (not measured): connections, JIT, the first stretch of each log. */
export async function warmUp(bench: Bench): Promise<void> {
  const total = String(bench.sizing.total(1000, 50));
  for (const cluster of Object.values(bench.clusters)) {
    await runOurs(
      cluster.endpoints,
      ['put', '--clients', '10', '--conns', '3', '--total', total, ...PUT],
      bench.timeoutMs,
    );
  }
}

/** Every round's runs, by workload. */
export async function runRounds(bench: Bench): Promise<Map<WorkloadKey, RunRecord[]>> {
  const workloads = activeWorkloads(bench.args.watchers100k);
  const records = new Map<WorkloadKey, RunRecord[]>(workloads.map((w) => [w.key, []]));
  for (let r = 1; r <= bench.args.rounds; r++) {
    const systems: System[] = r % 2 === 1 ? ['flotilla', 'etcd'] : ['etcd', 'flotilla'];
    for (const workload of workloads) {
      for (const system of systems) {
        for (const client of clientsFor(bench, workload, r)) {
          records.get(workload.key)!.push(await measureOrFail(bench, { round: r, workload, system, client }));
        }
      }
    }
  }
  return records;
}
