/**
 * Flags of `flotilla bench`, validated: every bad value is a {@link BenchUsageError} naming
 * the flag (the command prints it and exits with code 2).
 *
 * The flags and their defaults are those of etcd's `benchmark` tool, so that the same
 * command line measures the same thing with either tool.
 */

/** A bad flag or argument. */
export class BenchUsageError extends Error {
  override readonly name = 'BenchUsageError';
}

/** Flags every subcommand takes. */
export interface ConnectionOptions {
  /** `host:port` of every endpoint; connection `i` dials `endpoints[i % length]`. */
  readonly endpoints: readonly string[];
  /** gRPC connections (each its own HTTP/2 connection). */
  readonly conns: number;
  /** Concurrent closed-loop clients, spread over the connections round-robin. */
  readonly clients: number;
  /** How long to wait for every connection to be ready, ms. */
  readonly dialTimeoutMs: number;
  /** Deadline of each request, ms. */
  readonly requestTimeoutMs: number;
}

/** Flags of `put` and `txn-put`. */
export interface PutOptions extends ConnectionOptions {
  readonly total: number;
  readonly keySize: number;
  readonly valSize: number;
  readonly keySpaceSize: number;
  readonly sequentialKeys: boolean;
  /** Most requests per second in all (0: no limit). */
  readonly rate: number;
}

/** Flags of `txn-put`. */
export interface TxnPutOptions extends PutOptions {
  readonly txnOps: number;
}

/** Flags and argument of `mixed`: puts as `put` makes them, and linearizable reads of `key`. */
export interface MixedOptions extends PutOptions {
  /** The key the reads read. */
  readonly key: string;
  /** Percent of requests that are reads, in [0, 100]. */
  readonly readPercent: number;
}

/** Flags and arguments of `range`. */
export interface RangeOptions extends ConnectionOptions {
  readonly key: string;
  /** The range's end ('' for one key). */
  readonly end: string;
  readonly total: number;
  readonly rate: number;
  readonly consistency: 'l' | 's';
}

/** Flags of `watch-latency`. */
export interface WatchLatencyOptions extends ConnectionOptions {
  readonly putTotal: number;
  readonly putRate: number;
  readonly keySize: number;
  readonly valSize: number;
  readonly streams: number;
  readonly watchersPerStream: number;
  readonly prevKv: boolean;
  /** How long to wait for missing watch events after the last put, ms. */
  readonly eventTimeoutMs: number;
}

/** Defaults (etcd's benchmark tool's). */
export const DEFAULTS = {
  endpoints: '127.0.0.1:2379',
  conns: 1,
  clients: 1,
  total: 10_000,
  keySize: 8,
  valSize: 8,
  keySpaceSize: 1,
  rate: 0,
  txnOps: 1,
  readPercent: 90,
  consistency: 'l',
  watchPutTotal: 1000,
  watchPutRate: 100,
  watchKeySize: 32,
  watchValSize: 32,
  streams: 10,
  watchersPerStream: 10,
  dialTimeoutMs: 5000,
  requestTimeoutMs: 30_000,
} as const;

/** Most connections and clients accepted (each client is a loop; each connection a socket). */
const MAX_CONNS = 10_000;
const MAX_CLIENTS = 100_000;
/** Largest key or value accepted: etcd's default request size limit is 1.5 MiB. */
const MAX_BYTES = 16 * 1024 * 1024;

/**
 * An integer flag: `text` undefined gives `fallback`; otherwise it must be decimal digits
 * with a value in [min, max].
 */
export function intFlag(
  flag: string,
  text: string | undefined,
  fallback: number,
  min: number,
  max: number,
): number {
  if (text === undefined) return fallback;
  const value = Number(text);
  if (!/^\d+$/.test(text.trim()) || !Number.isSafeInteger(value) || value < min || value > max) {
    throw new BenchUsageError(`${flag} must be an integer in [${min}, ${max}], got '${text}'`);
  }
  return value;
}

/** A duration flag in milliseconds: an integer, or with a unit `ms`, `s` or `m` (`500ms`, `2s`). */
export function durationFlag(flag: string, text: string | undefined, fallbackMs: number): number {
  if (text === undefined) return fallbackMs;
  const match = /^(\d+(?:\.\d+)?)(ms|s|m)?$/.exec(text.trim());
  const scale = match?.[2] === 's' ? 1000 : match?.[2] === 'm' ? 60_000 : 1;
  const ms = match === null ? Number.NaN : Number(match[1]) * scale;
  if (!Number.isFinite(ms) || ms <= 0 || ms > 24 * 3600_000) {
    throw new BenchUsageError(`${flag} must be a positive duration such as 500ms, 5s or 1m, got '${text}'`);
  }
  return Math.round(ms);
}

