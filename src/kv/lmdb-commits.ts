/**
 * The commit pipeline of the LMDB backend: applied batches are committed to LMDB by
 * lmdb-js's asynchronous transactions, so the commit and its fsync never run on the event
 * loop. lmdb-js's write thread opens the LMDB write transaction, has the main thread run
 * the transaction's callback — which replays the staged writes of every batch applied so
 * far into one child transaction (a few microseconds per write) — then commits and, with
 * overlapping sync, fsyncs, all on the write thread.
 *
 * Batched commits, like etcd's backend: one transaction is outstanding at a time, and it
 * starts once the oldest waiting batch has waited `commitIntervalMs` (or at once when half
 * the bound is reached, or when something waits for the commits: `sync`, `close`,
 * `restore`, back-pressure), taking every batch applied by then. The cost of a commit —
 * lmdb-js's thread hand-offs, the page writes, the fsync, a thread-pool thread — is then
 * paid once per interval rather than once per applied batch. Commit latency does not matter
 * to clients: the WAL already holds every applied entry.
 *
 * Order and atomicity: the batches are written in apply order, each with its `m` record, and
 * the callback first checks that the stored applied index (read inside the transaction) is
 * exactly where its first batch starts. A transaction therefore only ever commits on top of
 * every earlier batch; if a write or a commit fails, every later transaction aborts instead
 * of committing past the gap. A failure is fatal: the backend refuses further calls and
 * tells its failure listener (the runtime stops the node, as for a WAL failure); on restart
 * the store reopens at its last committed batch and the runtime replays the WAL after it.
 *
 * Bound: batches in flight hold their staged writes and their records in the overlay;
 * {@link CommitPipeline.backPressure} makes the apply path wait while they exceed
 * `commitBytesMax` bytes or `commitBatchesMax` batches.
 */

import { ABORT, type RootDatabase } from 'lmdb';
import { assert } from '../raft/assert.js';
import { KvError } from './errors.js';
import { type BinaryDatabase, readMeta, type StagedWrites } from './lmdb-store.js';

/** When to commit, and the bound on the work in flight (local settings, not replicated state). */
export interface CommitOptions {
  /**
   * Longest a batch waits for its transaction to start (etcd's backend batch interval).
   * A transaction starts at once when half the bound is reached, or when something waits for
   * the commits (`sync`, `close`, `restore`, back-pressure). 0: start as soon as possible.
   */
  readonly commitIntervalMs: number;
  /** Staged bytes of the batches whose commit has not resolved, beyond which applies wait. */
  readonly commitBytesMax: number;
  /** Batches whose commit has not resolved, beyond which applies wait. */
  readonly commitBatchesMax: number;
}

/** Seams for tests: holding commits or the flush, to observe what happens meanwhile. */
export interface LmdbKvTestHooks {
  /** Awaited before each transaction is queued, with the batches in flight then. */
  readonly beforeCommit?: (batches: { readonly from: number; readonly to: number }) => Promise<void>;
  /** Wraps lmdb-js's `flushed` promise, which `sync` awaits. */
  readonly flushed?: (flushed: PromiseLike<unknown>) => PromiseLike<unknown>;
  /**
   * Awaited before each transaction deleting compacted records; false stops the deletions
   * there, as a process that dies between two of them.
   */
  readonly beforeCompactedDelete?: () => Promise<boolean>;
  /** Told, at the end of each restore, the most bytes it held staged at once. */
  readonly restoreStaged?: (peakStagedBytes: number) => void;
}

/** One applied batch on its way to LMDB. */
export interface CommitBatch {
  /** The generation database it writes to. */
  readonly db: BinaryDatabase;
  readonly writes: StagedWrites;
  /** The applied index before the batch (the stored one it must commit on top of). */
  readonly from: number;
  /** The applied index after it (what its `m` record says). */
  readonly to: number;
}

interface Waiter {
  readonly ready: () => boolean;
  readonly resolve: () => void;
  readonly reject: (error: unknown) => void;
}

/** Commits applied batches in order, off the event loop, within a bound. */
export class CommitPipeline {
  /** The batches applied and not yet committed, in order (the outstanding transaction's first). */
  private readonly inFlight: CommitBatch[] = [];
  private inFlightBytes = 0;
  /** Whether a transaction is queued in lmdb-js and not yet resolved. */
  private outstanding = false;
  /** Starts the next transaction when the commit interval is up. */
  private timer: NodeJS.Timeout | undefined;
  private waiters: Waiter[] = [];
  private failure: unknown;
  private committed: number;

  constructor(
    private readonly root: RootDatabase<Uint8Array, Uint8Array>,
    private readonly options: CommitOptions,
    /** Called after each commit with its last batch, when LMDB's committed state has it. */
    private readonly onCommitted: (last: CommitBatch) => void,
    /** Called once, on the first failure. */
    private readonly onFailure: (error: unknown) => void,
    private readonly hooks: LmdbKvTestHooks = {},
  ) {
    this.committed = 0;
  }

  /** The applied index of the last committed batch (LMDB's committed state). */
  get committedIndex(): number {
    return this.committed;
  }

  /** The applied index of the last batch queued (the committed index when none is in flight). */
  get queuedIndex(): number {
    return this.inFlight.length > 0 ? this.inFlight[this.inFlight.length - 1]!.to : this.committed;
  }

  /** Starts over at `index` (after a restore wrote the store directly); nothing may be in flight. */
  reset(index: number): void {
    assert(this.inFlight.length === 0, 'kv: reset with commits in flight');
    this.committed = index;
  }

