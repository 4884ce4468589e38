/**
 * Watches: streams of the events of a key range, revision by revision, each event exactly
 * once. A watcher holds `nextRevision`, the first revision it has not yet taken: every
 * revision below it has been queued (or had no matching event), none at or above it has.
 * The apply path publishes each new revision's events; a watcher takes them only if it is
 * synced (`nextRevision` is that very revision) and its queue has room. Otherwise it falls
 * behind and, when its consumer drains the queue, catches up from the stored history in
 * bounded steps until it is synced again — so replay and live delivery meet with no gap
 * and no duplicate, and a slow consumer never makes the apply path buffer without bound.
 *
 * Watch delivery is not part of the replicated state: it only reads it.
 */

import { inKeyRange, type KeyRange, keyString, parseKeyRange } from './bytes.js';
import { invalidArgument, KvError } from './errors.js';
import type { WatchBatch, WatchEvent, WatchRequest } from './types.js';

/** What the hub needs from the store. */
export interface WatchSource {
  /** The current revision. */
  readonly revision: number;
  /** Revisions below this are compacted. */
  readonly compactRevision: number;
  /**
   * The batches of revisions `from..to` (inclusive, all above the compacted revision or at
   * it) that `watcher` matches, in revision order.
   */
  history(from: number, to: number, watcher: Watcher): WatchBatch[];
}

/** Limits of the hub. */
export interface WatchHubOptions {
  /** Batches a watcher queues before it falls behind and catches up from history instead. */
  readonly watchQueueBatchesMax: number;
  /** Revisions read from history per catch-up step. */
  readonly watchCatchUpRevisionsMax: number;
}

/** Creates watchers and feeds them the events the apply path publishes. */
export class WatchHub {
  private readonly watchers = new Map<number, Watcher>();
  private nextId = 1;

  constructor(
    private readonly source: WatchSource,
    private readonly options: WatchHubOptions,
  ) {}

  /** How many watchers are active. */
  get size(): number {
    return this.watchers.size;
  }

  /**
   * Starts a watcher. Throws `INVALID_ARGUMENT` for a bad range or start revision and
   * `COMPACTED` (with the compacted revision) when `startRevision` is below it.
   */
  watch(request: WatchRequest): Watcher {
    const range = parseKeyRange(request);
    const startRevision = request.startRevision ?? 0;
    if (!Number.isSafeInteger(startRevision) || startRevision < 0) {
      throw invalidArgument('start revision must be a non-negative integer');
    }
    const compactRevision = this.source.compactRevision;
    if (startRevision > 0 && startRevision < compactRevision) {
      throw new KvError('COMPACTED', undefined, compactRevision);
    }
    const nextRevision = startRevision > 0 ? startRevision : this.source.revision + 1;
    const watcher = new Watcher(this.nextId++, request, range, nextRevision, this, this.source, this.options);
    this.watchers.set(watcher.id, watcher);
    return watcher;
  }

  /** Offers a new revision's events (every event with its prevKv, if any) to every watcher. */
  publish(batch: WatchBatch): void {
    for (const watcher of this.watchers.values()) watcher.offer(batch);
  }

  /** Wakes every waiting watcher so it re-reads the store (after a restore replaced it). */
  wakeAll(): void {
    for (const watcher of this.watchers.values()) watcher.wake();
  }

  /** Cancels every watcher. */
  cancelAll(): void {
    for (const watcher of [...this.watchers.values()]) watcher.cancel();
  }

  /** Forgets a canceled watcher. */
  remove(watcher: Watcher): void {
    this.watchers.delete(watcher.id);
  }
}

/**
 * One watch stream. Pull with {@link Watcher.poll} (synchronous, for the simulator) or
 * iterate with `for await` (ends when canceled; throws `COMPACTED` if it fell behind a
 * compaction). Each batch holds all matching events of one revision, in revision order.
 */
export class Watcher implements AsyncIterable<WatchBatch> {
  // Invariant: the queue holds batches of revisions < nextRevision, ascending.
  private nextRevision: number;
  private readonly queue: WatchBatch[] = [];
  private waiters: (() => void)[] = [];
  private canceled = false;
  private failure: KvError | undefined;

