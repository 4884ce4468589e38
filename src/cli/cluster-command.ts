/**
 * `flotilla cluster start`: runs a local cluster of `serve` child processes on loopback, for
 * trying Flotilla out and for tests. Node k listens on fixed loopback ports derived from
 * `--base-port` (see {@link portsOf}; `--base-port 0` picks free ports instead), so the
 * commands in the README work as written. It waits for a leader, prints the endpoints, writes
 * `cluster.json` and stays in the foreground; Ctrl-C stops every node. Run again with the
 * same `--data-dir` and it restarts the same members on the same ports.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { randomInt } from 'node:crypto';
import { createWriteStream, existsSync } from 'node:fs';
import { mkdir, readFile, rename, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Command } from 'commander';
import { nodeIdFromName } from '../node/index.js';
import { isLogLevel, LOG_LEVELS } from '../server/index.js';

/** One node of a local cluster, as written to `cluster.json`. */
export interface ClusterNodeInfo {
  readonly name: string;
  readonly id: number;
  pid: number;
  readonly peerUrl: string;
  readonly clientUrl: string;
  /** The etcd v3 gRPC endpoint (`host:port`, as etcdctl's `--endpoints` takes it). */
  readonly grpcEndpoint: string;
  readonly dataDir: string;
}

/** Most nodes `cluster start` runs. */
export const CLUSTER_NODES_MAX = 9;
/** How long `cluster start` waits for a leader that every node agrees on. */
export const LEADER_WAIT_MS = 20_000;
/**
 * `cluster start`'s default `--base-port`: node k serves HTTP on 4k00, the etcd API on 4k79
 * and its peers on 4k80 (etcd's 2379/2380 pattern, moved clear of a real etcd on the machine).
 */
export const BASE_PORT_DEFAULT = 4000;

interface ClusterFlags {
  nodes: string;
  dataDir: string;
  tickMs?: string;
  basePort: string;
  snapshotEntries?: string;
  kvNoSync?: boolean;
  quotaBackendBytes?: string;
  logLevel?: string;
}

/** A free TCP port on 127.0.0.1 (see {@link freePorts}). */
export async function freePort(): Promise<number> {
  const [port] = await freePorts(1);
  return port!;
}

/** The `serve` arguments of one node. */
export function serveArgs(node: ClusterNodeInfo, initialCluster: string, extra: readonly string[]): string[] {
  return [
    'serve',
    '--name',
    node.name,
    '--data-dir',
    node.dataDir,
    '--listen-peer',
    node.peerUrl.replace('http://', ''),
    '--listen-client',
    node.clientUrl.replace('http://', ''),
    '--listen-grpc',
    node.grpcEndpoint,
    '--initial-cluster',
    initialCluster,
    ...extra,
  ];
}

/** The initial cluster string of a set of nodes. */
export function initialClusterOf(nodes: readonly ClusterNodeInfo[]): string {
  return nodes.map((n) => `${n.name}=${n.peerUrl.replace('http://', '')}`).join(',');
}

/** The HTTP, etcd gRPC and peer ports of node `k` (1-based) for a `--base-port` above 0. */
export function portsOf(basePort: number, k: number): { http: number; grpc: number; peer: number } {
  const http = basePort + 100 * k;
  return { http, grpc: http + 79, peer: http + 80 };
}

/** Whether `port` on 127.0.0.1 can be bound now. */
async function portIsFree(port: number): Promise<boolean> {
  return new Promise((resolveFree) => {
    const server = createServer();
    server.once('error', () => resolveFree(false));
    server.listen(port, '127.0.0.1', () => server.close(() => resolveFree(true)));
  });
}

async function planNodes(count: number, dataDir: string, basePort: number): Promise<ClusterNodeInfo[]> {
  const file = join(dataDir, 'cluster.json');
  if (existsSync(file)) {
    const saved = JSON.parse(await readFile(file, 'utf8')) as { nodes: ClusterNodeInfo[] };
    if (saved.nodes.length !== count) {
      throw new Error(`${file} describes ${saved.nodes.length} nodes, not ${count}: use another --data-dir`);
    }
    return saved.nodes;
  }
  // Free ports are all taken together (held open until the last is chosen), so no two of
  // them can be the same port handed out twice.
  const free = basePort === 0 ? await freePorts(3 * count) : [];
  const nodes: ClusterNodeInfo[] = [];
  for (let i = 1; i <= count; i++) {
    const [http, grpc, peer] = free.slice(3 * (i - 1), 3 * i) as [number, number, number];
    const ports = basePort === 0 ? { http, grpc, peer } : portsOf(basePort, i);
    nodes.push(await planNode(`n${i}`, dataDir, ports));
  }
  return nodes;
}

