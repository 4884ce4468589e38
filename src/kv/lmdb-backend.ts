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
 * its treeIndex), so LMDB keys stay 17 bytes whatever the user keys are.
 *
 * Atomicity: `applyBatch` runs every entry of the batch and writes the new `m` record in a
 * single LMDB write transaction, so the stored applied index always matches the stored
 * data; a restart reopens at that index and the runtime replays the entries after it.
 *
 * Durability: by default a commit does not wait for its fsync (lmdb-js overlapping sync
 * flushes in the background and keeps the environment consistent across an OS crash), so
 * after a power loss the store may reopen at an older applied index, never a torn one —
 * which is safe because the Raft log still holds the later entries. `sync()` waits for the
 * flush; the runtime calls it before dropping log entries, or restores the snapshot file
 * when the store reopens below the log's first index. `noSync: true` skips fsync
 * altogether: fastest, safe against a process crash, but an OS crash may then corrupt the
 * environment, and the node must be rebuilt from a peer's snapshot.
 *
 * Restore writes the snapshot into the inactive generation and flips `g` in one final
 * transaction, so a crash mid-restore leaves the previous state intact.
 */

import { statSync } from 'node:fs';
import { join } from 'node:path';
import { type Database, open, type RootDatabase, type Transaction, TransactionFlags } from 'lmdb';
import { assert } from '../raft/assert.js';
import { BaseKvBackend, type KvBackend, KvSnapshot } from './backend.js';
import { readUint64, writeUint64 } from './bytes.js';
import {
  decodeRecord,
  decodeResult,
  encodeRecord,
  encodeResult,
  pack,
  type StoredRecord,
  unpack,
} from './codec.js';
import { KvError } from './errors.js';
import type { SessionRecord } from './sessions.js';
import { decodeSnapshot, type EncodedSession, encodeSnapshot, type SnapshotPart } from './snapshot.js';
import { DEFAULT_KV_OPTIONS, EMPTY_KV_META, type KvOptions, KvStateMachine } from './state-machine.js';
import type { KvStore, Revision } from './store.js';
import type { KvEntry, KvMeta, KvResult, LeaseInfo } from './types.js';

/** Options of the LMDB backend. */
export interface LmdbKvOptions extends KvOptions {
  /** Never fsync (see the module comment for what that risks). Default false. */
  readonly noSync: boolean;
}

/** The default options. */
export const DEFAULT_LMDB_KV_OPTIONS: LmdbKvOptions = Object.freeze({ ...DEFAULT_KV_OPTIONS, noSync: false });

type BinaryDatabase = Database<Uint8Array, Uint8Array>;

const RECORD = 0x72; // 'r'
const LEASE = 0x6c; // 'l'
const SESSION = 0x73; // 's'
const META_KEY = Uint8Array.of(0x6d); // 'm'
const GENERATION_KEY = Uint8Array.of(0x67); // 'g'
const STORE_FORMAT_VERSION = 1;

/** A prefix byte followed by up to two 8-byte numbers. */
function prefixedKey(prefix: number, ...numbers: number[]): Uint8Array {
  const key = new Uint8Array(1 + 8 * numbers.length);
  key[0] = prefix;
  for (let position = 0; position < numbers.length; position++)
    writeUint64(key, 1 + 8 * position, numbers[position]!);
  return key;
}

/** The {@link KvStore} over one generation database; writes join the open transaction. */
class LmdbStore implements KvStore {
  constructor(public db: BinaryDatabase) {}

  getRecord(main: number, sub: number): StoredRecord | undefined {
    const bytes = this.db.get(prefixedKey(RECORD, main, sub));
    return bytes === undefined ? undefined : decodeRecord(main, sub, bytes);
  }

  *scanRecords(fromMain: number, toMain: number, transaction?: Transaction): Generator<StoredRecord> {
    for (const [key, bytes] of this.scanEncoded(fromMain, toMain, transaction)) {
      yield decodeRecord(readUint64(key, 0), readUint64(key, 8), bytes);
    }
  }

  *scanEncoded(
    fromMain: number,
    toMain: number,
    transaction?: Transaction,
  ): Generator<readonly [Uint8Array, Uint8Array]> {
    const end =
      toMain >= Number.MAX_SAFE_INTEGER ? Uint8Array.of(RECORD + 1) : prefixedKey(RECORD, toMain + 1, 0);
    const options = { start: prefixedKey(RECORD, fromMain, 0), end, ...(transaction ? { transaction } : {}) };
    for (const { key, value } of this.db.getRange(options)) yield [key.subarray(1), value] as const;
  }

  putRecord(record: StoredRecord): void {
    this.db.putSync(prefixedKey(RECORD, record.main, record.sub), encodeRecord(record));
  }

  deleteRecords(revisions: readonly Revision[]): void {
    for (const { main, sub } of revisions) this.db.removeSync(prefixedKey(RECORD, main, sub));
  }

