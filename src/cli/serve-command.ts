/** `flotilla serve`: runs one node (raft group 1, the KV store, the HTTP API) until SIGINT/SIGTERM. */
import { resolve } from 'node:path';
import type { Command, CommanderError } from 'commander';
import { DEFAULT_KV_SETTINGS, KvNode } from '../db/index.js';
import { EtcdGrpcServer } from '../etcd/index.js';
import {
  type ClusterMember,
  checkName,
  clusterIdFrom,
  isNodeError,
  parseHostPort,
  parseInitialCluster,
  withoutUnnamedMembers,
} from '../node/index.js';
import { createLogger, HttpApi, isLogLevel, LOG_LEVELS, type LogLevel } from '../server/index.js';

interface ServeFlags {
  name?: string;
  dataDir?: string;
  listenPeer?: string;
  listenClient?: string;
  listenGrpc?: string;
  initialCluster?: string;
  initialClusterState?: string;
  clusterId?: string;
  tickMs?: string;
  electionTicks?: string;
  requestTimeoutMs?: string;
  snapshotEntries?: string;
  kvNoSync?: boolean;
  quotaBackendBytes?: string;
  logLevel?: string;
}

/** Validated configuration of `serve`. */
export interface ServeConfig {
  readonly name: string;
  readonly id: number;
  readonly dataDir: string;
  readonly listenPeer: { host: string; port: number };
  readonly listenClient: { host: string; port: number };
  /** The etcd v3 gRPC API's address; absent when not served. */
  readonly listenGrpc?: { host: string; port: number };
  readonly initialCluster: string;
  readonly members: ClusterMember[];
  readonly clusterId: number;
  readonly initialClusterState: 'new' | 'existing';
  readonly tickMs: number;
  readonly electionTicks: number;
  readonly requestTimeoutMs: number;
  readonly snapshotEntries: number;
  readonly kvNoSync: boolean;
  /** etcd's `--quota-backend-bytes` (0 on the command line: etcd's default, 2 GiB). */
  readonly quotaBackendBytes: number;
  /** Least severe level logged (JSON lines on stderr). */
  readonly logLevel: LogLevel;
}

/** A flag error: printed with `error:` and exit code 2. */
class UsageError extends Error {}

function required(value: string | undefined, flag: string): string {
  if (value === undefined || value.trim() === '') throw new UsageError(`${flag} is required`);
  return value;
}

function integer(
  value: string | undefined,
  flag: string,
  fallback: number,
  min: number,
  max: number,
): number {
  if (value === undefined) return fallback;
  if (!/^\d+$/.test(value) || Number(value) < min || Number(value) > max) {
    throw new UsageError(`${flag} must be an integer in [${min}, ${max}], got '${value}'`);
  }
  return Number(value);
}

function usage<T>(run: () => T): T {
  try {
    return run();
  } catch (error) {
    if (isNodeError(error)) throw new UsageError(error.message);
    throw error;
  }
}

