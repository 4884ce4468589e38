/**
 * After the load, with the data in place: how long a member takes to come back, and how long
 * a new member takes to get the data, the same way on both systems.
 *
 * - **restart**: the last member is killed with SIGKILL and started again with the same
 *   command line; the time from its start until a linearizable get through it answers.
 * - **catch-up**: a fourth member is added (`MemberAdd` through the etcd API) and started
 *   with an empty data directory and `--initial-cluster-state existing`; the time from its
 *   start until it serves, serializably, the store revision the cluster had when it was
 *   added (nothing is written meanwhile). Its peak resident memory is sampled throughout.
 */
import { spawn } from 'node:child_process';
import { readFileSync, readlinkSync } from 'node:fs';
import { join } from 'node:path';
import { Connection, etcdMethod } from '../../src/benchmark/connections.js';
import type { Cluster } from '../vs-etcd/clusters.js';
import { freePorts, killAtCleanup, log, run, sleep, track, waitFor } from '../vs-etcd/processes.js';
import { PeakSampler } from './members.js';

/** What the rejoin measurements found. */
export interface RejoinResult {
  /** Seconds from the restarted member's start until a linearizable get through it answers. */
  readonly restart_s: number;
  /** Seconds from the new member's start until it serves the cluster's revision. */
  readonly catchup_s: number;
  /** The new member's peak resident memory while catching up, MB. */
  readonly catchup_peak_rss_mb: number;
  /** Bytes the new member wrote to the disk by the time it caught up (`/proc/PID/io` write_bytes), MB. */
  readonly catchup_written_mb: number;
  /** The processes this started (the caller stops them with the cluster). */
  readonly pids: readonly number[];
}

/** How long either step may take before the benchmark gives up. */
const STEP_TIMEOUT_MS = 20 * 60 * 1000;

interface RangeResponse {
  header?: { revision?: number | string };
}

/** The revision `endpoint` serves now (serializable: its own state), or undefined if it does not answer. */
async function servedRevision(endpoint: string, serializable: boolean): Promise<number | undefined> {
  const range = etcdMethod<RangeResponse>('KV', 'Range');
  let connection: Connection | undefined;
  try {
    connection = await Connection.open(0, endpoint, 1000);
    const bytes = await connection.unary(
      range.path,
      range.serialize({ key: Buffer.from('growth-probe'), serializable }),
      2000,
    );
    return Number(range.deserialize(bytes).header?.revision ?? 0);
  } catch {
    return undefined;
  } finally {
    connection?.close();
  }
}

/** The command line and working directory of a running process. */
function commandOf(pid: number): { argv: string[]; cwd: string } {
  const argv = readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').slice(0, -1);
  return { argv, cwd: readlinkSync(`/proc/${pid}/cwd`) };
}

function startProcess(system: string, argv: readonly string[], cwd: string): number {
  const child = track(spawn(argv[0]!, argv.slice(1), { cwd, stdio: 'ignore' }));
  if (child.pid === undefined) throw run.spawnFailure ?? new Error(`cannot start ${argv[0]}`);
  killAtCleanup(child.pid);
  child.on('exit', (code, signal) => {
    if (run.cleaning === undefined && run.stopped[system as 'etcd'] === undefined) {
      log(`${system}: ${argv.slice(0, 3).join(' ')}... exited (${signal ?? `code ${code}`})`);
    }
  });
  return child.pid;
}

/** The value of `--flag value` (or `--flag=value`) in `argv`. */
function flag(argv: readonly string[], name: string): string {
  const at = argv.indexOf(name);
  if (at >= 0 && at + 1 < argv.length) return argv[at + 1]!;
  const joined = argv.find((a) => a.startsWith(`${name}=`));
  if (joined !== undefined) return joined.slice(name.length + 1);
  throw new Error(`no ${name} in ${argv.join(' ')}`);
}

/** `argv` with `--flag`'s value replaced. */
function withFlag(argv: readonly string[], name: string, value: string): string[] {
  const out = [...argv];
  const at = out.indexOf(name);
  if (at >= 0) out[at + 1] = value;
  else out.push(name, value);
  return out;
}

async function timed(what: string, probe: () => Promise<boolean>): Promise<number> {
  const started = performance.now();
  for (;;) {
    if (await probe()) return (performance.now() - started) / 1000;
    if (run.spawnFailure !== undefined) throw run.spawnFailure;
    if (performance.now() - started > STEP_TIMEOUT_MS)
      throw new Error(`${what}: not done in ${STEP_TIMEOUT_MS} ms`);
    await sleep(50);
  }
}

/** `write_bytes` of `/proc/PID/io`: what the process caused to be written to the disk, MB. */
function writtenMb(pid: number): number {
  const line = /^write_bytes: (\d+)$/m.exec(readFileSync(`/proc/${pid}/io`, 'utf8'));
  return line === null ? 0 : Math.round(Number(line[1]) / 1e5) / 10;
}