/**
 * `count` distinct free TCP ports on 127.0.0.1, all bound at once (so none is handed out
 * twice), then released for the caller's processes to bind. They are drawn below the
 * kernel's ephemeral range where it leaves room (Linux: `ip_local_port_range`, usually from
 * 32768): a port from that range, once released, can be taken by any process's outgoing
 * connection before the caller binds it; one below it is taken only by another listener.
 */
export async function freePorts(count: number): Promise<number[]> {
  const ceiling = await ephemeralFloor();
  const servers: ReturnType<typeof createServer>[] = [];
  try {
    for (let attempts = 0; servers.length < count; attempts++) {
      const candidate = ceiling > 20_000 && attempts < 50 * count ? 10_000 + randomInt(ceiling - 10_000) : 0;
      const server = await listenOn(candidate);
      if (server !== undefined) servers.push(server);
    }
    return servers.map((server) => {
      const address = server.address();
      return typeof address === 'object' && address !== null ? address.port : 0;
    });
  } finally {
    await Promise.all(servers.map((server) => new Promise((resolveClose) => server.close(resolveClose))));
  }
}

/** A server listening on 127.0.0.1:`port` (0: any), or undefined when the port is taken. */
function listenOn(port: number): Promise<ReturnType<typeof createServer> | undefined> {
  return new Promise((resolveListen, reject) => {
    const server = createServer();
    server.once('error', (error: NodeJS.ErrnoException) => {
      if (error.code === 'EADDRINUSE' && port !== 0) resolveListen(undefined);
      else reject(error);
    });
    server.listen(port, '127.0.0.1', () => resolveListen(server));
  });
}

/** The lowest port the kernel hands to outgoing connections (0 when unknown). */
async function ephemeralFloor(): Promise<number> {
  try {
    const text = await readFile('/proc/sys/net/ipv4/ip_local_port_range', 'utf8');
    const low = Number.parseInt(text.trim().split(/\s+/)[0] ?? '', 10);
    return Number.isSafeInteger(low) ? low : 0;
  } catch {
    return 0;
  }
}

/**
 * A not yet started node `name` with its data in `parentDir/name`, on the given loopback
 * ports, or on free ones.
 */
export async function planNode(
  name: string,
  parentDir: string,
  ports?: { readonly http: number; readonly grpc: number; readonly peer: number },
): Promise<ClusterNodeInfo> {
  return {
    name,
    id: nodeIdFromName(name),
    pid: 0,
    peerUrl: `http://127.0.0.1:${ports?.peer ?? (await freePort())}`,
    clientUrl: `http://127.0.0.1:${ports?.http ?? (await freePort())}`,
    grpcEndpoint: `127.0.0.1:${ports?.grpc ?? (await freePort())}`,
    dataDir: join(parentDir, name),
  };
}

/** The first port of `nodes` that something else holds, if any. */
async function busyPort(nodes: readonly ClusterNodeInfo[]): Promise<string | undefined> {
  for (const node of nodes) {
    for (const url of [node.clientUrl, node.grpcEndpoint, node.peerUrl]) {
      const port = Number(url.slice(url.lastIndexOf(':') + 1));
      if (!(await portIsFree(port))) return `${node.name}'s port ${port}`;
    }
  }
  return undefined;
}

async function writeClusterFile(dataDir: string, nodes: readonly ClusterNodeInfo[]): Promise<void> {
  const file = join(dataDir, 'cluster.json');
  await writeFile(`${file}.tmp`, `${JSON.stringify({ nodes }, null, 2)}\n`);
  await rename(`${file}.tmp`, file);
}

