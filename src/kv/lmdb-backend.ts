/**
 * The LMDB backend. Layout (all keys and values binary, values MessagePack):
 *
 * - database `meta`: `g` → the active generation (one byte, 0 or 1).
 * - databases `kv-0` and `kv-1` (one active "generation", the other empty or being
 *   restored into), each holding, by a one-byte prefix:
 *   - `r` + main(8) + sub(8) → record `[key, value, createRevision, version, lease]` or
 *     tombstone `[key]`: the MVCC history keyed by revision, like etcd's bbolt `key` bucket;
 *   - `l` + id(8) → lease `[ttlSeconds, remainingTtlSeconds, anchorMs]`;
 *   - `s` + clientId(8) → session `[seq, lastIndex, resultBytes]`;
 *   - `m` → `[formatVersion, appliedIndex, revision, compactRevision]`.
 *
 * The key index is in memory, rebuilt on open by one scan of the history (as etcd rebuilds
 * its treeIndex), so LMDB keys stay 17 bytes whatever the user keys are. The scan reads only
 * each record's head (key, tombstone, lease) inside LMDB's read buffer: values are neither
 * copied nor decoded (lmdb-store.ts, `scanRecordHeads`).
 *
 * Applying: `applyBatch` runs the batch through the in-memory state machine synchronously
 * and returns its results; the batch's LMDB writes (its records, leases, sessions, and the
 * new `m` record last) are only staged. The commit pipeline (lmdb-commits.ts) writes the
 * staged batches, in order, in lmdb-js asynchronous transactions that lmdb-js's write thread
 * commits and fsyncs — never the event loop — one transaction at a time, started every
 * `commitIntervalMs` (100 ms, like etcd's backend batch interval; sooner under pressure or
 * when something waits for it), each taking every batch applied by the time it starts.
 * Until its commit resolves, a batch's
 * records stay in an overlay that every record read consults first (lmdb-store.ts), so the
 * batch is visible to every read on this node — ranges, txn reads, watch history, `hash`,
 * `hashKv`, snapshots — as soon as `applyBatch` returns. Each transaction holds whole
 * batches with their `m` record and commits only on top of the previous one, so the stored
 * applied index always matches the stored data.
 *
 * What is durable when:
 * - when `applyBatch` returns: nothing new in LMDB. Nothing acknowledged depends on it: the
 *   runtime applies only entries its Raft WAL already holds durably;
 * - once the batch's transaction is committed (within about two commit intervals): it
 *   survives a process crash; a restart reopens at the last committed batch and the runtime
 *   replays the WAL after it;
 * - once it is flushed: it survives an OS crash or power loss. With overlapping sync the
 *   write thread fsyncs right after the commit (lmdb-js resolves the commit only after that
 *   fsync); until then an OS crash reopens the store at an older flushed batch (LMDB trusts
 *   an unflushed meta page only within the same boot), never a torn one — still safe,
 *   because the WAL holds the later entries;
 * - `sync()` resolves once everything applied before the call is committed and flushed
 *   (lmdb-js `flushed`); the runtime calls it before it drops WAL entries, and restores the
 *   snapshot file when the store reopens below the log's first index.
 * `noSync: true` skips fsync altogether: fastest, safe against a process crash, but an OS
 * crash may then corrupt the environment, and the node must be rebuilt from a peer's
 * snapshot.
 *
 * A failed write or commit is fatal: the backend refuses further calls and calls its
 * failure listeners; no later batch commits past the gap. The work in flight is bounded
 * (`commitBytesMax`, `commitBatchesMax`): `backPressure()` makes the apply path wait.
 * `restore` and `close` wait for the commits in flight. `snapshot` need not wait: it pins
 * an LMDB read transaction together with a frozen copy of the overlay, which together are
 * exactly the applied state at the call, while applies and commits go on.
 *
 * Restore writes the snapshot into the inactive generation, in bounded transactions
 * committed off the event loop (lmdb-restore.ts), and flips `g` in one final (synchronous,
 * fsynced) transaction, so a crash mid-restore leaves the previous state intact. The key index
 * comes from the stream, so the restored store is not read back. A snapshot's records are
 * read without copying them first (lmdb-store.ts, `openTransientDatabase`): each is copied
 * once, into its chunk.
 */

