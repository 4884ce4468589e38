/**
 * The workloads of `flotilla bench`, with the semantics of etcd's `benchmark` tool:
 *
 * - `put`, `txn-put`, `range`, `mixed`: `total` requests issued by `clients` closed-loop clients (each
 *   sends its next request when its previous one is answered) over `conns` connections,
 *   optionally limited to `rate` requests a second in all.
 * - `watch-latency`: see watch-latency.ts.
 */
import { randomBytes } from 'node:crypto';
import { type Connection, describeError, etcdMethod, withConnections } from './connections.js';
import type { ConnectionOptions, MixedOptions, PutOptions, RangeOptions, TxnPutOptions } from './options.js';
import { benchKey, RateLimiter, startProgress } from './pacing.js';
import { LatencyRecorder, type Summary } from './report.js';

/** Whether to draw a progress bar, and where a run reports what it is doing. */
export interface RunContext {
  readonly progress: boolean;
}

interface ClosedLoop {
  readonly total: number;
  readonly clients: number;
  readonly connections: readonly Connection[];
  readonly limiter: RateLimiter | undefined;
  readonly progress: boolean;
  /** Sends request number `index` on `connection`; rejects if it failed. */
  request(index: number, connection: Connection): Promise<unknown>;
}

/** Runs `total` requests from `clients` closed loops; client `c` uses connection `c % conns`. */
export async function runClosedLoop(spec: ClosedLoop): Promise<Summary> {
  const recorder = new LatencyRecorder();
  let next = 0;
  let done = 0;
  const progress = startProgress(spec.total, spec.progress, () => done);
  const start = performance.now();
  const loop = async (client: number): Promise<void> => {
    const connection = spec.connections[client % spec.connections.length]!;
    for (;;) {
      const index = next++;
      if (index >= spec.total) return;
      const due = spec.limiter?.take();
      if (due !== undefined) await due;
      const sent = performance.now();
      try {
        await spec.request(index, connection);
        recorder.record(performance.now() - sent);
      } catch (error) {
        recorder.recordError(describeError(error));
      }
      done++;
    }
  };
  await Promise.all(Array.from({ length: Math.min(spec.clients, spec.total) }, (_, c) => loop(c)));
  const durationMs = performance.now() - start;
  progress.stop();
  return recorder.summarize(durationMs);
}

/** Options of every closed-loop workload: connections, clients, total and rate. */
type LoopOptions = ConnectionOptions & {
  readonly conns: number;
  readonly clients: number;
  readonly total: number;
  readonly rate: number;
};

/** Opens `conns` connections and runs `total` requests of `request` over them in closed loops. */
function runWorkload(
  options: LoopOptions,
  context: RunContext,
  request: ClosedLoop['request'],
): Promise<Summary> {
  return withConnections(options, options.conns, (connections) =>
    runClosedLoop({
      total: options.total,
      clients: options.clients,
      connections,
      limiter: limiterOf(options.rate),
      progress: context.progress,
      request,
    }),
  );
}

function limiterOf(rate: number): RateLimiter | undefined {
  return rate > 0 ? new RateLimiter(rate, 1) : undefined;
}

function keyIndex(options: PutOptions, index: number): number {
  return options.sequentialKeys
    ? index % options.keySpaceSize
    : Math.floor(Math.random() * options.keySpaceSize);
}

/** `put`: puts of `valSize` random bytes to keys out of `keySpaceSize` (random, or sequential). */
export function benchPut(options: PutOptions, context: RunContext): Promise<Summary> {
  const put = etcdMethod('KV', 'Put');
  const value = randomBytes(options.valSize);
  return runWorkload(options, context, (index, connection) => {
    const key = benchKey(keyIndex(options, index), options.keySize);
    return connection.unary(put.path, put.serialize({ key, value }), options.requestTimeoutMs);
  });
}

/** `txn-put`: transactions of `txnOps` puts each, keys sequential modulo `keySpaceSize`. */
export function benchTxnPut(options: TxnPutOptions, context: RunContext): Promise<Summary> {
  const txn = etcdMethod('KV', 'Txn');
  const value = randomBytes(options.valSize);
  return runWorkload(options, context, (index, connection) => {
    const success = [];
    for (let j = 0; j < options.txnOps; j++) {
      const key = benchKey((index * options.txnOps + j) % options.keySpaceSize, options.keySize);
      success.push({ request_put: { key, value } });
    }
    return connection.unary(txn.path, txn.serialize({ success }), options.requestTimeoutMs);
  });
}

/** `range`: the same range request `total` times, linearizable (`l`) or serializable (`s`). */
export function benchRange(options: RangeOptions, context: RunContext): Promise<Summary> {
  const range = etcdMethod('KV', 'Range');
  // No range_end at all for one key: an empty one on the wire makes etcd 3.4 range from the key to the end.
  const request = range.serialize({
    key: Buffer.from(options.key),
    ...(options.end === '' ? {} : { range_end: Buffer.from(options.end) }),
    serializable: options.consistency === 's',
  });
  return runWorkload(options, context, (_index, connection) =>
    connection.unary(range.path, request, options.requestTimeoutMs),
  );
}

/**
 * `mixed`: each request is, at random, a linearizable range of `key` (`readPercent` percent
 * of them) or a put as `put` makes it. One latency distribution covers both kinds.
 */
export function benchMixed(options: MixedOptions, context: RunContext): Promise<Summary> {
  const put = etcdMethod('KV', 'Put');
  const range = etcdMethod('KV', 'Range');
  const value = randomBytes(options.valSize);
  const read = range.serialize({ key: Buffer.from(options.key) });
  return runWorkload(options, context, (index, connection) => {
    if (Math.random() * 100 < options.readPercent) {
      return connection.unary(range.path, read, options.requestTimeoutMs);
    }
    const key = benchKey(keyIndex(options, index), options.keySize);
    return connection.unary(put.path, put.serialize({ key, value }), options.requestTimeoutMs);
  });
}