/** Kills the last member, starts it again, and times until it serves. */
async function restart(cluster: Cluster): Promise<{ seconds: number; pid: number }> {
  const member = cluster.pids.length - 1;
  const pid = cluster.pids[member]!;
  const { argv, cwd } = commandOf(pid);
  // The cluster's exit handler logs this as the reason a member stopped.
  run.stopped[cluster.system] = `${cluster.system}: a member killed with SIGKILL for the restart measurement`;
  process.kill(pid, 'SIGKILL');
  await waitFor(() => {
    try {
      process.kill(pid, 0);
      return false;
    } catch {
      return true;
    }
  }, 10_000);
  const endpoint = cluster.endpoints[member]!;
  const started = startProcess(cluster.system, argv, cwd);
  const seconds = await timed('restart', async () => (await servedRevision(endpoint, false)) !== undefined);
  return { seconds, pid: started };
}

/** etcd's and Flotilla's flags for a fourth member, from a running member's command line. */
function newMemberArgv(
  cluster: Cluster,
  template: readonly string[],
  ports: readonly number[],
  dataDir: string,
): { argv: string[]; peerUrl: string; endpoint: string } {
  const [client, peer, http] = ports.map((p) => `127.0.0.1:${p}`) as [string, string, string];
  const initial = flag(template, '--initial-cluster');
  if (cluster.system === 'etcd') {
    const peerUrl = `http://${peer}`;
    let argv = withFlag(template, '--name', 'e4');
    argv = withFlag(argv, '--data-dir', dataDir);
    argv = withFlag(argv, '--listen-client-urls', `http://${client}`);
    argv = withFlag(argv, '--advertise-client-urls', `http://${client}`);
    argv = withFlag(argv, '--listen-peer-urls', peerUrl);
    argv = withFlag(argv, '--initial-advertise-peer-urls', peerUrl);
    argv = withFlag(argv, '--initial-cluster', `${initial},e4=${peerUrl}`);
    argv = withFlag(argv, '--initial-cluster-state', 'existing');
    argv = withFlag(argv, '--log-outputs', `${dataDir}.log`);
    return { argv, peerUrl, endpoint: client };
  }
  let argv = withFlag(template, '--name', 'n4');
  argv = withFlag(argv, '--data-dir', dataDir);
  argv = withFlag(argv, '--listen-grpc', client);
  argv = withFlag(argv, '--listen-peer', peer);
  argv = withFlag(argv, '--listen-client', http);
  argv = withFlag(argv, '--initial-cluster', `${initial},n4=${peer}`);
  argv = withFlag(argv, '--initial-cluster-state', 'existing');
  return { argv, peerUrl: `http://${peer}`, endpoint: client };
}

/** Adds a fourth member and times until it has the data. */
async function catchUp(
  cluster: Cluster,
  directory: string,
): Promise<{ seconds: number; peakMb: number; writtenMb: number; pid: number }> {
  const template = commandOf(cluster.pids[0]!);
  const ports = await freePorts(3);
  const dataDir = join(directory, cluster.system === 'etcd' ? 'e4' : 'n4');
  const { argv, peerUrl, endpoint } = newMemberArgv(cluster, template.argv, ports, dataDir);
  const target = await servedRevision(cluster.endpoints[0]!, false);
  if (target === undefined) throw new Error(`${cluster.system}: no revision before the member add`);
  const add = etcdMethod('Cluster', 'MemberAdd');
  // Both refuse a member add while a member is not yet connected for a while (etcd:
  // "unhealthy cluster" for 5 s after the restart); try again until it is.
  await timed('member add', async () => {
    const connection = await Connection.open(0, cluster.endpoints[0]!, 2000);
    try {
      await connection.unary(add.path, add.serialize({ peerURLs: [peerUrl] }), 10_000);
      return true;
    } catch (error) {
      if (!/unhealthy cluster|not started|quorum/i.test((error as Error).message)) throw error;
      await sleep(500);
      return false;
    } finally {
      connection.close();
    }
  });
  const pid = startProcess(cluster.system, argv, template.cwd);
  const peaks = new PeakSampler([pid]);
  try {
    const seconds = await timed(
      'catch-up',
      async () => ((await servedRevision(endpoint, true)) ?? 0) >= target,
    );
    return { seconds, peakMb: peaks.stop()[0]!, writtenMb: writtenMb(pid), pid };
  } finally {
    peaks.stop();
  }
}

/** Restart, then catch-up, on a loaded `cluster` whose data lives under `directory`. */
export async function rejoin(cluster: Cluster, directory: string): Promise<RejoinResult> {
  log(`${cluster.system}: kill -9 of a member, then its restart...`);
  const restarted = await restart(cluster);
  log(`${cluster.system}: restarted member serves after ${restarted.seconds.toFixed(2)} s`);
  log(`${cluster.system}: a new member joins...`);
  const joined = await catchUp(cluster, directory);
  log(
    `${cluster.system}: the new member caught up after ${joined.seconds.toFixed(2)} s ` +
      `(peak RSS ${joined.peakMb} MB, ${joined.writtenMb} MB written)`,
  );
  return {
    restart_s: Math.round(restarted.seconds * 100) / 100,
    catchup_s: Math.round(joined.seconds * 100) / 100,
    catchup_peak_rss_mb: joined.peakMb,
    catchup_written_mb: joined.writtenMb,
    pids: [restarted.pid, joined.pid],
  };
}