import { statSync } from 'node:fs';
import { join } from 'node:path';
import { open, type RootDatabase } from 'lmdb';
import { assert } from '../raft/assert.js';
import { BaseKvBackend, type KvBackend, KvSnapshot } from './backend.js';
import { decodeResult, encodeResult } from './codec.js';
import { IndexLoader } from './index-loader.js';
import {
  type CommitBatch,
  type CommitOptions,
  CommitPipeline,
  type LmdbKvTestHooks,
} from './lmdb-commits.js';
import { type RestoredGeneration, restoreGeneration } from './lmdb-restore.js';
import {
  type BinaryDatabase,
  encodedRecords,
  type HeadDatabase,
  LmdbStore,
  openHeadDatabase,
  openTransientDatabase,
  readEncodedSessions,
  readLeases,
  readMeta,
  recordKey,
  scanRecordHeads,
  scanRecordView,
} from './lmdb-store.js';
import { encodeSnapshot } from './snapshot.js';
import { DEFAULT_KV_OPTIONS, EMPTY_KV_META, type KvOptions, KvStateMachine } from './state-machine.js';
import type { KvEntry, KvResult } from './types.js';

export type { LmdbKvTestHooks } from './lmdb-commits.js';

/** Options of the LMDB backend. */
export interface LmdbKvOptions extends KvOptions, CommitOptions {
  /** Never fsync (see the module comment for what that risks). Default false. */
  readonly noSync: boolean;
  /**
   * Records a compaction dropped are deleted this many per LMDB transaction, one
   * transaction at a time, off the apply path (etcd deletes 1,000 per batch with a pause).
   */
  readonly compactDeletesPerCommit: number;
  /**
   * A restore writes the snapshot in transactions of about this many bytes, one committing
   * while the next is staged: what bounds its memory (lmdb-restore.ts).
   */
  readonly restoreTransactionBytesMax: number;
}

/** The default options: commits every 100 ms; 32 MiB or 1024 batches in flight at most. */
export const DEFAULT_LMDB_KV_OPTIONS: LmdbKvOptions = Object.freeze({
  ...DEFAULT_KV_OPTIONS,
  noSync: false,
  compactDeletesPerCommit: 5_000,
  restoreTransactionBytesMax: 4 * 1024 * 1024,
  commitIntervalMs: 100,
  commitBytesMax: 32 * 1024 * 1024,
  commitBatchesMax: 1024,
});

const GENERATION_KEY = Uint8Array.of(0x67); // 'g'

/** Read-only handles on a generation database that read values without copying them first. */
interface GenerationViews {
  /** Records as their heads (loading the key index). */
  readonly heads: HeadDatabase;
  /** Records as views into LMDB's read buffer (streaming a snapshot). */
  readonly transient: BinaryDatabase;
}

function openViews(root: RootDatabase, name: string): GenerationViews {
  return { heads: openHeadDatabase(root, name), transient: openTransientDatabase(root, name) };
}

/** What lmdb-js's `getStats` reports of one tree. */
interface PageStats {
  readonly pageSize?: number;
  readonly treeBranchPageCount?: number;
  readonly treeLeafPageCount?: number;
  readonly overflowPages?: number;
}

/** The pages a tree occupies. */
function treePages(stats: PageStats): number {
  return (stats.treeBranchPageCount ?? 0) + (stats.treeLeafPageCount ?? 0) + (stats.overflowPages ?? 0);
}

/** A key-value backend stored in an LMDB environment. */
export class LmdbKvBackend extends BaseKvBackend implements KvBackend {
  private restoring = false;
  /** The deletion of compacted records in progress, if any (one transaction at a time). */
  private deletingCompacted: Promise<void> | undefined;
  private readonly compactDeletesPerCommit: number;
  private readonly restoreTransactionBytesMax: number;
  private readonly commits: CommitPipeline;
  private readonly failureListeners: ((error: unknown) => void)[] = [];