  constructor(
    /** Identifies the watcher within its hub. */
    readonly id: number,
    /** What it asked for. */
    readonly request: WatchRequest,
    /** Its key range. */
    readonly range: KeyRange,
    nextRevision: number,
    private readonly hub: WatchHub,
    private readonly source: WatchSource,
    private readonly options: WatchHubOptions,
  ) {
    this.nextRevision = nextRevision;
  }

  /** Whether the watcher was canceled (by its consumer, a failure or the hub). */
  get isCanceled(): boolean {
    return this.canceled;
  }

  /** Whether the watcher wants each event's previous kv. */
  get wantsPrevKv(): boolean {
    return this.request.prevKv === true;
  }

  /**
   * The next batch if one is ready, else undefined (nothing new yet, or canceled). Throws
   * `COMPACTED` (then and on every later call) if revisions it still needs were compacted
   * away; the watcher is canceled then.
   */
  poll(): WatchBatch | undefined {
    if (this.failure !== undefined) throw this.failure;
    if (this.canceled) return undefined;
    while (this.queue.length === 0 && this.nextRevision <= this.source.revision) this.catchUp();
    return this.queue.shift();
  }

  /** The next batch, waiting for one; undefined once canceled. */
  async next(): Promise<WatchBatch | undefined> {
    for (;;) {
      const batch = this.poll();
      if (batch !== undefined || this.canceled) return batch;
      await new Promise<void>((resolve) => this.waiters.push(resolve));
    }
  }

  /** Stops the stream; pending and later `next` calls return undefined. */
  cancel(): void {
    if (this.canceled) return;
    this.canceled = true;
    this.queue.length = 0;
    this.hub.remove(this);
    this.wake();
  }

  [Symbol.asyncIterator](): AsyncIterator<WatchBatch> {
    return {
      next: async () => {
        const batch = await this.next();
        return batch === undefined ? { done: true, value: undefined } : { done: false, value: batch };
      },
      return: async () => {
        this.cancel();
        return { done: true, value: undefined };
      },
    };
  }

  /** Keeps the events this watcher matches, shaped as it asked (prevKv dropped if unwanted). */
  select(events: readonly WatchEvent[]): WatchEvent[] {
    const { noPut = false, noDelete = false } = this.request;
    const selected: WatchEvent[] = [];
    for (const event of events) {
      if (event.type === 'PUT' ? noPut : noDelete) continue;
      if (!inKeyRange(keyOf(event), this.range)) continue;
      const keepPrevKv = this.wantsPrevKv || event.prevKv === undefined;
      selected.push(keepPrevKv ? event : { type: event.type, kv: event.kv });
    }
    return selected;
  }

  /** Takes a published revision if synced and the queue has room; else falls behind. */
  offer(batch: WatchBatch): void {
    if (this.canceled || batch.revision !== this.nextRevision) return;
    if (this.queue.length >= this.options.watchQueueBatchesMax) return;
    const events = this.select(batch.events);
    if (events.length > 0) this.queue.push({ revision: batch.revision, events });
    this.nextRevision = batch.revision + 1;
    if (events.length > 0) this.wake();
  }

  /** Resolves pending `next` calls so they poll again. */
  wake(): void {
    const waiters = this.waiters;
    this.waiters = [];
    for (const resolve of waiters) resolve();
  }

  /** Reads one bounded step of history into the queue, or fails if it was compacted. */
  private catchUp(): void {
    const compactRevision = this.source.compactRevision;
    if (this.nextRevision < compactRevision) {
      this.failure = new KvError('COMPACTED', undefined, compactRevision);
      this.cancel();
      throw this.failure;
    }
    const to = Math.min(this.source.revision, this.nextRevision + this.options.watchCatchUpRevisionsMax - 1);
    this.queue.push(...this.source.history(this.nextRevision, to, this));
    this.nextRevision = to + 1;
  }
}

function keyOf(event: WatchEvent): string {
  return keyString(event.kv.key);
}
