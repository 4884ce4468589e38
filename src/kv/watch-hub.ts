/**
 * Watches: streams of the events of a key range, revision by revision, each event exactly
 * once. A watcher's `nextRevision` is the first revision it has not yet taken: every
 * revision below it has been queued (or had no matching event), none at or above it has.
 * The apply path publishes each new revision's events, and the hub routes each event by its
 * key (watch-routes.ts) to the synced watchers it matches, so a write costs the watchers it
 * reaches, not all of them. A synced watcher whose queue is full falls behind: it leaves the
 * routing index for the unsynced group, which publishing never visits, and when its
 * consumer drains the queue it catches up from the stored history in bounded steps until it
 * is synced again — so replay and live delivery meet with no gap and no duplicate, and a
 * slow consumer never makes the apply path buffer without bound (etcd's synced and unsynced
 * watcher groups, `mvcc/watchable_store.go`).
 *
 * Watch delivery is not part of the replicated state: it only reads it.
 */

import { strict as assert } from 'node:assert';
import { inKeyRange, type KeyRange, keyString, parseKeyRange } from './bytes.js';
import { invalidArgument, KvError } from './errors.js';
import type { WatchBatch, WatchEvent, WatchRequest } from './types.js';
import { NO_WATCH_MUTATIONS, type WatchMutations, WatchRoutes } from './watch-routes.js';

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

/**
 * Creates watchers and routes the events the apply path publishes to them. Every watcher is
 * in exactly one group:
 * - synced: it has taken every revision below {@link WatchHub.syncRevision}; indexed by key
 *   range, so publishing a revision visits only the synced watchers its keys reach;
 * - unsynced: it is behind (`nextRevision < syncRevision`) and catches up from history when
 *   its consumer polls; publishing never visits it;
 * - waiting: it starts at a revision not published yet, and joins the synced group then.
 */
export class WatchHub {
  private readonly synced: WatchRoutes<Watcher>;
  private readonly unsynced = new Set<Watcher>();
  private readonly waiting = new Map<number, Set<Watcher>>();
  private nextId = 1;
  private count = 0;
  private prevKvCount = 0;
  // Invariant: every revision below `published` has been published, none at or above it.
  private published: number;

  constructor(
    /** The store the hub reads history from. */
    readonly source: WatchSource,
    /** The hub's limits. */
    readonly options: WatchHubOptions,
    mutations: WatchMutations = NO_WATCH_MUTATIONS,
  ) {
    this.synced = new WatchRoutes(mutations);
    this.published = source.revision + 1;
  }

  /** The first revision not yet published: a synced watcher has taken every one below it. */
  get syncRevision(): number {
    return this.published;
  }

  /** How many watchers are active. */
  get size(): number {
    return this.count;
  }

  /**
   * How many active watchers want each event's previous kv (the state machine reads it
   * from the store for new events only when some do).
   */
  get prevKvWatchers(): number {
    return this.prevKvCount;
  }

  /** How many watchers are synced (the ones publishing routes to). */
  get syncedSize(): number {
    return this.synced.size;
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
    const watcher = new Watcher(this.nextId++, request, range, nextRevision, this);
    this.count++;
    if (watcher.wantsPrevKv) this.prevKvCount++;
    this.place(watcher);
    return watcher;
  }

  /**
   * Routes a new revision's events (every event with its prevKv, if any) to the synced
   * watchers they match. Revisions must be published in order, each once.
   */
  publish(batch: WatchBatch): void {
    assert(
      batch.revision === this.published,
      `watch: revision ${batch.revision} published while ${this.published} was expected`,
    );
    if (this.synced.size > 0) this.route(batch);
    this.published = batch.revision + 1;
    const starting = this.waiting.get(this.published);
    if (starting === undefined) return;
    this.waiting.delete(this.published);
    for (const watcher of starting) this.place(watcher);
  }