/** One node's answer to a `/v1/cluster` poll while waiting for a leader. */
interface NodeView {
  /** The node's name (its URL when only that is known and it does not answer). */
  readonly name: string;
  /** `leader`, `follower`, `candidate`, …, or `unreachable`. */
  readonly role: string;
  readonly term: number;
  /** The leader's name as this node knows it ('' for none). */
  readonly leader: string;
}

/**
 * Polls `/v1/cluster` on every node until all agree on one leader; returns its name.
 * `onProgress` is called with a summary (`n1 follower (term 2), n2 candidate (term 3), …`)
 * each time it changes while no leader is agreed on.
 */
export async function waitForLeader(
  nodes: readonly (string | { readonly name: string; readonly clientUrl: string })[],
  timeoutMs: number,
  onProgress?: (summary: string) => void,
): Promise<string> {
  const deadline = Date.now() + timeoutMs;
  let lastSummary = '';
  while (Date.now() < deadline) {
    const views = await Promise.all(
      nodes.map(async (node): Promise<NodeView> => {
        const url = typeof node === 'string' ? node : node.clientUrl;
        try {
          const res = await fetch(`${url}/v1/cluster`, { signal: AbortSignal.timeout(1000) });
          const body = (await res.json()) as {
            member: { name: string };
            role: string;
            term: number;
            leader: { name: string } | null;
          };
          return {
            name: body.member.name,
            role: body.role,
            term: body.term,
            leader: body.leader?.name ?? '',
          };
        } catch {
          return {
            name: typeof node === 'string' ? url : node.name,
            role: 'unreachable',
            term: 0,
            leader: '',
          };
        }
      }),
    );
    const first = views[0]?.leader;
    if (first !== undefined && first !== '' && views.every((v) => v.leader === first)) return first;
    const summary = views
      .map((v) =>
        v.role === 'unreachable' ? `${v.name} unreachable` : `${v.name} ${v.role} (term ${v.term})`,
      )
      .join(', ');
    if (summary !== lastSummary) onProgress?.(summary);
    lastSummary = summary;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`no leader agreed on by all nodes within ${timeoutMs} ms`);
}