  /** Queues `batch` for commit after every batch queued before it. */
  enqueue(batch: CommitBatch): void {
    assert(batch.from === this.queuedIndex, `kv: batch after ${batch.from} queued after ${this.queuedIndex}`);
    this.inFlight.push(batch);
    this.inFlightBytes += batch.writes.bytes;
    this.schedule(false);
  }

  /**
   * Undefined when more batches may be applied now; otherwise resolves once the work in
   * flight is back within the bound. Rejects after a failure.
   */
  backPressure(): Promise<void> | undefined {
    if (this.failure === undefined && this.withinBounds()) return undefined;
    return this.wait(() => this.withinBounds());
  }

  /** Resolves once every batch queued so far is committed; rejects after a failure. */
  settled(): Promise<void> {
    const target = this.queuedIndex;
    return this.wait(() => this.committed >= target);
  }

  /** Resolves once every batch queued so far is committed and flushed to disk. */
  async flushed(): Promise<void> {
    await this.settled();
    const flushed = this.root.flushed;
    await (this.hooks.flushed ? this.hooks.flushed(flushed) : flushed);
  }

  /**
   * Starts a transaction for the batches in flight if none is outstanding and it is `due`
   * (the interval is up) or urgent; otherwise makes sure the interval timer runs.
   */
  private schedule(due: boolean): void {
    if (this.outstanding || this.failure !== undefined || this.inFlight.length === 0) return;
    const { commitIntervalMs, commitBatchesMax, commitBytesMax } = this.options;
    const urgent =
      commitIntervalMs === 0 ||
      this.waiters.length > 0 ||
      this.inFlight.length * 2 >= commitBatchesMax ||
      this.inFlightBytes * 2 >= commitBytesMax;
    if (due || urgent) {
      if (this.timer !== undefined) clearTimeout(this.timer);
      this.timer = undefined;
      this.submit();
    } else if (this.timer === undefined) {
      this.timer = setTimeout(() => {
        this.timer = undefined;
        this.schedule(true);
      }, commitIntervalMs).unref();
    }
  }

  /** Queues a transaction for the batches in flight (and those applied until it runs). */
  private submit(): void {
    this.outstanding = true;
    const group: { batches: readonly CommitBatch[] } = { batches: [] };
    const commit = (): void => {
      try {
        this.root
          .childTransaction(() => this.write(group))
          .then(
            (result) => this.resolved(result, group.batches),
            (error: unknown) => this.fail(error),
          );
      } catch (error) {
        this.fail(error);
      }
    };
    const hold = this.hooks.beforeCommit;
    if (hold === undefined) commit();
    else
      hold({ from: this.inFlight[0]!.from, to: this.queuedIndex }).then(commit, (error) => this.fail(error));
  }

  /**
   * The transaction callback, run by lmdb-js inside the LMDB write transaction: writes every
   * batch in flight (none of them is written yet: one transaction is outstanding at a time)
   * in a child transaction of its own, so a throw leaves nothing behind.
   */
  private write(group: { batches: readonly CommitBatch[] }): unknown {
    if (this.failure !== undefined) return ABORT;
    const batches = this.inFlight.slice();
    const first = batches[0]!;
    const stored = readMeta(first.db)?.appliedIndex ?? 0;
    if (stored !== first.from) {
      this.fail(
        new KvError('CORRUPT', `kv: batch after index ${first.from} met stored applied index ${stored}`),
      );
      return ABORT;
    }
    try {
      for (const batch of batches) batch.writes.writeTo(batch.db);
    } catch (error) {
      // lmdb-js aborts the child transaction; record the cause before anything else runs.
      this.fail(error);
      throw error;
    }
    group.batches = batches;
    return undefined;
  }

  /** The outstanding transaction resolved: `batches` committed, unless it was aborted. */
  private resolved(result: unknown, batches: readonly CommitBatch[]): void {
    try {
      if (result === ABORT) this.fail(this.failure ?? new KvError('CORRUPT', 'kv: a commit was aborted'));
      else this.done(batches);
    } catch (error) {
      this.fail(error);
    }
  }

  /** The outstanding transaction committed `batches` (the head of the batches in flight). */
  private done(batches: readonly CommitBatch[]): void {
    if (this.failure !== undefined) return;
    assert(batches.length > 0 && this.inFlight[0] === batches[0], 'kv: commits resolved out of order');
    this.inFlight.splice(0, batches.length);
    for (const batch of batches) this.inFlightBytes -= batch.writes.bytes;
    const last = batches[batches.length - 1]!;
    this.committed = last.to;
    this.outstanding = false;
    this.onCommitted(last);
    this.wakeWaiters();
    this.schedule(false);
  }

  private fail(error: unknown): void {
    if (this.failure !== undefined) return;
    this.failure = error;
    if (this.timer !== undefined) clearTimeout(this.timer);
    const waiters = this.waiters;
    this.waiters = [];
    for (const waiter of waiters) waiter.reject(error);
    this.onFailure(error);
  }

  private withinBounds(): boolean {
    return (
      this.inFlight.length < this.options.commitBatchesMax && this.inFlightBytes < this.options.commitBytesMax
    );
  }

  /** Resolves once `ready()` holds (checked after each commit); makes the next commit urgent. */
  private wait(ready: () => boolean): Promise<void> {
    if (this.failure !== undefined) return Promise.reject(this.failure);
    if (ready()) return Promise.resolve();
    const waiting = new Promise<void>((resolve, reject) => this.waiters.push({ ready, resolve, reject }));
    this.schedule(false);
    return waiting;
  }

  private wakeWaiters(): void {
    if (this.waiters.length === 0) return;
    const still: Waiter[] = [];
    for (const waiter of this.waiters) {
      if (waiter.ready()) waiter.resolve();
      else still.push(waiter);
    }
    this.waiters = still;
  }
}