  private constructor(
    /** The environment directory. */
    readonly path: string,
    private readonly root: RootDatabase<Uint8Array, Uint8Array>,
    private readonly metaDb: BinaryDatabase,
    private readonly generations: readonly [BinaryDatabase, BinaryDatabase],
    /** The generations again, read without copying values (see lmdb-store.ts). */
    private readonly views: readonly [GenerationViews, GenerationViews],
    private generation: number,
    private readonly store: LmdbStore,
    machine: KvStateMachine,
    commitOptions: LmdbKvOptions,
    private readonly hooks: LmdbKvTestHooks,
  ) {
    super(machine);
    this.compactDeletesPerCommit = commitOptions.compactDeletesPerCommit;
    this.restoreTransactionBytesMax = commitOptions.restoreTransactionBytesMax;
    this.commits = new CommitPipeline(
      root,
      commitOptions,
      (batch) => this.committed(batch),
      (error) => this.failed(error),
      hooks,
    );
  }

  /**
   * Opens (creating if needed) the store in directory `path` and loads it: the returned
   * backend is at the stored applied index. `options` override {@link DEFAULT_LMDB_KV_OPTIONS};
   * `hooks` are for tests.
   */
  static open(
    path: string,
    options: Partial<LmdbKvOptions> = {},
    hooks: LmdbKvTestHooks = {},
  ): LmdbKvBackend {
    const merged: LmdbKvOptions = { ...DEFAULT_LMDB_KV_OPTIONS, ...options };
    assert(merged.commitBytesMax > 0 && merged.commitBatchesMax > 0, 'kv: commit bounds must be positive');
    assert(merged.commitIntervalMs >= 0, 'kv: commit interval must not be negative');
    assert(merged.restoreTransactionBytesMax > 0, 'kv: restoreTransactionBytesMax must be positive');
    const root = open<Uint8Array, Uint8Array>({ path, maxDbs: 4, noSync: merged.noSync });
    const binary = { keyEncoding: 'binary', encoding: 'binary' } as const;
    const metaDb: BinaryDatabase = root.openDB({ name: 'meta', ...binary });
    const generations = [
      root.openDB({ name: 'kv-0', ...binary }),
      root.openDB({ name: 'kv-1', ...binary }),
    ] as const;
    const views = [openViews(root, 'kv-0'), openViews(root, 'kv-1')] as const;
    const generation = metaDb.get(GENERATION_KEY)?.[0] ?? 0;
    assert(generation === 0 || generation === 1, `kv: bad generation ${generation}`);
    const store = new LmdbStore(generations[generation]);
    const machine = new KvStateMachine(store, merged);
    const backend = new LmdbKvBackend(
      path,
      root,
      metaDb,
      generations,
      views,
      generation,
      store,
      machine,
      merged,
      hooks,
    );
    backend.load();
    // A restore that crashed midway may have left the inactive generation half written.
    root.transactionSync(() => generations[1 - generation]!.clearSync());
    return backend;
  }

  /** The applied index LMDB has committed (below `appliedIndex` while commits are in flight). */
  get committedIndex(): number {
    return this.commits.committedIndex;
  }

  /** See {@link KvBackend.applyBatch}: computed now, committed in the background. */
  applyBatch(entries: readonly KvEntry[]): (KvResult | null)[] {
    this.ensureUsable();
    assert(!this.restoring, 'kv: entries applied during a restore');
    if (entries.length === 0) return [];
    const from = this.machine.appliedIndex;
    const writes = this.store.beginBatch(from + 1);
    const results: (KvResult | null)[] = [];
    try {
      for (const entry of entries) results.push(this.machine.applyEntry(entry));
      this.store.putMeta(this.machine.position());
    } catch (error) {
      // Memory is now ahead of LMDB (which never sees this batch): only a reopen is safe.
      this.failure = error;
      throw error;
    } finally {
      this.store.endBatch();
    }
    this.commits.enqueue({ db: this.store.db, writes, from, to: this.machine.appliedIndex });
    this.machine.publishWatchEvents();
    this.deleteCompacted();
    return results;
  }

  /** See {@link KvBackend.backPressure}. */
  backPressure(): Promise<void> | undefined {
    return this.commits.backPressure();
  }

  /** See {@link KvBackend.onFailure}. */
  onFailure(listener: (error: unknown) => void): void {
    this.failureListeners.push(listener);
  }

