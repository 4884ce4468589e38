/**
 * Where a Flotilla server's CPU goes under a given load.
 *
 *   npm run bench:profile -- [--workload put_1|put_100|range_l_100|txn_put_100] [--total N]
 *                            [--top K] [--out DIR] [--interval-us N] [--json]
 *
 * Starts a 3-node `flotilla cluster start` whose servers load `bench/profile/hook.ts`,
 * warms it up with `bench/etcd-load` (etcd's own Go client), profiles every server with
 * V8's sampling profiler while etcd-load runs the workload, stops the cluster, and reports
 * per server (the leader and the followers): sampled busy, idle and GC time, busy time by
 * category (Flotilla's parts, its dependencies, Node, V8), the functions with the most self
 * time, and CPU per request. `--out DIR` keeps the `.cpuprofile` files (Chrome DevTools
 * opens them); `--json` prints the report as one JSON object on the last line.
 * docs/benchmarks.md describes it.
 */
import { copyFile, mkdir, mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { analyseProfile, type CpuProfile } from './profile/analyse.js';
import {
  HOOK,
  leaderOf,
  type ProfiledCluster,
  signalServers,
  startCluster,
  stopCluster,
} from './profile/cluster.js';
import { cpuFile, type ProcessCpu, profileFile, startedFile } from './profile/files.js';
import {
  etcdLoadBinary,
  killLoad,
  type LoadResult,
  putReadKey,
  runLoad,
  WORKLOADS,
  type Workload,
} from './profile/load.js';
import {
  formatReport,
  loadFigures,
  type ProfileReport,
  type ServerReport,
  serverReport,
} from './profile/report.js';

const USAGE = `usage: npm run bench:profile -- [--workload ${Object.keys(WORKLOADS).join('|')}] [--total N]
                              [--top K] [--out DIR] [--interval-us N] [--json]`;

interface Args {
  readonly workload: string;
  readonly total: number | undefined;
  readonly top: number;
  readonly out: string | undefined;
  readonly intervalUs: number;
  readonly json: boolean;
}

function usage(message: string): never {
  console.error(`error: ${message}\n${USAGE}`);
  process.exit(2);
}

function positive(flag: string, value: string | undefined): number {
  if (value === undefined || !/^\d+$/.test(value) || Number(value) < 1) {
    usage(`${flag} needs a positive integer, got '${value ?? ''}'`);
  }
  return Number(value);
}

function parseArgs(argv: readonly string[]): Args {
  let args: Args = {
    workload: 'put_100',
    total: undefined,
    top: 15,
    out: undefined,
    intervalUs: 1000,
    json: false,
  };
  for (let i = 0; i < argv.length; i++) {
    const flag = argv[i]!;
    const value = argv[i + 1];
    if (flag === '--json') args = { ...args, json: true };
    else if (flag === '--help' || flag === '-h') {
      console.log(USAGE);
      process.exit(0);
    } else if (flag === '--workload') {
      if (value === undefined || WORKLOADS[value] === undefined) usage(`unknown workload '${value ?? ''}'`);
      args = { ...args, workload: value };
      i++;
    } else if (flag === '--total') args = { ...args, total: positive(flag, argv[++i]) };
    else if (flag === '--top') args = { ...args, top: positive(flag, argv[++i]) };
    else if (flag === '--interval-us') args = { ...args, intervalUs: positive(flag, argv[++i]) };
    else if (flag === '--out') {
      if (value === undefined || value === '') usage('--out needs a directory');
      args = { ...args, out: resolve(value) };
      i++;
    } else usage(`unknown argument '${flag}'`);
  }
  return args;
}

function log(message: string): void {
  console.error(`[profile] ${message}`);
}

/** What one run produced before analysis: the load's result and the servers' roles. */
interface Run {
  readonly load: LoadResult;
  readonly servers: { readonly name: string; readonly pid: number; readonly role: string }[];
  readonly leaderChanged: boolean;
}

/** Starts the cluster, warms it up, profiles the servers through the workload, stops it. */
async function runProfiled(
  args: Args,
  workload: Workload,
  total: number,
  dirs: { readonly temp: string; readonly profiles: string },
  onSpawn: (cluster: ProfiledCluster) => void,
): Promise<Run> {
  const binary = await etcdLoadBinary(log);
  log('starting a 3-node cluster');
  const cluster = await startCluster(join(dirs.temp, 'cluster'), dirs.profiles, args.intervalUs, onSpawn);
  const leader = await leaderOf(cluster);
  if (workload.reads) await putReadKey(cluster.nodes.map((n) => n.clientUrl).join(','));
  const warmUp = Math.min(3000, Math.max(50, Math.round(total / 5)));
  log(`warming up: ${warmUp} requests`);
  await runLoad(binary, cluster.endpoints, workload, warmUp);
  await signalServers(cluster, (pid) => startedFile(dirs.profiles, pid), 'profiling to start');
  log(`${args.workload}: ${total} requests, ${workload.clients} clients on ${workload.conns} conns`);
  const load = await runLoad(binary, cluster.endpoints, workload, total);
  await signalServers(cluster, (pid) => profileFile(dirs.profiles, pid), 'the profiles');
  const leaderAfter = await leaderOf(cluster).catch(() => '');
  log('stopping the cluster');
  if (!(await stopCluster(cluster))) log('warning: the cluster did not stop by itself; killed');
  const servers = cluster.nodes.map((n) => ({
    name: n.name,
    pid: n.pid,
    role: n.name === leader ? 'leader' : 'follower',
  }));
  return { load, servers, leaderChanged: leaderAfter !== leader };
}

async function readCpu(file: string): Promise<ProcessCpu | null> {
  return readFile(file, 'utf8').then(
    (text) => JSON.parse(text) as ProcessCpu,
    () => null,
  );
}

/** Analyses each server's profile and builds the report; keeps the profiles in `--out`. */
async function analyse(
  args: Args,
  workload: Workload,
  total: number,
  run: Run,
  dir: string,
): Promise<ProfileReport> {
  const requests = run.load.succeeded;
  const servers: ServerReport[] = [];
  for (const server of run.servers) {
    const profile = JSON.parse(await readFile(profileFile(dir, server.pid), 'utf8')) as CpuProfile;
    const cpu = await readCpu(cpuFile(dir, server.pid));
    const summary = analyseProfile(profile, { top: args.top, exclude: (url) => url === HOOK });
    servers.push(serverReport(server, summary, cpu, requests));
    if (args.out !== undefined) {
      await mkdir(args.out, { recursive: true });
      const name = `${args.workload}.${server.role}.${server.name}.cpuprofile`;
      await copyFile(profileFile(dir, server.pid), join(args.out, name));
    }
  }
  const leader = servers.find((s) => s.role === 'leader');
  if (leader === undefined) throw new Error('no profile for the leader');
  const sum = (f: (s: ServerReport) => number): number =>
    Math.round((servers.reduce((acc, s) => acc + f(s), 0) / Math.max(1, requests)) * 1000) / 1000;
  const cpuKnown = servers.every((s) => s.cpu !== null);
  return {
    workload: args.workload,
    clients: workload.clients,
    conns: workload.conns,
    total,
    ...loadFigures(run.load),
    interval_us: args.intervalUs,
    leader_changed: run.leaderChanged,
    busy_ms_per_req: sum((s) => s.busy_ms),
    cpu_ms_per_req: cpuKnown ? sum((s) => (s.cpu?.user_ms ?? 0) + (s.cpu?.system_ms ?? 0)) : null,
    leader,
    followers: servers.filter((s) => s !== leader),
    profiles: args.out ?? null,
  };
}

async function main(): Promise<void> {
  const args = parseArgs(process.argv.slice(2));
  const workload = WORKLOADS[args.workload]!;
  const total = args.total ?? workload.total;
  const temp = await mkdtemp(join(tmpdir(), 'flotilla-profile-'));
  const profiles = join(temp, 'profiles');
  await mkdir(profiles);
  let cluster: ProfiledCluster | undefined;
  let cleaning: Promise<void> | undefined;
  const cleanup = (): Promise<void> => {
    cleaning ??= (async () => {
      killLoad();
      if (cluster !== undefined) await stopCluster(cluster, 6000);
      await rm(temp, { recursive: true, force: true });
    })();
    return cleaning;
  };
  process.on('exit', killLoad);
  for (const signal of ['SIGINT', 'SIGTERM'] as const) {
    process.on(signal, () => {
      log(`${signal}: stopping`);
      void cleanup().finally(() => process.exit(signal === 'SIGINT' ? 130 : 143));
    });
  }
  try {
    const run = await runProfiled(args, workload, total, { temp, profiles }, (c) => {
      cluster = c;
    });
    const report = await analyse(args, workload, total, run, profiles);
    console.log(formatReport(report));
    if (args.json) console.log(JSON.stringify(report));
  } finally {
    await cleanup();
  }
}

main().catch((error: unknown) => {
  console.error(`error: ${error instanceof Error ? error.message : String(error)}`);
  process.exit(1);
});