  /**
   * Regroups every watcher after a restore replaced the store (its revision may have jumped):
   * synced ones fall behind and catch up from the new history, and all are woken to re-read.
   */
  resync(): void {
    const synced = this.synced.all();
    for (const watcher of synced) this.synced.remove(watcher);
    const waiting = [...this.waiting.values()].flatMap((group) => [...group]);
    this.waiting.clear();
    for (const watcher of synced) watcher.fellBehind(this.published);
    this.published = this.source.revision + 1;
    for (const watcher of [...synced, ...waiting, ...this.unsynced]) {
      this.unsynced.delete(watcher);
      this.place(watcher);
    }
    for (const watcher of this.all()) watcher.wake();
  }

  /** Cancels every watcher. */
  cancelAll(): void {
    for (const watcher of this.all()) watcher.cancel();
  }

  /** Moves a synced watcher whose queue is full to the unsynced group, behind `revision`. */
  demote(watcher: Watcher, revision: number): void {
    assert(this.synced.remove(watcher), `watch: watcher ${watcher.id} demoted while not synced`);
    watcher.fellBehind(revision);
    this.unsynced.add(watcher);
  }

  /** Puts a watcher (new, caught up, or regrouped) in the group its next revision selects. */
  place(watcher: Watcher): void {
    const next = watcher.pendingRevision;
    if (next < this.published) {
      watcher.regroup('unsynced');
      this.unsynced.add(watcher);
    } else if (next === this.published) {
      this.unsynced.delete(watcher);
      watcher.regroup('synced');
      this.synced.add(watcher);
    } else {
      watcher.regroup('waiting');
      const group = this.waiting.get(next);
      if (group === undefined) this.waiting.set(next, new Set([watcher]));
      else group.add(watcher);
    }
  }

  /** Forgets a canceled watcher. */
  remove(watcher: Watcher): void {
    const removed =
      this.synced.remove(watcher) ||
      this.unsynced.delete(watcher) ||
      this.waiting.get(watcher.pendingRevision)?.delete(watcher) === true;
    if (removed) {
      this.count--;
      if (watcher.wantsPrevKv) this.prevKvCount--;
    }
    if (this.waiting.get(watcher.pendingRevision)?.size === 0) this.waiting.delete(watcher.pendingRevision);
  }

  /**
   * Hands each matching synced watcher the revision's events shaped as it asked. Watchers
   * that want the same events share one batch object (the published one when it fits), so
   * a consumer can encode a batch once for all of them (the etcd Watch service does).
   */
  private route(batch: WatchBatch): void {
    if (batch.events.length === 1) {
      this.routeOne(batch);
      return;
    }
    // Each watcher's events, as indices into the batch; taken after the lookup (taking may
    // demote a watcher out of the routes being walked).
    const matched = new Map<Watcher, number[]>();
    batch.events.forEach((event, i) => {
      this.synced.forEachMatch(keyString(event.kv.key), (watcher) => {
        if (!watcher.wants(event)) return;
        const indices = matched.get(watcher);
        if (indices === undefined) matched.set(watcher, [i]);
        else indices.push(i);
      });
    });
    const shared = new Map<string, WatchBatch>();
    const withoutPrevKv: WatchEvent[] = [];
    for (const [watcher, indices] of matched) {
      const prevKv = watcher.wantsPrevKv;
      const key = `${prevKv ? 'p' : ''}${indices.join()}`;
      let taken = shared.get(key);
      if (taken === undefined) {
        const events = indices.map((i) => {
          const event = batch.events[i]!;
          if (prevKv || event.prevKv === undefined) return event;
          withoutPrevKv[i] ??= { type: event.type, kv: event.kv };
          return withoutPrevKv[i];
        });
        const same = events.length === batch.events.length && events.every((e, i) => e === batch.events[i]);
        taken = same ? batch : { revision: batch.revision, events };
        shared.set(key, taken);
      }
      watcher.take(taken);
    }
  }

