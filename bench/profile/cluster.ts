/**
 * A 3-node `flotilla cluster start` whose servers carry the profiling hook
 * (`bench/profile/hook.ts`): started, asked to start and stop profiling, stopped.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { type ClusterNodeInfo, waitForLeader } from '../../src/cli/cluster-command.js';
import { PROFILE_DIR_ENV, PROFILE_INTERVAL_ENV, PROFILE_SIGNAL } from './files.js';

/** The compiled CLI entry point. */
export const MAIN = fileURLToPath(new URL('../../src/cli/main.js', import.meta.url));
/** The profiling hook the servers load (its URL, as it appears in their profiles). */
export const HOOK = new URL('./hook.js', import.meta.url).href;

/** A `cluster start` process, and its nodes once it has written `cluster.json`. */
export interface ProfiledCluster {
  readonly dataDir: string;
  readonly process: ChildProcess;
  nodes: ClusterNodeInfo[];
  /** The etcd gRPC endpoints, comma-separated. */
  endpoints: string;
  /** Set by `stopCluster`, which does nothing a second time. */
  stopped: boolean;
}

async function sleep(ms: number): Promise<void> {
  await new Promise((resolve) => setTimeout(resolve, ms));
}

/** Polls `ready` every 50 ms; throws `what` after `timeoutMs`. */
export async function waitUntil(what: string, timeoutMs: number, ready: () => boolean): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!ready()) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(50);
  }
}

/**
 * Spawns `cluster start --nodes 3 --base-port 0` with the hook in NODE_OPTIONS; `onSpawn`
 * gets the cluster before it is up, so that it can be stopped whatever happens next.
 */
export async function startCluster(
  dataDir: string,
  profileDir: string,
  intervalUs: number,
  onSpawn: (cluster: ProfiledCluster) => void,
): Promise<ProfiledCluster> {
  const { NODE_OPTIONS: inherited } = process.env;
  const nodeOptions = [inherited ?? '', `--import=${HOOK}`].join(' ').trim();
  const child = spawn(
    process.execPath,
    [MAIN, 'cluster', 'start', '--nodes', '3', '--data-dir', dataDir, '--base-port', '0'],
    {
      stdio: ['ignore', 'pipe', 'pipe'],
      env: {
        ...process.env,
        NODE_OPTIONS: nodeOptions,
        [PROFILE_DIR_ENV]: profileDir,
        [PROFILE_INTERVAL_ENV]: String(intervalUs),
      },
    },
  );
  let output = '';
  const append = (data: Buffer): void => {
    output += data.toString();
  };
  child.stdout?.on('data', append);
  child.stderr?.on('data', append);
  const cluster: ProfiledCluster = {
    dataDir,
    process: child,
    nodes: [],
    endpoints: '',
    stopped: false,
  };
  onSpawn(cluster);
  await waitUntil('the cluster to start', 60_000, () => {
    if (child.exitCode !== null || child.signalCode !== null) {
      throw new Error(`cluster start exited early:\n${output}`);
    }
    return output.includes('press Ctrl-C to stop');
  });
  if (!/cluster of \d+ nodes is up/.test(output)) throw new Error(`the cluster found no leader:\n${output}`);
  cluster.endpoints = /^etcd endpoints: (.+)$/m.exec(output)?.[1] ?? '';
  cluster.nodes = await readNodes(dataDir);
  return cluster;
}

async function readNodes(dataDir: string): Promise<ClusterNodeInfo[]> {
  const text = await readFile(join(dataDir, 'cluster.json'), 'utf8');
  return (JSON.parse(text) as { nodes: ClusterNodeInfo[] }).nodes;
}

/** The name of the leader all nodes agree on. */
export async function leaderOf(cluster: ProfiledCluster): Promise<string> {
  return waitForLeader(cluster.nodes, 10_000);
}

/** Sends the profiling signal to every server and waits until each has written `file(pid)`. */
export async function signalServers(
  cluster: ProfiledCluster,
  file: (pid: number) => string,
  what: string,
): Promise<void> {
  for (const node of cluster.nodes) process.kill(node.pid, PROFILE_SIGNAL);
  await waitUntil(what, 30_000, () => cluster.nodes.every((node) => existsSync(file(node.pid))));
}

/** Sends `sig` to `pid` (0 only asks whether it exists); false if there is no such process. */
function signalPid(pid: number, sig: NodeJS.Signals | 0): boolean {
  try {
    process.kill(pid, sig);
    return true;
  } catch {
    return false;
  }
}

/**
 * Stops the cluster: SIGTERM to `cluster start`, which stops its servers gracefully (or to
 * the servers themselves if it is gone), then SIGKILL to whatever is left after `graceMs`.
 * Resolves whether it all stopped by itself.
 */
export async function stopCluster(cluster: ProfiledCluster, graceMs = 10_000): Promise<boolean> {
  if (cluster.stopped) return true;
  cluster.stopped = true;
  const parent = cluster.process;
  const running = (): boolean => parent.exitCode === null && parent.signalCode === null;
  if (cluster.nodes.length === 0 && existsSync(join(cluster.dataDir, 'cluster.json'))) {
    cluster.nodes = await readNodes(cluster.dataDir).catch(() => []);
  }
  const pids = cluster.nodes.map((n) => n.pid).filter((pid) => pid > 0);
  if (running()) parent.kill('SIGTERM');
  else for (const pid of pids) signalPid(pid, 'SIGTERM');
  const gone = (): boolean => !running() && pids.every((pid) => !signalPid(pid, 0));
  const clean = await waitUntil('the cluster to stop', graceMs, gone).then(
    () => true,
    () => false,
  );
  if (!clean) {
    if (running()) parent.kill('SIGKILL');
    for (const pid of pids) signalPid(pid, 'SIGKILL');
  }
  return clean;
}
