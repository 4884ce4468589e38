/**
 * The workloads of `flotilla bench`, with the semantics of etcd's `benchmark` tool:
 *
 * - `put`, `txn-put`, `range`: `total` requests issued by `clients` closed-loop clients (each
 *   sends its next request when its previous one is answered) over `conns` connections,
 *   optionally limited to `rate` requests a second in all.
 * - `watch-latency`: `streams` watch streams with `watchersPerStream` watchers each on one
 *   key; one more connection puts to that key `putTotal` times at `putRate` a second; each
 *   watch event's latency is from the end of its put to its arrival (0 if it arrived first).
 */
import { randomBytes } from 'node:crypto';
import {
  type BidiStream,
  type Connection,
  closeConnections,
  describeError,
  etcdMethod,
  openConnections,
} from './connections.js';
import type {
  ConnectionOptions,
  PutOptions,
  RangeOptions,
  TxnPutOptions,
  WatchLatencyOptions,
} from './options.js';
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

async function withConnections<T>(
  options: ConnectionOptions,
  count: number,
  body: (connections: Connection[]) => Promise<T>,
): Promise<T> {
  const connections = await openConnections(options.endpoints, count, options.dialTimeoutMs);
  try {
    return await body(connections);
  } finally {
    closeConnections(connections);
  }
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

/** What `watch-latency` measured: the puts and the watch events. */
export interface WatchLatencyResult {
  readonly put: Summary;
  readonly watch: Summary;
}

interface WatchResponse {
  readonly watch_id: string;
  readonly created: boolean;
  readonly canceled: boolean;
  readonly cancel_reason: string;
  readonly events: readonly unknown[];
}

/** `watch-latency` (etcd 3.5's): see the module comment. */
export function benchWatchLatency(
  options: WatchLatencyOptions,
  context: RunContext,
): Promise<WatchLatencyResult> {
  // Connections 0..conns-1 carry the watch streams; one more (the next endpoint) the puts.
  return withConnections(options, options.conns + 1, (connections) =>
    runWatchLatency(options, context, connections.slice(0, options.conns), connections[options.conns]!),
  );
}

async function runWatchLatency(
  options: WatchLatencyOptions,
  context: RunContext,
  connections: readonly Connection[],
  putConnection: Connection,
): Promise<WatchLatencyResult> {
  const key = randomBytes(options.keySize);
  const value = randomBytes(options.valSize);
  const watcherCount = options.streams * options.watchersPerStream;
  const eventTimes = Array.from({ length: watcherCount }, () => new Float64Array(options.putTotal));
  const eventCounts = new Int32Array(watcherCount);
  let received = 0;
  let lastEventAt = 0;
  let failure: Error | undefined;
  let created = 0;
  let finished = false;
  const watch = etcdMethod<WatchResponse>('Watch', 'Watch');
  const streams: BidiStream[] = [];

  for (let s = 0; s < options.streams; s++) {
    // etcd's tool: stream s on client s % clients, client c on connection c % conns.
    const connection = connections[(s % options.clients) % connections.length]!;
    const pending: number[] = [];
    const watcherOf = new Map<string, number>();
    const onResponse = (message: Buffer): void => {
      const now = performance.now();
      const response = watch.deserialize(message);
      if (response.created) {
        const watcher = pending.shift();
        if (watcher !== undefined) watcherOf.set(response.watch_id, watcher);
        created++;
      }
      if (response.canceled) {
        failure ??= new Error(`watch ${response.watch_id} canceled: ${response.cancel_reason}`);
      }
      const watcher = watcherOf.get(response.watch_id);
      if (watcher === undefined) return;
      const times = eventTimes[watcher]!;
      for (let e = 0; e < response.events.length; e++) {
        const count = eventCounts[watcher]!;
        if (count >= options.putTotal) break;
        times[count] = now;
        eventCounts[watcher] = count + 1;
        received++;
        lastEventAt = now;
      }
    };
    const stream = connection.bidi(watch.path, onResponse, (error) => {
      if (!finished) failure ??= new Error(`watch stream ended: ${describeError(error ?? 'by the server')}`);
    });
    streams.push(stream);
    for (let w = 0; w < options.watchersPerStream; w++) {
      pending.push(s * options.watchersPerStream + w);
      stream.write(watch.serialize({ create_request: { key, prev_kv: options.prevKv } }));
    }
  }

  try {
    const createDeadline = performance.now() + options.dialTimeoutMs + options.requestTimeoutMs;
    while (created < watcherCount) {
      if (failure !== undefined) throw failure;
      if (performance.now() > createDeadline) {
        throw new Error(`only ${created} of ${watcherCount} watchers were created`);
      }
      await sleep(5);
    }

    const put = etcdMethod('KV', 'Put');
    const putMessage = put.serialize({ key, value });
    const putRecorder = new LatencyRecorder();
    const putEnds = new Float64Array(options.putTotal);
    const limiter = new RateLimiter(options.putRate, options.putRate);
    const progress = startProgress(options.putTotal * watcherCount, context.progress, () => received);
    const start = performance.now();
    try {
      for (let i = 0; i < options.putTotal; i++) {
        const due = limiter.take();
        if (due !== undefined) await due;
        const sent = performance.now();
        try {
          await putConnection.unary(put.path, putMessage, options.requestTimeoutMs);
        } catch (error) {
          // As etcd's tool does: a lost put would misalign every later event with its put.
          throw new Error(`put for the watch latency benchmark failed: ${describeError(error)}`);
        }
        const end = performance.now();
        putRecorder.record(end - sent);
        putEnds[i] = end;
        if (failure !== undefined) throw failure;
      }
      const putDurationMs = performance.now() - start;
      // Wait for the events still on their way, as long as they keep coming.
      lastEventAt = Math.max(lastEventAt, performance.now());
      while (received < options.putTotal * watcherCount && failure === undefined) {
        if (performance.now() - lastEventAt > options.eventTimeoutMs) break;
        await sleep(5);
      }
      if (failure !== undefined) throw failure;

      const watchRecorder = new LatencyRecorder();
      let lastArrival = start;
      for (let w = 0; w < watcherCount; w++) {
        const times = eventTimes[w]!;
        const count = eventCounts[w]!;
        for (let j = 0; j < count; j++) {
          const arrival = times[j]!;
          watchRecorder.record(Math.max(0, arrival - putEnds[j]!));
          if (arrival > lastArrival) lastArrival = arrival;
        }
        for (let j = count; j < options.putTotal; j++) {
          watchRecorder.recordError(
            `watch event not received within ${options.eventTimeoutMs} ms of the last one`,
          );
        }
      }
      return {
        put: putRecorder.summarize(putDurationMs),
        watch: watchRecorder.summarize(lastArrival - start),
      };
    } finally {
      progress.stop();
    }
  } finally {
    finished = true;
    for (const stream of streams) stream.cancel();
  }
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