  /**
   * See {@link KvBackend.snapshot}: the state at the call — an LMDB read transaction (released
   * when done) seen through a frozen copy of the overlay of commits in flight, and the lease
   * and session tables as they are now.
   */
  snapshot(): KvSnapshot {
    this.ensureUsable();
    const meta = this.machine.position();
    const overlay = this.store.overlay.freeze();
    const compacted = this.store.compacted.view();
    const transaction = this.root.useReadTransaction();
    try {
      // Each record's bytes are copied into its chunk at once: they may be read in LMDB's buffer.
      const records = scanRecordView(
        this.views[this.generation]!.transient,
        overlay,
        0,
        Number.MAX_SAFE_INTEGER,
        transaction,
        compacted,
      );
      const source = {
        meta,
        records: encodedRecords(records),
        leases: this.machine.leaseList(),
        sessions: this.machine
          .sessionList()
          .map((session) => ({ ...session, result: encodeResult(session.result) })),
      };
      const chunks = encodeSnapshot(source, this.options.snapshotChunkBytesMax);
      return new KvSnapshot(meta, chunks, () => transaction.done());
    } catch (error) {
      transaction.done();
      throw error;
    }
  }

  /** An LMDB read transaction seen through a frozen copy of the overlay: the records as of now. */
  protected override pinRecords(): {
    scan(upTo: number): Iterable<readonly [Uint8Array, Uint8Array]>;
    release(): void;
  } {
    const overlay = this.store.overlay.freeze();
    const compacted = this.store.compacted.view();
    const transaction = this.root.useReadTransaction();
    const db = this.store.db;
    return {
      scan: (upTo) => encodedRecords(scanRecordView(db, overlay, 0, upTo, transaction, compacted)),
      release: () => transaction.done(),
    };
  }

  /** See {@link KvBackend.restore}: waits for the commits in flight, fills the inactive generation, flips to it. */
  async restore(chunks: Iterable<Uint8Array> | AsyncIterable<Uint8Array>): Promise<void> {
    this.ensureUsable();
    assert(!this.restoring, 'kv: restore already in progress');
    this.restoring = true;
    try {
      await this.commits.settled();
      // The records of the store being replaced need no deleting (and must not be deleted from the next).
      await this.deletingCompacted;
      this.store.compacted.clear();
      assert(this.store.overlay.size === 0, 'kv: overlay left after every commit');
      const next = 1 - this.generation;
      const target = this.generations[next]!;
      this.root.transactionSync(() => target.clearSync());
      const restored = await restoreGeneration(
        this.root,
        target,
        chunks,
        this.restoreTransactionBytesMax,
        this.hooks.restoreStaged,
      );
      const previous = this.generations[this.generation]!;
      this.root.transactionSync(() => this.metaDb.putSync(GENERATION_KEY, Uint8Array.of(next)));
      this.generation = next;
      this.store.db = target;
      this.load(restored);
      this.root.transactionSync(() => previous.clearSync());
    } finally {
      this.restoring = false;
    }
  }

  /**
   * The environment's size: `fileBytes` allocated on disk (etcd's `dbSize`) and `usedBytes`,
   * the pages of its trees as last committed (etcd's `dbSizeInUse`): pages that compaction
   * frees leave it at once, and LMDB reuses them for later writes without a defragmentation.
   */
  storageStats(): { fileBytes: number; usedBytes: number } {
    this.ensureUsable();
    const stats = this.root.getStats() as PageStats & { lastPageNumber?: number; free?: PageStats };
    const pageSize = stats.pageSize ?? 4096;
    const highWaterPages = (stats.lastPageNumber ?? 0) + 1;
    // Two meta pages, the main and free trees, and the named databases.
    let pages = 2 + treePages(stats) + treePages(stats.free ?? {});
    for (const db of [this.metaDb, ...this.generations]) pages += treePages(db.getStats() as PageStats);
    const usedBytes = Math.min(pages, highWaterPages) * pageSize;
    let fileBytes = highWaterPages * pageSize;
    try {
      fileBytes = statSync(join(this.path, 'data.mdb')).size;
    } catch {
      // Not a directory environment: report the used size.
    }
    return { fileBytes, usedBytes };
  }

