/**
 * The storage side of the LMDB backend (lmdb-backend.ts): the key layout and encodings, the
 * {@link KvStore} the state machine writes through, and the overlay of records whose LMDB
 * commit is still in flight.
 *
 * The state machine's writes do not touch LMDB while a batch is applied: they are staged as
 * the batch's {@link StagedWrites}, which the commit pipeline (lmdb-commits.ts) writes into
 * one LMDB transaction later, off the apply path. Until that commit resolves, the batch's
 * record puts and deletes also sit in the {@link RecordOverlay}, and every record read here
 * (point reads, history scans, hashes, snapshots) consults the overlay first, so a batch is
 * visible to every read from the moment it is applied. Leases and sessions need no overlay:
 * the state machine reads them from its own tables, and so does a snapshot.
 */

import type { Database, DatabaseOptions, RootDatabase, Transaction } from 'lmdb';
import { assert } from '../raft/assert.js';
import { parseAlarms } from './alarms.js';
import { readUint64, revisionKey, writeUint64 } from './bytes.js';
import {
  decodeRecord,
  decodeRecordHead,
  encodeRecord,
  encodeResult,
  pack,
  type RecordHead,
  readRecordHead,
  type StoredRecord,
  unpack,
} from './codec.js';
import { KvError } from './errors.js';
import { CompactedBacklog, type CompactedSet, NOTHING_COMPACTED } from './lmdb-compacted.js';
import type { SessionRecord } from './sessions.js';
import type { EncodedSession } from './snapshot.js';
import type { KvStore, Revision } from './store.js';
import type { KvMeta, LeaseInfo } from './types.js';

/** A database of the environment, binary keys and values. */
export type BinaryDatabase = Database<Uint8Array, Uint8Array>;

const RECORD = 0x72; // 'r'
const LEASE = 0x6c; // 'l'
const SESSION = 0x73; // 's'
/** The key of the `m` record: `[formatVersion, appliedIndex, revision, compactRevision]`. */
export const META_KEY = Uint8Array.of(0x6d); // 'm'
const STORE_FORMAT_VERSION = 1;
/** Bytes counted per staged write beside its key and value (array slots, LMDB node header). */
const WRITE_OVERHEAD_BYTES = 48;

/** A prefix byte followed by up to two 8-byte numbers. */
function prefixedKey(prefix: number, ...numbers: number[]): Uint8Array {
  const key = new Uint8Array(1 + 8 * numbers.length);
  key[0] = prefix;
  for (let position = 0; position < numbers.length; position++)
    writeUint64(key, 1 + 8 * position, numbers[position]!);
  return key;
}

/** The LMDB key of the record at (main, sub). */
export function recordKey(main: number, sub: number): Uint8Array {
  return prefixedKey(RECORD, main, sub);
}

/** The LMDB key of a record from its 16-byte revision key (as snapshots carry it). */
export function recordKeyOf(revision: Uint8Array): Uint8Array {
  const key = new Uint8Array(17);
  key[0] = RECORD;
  key.set(revision, 1);
  return key;
}

/** The `m` record's bytes for `meta`. */
export function encodeMeta(meta: KvMeta): Uint8Array {
  const fields = [STORE_FORMAT_VERSION, meta.appliedIndex, meta.revision, meta.compactRevision];
  // Raised alarms follow as [memberId, type] pairs (absent when none, the format before alarms).
  const alarms = meta.alarms ?? [];
  return pack(alarms.length === 0 ? fields : [...fields, alarms.map((a) => [a.memberId, a.alarm])]);
}

/** Reads the `m` record of `db` (in `transaction`, or the open write transaction, or the latest). */
export function readMeta(db: BinaryDatabase, transaction?: Transaction): KvMeta | undefined {
  const bytes = db.get(META_KEY, transaction ? { transaction } : {});
  if (bytes === undefined) return undefined;
  const [version, appliedIndex, revision, compactRevision, alarms] = unpack(bytes) as unknown[];
  if (version !== STORE_FORMAT_VERSION) throw new KvError('CORRUPT', `kv: unknown store format ${version}`);
  const position = {
    appliedIndex: appliedIndex as number,
    revision: revision as number,
    compactRevision: compactRevision as number,
  };
  return alarms === undefined ? position : { ...position, alarms: parseAlarms(alarms) };
}

/** The LMDB entry of a lease. */
export function leaseEntry(lease: LeaseInfo): [Uint8Array, Uint8Array] {
  return [prefixedKey(LEASE, lease.id), pack([lease.ttlSeconds, lease.remainingTtlSeconds, lease.anchorMs])];
}