  putLease(lease: LeaseInfo): void {
    this.db.putSync(
      prefixedKey(LEASE, lease.id),
      pack([lease.ttlSeconds, lease.remainingTtlSeconds, lease.anchorMs]),
    );
  }

  deleteLease(id: number): void {
    this.db.removeSync(prefixedKey(LEASE, id));
  }

  putSession(session: SessionRecord): void {
    this.putEncodedSession({ ...session, result: encodeResult(session.result) });
  }

  putEncodedSession(session: EncodedSession): void {
    this.db.putSync(
      prefixedKey(SESSION, session.clientId),
      pack([session.seq, session.lastIndex, session.result]),
    );
  }

  deleteSession(clientId: number): void {
    this.db.removeSync(prefixedKey(SESSION, clientId));
  }

  putMeta(meta: KvMeta): void {
    this.db.putSync(
      META_KEY,
      pack([STORE_FORMAT_VERSION, meta.appliedIndex, meta.revision, meta.compactRevision]),
    );
  }

  readMeta(transaction?: Transaction): KvMeta | undefined {
    const bytes = this.db.get(META_KEY, transaction ? { transaction } : {});
    if (bytes === undefined) return undefined;
    const [version, appliedIndex, revision, compactRevision] = unpack(bytes) as number[];
    if (version !== STORE_FORMAT_VERSION) throw new KvError('CORRUPT', `kv: unknown store format ${version}`);
    return { appliedIndex: appliedIndex!, revision: revision!, compactRevision: compactRevision! };
  }

  *readLeases(transaction?: Transaction): Generator<LeaseInfo> {
    for (const { key, value } of this.scanPrefix(LEASE, transaction)) {
      const [ttlSeconds, remainingTtlSeconds, anchorMs] = unpack(value) as number[];
      yield {
        id: readUint64(key, 1),
        ttlSeconds: ttlSeconds!,
        remainingTtlSeconds: remainingTtlSeconds!,
        anchorMs: anchorMs!,
      };
    }
  }

  /** Sessions least recently touched first (stored by client id, so sorted here). */
  readEncodedSessions(transaction?: Transaction): EncodedSession[] {
    const sessions: EncodedSession[] = [];
    for (const { key, value } of this.scanPrefix(SESSION, transaction)) {
      const [seq, lastIndex, result] = unpack(value) as [number, number, Uint8Array];
      sessions.push({ clientId: readUint64(key, 1), seq, lastIndex, result });
    }
    return sessions.sort((a, b) => a.lastIndex - b.lastIndex);
  }

  private scanPrefix(
    prefix: number,
    transaction?: Transaction,
  ): Iterable<{ key: Uint8Array; value: Uint8Array }> {
    const options = { start: Uint8Array.of(prefix), end: Uint8Array.of(prefix + 1) };
    return this.db.getRange(transaction ? { ...options, transaction } : options);
  }
}

/** A key-value backend stored in an LMDB environment. */
export class LmdbKvBackend extends BaseKvBackend implements KvBackend {
  private restoring = false;

  private constructor(
    /** The environment directory. */
    readonly path: string,
    private readonly root: RootDatabase<Uint8Array, Uint8Array>,
    private readonly metaDb: BinaryDatabase,
    private readonly generations: readonly [BinaryDatabase, BinaryDatabase],
    private generation: number,
    private readonly store: LmdbStore,
    machine: KvStateMachine,
    private readonly commitFlags: number,
  ) {
    super(machine);
  }

  /**
   * Opens (creating if needed) the store in directory `path` and loads it: the returned
   * backend is at the stored applied index. `options` override {@link DEFAULT_LMDB_KV_OPTIONS}.
   */
  static open(path: string, options: Partial<LmdbKvOptions> = {}): LmdbKvBackend {
    const merged: LmdbKvOptions = { ...DEFAULT_LMDB_KV_OPTIONS, ...options };
    const root = open<Uint8Array, Uint8Array>({ path, maxDbs: 4, noSync: merged.noSync });
    const binary = { keyEncoding: 'binary', encoding: 'binary' } as const;
    const metaDb: BinaryDatabase = root.openDB({ name: 'meta', ...binary });
    const generations = [
      root.openDB({ name: 'kv-0', ...binary }),
      root.openDB({ name: 'kv-1', ...binary }),
    ] as const;
    const generation = metaDb.get(GENERATION_KEY)?.[0] ?? 0;
    assert(generation === 0 || generation === 1, `kv: bad generation ${generation}`);
    const store = new LmdbStore(generations[generation]);
    const machine = new KvStateMachine(store, merged);
    // Commit without waiting for the flush: overlapping sync keeps LMDB consistent meanwhile.
    const flags =
      TransactionFlags.ABORTABLE | TransactionFlags.SYNCHRONOUS_COMMIT | TransactionFlags.NO_SYNC_FLUSH;
    const backend = new LmdbKvBackend(path, root, metaDb, generations, generation, store, machine, flags);
    backend.load();
    // A restore that crashed midway may have left the inactive generation half written.
    root.transactionSync(() => generations[1 - generation]!.clearSync());
    return backend;
  }

