/**
 * The in-memory backend, for the simulator and tests: the history is an array of records
 * in revision order; leases and sessions live only in the state machine's tables. It has
 * no durability: "restart" means restoring a snapshot.
 */

import { assert } from '../raft/assert.js';
import { BaseKvBackend, type KvBackend, KvSnapshot } from './backend.js';
import { readUint64, revisionKey } from './bytes.js';
import { decodeRecord, decodeResult, encodeRecord, encodeResult, type StoredRecord } from './codec.js';
import { IndexLoader } from './index-loader.js';
import type { SessionRecord } from './sessions.js';
import { decodeSnapshot, encodeSnapshot } from './snapshot.js';
import { DEFAULT_KV_OPTIONS, type KvOptions, KvStateMachine } from './state-machine.js';
import type { KvStore, Revision } from './store.js';
import type { KvEntry, KvMeta, KvResult, LeaseInfo } from './types.js';

/** The memory {@link KvStore}: records sorted by revision. */
export class MemoryStore implements KvStore {
  // Invariant: ascending by (main, sub).
  private records: StoredRecord[] = [];

  getRecord(main: number, sub: number): StoredRecord | undefined {
    const position = this.lowerBound(main, sub);
    const record = this.records[position];
    return record !== undefined && record.main === main && record.sub === sub ? record : undefined;
  }

  *scanRecords(fromMain: number, toMain: number): Generator<StoredRecord> {
    const records = this.records;
    for (let position = this.lowerBound(fromMain, 0); position < records.length; position++) {
      const record = records[position]!;
      if (record.main > toMain) return;
      yield record;
    }
  }

  *scanEncoded(fromMain: number, toMain: number): Generator<readonly [Uint8Array, Uint8Array]> {
    for (const record of this.scanRecords(fromMain, toMain)) {
      yield [revisionKey(record.main, record.sub), encodeRecord(record)];
    }
  }

  putRecord(record: StoredRecord): void {
    const last = this.records[this.records.length - 1];
    assert(
      last === undefined || last.main < record.main || (last.main === record.main && last.sub < record.sub),
      'memory store: records must be appended in revision order',
    );
    this.records.push(record);
  }

  deleteRecords(revisions: readonly Revision[]): void {
    if (revisions.length === 0) return;
    const dropped = new Set(revisions.map((revision) => `${revision.main}.${revision.sub}`));
    this.records = this.records.filter((record) => !dropped.has(`${record.main}.${record.sub}`));
  }

  deleteCompacted(revisions: readonly Revision[]): void {
    this.deleteRecords(revisions);
  }

  // Leases and sessions are held by the state machine's tables; nothing else to keep.
  putLease(): void {}
  deleteLease(): void {}
  putSession(): void {}
  deleteSession(): void {}

  /** The records now (a copy of the list; records themselves are immutable). */
  all(): StoredRecord[] {
    return this.records.slice();
  }

  /** Replaces every record. */
  load(records: StoredRecord[]): void {
    this.records = records;
  }

  private lowerBound(main: number, sub: number): number {
    let low = 0;
    let high = this.records.length;
    while (low < high) {
      const middle = (low + high) >>> 1;
      const record = this.records[middle]!;
      if (record.main < main || (record.main === main && record.sub < sub)) low = middle + 1;
      else high = middle;
    }
    return low;
  }
}

/** A key-value backend held entirely in memory. */
export class MemoryKvBackend extends BaseKvBackend implements KvBackend {
  private readonly store: MemoryStore;

  /** An empty store; `options` override {@link DEFAULT_KV_OPTIONS}. */
  constructor(options: Partial<KvOptions> = {}) {
    const store = new MemoryStore();
    super(new KvStateMachine(store, { ...DEFAULT_KV_OPTIONS, ...options }));
    this.store = store;
  }

  /** See {@link KvBackend.applyBatch}. */
  applyBatch(entries: readonly KvEntry[]): (KvResult | null)[] {
    this.ensureUsable();
    const results = entries.map((entry) => this.machine.applyEntry(entry));
    this.machine.publishWatchEvents();
    return results;
  }

  /** Nothing is ever in flight. */
  backPressure(): undefined {
    return undefined;
  }

  /** Nothing fails in the background. */
  onFailure(): void {}

  /** See {@link KvBackend.snapshot}; the state is captured now, encoded as chunks are pulled. */
  snapshot(): KvSnapshot {
    this.ensureUsable();
    const meta = this.machine.position();
    const records = this.store.all();
    const sessions = this.machine.sessionList();
    const source = {
      meta,
      records: (function* () {
        for (const record of records)
          yield [revisionKey(record.main, record.sub), encodeRecord(record)] as const;
      })(),
      leases: this.machine.leaseList(),
      sessions: sessions.map((session) => ({ ...session, result: encodeResult(session.result) })),
    };
    return new KvSnapshot(meta, encodeSnapshot(source, this.options.snapshotChunkBytesMax));
  }

  /** See {@link KvBackend.restore}. */
  async restore(chunks: Iterable<Uint8Array> | AsyncIterable<Uint8Array>): Promise<void> {
    this.ensureUsable();
    let meta: KvMeta | undefined;
    const records: StoredRecord[] = [];
    const leases: LeaseInfo[] = [];
    const sessions: SessionRecord[] = [];
    for await (const part of decodeSnapshot(chunks)) {
      if (part.kind === 'header') meta = part.meta;
      else if (part.kind === 'records') {
        for (const [key, bytes] of part.records) {
          records.push(decodeRecord(readUint64(key, 0), readUint64(key, 8), bytes));
        }
      } else if (part.kind === 'leases') leases.push(...part.leases);
      else {
        for (const session of part.sessions)
          sessions.push({ ...session, result: decodeResult(session.result) });
      }
    }
    assert(meta !== undefined, 'kv: snapshot decoded without header');
    try {
      const loaded = new IndexLoader(meta.revision);
      for (const { main, sub, tombstone, kv } of records) {
        const { createRevision, version, lease } = kv;
        loaded.add(main, sub, { key: kv.key, tombstone, createRevision, version, lease });
      }
      this.machine.reset(meta, loaded, leases, sessions);
      this.store.load(records);
    } catch (error) {
      this.failure = error;
      throw error;
    }
  }

  /** Nothing to make durable. */
  async sync(): Promise<void> {
    this.ensureUsable();
  }

  /** Cancels every watcher; the backend is unusable afterwards. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.machine.hub.cancelAll();
    this.closed = true;
  }
}