  /**
   * {@link route} for a revision of one event (most are): no per-watcher batch at all. The
   * watchers are handed their batch after the lookup, since taking may demote a watcher
   * out of the routes being walked.
   */
  private routeOne(batch: WatchBatch): void {
    const event = batch.events[0]!;
    const matched: Watcher[] = [];
    this.synced.forEachMatch(keyString(event.kv.key), (watcher) => {
      if (watcher.wants(event)) matched.push(watcher);
    });
    let withoutPrevKv: WatchBatch | undefined;
    for (const watcher of matched) {
      if (event.prevKv === undefined || watcher.wantsPrevKv) watcher.take(batch);
      else {
        withoutPrevKv ??= { revision: batch.revision, events: [{ type: event.type, kv: event.kv }] };
        watcher.take(withoutPrevKv);
      }
    }
  }

  private all(): Watcher[] {
    const waiting = [...this.waiting.values()].flatMap((group) => [...group]);
    return [...this.synced.all(), ...this.unsynced, ...waiting];
  }
}

/** A watcher's group in its hub (see {@link WatchHub}). */
export type WatchGroup = 'synced' | 'unsynced' | 'waiting' | 'canceled';

/**
 * One watch stream. Pull with {@link Watcher.poll} (synchronous, for the simulator) or
 * iterate with `for await` (ends when canceled; throws `COMPACTED` if it fell behind a
 * compaction). Each batch holds all matching events of one revision, in revision order.
 *
 * An idle watcher holds no queue and no waiter list: both are made when first needed, so
 * that a hundred thousand idle watchers cost little more than their ranges.
 */
export class Watcher implements AsyncIterable<WatchBatch> {
  // Invariant: while synced, the queue holds batches of revisions below the hub's
  // syncRevision; while not, of revisions below nextRevision, which it has taken all of.
  private nextRevision: number;
  private group: WatchGroup = 'unsynced';
  private queue: WatchBatch[] | undefined;
  // One pending `next` is held directly, several in an array.
  private waiters: (() => void) | (() => void)[] | undefined;
  private listener: (() => void) | undefined;
  private failure: KvError | undefined;
  private readonly filters: number;

  constructor(
    /** Identifies the watcher within its hub. */
    readonly id: number,
    request: WatchRequest,
    /** Its key range. */
    readonly range: KeyRange,
    nextRevision: number,
    private readonly hub: WatchHub,
  ) {
    this.nextRevision = nextRevision;
    this.filters =
      (request.noPut === true ? NO_PUT : 0) |
      (request.noDelete === true ? NO_DELETE : 0) |
      (request.prevKv === true ? PREV_KV : 0);
  }

  /** Whether the watcher was canceled (by its consumer, a failure or the hub). */
  get isCanceled(): boolean {
    return this.group === 'canceled';
  }

  /** Whether the watcher wants each event's previous kv. */
  get wantsPrevKv(): boolean {
    return (this.filters & PREV_KV) !== 0;
  }

  /** The first revision it has not taken: the hub's syncRevision while synced. */
  get pendingRevision(): number {
    return this.group === 'synced' ? this.hub.syncRevision : this.nextRevision;
  }

  /**
   * The next batch if one is ready, else undefined (nothing new yet, or canceled). Throws
   * `COMPACTED` (then and on every later call) if revisions it still needs were compacted
   * away; the watcher is canceled then.
   */
  poll(): WatchBatch | undefined {
    if (this.failure !== undefined) throw this.failure;
    if (this.group === 'canceled') return undefined;
    while (this.group === 'unsynced' && this.queueLength === 0) this.catchUp();
    const batch = this.queue?.shift();
    if (this.queue?.length === 0) this.queue = undefined;
    return batch;
  }

  /**
   * The next batch, waiting for one; undefined once canceled. Written without `async`: a
   * suspended async function costs several hundred bytes, and a hundred thousand idle
   * watchers each have a consumer waiting here.
   */
  next(): Promise<WatchBatch | undefined> {
    let batch: WatchBatch | undefined;
    try {
      batch = this.poll();
    } catch (error) {
      return Promise.reject(error);
    }
    if (batch !== undefined || this.isCanceled) return Promise.resolve(batch);
    return new Promise((resolve, reject) => {
      const waiter = () => {
        this.next().then(resolve, reject);
      };
      if (this.waiters === undefined) this.waiters = waiter;
      else if (Array.isArray(this.waiters)) this.waiters.push(waiter);
      else this.waiters = [this.waiters, waiter];
    });
  }