  /** See {@link KvBackend.applyBatch}. */
  applyBatch(entries: readonly KvEntry[]): (KvResult | null)[] {
    this.ensureUsable();
    assert(!this.restoring, 'kv: entries applied during a restore');
    if (entries.length === 0) return [];
    const results: (KvResult | null)[] = [];
    try {
      this.root.transactionSync(() => {
        for (const entry of entries) results.push(this.machine.applyEntry(entry));
        this.store.putMeta(this.machine.position());
      }, this.commitFlags);
    } catch (error) {
      // Memory is now ahead of LMDB: only a reopen (which replays from LMDB) is safe.
      this.failure = error;
      throw error;
    }
    this.machine.publishWatchEvents();
    return results;
  }

  /** See {@link KvBackend.snapshot}: reads one LMDB read transaction, released when done. */
  snapshot(): KvSnapshot {
    this.ensureUsable();
    const transaction = this.root.useReadTransaction();
    // Its own store object: a restore may switch `this.store` to the other generation.
    const store = new LmdbStore(this.store.db);
    try {
      const meta = store.readMeta(transaction) ?? EMPTY_KV_META;
      const source = {
        meta,
        records: store.scanEncoded(0, Number.MAX_SAFE_INTEGER, transaction),
        leases: store.readLeases(transaction),
        sessions: store.readEncodedSessions(transaction),
      };
      const chunks = encodeSnapshot(source, this.options.snapshotChunkBytesMax);
      return new KvSnapshot(meta, chunks, () => transaction.done());
    } catch (error) {
      transaction.done();
      throw error;
    }
  }

  /** See {@link KvBackend.restore}: fills the inactive generation, then flips to it. */
  async restore(chunks: Iterable<Uint8Array> | AsyncIterable<Uint8Array>): Promise<void> {
    this.ensureUsable();
    assert(!this.restoring, 'kv: restore already in progress');
    this.restoring = true;
    try {
      const next = 1 - this.generation;
      const target = new LmdbStore(this.generations[next]!);
      this.root.transactionSync(() => target.db.clearSync());
      for await (const part of decodeSnapshot(chunks)) {
        this.root.transactionSync(() => writePart(target, part));
      }
      const previous = this.generations[this.generation]!;
      this.root.transactionSync(() => this.metaDb.putSync(GENERATION_KEY, Uint8Array.of(next)));
      this.generation = next;
      this.store.db = target.db;
      this.load();
      this.root.transactionSync(() => previous.clearSync());
    } finally {
      this.restoring = false;
    }
  }

  /**
   * The environment's size: `fileBytes` allocated on disk (etcd's `dbSize`) and `usedBytes` up
   * to its last used page (etcd's `dbSizeInUse`; LMDB reuses freed pages below it).
   */
  storageStats(): { fileBytes: number; usedBytes: number } {
    this.ensureUsable();
    const stats = this.root.getStats() as { pageSize?: number; lastPageNumber?: number };
    const pageSize = stats.pageSize ?? 4096;
    const usedBytes = ((stats.lastPageNumber ?? 0) + 1) * pageSize;
    let fileBytes = usedBytes;
    try {
      fileBytes = statSync(join(this.path, 'data.mdb')).size;
    } catch {
      // Not a directory environment: report the used size.
    }
    return { fileBytes, usedBytes };
  }

  /** Resolves once every committed batch is flushed to disk. */
  async sync(): Promise<void> {
    this.ensureUsable();
    await this.root.flushed;
  }

  /** Cancels watchers and closes the environment (after flushing). */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.machine.hub.cancelAll();
    await this.root.close();
  }

  /** Loads the active generation into the state machine. */
  private load(): void {
    try {
      const meta = this.store.readMeta() ?? EMPTY_KV_META;
      const sessions = this.store.readEncodedSessions().map((session) => ({
        ...session,
        result: decodeResult(session.result),
      }));
      const records = this.store.scanRecords(0, Number.MAX_SAFE_INTEGER);
      this.machine.reset(meta, records, this.store.readLeases(), sessions);
    } catch (error) {
      this.failure = error;
      throw error;
    }
  }
}

/** Writes one decoded snapshot part into `store` (inside a transaction). */
function writePart(store: LmdbStore, part: SnapshotPart): void {
  switch (part.kind) {
    case 'header':
      store.putMeta(part.meta);
      return;
    case 'records':
      for (const [revisionKey, bytes] of part.records) {
        const key = new Uint8Array(17);
        key[0] = RECORD;
        key.set(revisionKey, 1);
        store.db.putSync(key, bytes);
      }
      return;
    case 'leases':
      for (const lease of part.leases) store.putLease(lease);
      return;
    case 'sessions':
      for (const session of part.sessions) store.putEncodedSession(session);
      return;
  }
}