function startChild(
  node: ClusterNodeInfo,
  initialCluster: string,
  extra: readonly string[],
  logDir: string,
): ChildProcess {
  const main = fileURLToPath(new URL('./main.js', import.meta.url));
  const log = createWriteStream(join(logDir, `${node.name}.log`), { flags: 'a' });
  const child = spawn(process.execPath, [main, ...serveArgs(node, initialCluster, extra)], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  child.stdout?.pipe(log);
  child.stderr?.pipe(log);
  return child;
}

/** Registers `cluster start`. */
export function registerClusterCommand(program: Command): void {
  const cluster = program.command('cluster').description('run a local cluster');
  cluster
    .command('start')
    .description('start N serve processes on loopback, wait for a leader, stay in the foreground')
    .option('--nodes <n>', 'number of nodes', '3')
    .option('--data-dir <dir>', 'parent directory of the nodes’ data directories and cluster.json', './data')
    .option('--tick-ms <ms>', 'milliseconds per raft tick', '100')
    .option(
      '--base-port <port>',
      'node k serves HTTP on base+100k, the etcd API on base+100k+79, peers on base+100k+80; 0 picks free ports',
      String(BASE_PORT_DEFAULT),
    )
    .option(
      '--snapshot-entries <n>',
      "snapshot after this many applied entries (serve's flag; default 100000)",
    )
    .option('--kv-no-sync', 'never fsync the KV stores (tests and benchmarks only)')
    .option('--quota-backend-bytes <bytes>', "each node's space quota (serve's flag; default 2 GiB)")
    .option('--log-level <level>', `least severe level the nodes log: ${LOG_LEVELS.join(', ')}`)
    .action(async (flags: ClusterFlags) => {
      const count = Number(flags.nodes);
      if (!/^\d+$/.test(flags.nodes) || count < 1 || count > CLUSTER_NODES_MAX) {
        console.error(`error: --nodes must be an integer in [1, ${CLUSTER_NODES_MAX}], got '${flags.nodes}'`);
        process.exit(2);
      }
      if (flags.tickMs !== undefined && !/^\d+$/.test(flags.tickMs)) {
        console.error(`error: --tick-ms must be a positive integer, got '${flags.tickMs}'`);
        process.exit(2);
      }
      const basePort = Number(flags.basePort);
      if (
        !/^\d+$/.test(flags.basePort) ||
        (basePort !== 0 && (basePort < 1024 || basePort + 100 * count + 80 > 65535))
      ) {
        console.error(
          `error: --base-port must be 0 or a port from 1024 leaving room for ${count} nodes, got '${flags.basePort}'`,
        );
        process.exit(2);
      }
      if (flags.snapshotEntries !== undefined && !/^[1-9]\d*$/.test(flags.snapshotEntries)) {
        console.error(`error: --snapshot-entries must be a positive integer, got '${flags.snapshotEntries}'`);
        process.exit(2);
      }
      if (flags.logLevel !== undefined && !isLogLevel(flags.logLevel)) {
        console.error(`error: --log-level must be one of ${LOG_LEVELS.join(', ')}, got '${flags.logLevel}'`);
        process.exit(2);
      }
      await runCluster(count, resolve(flags.dataDir), basePort, [
        ...(flags.tickMs === undefined ? [] : ['--tick-ms', flags.tickMs]),
        ...(flags.snapshotEntries === undefined ? [] : ['--snapshot-entries', flags.snapshotEntries]),
        ...(flags.kvNoSync === true ? ['--kv-no-sync'] : []),
        ...(flags.quotaBackendBytes === undefined ? [] : ['--quota-backend-bytes', flags.quotaBackendBytes]),
        ...(flags.logLevel === undefined ? [] : ['--log-level', flags.logLevel]),
      ]);
    });
}

async function runCluster(
  count: number,
  dataDir: string,
  basePort: number,
  extra: readonly string[],
): Promise<void> {
  await mkdir(dataDir, { recursive: true });
  const nodes = await planNodes(count, dataDir, basePort);
  const busy = await busyPort(nodes);
  if (busy !== undefined) {
    console.error(
      `error: ${busy} is in use (a cluster already running?); stop it, or pass --base-port (0 picks free ports)`,
    );
    process.exit(2);
  }
  const initialCluster = initialClusterOf(nodes);
  const children = new Map<string, ChildProcess>();
  let stopping = false;
  for (const node of nodes) {
    const child = startChild(node, initialCluster, extra, dataDir);
    node.pid = child.pid ?? 0;
    children.set(node.name, child);
    child.on('exit', (code, signal) => {
      children.delete(node.name);
      if (!stopping) console.error(`${node.name} (pid ${node.pid}) exited: ${signal ?? `code ${code}`}`);
      if (stopping && children.size === 0) process.exit(0);
    });
  }
  await writeClusterFile(dataDir, nodes);
  const stopAll = (): void => {
    if (stopping) return;
    stopping = true;
    console.log('stopping all nodes');
    if (children.size === 0) process.exit(0);
    for (const child of children.values()) child.kill('SIGTERM');
    setTimeout(() => {
      for (const child of children.values()) child.kill('SIGKILL');
      process.exit(0);
    }, 5000).unref();
  };
  process.on('SIGINT', stopAll);
  process.on('SIGTERM', stopAll);
  try {
    // Progress goes to stderr: stdout's lines are parsed by scripts and tests.
    const leader = await waitForLeader(nodes, LEADER_WAIT_MS, (summary) =>
      console.error(`waiting for a leader... ${summary}`),
    );
    console.log(`cluster of ${count} nodes is up; leader ${leader}; logs and cluster.json in ${dataDir}`);
  } catch (error) {
    console.error(`error: ${(error as Error).message}; see the logs in ${dataDir}`);
  }
  for (const node of nodes) {
    console.log(
      `${node.name}  id ${node.id}  pid ${node.pid}  client ${node.clientUrl}  etcd ${node.grpcEndpoint}  peer ${node.peerUrl}`,
    );
  }
  console.log(`endpoints: ${nodes.map((n) => n.clientUrl).join(',')}`);
  console.log(`etcd endpoints: ${nodes.map((n) => n.grpcEndpoint).join(',')}`);
  console.log('press Ctrl-C to stop');
}
