/**
 * etcd's `Watch` service: one bidirectional stream carries any number of watches, answered
 * as etcd 3.4's v3rpc/watch.go answers them.
 *
 * - `create_request`: an empty key means `\0`, `range_end` `\0` means every key from `key`.
 *   `watch_id` 0 lets the server pick (the lowest free id from 0 up, like etcd's
 *   `AutoWatchID`); a taken id or a range with `key >= range_end` gets a response that is
 *   both `created` and `canceled`, with id -1 and etcd's `cancel_reason`. Otherwise a
 *   `created` response (header revision: the current one) precedes every event of the watch.
 * - A watch whose `start_revision` is (or falls behind) the compacted revision gets a
 *   response with `canceled`, `compact_revision` and `cancel_reason` set, after its
 *   `created` response, and sends nothing more.
 * - Events come from this member's applied state (watch-hub.ts): every event of the range,
 *   in revision order, exactly once. Ready revisions are merged into one response up to
 *   {@link MERGE_BYTES_MAX}; a response's header revision is its last event's revision.
 *   With `fragment`, a response larger than the request size limit is split like etcd's
 *   `sendFragments`.
 * - `cancel_request` of a known id answers `canceled`; an unknown id gets no answer.
 * - `progress_request` answers with watch id -1 and the current revision once every watch
 *   of the stream has sent everything up to it (etcd 3.4 could answer ahead of pending
 *   events). `progress_notify` watches that sent no events during an interval get a
 *   progress notification (their id, no events) if they are in sync.
 * - The stream stays open after the client half-closes (as in etcd); when it ends, every
 *   watcher is canceled.
 */
import { Buffer } from 'node:buffer';
import { FRAME_ROOM, type ServiceImplementation, type StreamingCall } from '../grpc/index.js';
import { isKvError, type WatchBatch, type WatchEvent, type Watcher } from '../kv/index.js';
import { drained } from '../server/drained.js';
import { encodeFramedWatchResponse, encodeWatchEvents, type WatchReply, watchEventBytes } from './codec.js';
import type { EtcdContext, WireHeader } from './context.js';
import { ETCD_ERRORS, etcdError, toGrpcError } from './errors.js';
import { type Int64, int64 } from './wire.js';

/** Ready revisions of one watch merged into one response up to about this many bytes. */
export const MERGE_BYTES_MAX = 256 * 1024;

/** etcd `WatchCreateRequest` as decoded. */
interface WatchCreateRequestWire {
  readonly key?: Uint8Array | null;
  readonly range_end?: Uint8Array | null;
  readonly start_revision?: Int64;
  readonly progress_notify?: boolean;
  readonly filters?: readonly (string | number)[] | null;
  readonly prev_kv?: boolean;
  readonly watch_id?: Int64;
  readonly fragment?: boolean;
}

/** etcd `WatchRequest` as decoded (one member of `request_union` set). */
interface WatchRequestWire {
  readonly create_request?: WatchCreateRequestWire | null;
  readonly cancel_request?: { readonly watch_id?: Int64 } | null;
  readonly progress_request?: object | null;
}

type WatchCall = StreamingCall<WatchRequestWire, WatchReply>;

/** The `Watch` service of one node. */
export function watchService(ctx: EtcdContext): ServiceImplementation {
  return {
    Watch: (call: WatchCall) => {
      new WatchStream(ctx, call);
    },
  };
}

const NO_PUT: ReadonlySet<unknown> = new Set(['Noput', 'NOPUT', 0]);
const NO_DELETE: ReadonlySet<unknown> = new Set(['Nodelete', 'NODELETE', 1]);
const ZERO_KEY = Buffer.from([0]);
const EMPTY = new Uint8Array(0);
const COMPACTED_REASON = ETCD_ERRORS.compacted[1];