/** Validates every flag; throws a usage error naming the flag. */
export function parseServeFlags(flags: ServeFlags): ServeConfig {
  const name = required(flags.name, '--name');
  usage(() => checkName(name, '--name'));
  const dataDir = resolve(required(flags.dataDir, '--data-dir'));
  const listenPeer = usage(() => parseHostPort(required(flags.listenPeer, '--listen-peer'), '--listen-peer'));
  const listenClient = usage(() =>
    parseHostPort(required(flags.listenClient, '--listen-client'), '--listen-client'),
  );
  const listenGrpc =
    flags.listenGrpc === undefined
      ? undefined
      : usage(() => parseHostPort(flags.listenGrpc ?? '', '--listen-grpc'));
  if (
    listenGrpc !== undefined &&
    [listenPeer, listenClient].some((a) => a.port === listenGrpc.port && a.host === listenGrpc.host)
  ) {
    throw new UsageError('--listen-grpc must differ from --listen-client and --listen-peer');
  }
  const initialCluster = required(flags.initialCluster, '--initial-cluster');
  // etcdctl's `member add` prints members that have not started yet as `=http://host:port`
  // (no name); a joining member learns them from the cluster instead (see src/node/join.ts).
  const members = usage(() =>
    parseInitialCluster(
      flags.initialClusterState === 'existing' ? withoutUnnamedMembers(initialCluster) : initialCluster,
    ),
  );
  const self = members.find((m) => m.name === name);
  if (self === undefined) {
    throw new UsageError(
      `--name ${name} is not a member of --initial-cluster (${members.map((m) => m.name).join(', ')})`,
    );
  }
  if (self.port !== listenPeer.port) {
    throw new UsageError(
      `--listen-peer port ${listenPeer.port} differs from ${name}'s port ${self.port} in --initial-cluster`,
    );
  }
  if (listenClient.port === listenPeer.port && listenClient.host === listenPeer.host) {
    throw new UsageError('--listen-client and --listen-peer must differ');
  }
  const logLevel = flags.logLevel ?? 'info';
  if (!isLogLevel(logLevel)) {
    throw new UsageError(`--log-level must be one of ${LOG_LEVELS.join(', ')}, got '${logLevel}'`);
  }
  const state = flags.initialClusterState ?? 'new';
  if (state !== 'new' && state !== 'existing') {
    throw new UsageError(`--initial-cluster-state must be new or existing, got '${state}'`);
  }
  return {
    name,
    id: self.id,
    dataDir,
    listenPeer,
    listenClient,
    ...(listenGrpc === undefined ? {} : { listenGrpc }),
    initialCluster,
    members,
    clusterId: flags.clusterId === undefined ? clusterIdFrom(members) : parseClusterId(flags.clusterId),
    initialClusterState: state,
    tickMs: integer(flags.tickMs, '--tick-ms', 100, 1, 60_000),
    electionTicks: integer(flags.electionTicks, '--election-ticks', 10, 3, 1000),
    requestTimeoutMs: integer(flags.requestTimeoutMs, '--request-timeout-ms', 5000, 10, 600_000),
    snapshotEntries: integer(flags.snapshotEntries, '--snapshot-entries', 100_000, 1, 100_000_000),
    kvNoSync: flags.kvNoSync === true,
    quotaBackendBytes:
      integer(flags.quotaBackendBytes, '--quota-backend-bytes', 0, 0, Number.MAX_SAFE_INTEGER) ||
      DEFAULT_KV_SETTINGS.quotaBackendBytes,
    logLevel,
  };
}

/** Starts a node and its HTTP API from a validated configuration. */
export async function runServe(
  config: ServeConfig,
): Promise<{ node: KvNode; http: HttpApi; grpc?: EtcdGrpcServer; stop: () => Promise<void> }> {
  const logger = createLogger({ name: config.name, level: config.logLevel });
  const urlOf = (a: { host: string; port: number }): string =>
    `http://${a.host.includes(':') ? `[${a.host}]` : a.host}:${a.port}`;
  const node = await KvNode.start({
    name: config.name,
    id: config.id,
    clusterId: config.clusterId,
    initialCluster: config.initialCluster,
    members: new Map(config.members.map((m) => [m.id, { name: m.name, host: m.host, port: m.port }])),
    initialClusterState: config.initialClusterState,
    dataDir: config.dataDir,
    listenPeer: config.listenPeer,
    tickMs: config.tickMs,
    electionTicks: config.electionTicks,
    requestTimeoutMs: config.requestTimeoutMs,
    snapshotPolicy: { entriesPerSnapshot: config.snapshotEntries },
    kvNoSync: config.kvNoSync,
    quotaBackendBytes: config.quotaBackendBytes,
    // Published to the cluster (etcd MemberList clientURLs, /v1/members).
    clientUrls: {
      http: urlOf(config.listenClient),
      ...(config.listenGrpc === undefined ? {} : { grpc: urlOf(config.listenGrpc) }),
    },
    logger,
    onFatal: (error) => {
      logger.error('stopping after a fatal error', { err: error });
      process.exit(1);
    },
  });
  const http = new HttpApi({ node, host: config.listenClient.host, port: config.listenClient.port, logger });
  const grpc =
    config.listenGrpc === undefined
      ? undefined
      : new EtcdGrpcServer({ node, host: config.listenGrpc.host, port: config.listenGrpc.port, logger });
  try {
    await http.start();
    await grpc?.start();
  } catch (error) {
    await http.stop().catch(() => {});
    await node.stop();
    throw error;
  }
  const clientUrl = `http://${config.listenClient.host}:${config.listenClient.port}`;
  const grpcAddress =
    config.listenGrpc === undefined ? undefined : `${config.listenGrpc.host}:${config.listenGrpc.port}`;
  const peerAddress = `${config.listenPeer.host}:${config.listenPeer.port}`;
  // The node's ids: a member that joined a running cluster learned them (see src/node/join.ts).
  const clusterId = `0x${node.options.clusterId.toString(16)}`;
  logger.info(
    `serving clients on ${clientUrl}` +
      (grpcAddress === undefined ? '' : ` and etcd v3 gRPC on ${grpcAddress}`) +
      `, peers on ${peerAddress}, cluster ${clusterId}`,
    {
      id: node.options.id,
      clientUrl,
      ...(grpcAddress === undefined ? {} : { grpc: grpcAddress }),
      peer: peerAddress,
      clusterId,
    },
  );
  const stop = async (): Promise<void> => {
    await grpc?.stop();
    await http.stop();
    await node.stop();
  };
  return { node, http, ...(grpc === undefined ? {} : { grpc }), stop };
}