  /**
   * Calls `listener` whenever the watcher may have something new for {@link poll}: a batch
   * taken, a regroup after a restore, its cancellation. It is called synchronously from the
   * apply path, so it must only take note and poll later (in a microtask, say). The push
   * alternative to `next` for a consumer that drains many watchers at once, with no promise
   * per batch; a second call replaces the listener.
   */
  listen(listener: () => void): void {
    this.listener = listener;
  }

  /** Stops the stream; pending and later `next` calls return undefined. */
  cancel(): void {
    if (this.group === 'canceled') return;
    this.hub.remove(this);
    this.nextRevision = this.pendingRevision;
    this.group = 'canceled';
    this.queue = undefined;
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
    const selected: WatchEvent[] = [];
    for (const event of events) {
      if (!inKeyRange(keyOf(event), this.range)) continue;
      const shaped = this.shape(event);
      if (shaped !== undefined) selected.push(shaped);
    }
    return selected;
  }

  /** An event of its range as it asked for it: undefined if filtered out, prevKv dropped if unwanted. */
  shape(event: WatchEvent): WatchEvent | undefined {
    if (!this.wants(event)) return undefined;
    if (this.wantsPrevKv || event.prevKv === undefined) return event;
    return { type: event.type, kv: event.kv };
  }

  /** Whether its filters let an event of its range through. */
  wants(event: WatchEvent): boolean {
    return (this.filters & (event.type === 'PUT' ? NO_PUT : NO_DELETE)) === 0;
  }

  /** Takes a published batch routed to it (synced only), or falls behind if its queue is full. */
  take(batch: WatchBatch): void {
    assert(this.group === 'synced', `watch: batch routed to ${this.group} watcher ${this.id}`);
    if (this.queueLength >= this.hub.options.watchQueueBatchesMax) {
      this.hub.demote(this, batch.revision);
      return;
    }
    if (this.queue === undefined) this.queue = [batch];
    else this.queue.push(batch);
    this.wake();
  }

  /** The hub moved it out of the synced group: it has taken every revision below `revision`. */
  fellBehind(revision: number): void {
    this.nextRevision = revision;
    this.group = 'unsynced';
  }

  /** The hub moved it into `group`. */
  regroup(group: WatchGroup): void {
    this.group = group;
  }

  /** Resolves pending `next` calls so they poll again. */
  wake(): void {
    this.listener?.();
    const waiters = this.waiters;
    if (waiters === undefined) return;
    this.waiters = undefined;
    if (Array.isArray(waiters)) for (const waiter of waiters) waiter();
    else waiters();
  }

  private get queueLength(): number {
    return this.queue?.length ?? 0;
  }

  /**
   * Reads one bounded step of the published history into the queue, or fails if it was
   * compacted; joins the synced group once it has read up to the hub's syncRevision.
   */
  private catchUp(): void {
    const source = this.hub.source;
    const compactRevision = source.compactRevision;
    if (this.nextRevision < compactRevision) {
      this.failure = new KvError('COMPACTED', undefined, compactRevision);
      this.cancel();
      throw this.failure;
    }
    const last = this.hub.syncRevision - 1;
    const to = Math.min(last, this.nextRevision + this.hub.options.watchCatchUpRevisionsMax - 1);
    assert(
      to >= this.nextRevision && this.queue === undefined,
      `watch: watcher ${this.id} caught up out of turn`,
    );
    const batches = source.history(this.nextRevision, to, this);
    if (batches.length > 0) this.queue = batches;
    this.nextRevision = to + 1;
    if (this.nextRevision === this.hub.syncRevision) this.hub.place(this);
  }
}

const NO_PUT = 1;
const NO_DELETE = 2;
const PREV_KV = 4;

function keyOf(event: WatchEvent): string {
  return keyString(event.kv.key);
}