/** One watch of a stream. */
interface Watch {
  readonly id: number;
  readonly progressNotify: boolean;
  readonly fragment: boolean;
  /** Canceled by the client, compacted or failed: nothing more is sent for it. */
  done: boolean;
  /** Waiting for the store with nothing pending: it has sent everything up to the current revision. */
  idle: boolean;
  /** Whether it sent events since the last progress tick. */
  sentEvents: boolean;
  readonly watcher: Watcher | undefined;
}

/** The server side of one `Watch` stream. */
class WatchStream {
  private readonly watches = new Map<number, Watch>();
  private nextId = 0;
  private closed = false;
  private progressTimer: NodeJS.Timeout | undefined;
  /** A `progress_request` is waiting for every watch to be idle. */
  private progressWanted = false;
  /** Watches that may have something to send, drained together in one microtask. */
  private readonly ready = new Set<Watch>();
  private drainScheduled = false;
  /** The client is behind: nothing more is sent until the stream drains. */
  private blocked = false;
  private readonly drainReady = (): void => this.sendReady();
  private readonly requestBytesMax: number;

  constructor(
    private readonly ctx: EtcdContext,
    private readonly call: WatchCall,
  ) {
    this.requestBytesMax = ctx.node.backend.options.requestBytesMax;
    call.on('data', (request: WatchRequestWire) => this.onRequest(request));
    call.on('cancelled', () => this.close());
    call.on('error', () => this.close());
    call.on('close', () => this.close());
  }

  private onRequest(request: WatchRequestWire): void {
    if (this.closed) return;
    try {
      if (request.create_request) this.create(request.create_request);
      else if (request.cancel_request) this.cancel(int64(request.cancel_request.watch_id));
      else if (request.progress_request) this.requestProgress();
    } catch (error) {
      this.fail(error);
    }
  }

  private create(request: WatchCreateRequestWire): void {
    const backend = this.ctx.node.backend;
    const key =
      request.key === undefined || request.key === null || request.key.length === 0 ? ZERO_KEY : request.key;
    const rangeEnd = request.range_end ?? EMPTY;
    const fromKey = rangeEnd.length === 1 && rangeEnd[0] === 0;
    const revision = backend.revision;
    if (rangeEnd.length > 0 && !fromKey && Buffer.compare(key, rangeEnd) >= 0) {
      this.refuse(revision, 'mvcc: watcher range is empty');
      return;
    }
    let id = int64(request.watch_id);
    if (id === 0) {
      while (this.watches.has(this.nextId)) this.nextId++;
      id = this.nextId++;
    } else if (this.watches.has(id)) {
      this.refuse(revision, 'mvcc: duplicate watch ID provided on the WatchStream');
      return;
    }
    const filters = request.filters ?? [];
    const start = int64(request.start_revision);
    let watcher: Watcher | undefined;
    let compactRevision = 0;
    try {
      watcher = backend.watch({
        key,
        rangeEnd,
        // etcd replays the whole history for a negative start revision.
        startRevision: start < 0 ? 1 : start,
        prevKv: request.prev_kv === true,
        noPut: filters.some((f) => NO_PUT.has(f)),
        noDelete: filters.some((f) => NO_DELETE.has(f)),
      });
    } catch (error) {
      if (!isKvError(error, 'COMPACTED')) throw error;
      compactRevision = error.compactRevision;
    }
    const watch: Watch = {
      id,
      progressNotify: request.progress_notify === true,
      fragment: request.fragment === true,
      done: false,
      idle: false,
      sentEvents: false,
      watcher,
    };
    this.watches.set(id, watch);
    this.send({ header: this.header(revision), watch_id: id, created: true });
    if (watcher === undefined) {
      this.compacted(watch, compactRevision);
      return;
    }
    if (watch.progressNotify) this.startProgressTimer();
    watcher.listen(() => this.markReady(watch));
    this.markReady(watch);
  }

  /** etcd's answer to a create it cannot serve: created and canceled at once, id -1. */
  private refuse(revision: number, reason: string): void {
    this.send({
      header: this.header(revision),
      watch_id: -1,
      created: true,
      canceled: true,
      cancel_reason: reason,
    });
  }