/** The LMDB entry of a session (its outcome already encoded). */
export function sessionEntry(session: EncodedSession): [Uint8Array, Uint8Array] {
  return [prefixedKey(SESSION, session.clientId), pack([session.seq, session.lastIndex, session.result])];
}

/** Every lease stored in `db`, by ascending id. */
export function* readLeases(db: BinaryDatabase): Generator<LeaseInfo> {
  for (const { key, value } of scanPrefix(db, LEASE)) {
    const [ttlSeconds, remainingTtlSeconds, anchorMs] = unpack(value) as number[];
    yield {
      id: readUint64(key, 1),
      ttlSeconds: ttlSeconds!,
      remainingTtlSeconds: remainingTtlSeconds!,
      anchorMs: anchorMs!,
    };
  }
}

/** Every session stored in `db`, least recently touched first (stored by client id, so sorted here). */
export function readEncodedSessions(db: BinaryDatabase): EncodedSession[] {
  const sessions: EncodedSession[] = [];
  for (const { key, value } of scanPrefix(db, SESSION)) {
    const [seq, lastIndex, result] = unpack(value) as [number, number, Uint8Array];
    sessions.push({ clientId: readUint64(key, 1), seq, lastIndex, result });
  }
  return sessions.sort((a, b) => a.lastIndex - b.lastIndex);
}

function scanPrefix(db: BinaryDatabase, prefix: number): Iterable<{ key: Uint8Array; value: Uint8Array }> {
  return db.getRange({ start: Uint8Array.of(prefix), end: Uint8Array.of(prefix + 1) });
}

/** The writes of one batch, in order: what its LMDB transaction will do. */
export class StagedWrites {
  private readonly keys: Uint8Array[] = [];
  /** The value to put, or null to delete the key. */
  private readonly values: (Uint8Array | null)[] = [];
  /** Roughly what the writes hold in memory (counted against the in-flight bound). */
  bytes = 0;

  put(key: Uint8Array, value: Uint8Array): void {
    this.keys.push(key);
    this.values.push(value);
    this.bytes += key.length + value.length + WRITE_OVERHEAD_BYTES;
  }

  remove(key: Uint8Array): void {
    this.keys.push(key);
    this.values.push(null);
    this.bytes += key.length + WRITE_OVERHEAD_BYTES;
  }

  /** Performs the writes on `db`; call it inside an LMDB write transaction. */
  writeTo(db: BinaryDatabase): void {
    for (let i = 0; i < this.keys.length; i++) {
      const value = this.values[i]!;
      if (value === null) db.removeSync(this.keys[i]!);
      else db.putSync(this.keys[i]!, value);
    }
  }
}

/** A record put by a batch whose commit has not resolved, with its stored bytes. */
interface PendingRecord {
  readonly record: StoredRecord;
  readonly bytes: Uint8Array;
  /** The batch that wrote it (its first index): the overlay drops it once that batch is committed. */
  readonly tag: number;
}

/** A record as a scan yields it: its revision, its stored bytes, and the record when at hand. */
export interface ScannedRecord {
  readonly main: number;
  readonly sub: number;
  readonly bytes: Uint8Array;
  readonly record?: StoredRecord;
}

/**
 * The records put or deleted by batches whose LMDB commit has not resolved yet. Record puts
 * come in revision order and batches commit in order, so the pending puts are the newest
 * revisions: every stored record below the first pending revision is in LMDB's committed
 * state, and LMDB holds nothing at or above it that the overlay lacks (a batch's records
 * leave the overlay only once LMDB has committed them). Deletes (compaction) may hit any
 * revision and hide it, in LMDB or in the overlay, until their batch is committed.
 */
export class RecordOverlay {
  private puts: PendingRecord[] = [];
  private head = 0;
  /** `main.sub` → the tag of the batch that deleted it; in batch order. */
  private readonly deletes = new Map<string, number>();

  /** How many puts and deletes are pending. */
  get size(): number {
    return this.puts.length - this.head + this.deletes.size;
  }

  /** The lowest main revision of a pending put, or Infinity when none is pending. */
  firstMain(): number {
    return this.head < this.puts.length ? this.puts[this.head]!.record.main : Number.POSITIVE_INFINITY;
  }

  put(record: StoredRecord, bytes: Uint8Array, tag: number): void {
    this.puts.push({ record, bytes, tag });
  }

  delete(main: number, sub: number, tag: number): void {
    this.deletes.set(`${main}.${sub}`, tag);
  }

  /** Whether a pending delete hides the record at (main, sub). */
  isDeleted(main: number, sub: number): boolean {
    return this.deletes.size > 0 && this.deletes.has(`${main}.${sub}`);
  }