/**
 * `--endpoints`: comma-separated `host:port` (an `http://` prefix is accepted and dropped;
 * TLS is not supported).
 */
export function parseEndpoints(text: string | undefined): string[] {
  const list = (text ?? DEFAULTS.endpoints)
    .split(',')
    .map((e) => e.trim())
    .filter((e) => e !== '');
  if (list.length === 0)
    throw new BenchUsageError(`--endpoints must list at least one host:port, got '${text}'`);
  return list.map((endpoint) => {
    if (/^https:\/\//i.test(endpoint)) {
      throw new BenchUsageError(`--endpoints: TLS is not supported, got '${endpoint}'`);
    }
    const bare = endpoint.replace(/^http:\/\//i, '').replace(/\/$/, '');
    const match = /^(\[[0-9a-fA-F:.]+\]|[A-Za-z0-9.-]+):(\d+)$/.exec(bare);
    const port = Number(match?.[2]);
    if (match === null || !Number.isInteger(port) || port < 1 || port > 65_535) {
      throw new BenchUsageError(`--endpoints: expected host:port, got '${endpoint}'`);
    }
    return bare;
  });
}

/** The raw (string) flags commander collects for `bench` and its subcommands. */
export interface RawFlags {
  endpoints?: string;
  conns?: string;
  clients?: string;
  total?: string;
  keySize?: string;
  valSize?: string;
  keySpaceSize?: string;
  sequentialKeys?: boolean;
  rate?: string;
  dialTimeout?: string;
  requestTimeout?: string;
  consistency?: string;
  txnOps?: string;
  readPercent?: string;
  putTotal?: string;
  putRate?: string;
  streams?: string;
  watchersPerStream?: string;
  prevkv?: boolean;
  eventTimeout?: string;
  json?: boolean;
  progress?: boolean;
  precise?: boolean;
}

/** Refuses flags that mean nothing to `subcommand` (so a typo'd workload is not silently ignored). */
function refuse(raw: RawFlags, subcommand: string, flags: readonly (keyof RawFlags)[]): void {
  for (const flag of flags) {
    if (raw[flag] !== undefined) {
      const name = flag.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`);
      throw new BenchUsageError(`--${name} does not apply to '${subcommand}'`);
    }
  }
}

export function parseConnectionOptions(raw: RawFlags): ConnectionOptions {
  return {
    endpoints: parseEndpoints(raw.endpoints),
    conns: intFlag('--conns', raw.conns, DEFAULTS.conns, 1, MAX_CONNS),
    clients: intFlag('--clients', raw.clients, DEFAULTS.clients, 1, MAX_CLIENTS),
    dialTimeoutMs: durationFlag('--dial-timeout', raw.dialTimeout, DEFAULTS.dialTimeoutMs),
    requestTimeoutMs: durationFlag('--request-timeout', raw.requestTimeout, DEFAULTS.requestTimeoutMs),
  };
}

/** Bytes of etcd's key for index `n`: `binary.PutVarint` (zigzag, then 7 bits a byte). */
export function varintLength(n: number): number {
  let value = n * 2; // zigzag of a non-negative number
  let bytes = 1;
  while (value >= 128) {
    value = Math.floor(value / 128);
    bytes++;
  }
  return bytes;
}

export function parsePutOptions(raw: RawFlags, subcommand = 'put'): PutOptions {
  refuse(raw, subcommand, ['consistency', 'putTotal', 'putRate', 'streams', 'watchersPerStream', 'prevkv']);
  refuse(raw, subcommand, ['eventTimeout']);
  refuse(raw, subcommand, subcommand === 'txn-put' ? ['sequentialKeys'] : ['txnOps']);
  if (subcommand !== 'mixed') refuse(raw, subcommand, ['readPercent']);
  const options: PutOptions = {
    ...parseConnectionOptions(raw),
    total: intFlag('--total', raw.total, DEFAULTS.total, 1, Number.MAX_SAFE_INTEGER),
    keySize: intFlag('--key-size', raw.keySize, DEFAULTS.keySize, 1, MAX_BYTES),
    valSize: intFlag('--val-size', raw.valSize, DEFAULTS.valSize, 0, MAX_BYTES),
    keySpaceSize: intFlag('--key-space-size', raw.keySpaceSize, DEFAULTS.keySpaceSize, 1, 2 ** 48),
    // txn-put's keys are always sequential (etcd's tool has no flag for it).
    sequentialKeys: subcommand === 'txn-put' || raw.sequentialKeys === true,
    rate: intFlag('--rate', raw.rate, DEFAULTS.rate, 0, 1e9),
  };
  const needed = varintLength(options.keySpaceSize - 1);
  if (options.keySize < needed) {
    throw new BenchUsageError(
      `--key-size ${options.keySize} is too small for --key-space-size ${options.keySpaceSize} (keys need ${needed} bytes)`,
    );
  }
  return options;
}

export function parseTxnPutOptions(raw: RawFlags): TxnPutOptions {
  const options = {
    ...parsePutOptions(raw, 'txn-put'),
    txnOps: intFlag('--txn-ops', raw.txnOps, 1, 1, 10_000),
  };
  if (options.txnOps > options.keySpaceSize) {
    throw new BenchUsageError(
      `--txn-ops must be no larger than --key-space-size, got txn-ops ${options.txnOps} key-space-size ${options.keySpaceSize}`,
    );
  }
  return options;
}

export function parseMixedOptions(raw: RawFlags, key: string): MixedOptions {
  if (key === '') throw new BenchUsageError('mixed: the key must not be empty');
  return {
    ...parsePutOptions(raw, 'mixed'),
    key,
    readPercent: intFlag('--read-percent', raw.readPercent, DEFAULTS.readPercent, 0, 100),
  };
}

export function parseRangeOptions(raw: RawFlags, key: string, end: string | undefined): RangeOptions {
  refuse(raw, 'range', ['keySize', 'valSize', 'keySpaceSize', 'sequentialKeys', 'txnOps', 'readPercent']);
  refuse(raw, 'range', ['putTotal', 'putRate', 'streams', 'watchersPerStream', 'prevkv', 'eventTimeout']);
  const consistency = raw.consistency ?? DEFAULTS.consistency;
  if (consistency !== 'l' && consistency !== 's') {
    throw new BenchUsageError(
      `--consistency must be l (linearizable) or s (serializable), got '${raw.consistency}'`,
    );
  }
  if (key === '') throw new BenchUsageError('range: the key must not be empty');
  return {
    ...parseConnectionOptions(raw),
    key,
    end: end ?? '',
    total: intFlag('--total', raw.total, DEFAULTS.total, 1, Number.MAX_SAFE_INTEGER),
    rate: intFlag('--rate', raw.rate, DEFAULTS.rate, 0, 1e9),
    consistency,
  };
}

export function parseWatchLatencyOptions(raw: RawFlags): WatchLatencyOptions {
  refuse(raw, 'watch-latency', ['keySpaceSize', 'sequentialKeys', 'rate', 'consistency', 'txnOps']);
  refuse(raw, 'watch-latency', ['readPercent']);
  if (raw.total !== undefined && raw.putTotal !== undefined) {
    throw new BenchUsageError('watch-latency: give --put-total (or the older --total), not both');
  }
  return {
    ...parseConnectionOptions(raw),
    // etcd 3.4's watch-latency called it --total; later versions --put-total.
    putTotal: intFlag(
      raw.putTotal === undefined && raw.total !== undefined ? '--total' : '--put-total',
      raw.putTotal ?? raw.total,
      DEFAULTS.watchPutTotal,
      1,
      Number.MAX_SAFE_INTEGER,
    ),
    putRate: intFlag('--put-rate', raw.putRate, DEFAULTS.watchPutRate, 1, 1e9),
    keySize: intFlag('--key-size', raw.keySize, DEFAULTS.watchKeySize, 1, MAX_BYTES),
    valSize: intFlag('--val-size', raw.valSize, DEFAULTS.watchValSize, 0, MAX_BYTES),
    streams: intFlag('--streams', raw.streams, DEFAULTS.streams, 1, MAX_CONNS),
    watchersPerStream: intFlag(
      '--watchers-per-stream',
      raw.watchersPerStream,
      DEFAULTS.watchersPerStream,
      1,
      10_000,
    ),
    prevKv: raw.prevkv === true,
    eventTimeoutMs: durationFlag('--event-timeout', raw.eventTimeout, 10_000),
  };
}