  /** Resolves once every batch applied before the call is committed and flushed to disk. */
  async sync(): Promise<void> {
    this.ensureUsable();
    await this.commits.flushed();
  }

  /** Cancels watchers, waits for the commits in flight, and closes the environment (after flushing). */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.machine.hub.cancelAll();
    await this.commits.settled().catch(() => {});
    // What is left of a compaction's deletions is found again on the next open.
    await this.deletingCompacted;
    await this.root.close();
  }

  /**
   * Deletes the records compactions dropped, {@link LmdbKvOptions.compactDeletesPerCommit}
   * per transaction, one transaction at a time, each after the commit of the batches that put
   * them; until deleted they are hidden from scans (lmdb-store.ts, `CompactedBacklog`). Runs
   * until the backlog is empty, the backend closes or a restore begins.
   */
  private deleteCompacted(): void {
    if (this.deletingCompacted !== undefined || !this.store.compacted.pending) return;
    this.deletingCompacted = this.drainCompacted()
      .catch((error: unknown) => this.failed(error))
      .finally(() => {
        this.deletingCompacted = undefined;
      });
  }

  /**
   * Resolves once the records compactions dropped are deleted from LMDB, or their deletion
   * stopped (closed, restored, failed); reads never see them either way.
   */
  async compactionDeleted(): Promise<void> {
    while (this.deletingCompacted !== undefined) await this.deletingCompacted;
  }

  /** Closed, restoring or failed: no more deletions of compacted records. */
  private get deletionsStopped(): boolean {
    return this.closed || this.restoring || this.failure !== undefined;
  }

  private async drainCompacted(): Promise<void> {
    const backlog = this.store.compacted;
    for (;;) {
      const index = backlog.nextIndex;
      if (index === undefined || this.deletionsStopped) return;
      if (this.commits.committedIndex < index) await this.commits.settled();
      if (this.hooks.beforeCompactedDelete !== undefined && !(await this.hooks.beforeCompactedDelete()))
        return;
      if (this.deletionsStopped) return;
      const revisions = backlog.take(this.compactDeletesPerCommit);
      const db = this.store.db;
      await this.root.transaction(() => {
        for (const { main, sub } of revisions) db.removeSync(recordKey(main, sub));
      });
      this.root.resetReadTxn();
      backlog.deleted();
    }
  }

  /** A batch is in LMDB's committed state: its records leave the overlay. */
  private committed(batch: CommitBatch): void {
    // Reads after this see the commit: lmdb-js renews its read transaction after a commit,
    // and this makes sure of it before the overlay stops covering the batch.
    this.root.resetReadTxn();
    this.store.overlay.retire(batch.from + 1);
  }

  /** A background write or commit failed: refuse calls now, tell the listeners after the current callback. */
  private failed(error: unknown): void {
    if (this.failure === undefined) this.failure = error;
    queueMicrotask(() => {
      for (const listener of this.failureListeners) listener(error);
    });
  }

  /**
   * Loads the active generation into the state machine; nothing may be in flight. The key
   * index is rebuilt from the records' heads (or comes from the restore that wrote them).
   */
  private load(restored?: RestoredGeneration): void {
    try {
      const db = this.store.db;
      const meta = restored?.meta ?? readMeta(db) ?? EMPTY_KV_META;
      const sessions = readEncodedSessions(db).map((session) => ({
        ...session,
        result: decodeResult(session.result),
      }));
      let loaded = restored?.loaded;
      if (loaded === undefined) {
        loaded = new IndexLoader(meta.revision);
        for (const [main, sub, head] of scanRecordHeads(this.views[this.generation]!.heads)) {
          loaded.add(main, sub, head);
        }
      }
      this.machine.reset(meta, loaded, readLeases(db), sessions);
      this.commits.reset(meta.appliedIndex);
      // A compaction whose deletions were cut short by a crash: finish it.
      this.store.deleteCompacted(this.machine.compactLeftovers(), meta.appliedIndex);
      this.deleteCompacted();
    } catch (error) {
      this.failure = error;
      throw error;
    }
  }
}