  /** The pending put at (main, sub), if any (deletes not considered). */
  find(main: number, sub: number): StoredRecord | undefined {
    let low = this.head;
    let high = this.puts.length;
    while (low < high) {
      const middle = (low + high) >>> 1;
      const { record } = this.puts[middle]!;
      if (record.main < main || (record.main === main && record.sub < sub)) low = middle + 1;
      else high = middle;
    }
    const found = this.puts[low]?.record;
    return found !== undefined && found.main === main && found.sub === sub ? found : undefined;
  }

  /** The pending puts with `fromMain <= main <= toMain` and not deleted, ascending. */
  *pending(fromMain: number, toMain: number): Generator<ScannedRecord> {
    for (let position = this.head; position < this.puts.length; position++) {
      const { record, bytes } = this.puts[position]!;
      if (record.main > toMain) return;
      if (record.main < fromMain || this.isDeleted(record.main, record.sub)) continue;
      yield { main: record.main, sub: record.sub, bytes, record };
    }
  }

  /** Drops what the batches up to tag `tag` wrote: LMDB's committed state now has it. */
  retire(tag: number): void {
    while (this.head < this.puts.length && this.puts[this.head]!.tag <= tag) this.head++;
    if (this.head === this.puts.length) {
      this.puts = [];
      this.head = 0;
    } else if (this.head > 1024 && this.head * 2 > this.puts.length) {
      this.puts = this.puts.slice(this.head);
      this.head = 0;
    }
    for (const [key, deletedBy] of this.deletes) {
      if (deletedBy > tag) break;
      this.deletes.delete(key);
    }
  }

  /** A copy that later puts, deletes and retirements do not change (for a snapshot). */
  freeze(): RecordOverlay {
    const copy = new RecordOverlay();
    copy.puts = this.puts.slice(this.head);
    for (const [key, tag] of this.deletes) copy.deletes.set(key, tag);
    return copy;
  }
}

/**
 * The records of `db` (as of `transaction`, or LMDB's latest committed state) seen through
 * `overlay`, with `fromMain <= main <= toMain`, ascending by revision.
 */
export function* scanRecordView(
  db: BinaryDatabase,
  overlay: RecordOverlay,
  fromMain: number,
  toMain: number,
  transaction?: Transaction,
  compacted: CompactedSet = NOTHING_COMPACTED,
): Generator<ScannedRecord> {
  // LMDB up to the first pending put, then the overlay's puts: each revision from one source.
  const storedTo = Math.min(toMain, overlay.firstMain() - 1);
  if (fromMain <= storedTo) {
    const end = storedTo >= Number.MAX_SAFE_INTEGER ? Uint8Array.of(RECORD + 1) : recordKey(storedTo + 1, 0);
    const range = { start: recordKey(fromMain, 0), end, ...(transaction ? { transaction } : {}) };
    for (const { key, value } of db.getRange(range)) {
      const main = readUint64(key, 1);
      const sub = readUint64(key, 9);
      if (!overlay.isDeleted(main, sub) && !compacted.has(main, sub)) yield { main, sub, bytes: value };
    }
  }
  for (const record of overlay.pending(fromMain, toMain)) {
    if (!compacted.has(record.main, record.sub)) yield record;
  }
}

/**
 * A second handle on a generation database whose reads yield each record's head (key,
 * tombstone, lease) decoded inside LMDB's reused read buffer, so a scan never copies a value
 * (lmdb-js hands a decoder without `needsStableBuffer` its own buffer); bytes of another
 * shape come back as a copy, for {@link decodeRecordHead} to decode in full. Only
 * {@link scanRecordHeads} reads through it.
 */
export type HeadDatabase = Database<RecordHead | Uint8Array, Uint8Array>;

/** Opens the {@link HeadDatabase} of the database `name` of `root`. */
export function openHeadDatabase(root: RootDatabase, name: string): HeadDatabase {
  return openDecoding(
    root,
    name,
    (bytes, size): RecordHead | Uint8Array => readRecordHead(bytes, size) ?? bytes.slice(0, size),
  );
}

/**
 * A handle on the database `name` whose reads yield views into LMDB's reused read buffer,
 * valid only until the next read: for a scan whose consumer copies each value at once (a
 * snapshot's records, snapshot-records.ts).
 */
export function openTransientDatabase(root: RootDatabase, name: string): BinaryDatabase {
  return openDecoding(root, name, (bytes, size) => bytes.subarray(0, size));
}

/** A read-only handle on `name` whose values `decode` reads in LMDB's own buffer (no copy first). */
function openDecoding<Value>(
  root: RootDatabase,
  name: string,
  decode: (bytes: Uint8Array, size: number) => Value,
): Database<Value, Uint8Array> {
  const encoder = {
    needsStableBuffer: false,
    encode: (): never => {
      throw new Error(`kv: this view of ${name} is read only`);
    },
    decode,
  };
  // lmdb-js takes `encoder` as a database option; its types do not list it.
  const options: DatabaseOptions & { name: string } = { name, keyEncoding: 'binary', encoding: 'binary' };
  return root.openDB({ ...options, encoder } as typeof options) as unknown as Database<Value, Uint8Array>;
}