  private cancel(id: number): void {
    const watch = this.watches.get(id);
    if (watch === undefined) return;
    this.watches.delete(id);
    watch.done = true;
    watch.watcher?.cancel();
    this.send({ header: this.header(this.ctx.node.backend.revision), watch_id: id, canceled: true });
    if (this.progressWanted) this.maybeSendProgress();
  }

  private compacted(watch: Watch, compactRevision: number): void {
    watch.done = true;
    this.send({
      header: this.header(this.ctx.node.backend.revision),
      watch_id: watch.id,
      canceled: true,
      compact_revision: compactRevision,
      cancel_reason: COMPACTED_REASON,
    });
  }

  /**
   * Notes that a watch may have something to send (its watcher's listener: called from the
   * apply path, so it only takes note); one microtask sends for every such watch of the
   * stream, after the apply pass that published the events.
   */
  private markReady(watch: Watch): void {
    if (watch.done || this.closed) return;
    this.ready.add(watch);
    this.scheduleSend();
  }

  /** One microtask for every ready watch, unless one is scheduled or the client is behind. */
  private scheduleSend(): void {
    if (this.drainScheduled || this.blocked || this.closed) return;
    this.drainScheduled = true;
    queueMicrotask(this.drainReady);
  }

  /** Sends what every ready watch has, until the client is behind (then waits for a drain). */
  private sendReady(): void {
    this.drainScheduled = false;
    if (this.closed || this.blocked) return;
    // Every ready watch's responses go out together as one DATA payload (calls.ts `holdFramed`):
    // with many watchers on one stream, the client takes one chunk per write, not one per
    // watcher.
    this.call.holdFramed();
    try {
      for (const watch of this.ready) {
        if (!this.sendWatch(watch)) {
          this.waitForDrain();
          return;
        }
        this.ready.delete(watch);
      }
    } finally {
      this.call.releaseFramed();
    }
  }

  private waitForDrain(): void {
    this.blocked = true;
    void drained(this.call).then(() => {
      this.blocked = false;
      if (this.ready.size > 0) this.scheduleSend();
    });
  }

  /**
   * Sends a watch's batches while it has any, merging what is ready. False when the client
   * is behind with more to send; true when the watch has nothing more now (or ended).
   */
  private sendWatch(watch: Watch): boolean {
    const watcher = watch.watcher!;
    for (;;) {
      if (watch.done || this.closed) return true;
      let writable: boolean;
      try {
        const batch = watcher.poll();
        if (batch === undefined) {
          // Canceled without a cancel from this stream: the store closed under it.
          if (watcher.isCanceled) this.fail(etcdError('stopped'));
          else {
            watch.idle = true;
            if (this.progressWanted) this.maybeSendProgress();
          }
          return true;
        }
        watch.idle = false;
        writable = this.sendBatches(watch, watcher, batch);
      } catch (error) {
        if (watch.done || this.closed) return true;
        if (isKvError(error, 'COMPACTED')) this.compacted(watch, error.compactRevision);
        else this.fail(error);
        return true;
      }
      if (!writable) return false;
    }
  }

  /**
   * Sends `first` and whatever else is ready for the watch (up to {@link MERGE_BYTES_MAX})
   * as one response, or as fragments. Returns false when the stream wants a drain. A batch's
   * events are encoded once for every watch it went to (the hub shares batches).
   */
  private sendBatches(watch: Watch, watcher: Watcher, first: WatchBatch): boolean {
    const batches = [first];
    let bytes = encodedEvents(first).length;
    let count = first.events.length;
    let failure: unknown;
    while (bytes < MERGE_BYTES_MAX) {
      let batch: WatchBatch | undefined;
      try {
        batch = watcher.poll();
      } catch (error) {
        failure = error; // send what was taken first
        break;
      }
      if (batch === undefined) break;
      batches.push(batch);
      bytes += encodedEvents(batch).length;
      count += batch.events.length;
    }
    watch.sentEvents = true;
    const header = this.header(batches[batches.length - 1]!.revision);
    let writable: boolean;
    if (watch.fragment && bytes >= this.requestBytesMax && count > 1) {
      writable = this.sendFragments(
        watch.id,
        header,
        batches.flatMap((batch) => batch.events),
      );
    } else {
      const events =
        batches.length === 1 ? encodedEvents(first) : Buffer.concat(batches.map(encodedEvents), bytes);
      writable = this.call.sendFramed(
        encodeFramedWatchResponse({ header, watch_id: watch.id }, FRAME_ROOM, events),
      );
    }
    if (failure !== undefined) throw failure;
    return writable;
  }

