/**
 * Restoring a snapshot into the LMDB backend's inactive generation (lmdb-backend.ts, which
 * flips to it afterwards), in bounded memory whatever the store's size:
 *
 * - the decoded chunks' writes are staged until they reach `restoreTransactionBytesMax`,
 *   then written in one lmdb-js asynchronous transaction, committed (and fsync'd) by
 *   lmdb-js's write thread, off the event loop; at most one transaction is in flight while
 *   the next one is staged, so the restore holds at most about two transactions' writes
 *   (plus LMDB's dirty pages of the one in flight) and one chunk;
 * - the key index of the restored store is built from the records as they pass (their
 *   heads: key, tombstone, lease; values are not decoded), so the store is not scanned
 *   again once written, which would read every page of it back into memory.
 *
 * Nothing here is visible before the flip: a stream that turns out torn or altered (the
 * snapshot's checksum is verified at its end) leaves a half-written inactive generation,
 * which the next restore or open clears.
 */

import type { PutOptions, RootDatabase } from 'lmdb';
import { readUint64 } from './bytes.js';
import { decodeRecordHead } from './codec.js';
import { IndexLoader } from './index-loader.js';
import {
  type BinaryDatabase,
  encodeMeta,
  leaseEntry,
  META_KEY,
  recordKeyOf,
  sessionEntry,
} from './lmdb-store.js';
import { decodeSnapshot, type SnapshotPart } from './snapshot.js';
import type { KvMeta } from './types.js';

/**
 * lmdb-js's put option for `MDB_APPEND`. The decoder refuses records out of revision order
 * (snapshot.ts) before they are staged; a key out of order would fail its put
 * (`MDB_KEYEXIST`) and the restore with it, never be stored out of place.
 */
const APPEND: PutOptions = { append: true };

/** Bytes counted per staged write beside its key and value. */
const WRITE_OVERHEAD_BYTES = 48;

/** What a restore wrote: the position and the key index of the restored store. */
export interface RestoredGeneration {
  readonly meta: KvMeta;
  readonly loaded: IndexLoader;
}

/** Writes staged in memory, flushed as one transaction at a time. */
class TransactionStager {
  private keys: Uint8Array[] = [];
  private values: Uint8Array[] = [];
  /** Whether each staged write goes after every key in the database (LMDB's `MDB_APPEND`). */
  private appends: boolean[] = [];
  private bytes = 0;
  private inFlight: Promise<unknown> | undefined;
  /** The most staged bytes seen (for tests of the bound). */
  peakStagedBytes = 0;

  constructor(
    private readonly root: RootDatabase,
    private readonly db: BinaryDatabase,
    private readonly bytesMax: number,
  ) {}

  /**
   * Stages a put; once the staged bytes reach the bound, flushes (await the promise then).
   * `append`: the key sorts after every key written so far, so LMDB adds it at the end of
   * the tree without a search, and fills each page before it starts the next (a page split
   * in the middle leaves both halves half empty).
   */
  put(key: Uint8Array, value: Uint8Array, append = false): Promise<void> | undefined {
    this.keys.push(key);
    this.values.push(value);
    this.appends.push(append);
    this.bytes += key.length + value.length + WRITE_OVERHEAD_BYTES;
    if (this.bytes > this.peakStagedBytes) this.peakStagedBytes = this.bytes;
    return this.bytes >= this.bytesMax ? this.flush() : undefined;
  }

  /** Starts the transaction of what is staged, once the previous one has committed. */
  async flush(): Promise<void> {
    await this.inFlight;
    if (this.keys.length === 0) return;
    const { keys, values, appends, db } = this;
    this.keys = [];
    this.values = [];
    this.appends = [];
    this.bytes = 0;
    this.inFlight = this.root.transaction(() => {
      for (let i = 0; i < keys.length; i++) {
        if (appends[i]) db.putSync(keys[i]!, values[i]!, APPEND);
        else db.putSync(keys[i]!, values[i]!);
      }
    });
  }

  /** Drops what is staged and waits for the transaction in flight (a failed restore). */
  async abandon(): Promise<void> {
    this.keys = [];
    this.values = [];
    this.appends = [];
    await this.inFlight;
  }

  /** Resolves once everything staged is committed. */
  async settled(): Promise<void> {
    await this.flush();
    await this.inFlight;
  }
}

/**
 * Writes the snapshot `chunks` into `db` (cleared beforehand) in transactions of about
 * `transactionBytesMax` bytes; resolves once every transaction is committed and the
 * snapshot's checksum verified. `observe` sees the most bytes staged at once.
 */
export async function restoreGeneration(
  root: RootDatabase,
  db: BinaryDatabase,
  chunks: Iterable<Uint8Array> | AsyncIterable<Uint8Array>,
  transactionBytesMax: number,
  observe: (peakStagedBytes: number) => void = () => {},
): Promise<RestoredGeneration> {
  const stager = new TransactionStager(root, db, transactionBytesMax);
  let meta: KvMeta | undefined;
  let loaded: IndexLoader | undefined;
  try {
    for await (const part of decodeSnapshot(chunks)) {
      if (part.kind === 'header') {
        meta = part.meta;
        loaded = new IndexLoader(meta.revision);
      }
      await stagePart(stager, part, loaded!);
    }
    await stager.settled();
  } catch (error) {
    // A failed stream: wait for the transaction in flight, so the caller may clear `db` again.
    await stager.abandon().catch(() => {});
    throw error;
  } finally {
    observe(stager.peakStagedBytes);
  }
  return { meta: meta!, loaded: loaded! };
}

/** Stages the writes of one decoded snapshot part (the header comes first, so `loaded` is set). */
async function stagePart(stager: TransactionStager, part: SnapshotPart, loaded: IndexLoader): Promise<void> {
  // Records arrive in revision order, and their prefix sorts after the meta record's, which
  // comes first; leases (a prefix before the records') and sessions are put in place.
  const append = part.kind === 'records';
  const entries: Iterable<readonly [Uint8Array, Uint8Array]> =
    part.kind === 'header'
      ? [[META_KEY, encodeMeta(part.meta)]]
      : part.kind === 'records'
        ? recordEntries(part.records, loaded)
        : part.kind === 'leases'
          ? part.leases.map(leaseEntry)
          : part.sessions.map(sessionEntry);
  for (const [key, value] of entries) {
    const flushing = stager.put(key, value, append);
    if (flushing !== undefined) await flushing;
  }
}

/** The LMDB entries of snapshot records, each added to the key index as it passes. */
function* recordEntries(
  records: readonly (readonly [Uint8Array, Uint8Array])[],
  loaded: IndexLoader,
): Generator<readonly [Uint8Array, Uint8Array]> {
  for (const [revisionKey, bytes] of records) {
    const main = readUint64(revisionKey, 0);
    const sub = readUint64(revisionKey, 8);
    loaded.add(main, sub, decodeRecordHead(main, sub, bytes));
    yield [recordKeyOf(revisionKey), bytes];
  }
}
