/**
 * The `watch-latency` workload of `flotilla bench` (etcd 3.5's): `streams` watch streams
 * with `watchersPerStream` watchers each on one key; one more connection puts to that key
 * `putTotal` times at `putRate` a second; each watch event's latency is from the end of its
 * put to its arrival (0 if it arrived first).
 */
import { randomBytes } from 'node:crypto';
import {
  type BidiStream,
  type Connection,
  describeError,
  etcdMethod,
  withConnections,
} from './connections.js';
import type { WatchLatencyOptions } from './options.js';
import { RateLimiter, startProgress } from './pacing.js';
import { LatencyRecorder, type Summary } from './report.js';
import type { RunContext } from './workloads.js';

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
  const watchers = new Watchers(options, connections, key);
  try {
    await watchers.allCreated(options.dialTimeoutMs + options.requestTimeoutMs);
    const puts = new Puts(options, putConnection, key, value);
    const progress = startProgress(
      options.putTotal * watchers.count,
      context.progress,
      () => watchers.received,
    );
    const start = performance.now();
    try {
      await puts.run(watchers);
      const putDurationMs = performance.now() - start;
      await watchers.remainingEvents();
      return {
        put: puts.recorder.summarize(putDurationMs),
        watch: watchers.summarize(puts.ends, start),
      };
    } finally {
      progress.stop();
    }
  } finally {
    watchers.close();
  }
}

/**
 * The watchers of a run and the arrival times of their events. Watcher `w` is on stream
 * `w / watchersPerStream`; stream `s` on client `s % clients`, client `c` on connection
 * `c % conns`, as etcd's tool places them.
 */
class Watchers {
  /** How many watchers there are in all. */
  readonly count: number;
  /** Events received, all watchers together. */
  received = 0;
  /** Why the run must stop: a watch canceled or a stream ended early. */
  failure: Error | undefined;
  /** Arrival times (performance.now()) of each watcher's events, and how many arrived. */
  private readonly eventTimes: Float64Array[];
  private readonly eventCounts: Int32Array;
  private lastEventAt = 0;
  private created = 0;
  private finished = false;
  private readonly watch = etcdMethod<WatchResponse>('Watch', 'Watch');
  private readonly streams: BidiStream[] = [];

  /** Opens the watch streams on `connections` and asks for every watcher on `key`. */
  constructor(
    private readonly options: WatchLatencyOptions,
    connections: readonly Connection[],
    key: Buffer,
  ) {
    this.count = options.streams * options.watchersPerStream;
    this.eventTimes = Array.from({ length: this.count }, () => new Float64Array(options.putTotal));
    this.eventCounts = new Int32Array(this.count);
    for (let s = 0; s < options.streams; s++) {
      // etcd's tool: stream s on client s % clients, client c on connection c % conns.
      const connection = connections[(s % options.clients) % connections.length]!;
      this.streams.push(this.openStream(s, connection, key));
    }
  }

  /** Opens stream `s` and creates its watchers; events go to the watchers in order of creation. */
  private openStream(s: number, connection: Connection, key: Buffer): BidiStream {
    const pending: number[] = [];
    const watcherOf = new Map<string, number>();
    const onResponse = (message: Buffer): void => {
      const now = performance.now();
      const response = this.watch.deserialize(message);
      if (response.created) {
        const watcher = pending.shift();
        if (watcher !== undefined) watcherOf.set(response.watch_id, watcher);
        this.created++;
      }
      if (response.canceled) {
        this.failure ??= new Error(`watch ${response.watch_id} canceled: ${response.cancel_reason}`);
      }
      const watcher = watcherOf.get(response.watch_id);
      if (watcher !== undefined) this.arrived(watcher, response.events.length, now);
    };
    const stream = connection.bidi(this.watch.path, onResponse, (error) => {
      if (!this.finished)
        this.failure ??= new Error(`watch stream ended: ${describeError(error ?? 'by the server')}`);
    });
    for (let w = 0; w < this.options.watchersPerStream; w++) {
      pending.push(s * this.options.watchersPerStream + w);
      stream.write(this.watch.serialize({ create_request: { key, prev_kv: this.options.prevKv } }));
    }
    return stream;
  }