  /** etcd's `sendFragments`: responses of at least one event each, below the request size limit. */
  private sendFragments(id: number, header: WireHeader, events: readonly WatchEvent[]): boolean {
    let writable = true;
    let index = 0;
    while (index < events.length) {
      const start = index;
      let bytes = 0;
      while (index < events.length) {
        const size = watchEventBytes(events[index]!);
        if (index > start && bytes + size >= this.requestBytesMax) break;
        bytes += size;
        index++;
      }
      const fragment = index < events.length;
      writable = this.send({ header, watch_id: id, fragment, events: events.slice(start, index) });
    }
    return writable;
  }

  private requestProgress(): void {
    this.progressWanted = true;
    this.maybeSendProgress();
  }

  /** Answers a pending `progress_request` once every watch is in sync. */
  private maybeSendProgress(): void {
    for (const watch of this.watches.values()) if (!watch.done && !watch.idle) return;
    this.progressWanted = false;
    this.send({ header: this.header(this.ctx.node.backend.revision), watch_id: -1 });
  }

  private startProgressTimer(): void {
    if (this.progressTimer !== undefined || this.closed) return;
    const interval = this.ctx.options.watchProgressIntervalMs;
    // etcd adds up to 10% jitter so that watchers created together do not all report at once.
    this.progressTimer = setInterval(
      () => this.progressTick(),
      interval + Math.floor(Math.random() * (interval / 10)),
    );
    this.progressTimer.unref();
  }

  /** Progress notifications for `progress_notify` watches that sent no events since the last tick. */
  private progressTick(): void {
    if (this.closed) return;
    const revision = this.ctx.node.backend.revision;
    for (const watch of this.watches.values()) {
      if (!watch.progressNotify || watch.done) continue;
      if (!watch.sentEvents && watch.idle) this.send({ header: this.header(revision), watch_id: watch.id });
      watch.sentEvents = false;
    }
  }

  private header(revision: number): WireHeader {
    return this.ctx.header(revision);
  }

  /** Writes a response; false when the stream wants a drain before more. */
  private send(response: WatchReply): boolean {
    if (this.closed) return true;
    return this.call.sendFramed(encodeFramedWatchResponse(response, FRAME_ROOM));
  }

  /** Ends the stream with the gRPC error `error` maps to. */
  private fail(error: unknown): void {
    if (this.closed) return;
    const grpcError = toGrpcError(error);
    this.close();
    this.call.emit('error', grpcError);
  }

  /** Cancels every watcher and the timer; idempotent. */
  private close(): void {
    if (this.closed) return;
    this.closed = true;
    if (this.progressTimer !== undefined) clearInterval(this.progressTimer);
    for (const watch of this.watches.values()) {
      watch.done = true;
      watch.watcher?.cancel();
    }
    this.watches.clear();
    this.ready.clear();
  }
}

/** Each batch's events encoded once, for every watch it was routed to. */
const ENCODED_EVENTS = new WeakMap<WatchBatch, Buffer>();

function encodedEvents(batch: WatchBatch): Buffer {
  let bytes = ENCODED_EVENTS.get(batch);
  if (bytes === undefined) {
    bytes = encodeWatchEvents(batch.events);
    ENCODED_EVENTS.set(batch, bytes);
  }
  return bytes;
}