/** Exits with code 2 for flag errors commander itself finds (unknown or missing options). */
function exitOnUsageError(error: CommanderError): never {
  process.exit(error.exitCode === 0 ? 0 : 2);
}

/** Parses `--cluster-id` (hex with `0x`, or decimal). */
function parseClusterId(text: string): number {
  const value = /^0x[0-9a-f]{1,8}$/i.test(text) ? Number.parseInt(text.slice(2), 16) : Number(text);
  if (
    !/^(0x[0-9a-f]{1,8}|\d{1,10})$/i.test(text) ||
    !Number.isInteger(value) ||
    value < 0 ||
    value >= 2 ** 32
  ) {
    throw new UsageError(`--cluster-id must be a 32-bit id (0x... or decimal), got '${text}'`);
  }
  return value;
}

/** Registers the `serve` command. */
export function registerServeCommand(program: Command): void {
  program
    .command('serve')
    .description('run one node of a cluster')
    .option('--name <name>', "this member's name (must appear in --initial-cluster)")
    .option('--data-dir <dir>', 'where the write-ahead log, snapshots and the KV store live')
    .option('--listen-peer <host:port>', 'address for raft traffic from peers')
    .option('--listen-client <host:port>', 'address of the HTTP/JSON API')
    .option('--listen-grpc <host:port>', 'address of the etcd v3 gRPC API (etcdctl, etcd clients)')
    .option('--initial-cluster <list>', 'every initial member: name=host:port,...')
    .option('--initial-cluster-state <state>', 'new (bootstrap) or existing (join)', 'new')
    .option(
      '--cluster-id <id>',
      'the cluster id (default: derived from --initial-cluster; a member joining with existing learns it from the cluster)',
    )
    .option('--tick-ms <ms>', 'milliseconds per raft tick', '100')
    .option('--election-ticks <n>', 'ticks without a leader before an election', '10')
    .option('--request-timeout-ms <ms>', 'how long a request may wait, including for a leader', '5000')
    .option('--snapshot-entries <n>', 'snapshot after this many applied entries', '100000')
    .option('--kv-no-sync', 'never fsync the KV store (tests and benchmarks only)')
    .option(
      '--quota-backend-bytes <bytes>',
      "raise the NOSPACE alarm and refuse writes when the KV store's size in use would exceed this (0: 2 GiB)",
      '0',
    )
    .option('--log-level <level>', `least severe level logged: ${LOG_LEVELS.join(', ')}`, 'info')
    .exitOverride(exitOnUsageError)
    .action(async (flags: ServeFlags) => {
      let config: ServeConfig;
      try {
        config = parseServeFlags(flags);
      } catch (error) {
        if (!(error instanceof UsageError)) throw error;
        console.error(`error: ${error.message}`);
        process.exit(2);
      }
      let stop: () => Promise<void>;
      try {
        ({ stop } = await runServe(config));
      } catch (error) {
        console.error(`error: ${error instanceof Error ? error.message : String(error)}`);
        process.exit(isNodeError(error, 'INVALID_CONFIG') ? 2 : 1);
      }
      let stopping = false;
      const shutdown = (): void => {
        if (stopping) return;
        stopping = true;
        void stop().then(() => process.exit(0));
      };
      process.on('SIGINT', shutdown);
      process.on('SIGTERM', shutdown);
    });
}