  /** `events` events for `watcher` arrived at `now` (those beyond one a put are not counted). */
  private arrived(watcher: number, events: number, now: number): void {
    const times = this.eventTimes[watcher]!;
    for (let e = 0; e < events; e++) {
      const count = this.eventCounts[watcher]!;
      if (count >= this.options.putTotal) break;
      times[count] = now;
      this.eventCounts[watcher] = count + 1;
      this.received++;
      this.lastEventAt = now;
    }
  }

  /** Resolves once every watcher is created; rejects on a failure or after `timeoutMs`. */
  async allCreated(timeoutMs: number): Promise<void> {
    const createDeadline = performance.now() + timeoutMs;
    while (this.created < this.count) {
      if (this.failure !== undefined) throw this.failure;
      if (performance.now() > createDeadline) {
        throw new Error(`only ${this.created} of ${this.count} watchers were created`);
      }
      await sleep(5);
    }
  }

  /** After the last put: waits for the events still on their way, as long as they keep coming. */
  async remainingEvents(): Promise<void> {
    this.lastEventAt = Math.max(this.lastEventAt, performance.now());
    while (this.received < this.options.putTotal * this.count && this.failure === undefined) {
      if (performance.now() - this.lastEventAt > this.options.eventTimeoutMs) break;
      await sleep(5);
    }
    if (this.failure !== undefined) throw this.failure;
  }

  /** The watch events' latencies from the ends of their puts (`putEnds`), over the run since `start`. */
  summarize(putEnds: Float64Array, start: number): Summary {
    const watchRecorder = new LatencyRecorder();
    let lastArrival = start;
    for (let w = 0; w < this.count; w++) {
      const times = this.eventTimes[w]!;
      const count = this.eventCounts[w]!;
      for (let j = 0; j < count; j++) {
        const arrival = times[j]!;
        watchRecorder.record(Math.max(0, arrival - putEnds[j]!));
        if (arrival > lastArrival) lastArrival = arrival;
      }
      for (let j = count; j < this.options.putTotal; j++) {
        watchRecorder.recordError(
          `watch event not received within ${this.options.eventTimeoutMs} ms of the last one`,
        );
      }
    }
    return watchRecorder.summarize(lastArrival - start);
  }

  /** Ends the run: the streams are reset, and their ends are no longer failures. */
  close(): void {
    this.finished = true;
    for (const stream of this.streams) stream.cancel();
  }
}

/** The puts of a run, one at a time at `putRate` a second: their latencies and when each ended. */
class Puts {
  readonly recorder = new LatencyRecorder();
  /** When put `i` was answered (performance.now()). */
  readonly ends: Float64Array;
  private readonly put = etcdMethod('KV', 'Put');
  private readonly message: Buffer;
  private readonly limiter: RateLimiter;

  constructor(
    private readonly options: WatchLatencyOptions,
    private readonly connection: Connection,
    key: Buffer,
    value: Buffer,
  ) {
    this.message = this.put.serialize({ key, value });
    this.ends = new Float64Array(options.putTotal);
    this.limiter = new RateLimiter(options.putRate, options.putRate);
  }

  /** Sends the puts; stops with the `watchers`' failure as soon as there is one. */
  async run(watchers: { readonly failure: Error | undefined }): Promise<void> {
    for (let i = 0; i < this.options.putTotal; i++) {
      const due = this.limiter.take();
      if (due !== undefined) await due;
      const sent = performance.now();
      try {
        await this.connection.unary(this.put.path, this.message, this.options.requestTimeoutMs);
      } catch (error) {
        // As etcd's tool does: a lost put would misalign every later event with its put.
        throw new Error(`put for the watch latency benchmark failed: ${describeError(error)}`);
      }
      const end = performance.now();
      this.recorder.record(end - sent);
      this.ends[i] = end;
      if (watchers.failure !== undefined) throw watchers.failure;
    }
  }
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