/** The heads of every record in LMDB's latest committed state of `db`, ascending by revision. */
export function* scanRecordHeads(db: HeadDatabase): Generator<readonly [number, number, RecordHead]> {
  for (const { key, value } of db.getRange({
    start: Uint8Array.of(RECORD),
    end: Uint8Array.of(RECORD + 1),
  })) {
    const main = readUint64(key, 1);
    const sub = readUint64(key, 9);
    yield [main, sub, value instanceof Uint8Array ? decodeRecordHead(main, sub, value) : value];
  }
}

/** The (16-byte revision key, stored bytes) pairs of scanned records. */
export function* encodedRecords(
  records: Iterable<ScannedRecord>,
): Generator<readonly [Uint8Array, Uint8Array]> {
  for (const { main, sub, bytes } of records) yield [revisionKey(main, sub), bytes] as const;
}

/**
 * The {@link KvStore} over one generation database: writes are staged into the batch being
 * applied (and its records into the overlay); reads see LMDB's committed state through the
 * overlay.
 */
export class LmdbStore implements KvStore {
  private staged: { readonly writes: StagedWrites; readonly tag: number } | undefined;

  /** Records compaction dropped that LMDB still holds. */
  readonly compacted = new CompactedBacklog();

  constructor(
    public db: BinaryDatabase,
    /** The records of batches whose commit is in flight. */
    readonly overlay: RecordOverlay = new RecordOverlay(),
  ) {}

  /** Starts staging the writes of the batch whose first index is `tag`. */
  beginBatch(tag: number): StagedWrites {
    assert(this.staged === undefined, 'kv: a batch is already being staged');
    const writes = new StagedWrites();
    this.staged = { writes, tag };
    return writes;
  }

  /** Ends staging (whether the batch completed or not). */
  endBatch(): void {
    this.staged = undefined;
  }

  getRecord(main: number, sub: number): StoredRecord | undefined {
    const overlay = this.overlay;
    if (overlay.isDeleted(main, sub)) return undefined;
    if (main >= overlay.firstMain()) {
      const pending = overlay.find(main, sub);
      if (pending !== undefined) return pending;
    }
    const bytes = this.db.get(recordKey(main, sub));
    return bytes === undefined ? undefined : decodeRecord(main, sub, bytes);
  }

  *scanRecords(fromMain: number, toMain: number): Generator<StoredRecord> {
    const view = scanRecordView(
      this.db,
      this.overlay,
      fromMain,
      toMain,
      undefined,
      this.compacted.view(fromMain),
    );
    for (const scanned of view) {
      yield scanned.record ?? decodeRecord(scanned.main, scanned.sub, scanned.bytes);
    }
  }

  scanEncoded(fromMain: number, toMain: number): Iterable<readonly [Uint8Array, Uint8Array]> {
    return encodedRecords(
      scanRecordView(this.db, this.overlay, fromMain, toMain, undefined, this.compacted.view(fromMain)),
    );
  }

  putRecord(record: StoredRecord): void {
    const { writes, tag } = this.batch();
    const bytes = encodeRecord(record);
    writes.put(recordKey(record.main, record.sub), bytes);
    this.overlay.put(record, bytes, tag);
  }

  deleteRecords(revisions: readonly Revision[]): void {
    const { writes, tag } = this.batch();
    for (const { main, sub } of revisions) {
      writes.remove(recordKey(main, sub));
      this.overlay.delete(main, sub, tag);
    }
  }

  deleteCompacted(revisions: readonly Revision[], index: number): void {
    this.compacted.add(revisions, index);
  }

  putLease(lease: LeaseInfo): void {
    this.batch().writes.put(...leaseEntry(lease));
  }

  deleteLease(id: number): void {
    this.batch().writes.remove(prefixedKey(LEASE, id));
  }

  putSession(session: SessionRecord): void {
    this.batch().writes.put(...sessionEntry({ ...session, result: encodeResult(session.result) }));
  }

  deleteSession(clientId: number): void {
    this.batch().writes.remove(prefixedKey(SESSION, clientId));
  }

  /** Stages the new `m` record (the batch's last write). */
  putMeta(meta: KvMeta): void {
    this.batch().writes.put(META_KEY, encodeMeta(meta));
  }

  private batch(): { readonly writes: StagedWrites; readonly tag: number } {
    assert(this.staged !== undefined, 'kv: store written outside a batch');
    return this.staged;
  }
}
