/**
 * The two systems under test, both 3 members on loopback with their data under the run's
 * directory: etcd (the `etcd` binary, default settings) and Flotilla (`flotilla cluster
 * start`). Each is described by its client endpoints and its members' process ids (whose
 * CPU time is measured around every run).
 */
import { spawn } from 'node:child_process';
import { mkdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Connection, etcdMethod } from '../../src/benchmark/connections.js';
import {
  freePorts,
  killAtCleanup,
  log,
  run,
  type System,
  sleep,
  spawnCollecting,
  track,
  waitFor,
} from './processes.js';
import { RANGE_KEY } from './workloads.js';

const MAIN = fileURLToPath(new URL('../../src/cli/main.js', import.meta.url));

/** A running 3-member system. */
export interface Cluster {
  readonly system: System;
  /** Its etcd v3 gRPC endpoints, host:port. */
  readonly endpoints: readonly string[];
  /** Its members' process ids, in member order. */
  readonly pids: readonly number[];
  /** Its members' HTTP client URLs (Flotilla's /metrics and /v1/cluster); none for etcd. */
  readonly clientUrls: readonly string[];
  /** Its members' data directories, in member order. */
  readonly dataDirs: readonly string[];
}

function etcdArgs(directory: string, name: string, client: string, peer: string, initial: string): string[] {
  return [
    ...['--name', name, '--data-dir', join(directory, name)],
    ...['--listen-client-urls', `http://${client}`, '--advertise-client-urls', `http://${client}`],
    ...['--listen-peer-urls', peer, '--initial-advertise-peer-urls', peer],
    ...['--initial-cluster', initial, '--initial-cluster-state', 'new'],
    ...['--initial-cluster-token', `vs-etcd-${process.pid}`],
    ...['--logger', 'zap', '--log-outputs', join(directory, `${name}.log`)],
  ];
}

/** Starts a 3-node etcd. */
export async function startEtcd(directory: string): Promise<Cluster> {
  await mkdir(directory, { recursive: true });
  const ports = await freePorts(6);
  const names = ['e1', 'e2', 'e3'];
  const peer = (i: number): string => `http://127.0.0.1:${ports[2 * i + 1]}`;
  const client = (i: number): string => `127.0.0.1:${ports[2 * i]}`;
  const initialCluster = names.map((n, i) => `${n}=${peer(i)}`).join(',');
  const pids: number[] = [];
  names.forEach((name, i) => {
    const args = etcdArgs(directory, name, client(i), peer(i), initialCluster);
    const child = track(spawn('etcd', args, { stdio: 'ignore' }));
    if (child.pid !== undefined) {
      killAtCleanup(child.pid);
      pids.push(child.pid);
    }
    child.on('exit', (code, signal) => {
      if (run.cleaning === undefined) {
        run.stopped.etcd ??= `etcd ${name} exited (${signal ?? `code ${code}`})`;
        log(`${run.stopped.etcd}; see ${directory}`);
      }
    });
  });
  if (run.spawnFailure !== undefined) throw run.spawnFailure;
  const dataDirs = names.map((name) => join(directory, name));
  return { system: 'etcd', endpoints: names.map((_, i) => client(i)), pids, clientUrls: [], dataDirs };
}

/** Starts `flotilla cluster start --nodes 3`. */
export async function startFlotilla(directory: string): Promise<Cluster> {
  const args = [MAIN, 'cluster', 'start', '--nodes', '3', '--data-dir', directory, '--base-port', '0'];
  const { child, output } = spawnCollecting(process.execPath, args);
  const up = await waitFor(
    () => /etcd endpoints: (\S+)/.test(output()) || child.exitCode !== null || run.spawnFailure !== undefined,
    60_000,
  );
  if (run.spawnFailure !== undefined) throw run.spawnFailure;
  const match = /etcd endpoints: (\S+)/.exec(output());
  if (!up || match === null) throw new Error(`flotilla cluster start did not come up:\n${output()}`);
  // cluster.json is written before the endpoints line is printed.
  const info = JSON.parse(await readFile(join(directory, 'cluster.json'), 'utf8')) as {
    nodes: { pid: number; clientUrl: string; dataDir: string }[];
  };
  for (const node of info.nodes) killAtCleanup(node.pid);
  child.on('exit', (code, signal) => {
    if (run.cleaning === undefined) {
      run.stopped.flotilla ??= `flotilla cluster start exited (${signal ?? `code ${code}`})`;
      log(`${run.stopped.flotilla}; see ${directory}`);
    }
  });
  return {
    system: 'flotilla',
    endpoints: match[1]!.split(','),
    pids: info.nodes.map((n) => n.pid),
    clientUrls: info.nodes.map((n) => n.clientUrl),
    dataDirs: info.nodes.map((n) => n.dataDir),
  };
}

/** One unary call on a connection of its own to `endpoint`, within `timeoutMs`: the response bytes. */
export async function unaryOnce(
  endpoint: string,
  path: string,
  request: Uint8Array,
  timeoutMs: number,
): Promise<Buffer> {
  const connection = await Connection.open(0, endpoint, 2000);
  try {
    return await connection.unary(path, request, timeoutMs);
  } finally {
    connection.close();
  }
}

/** One put through `endpoint`, within `timeoutMs`. */
async function putOnce(endpoint: string, key: string, value: Buffer, timeoutMs: number): Promise<void> {
  const put = etcdMethod('KV', 'Put');
  await unaryOnce(endpoint, put.path, put.serialize({ key: Buffer.from(key), value }), timeoutMs);
}

/** Waits until a put through every endpoint succeeds; then writes the range workloads' key. */
export async function waitReady(cluster: Cluster, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (const endpoint of cluster.endpoints) {
    for (;;) {
      try {
        await putOnce(endpoint, 'vs-etcd-ready', Buffer.from('1'), 3000);
        break;
      } catch (error) {
        if (run.spawnFailure !== undefined) throw run.spawnFailure;
        if (Date.now() > deadline) {
          throw new Error(`${cluster.system} at ${endpoint} does not take puts: ${(error as Error).message}`);
        }
        await sleep(200);
      }
    }
  }
  await putOnce(cluster.endpoints[0]!, RANGE_KEY, Buffer.alloc(256, 0x61), 5000);
}
