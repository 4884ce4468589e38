/**
 * The MVCC state machine both backends share: it executes commands, keeps the in-memory
 * key index, lease table and session table, and mirrors every change into a {@link KvStore}.
 * It is deterministic: it reads no clock and no randomness (time comes in commands), and
 * iterates only in orders fixed by the applied commands, so every replica that applies
 * the same entries from the same state ends with identical state and stored bytes.
 */

import { createHash, type Hash } from 'node:crypto';
import { assert } from '../raft/assert.js';
import { AlarmTable, growsStore } from './alarms.js';
import { inKeyRange, type KeyRange, keyBytes, keyString, parseKeyRange, writeUint64 } from './bytes.js';
import { encodeResult, type StoredRecord } from './codec.js';
import { isKvError, KvError } from './errors.js';
import { checkIndex } from './index-check.js';
import type { IndexLoader } from './index-loader.js';
import { IndexEntry, KeyIndex } from './key-index.js';
import { LeaseTable, remainingSeconds } from './leases.js';
import { selectRange } from './range.js';
import { type SessionRecord, SessionTable, staleSequence, validSession } from './sessions.js';
import type { KvStore } from './store.js';
import type {
  AlarmRequest,
  ClientSession,
  KeyValue,
  KvAlarm,
  KvCommand,
  KvEntry,
  KvHash,
  KvMeta,
  KvResponse,
  KvResult,
  LeaseCheckpointRequest,
  LeaseGrantRequest,
  LeaseInfo,
  LeaseTimeToLive,
  RangeRequest,
  RangeResponse,
  WatchBatch,
  WatchEvent,
  WatchRequest,
} from './types.js';
import { DEFAULT_KV_LIMITS, type KvLimits, validateCommand } from './validate.js';
import { type Watcher, WatchHub, type WatchHubOptions, type WatchSource } from './watch-hub.js';
import { NO_WATCH_MUTATIONS, type WatchMutations } from './watch-routes.js';
import { type CommittedReads, type RangeCandidate, WriteTxn } from './write-txn.js';

/**
 * Options of a key-value store. The {@link KvLimits} and `sessionsMax` decide command
 * outcomes, so they must be equal on every replica; the others are local.
 */
export interface KvOptions extends KvLimits, WatchHubOptions {
  /** Most client sessions kept; the least recently used is evicted beyond it. */
  readonly sessionsMax: number;
  /** Target size of one snapshot chunk (a chunk holding one large record may exceed it). */
  readonly snapshotChunkBytesMax: number;
}

/** The default options. */
export const DEFAULT_KV_OPTIONS: KvOptions = Object.freeze({
  ...DEFAULT_KV_LIMITS,
  sessionsMax: 10_000,
  watchQueueBatchesMax: 1024,
  watchCatchUpRevisionsMax: 256,
  snapshotChunkBytesMax: 1024 * 1024,
});

/** The state of an empty store: etcd starts at revision 1. */
export const EMPTY_KV_META: KvMeta = Object.freeze({ appliedIndex: 0, revision: 1, compactRevision: 0 });

/** The shared MVCC core of every backend. */
export class KvStateMachine implements CommittedReads, WatchSource {
  private meta: { appliedIndex: number; revision: number; compactRevision: number } = { ...EMPTY_KV_META };
  private index = new KeyIndex();
  private readonly leases = new LeaseTable();
  private readonly sessions = new SessionTable();
  private readonly alarms = new AlarmTable();
  /** Revisions committed since the last {@link KvStateMachine.publishWatchEvents}. */
  private published: WatchBatch[] = [];
  /** The watch hub fed by this machine. */
  readonly hub: WatchHub;

  constructor(
    private readonly store: KvStore,
    /** The options (already merged with the defaults). */
    readonly options: KvOptions,
    /** Deliberate watch routing bugs, for the watch model test's mutation check only. */
    watchMutations: WatchMutations = NO_WATCH_MUTATIONS,
  ) {
    assert(options.sessionsMax >= 1, 'kv: sessionsMax must be positive');
    assert(options.watchQueueBatchesMax >= 1, 'kv: watchQueueBatchesMax must be positive');
    assert(options.watchCatchUpRevisionsMax >= 1, 'kv: watchCatchUpRevisionsMax must be positive');
    this.hub = new WatchHub(this, options, watchMutations);
  }

  /** The current revision. */
  get revision(): number {
    return this.meta.revision;
  }

  /** The compacted revision (0 before any compaction). */
  get compactRevision(): number {
    return this.meta.compactRevision;
  }

  /** Index of the last applied entry. */
  get appliedIndex(): number {
    return this.meta.appliedIndex;
  }

  /** A copy of the position (applied index, revisions) with the raised alarms, if any. */
  position(): KvMeta {
    const alarms = this.alarms.list();
    return alarms.length === 0 ? { ...this.meta } : { ...this.meta, alarms };
  }

  /** The raised alarms (etcd `AlarmList`). */
  alarmList(): KvAlarm[] {
    return this.alarms.list();
  }

  /**
   * Replaces the whole state: the key index `loaded` from the records (see index-loader.ts),
   * `sessions` least recently touched first. Throws `CORRUPT` if they contradict each other.
   */
  reset(
    meta: KvMeta,
    loaded: IndexLoader,
    leases: Iterable<LeaseInfo>,
    sessions: Iterable<SessionRecord>,
  ): void {
    this.index = loaded.index;
    this.leases.clear();
    for (const lease of leases) this.leases.add(lease);
    for (const [key, lease] of loaded.leaseOfKey) {
      if (this.leases.get(lease) === undefined)
        throw new KvError('CORRUPT', `kv: key attached to missing lease`);
      this.leases.move(key, 0, lease);
    }
    this.sessions.load(sessions);
    this.alarms.load(meta.alarms);
    const { appliedIndex, revision, compactRevision } = meta;
    this.meta = { appliedIndex, revision, compactRevision };
    this.published = [];
    this.hub.resync();
  }

  /**
   * Applies one committed entry and returns its outcome (null for an entry without a
   * command). Entries must come in index order without gaps. Only a storage failure or a
   * broken invariant throws; a failed command is an outcome.
   */
  applyEntry(entry: KvEntry): KvResult | null {
    // The message is built only on failure (this runs for every entry).
    if (entry.index !== this.meta.appliedIndex + 1) {
      assert(false, `kv: entry ${entry.index} applied after entry ${this.meta.appliedIndex}`);
    }
    this.meta.appliedIndex = entry.index;
    if (entry.command === null) return null;
    return this.applyCommand(entry.index, entry.command);
  }

  /** Hands the revisions committed since the last call to the watch hub. */
  publishWatchEvents(): void {
    const published = this.published;
    this.published = [];
    for (const batch of published) this.hub.publish(batch);
  }

  /** A read at the current or an older revision (etcd `Range`); throws a {@link KvError}. */
  range(request: RangeRequest): RangeResponse {
    validateCommand({ type: 'range', ...request }, this.options);
    const range = parseKeyRange(request);
    const revision = request.revision ?? 0;
    if (revision > 0) this.checkReadable(revision);
    const readAt = revision > 0 ? revision : this.meta.revision;
    const selection = selectRange(this.candidates(range, readAt), request, (item) => this.load(item));
    return { revision: this.meta.revision, ...selection };
  }

  /** Every lease, by ascending id (for a new leader to restart expiry countdowns). */
  leaseList(): LeaseInfo[] {
    return this.leases.list();
  }

  /** etcd `LeaseTimeToLive` as of the caller's clock `nowMs`. */
  leaseTimeToLive(id: number, nowMs: number, withKeys = false): LeaseTimeToLive {
    const lease = this.leases.get(id);
    if (lease === undefined) return { id, ttlSeconds: -1, grantedTtlSeconds: 0, keys: [] };
    const keys = withKeys ? [...lease.keys].sort().map(keyBytes) : [];
    return {
      id,
      ttlSeconds: remainingSeconds(lease.info, nowMs),
      grantedTtlSeconds: lease.info.ttlSeconds,
      keys,
    };
  }

  /** Starts a watcher; see {@link WatchHub.watch}. */
  watch(request: WatchRequest): Watcher {
    return this.hub.watch(request);
  }

  /** Every session, least recently touched first. */
  sessionList(): SessionRecord[] {
    return this.sessions.list();
  }

  /**
   * etcd `HashKV`: a hash of the compacted revision and every record up to `revision`
   * (0: current). Throws `COMPACTED` / `FUTURE_REV` for a revision that cannot be read.
   */
  hashKv(revision = 0): KvHash {
    const upTo = revision > 0 ? revision : this.meta.revision;
    this.checkReadable(upTo);
    const hash = createHash('sha256');
    hashNumbers(hash, this.meta.compactRevision);
    this.hashRecords(hash, upTo);
    return { hash: hash.digest('hex'), revision: upTo, compactRevision: this.meta.compactRevision };
  }

  /**
   * A hash of the whole replicated state but the applied index: revisions, records, leases
   * and sessions. Equal hashes at equal applied indexes mean the replicas agree.
   */
  hash(): string {
    const hash = createHash('sha256');
    hashNumbers(hash, this.meta.revision, this.meta.compactRevision);
    this.hashRecords(hash, this.meta.revision);
    for (const lease of this.leases.list()) {
      hashNumbers(hash, 1, lease.id, lease.ttlSeconds, lease.remainingTtlSeconds, lease.anchorMs);
    }
    for (const session of this.sessions.list()) {
      const result = encodeResult(session.result);
      hashNumbers(hash, 2, session.clientId, session.seq, session.lastIndex, result.length);
      hash.update(result);
    }
    // Hashed only when raised, so a store without alarms hashes as before alarms existed.
    for (const alarm of this.alarms.list()) hashNumbers(hash, 3, alarm.memberId);
    return hash.digest('hex');
  }

  /**
   * {@link hashKv} over `scan` (records up to a revision, from a view pinned at the call),
   * yielding to the event loop every {@link RECORDS_PER_TURN} records: a large store would
   * otherwise hold heartbeats and client requests for seconds.
   */
  async hashKvYielding(
    revision: number,
    scan: (upTo: number) => Iterable<readonly [Uint8Array, Uint8Array]>,
  ): Promise<KvHash> {
    const upTo = revision > 0 ? revision : this.meta.revision;
    this.checkReadable(upTo);
    const compactRevision = this.meta.compactRevision;
    const hash = createHash('sha256');
    hashNumbers(hash, compactRevision);
    let records = 0;
    for (const [revisionKey, bytes] of scan(upTo)) {
      hash.update(revisionKey);
      hashNumbers(hash, bytes.length);
      hash.update(bytes);
      if (++records % RECORDS_PER_TURN === 0) await new Promise<void>((resolve) => setImmediate(resolve));
    }
    return { hash: hash.digest('hex'), revision: upTo, compactRevision };
  }

  private hashRecords(hash: Hash, upTo: number): void {
    for (const [revisionKey, bytes] of this.store.scanEncoded(0, upTo)) {
      hash.update(revisionKey);
      hashNumbers(hash, bytes.length);
      hash.update(bytes);
    }
  }

  // --- CommittedReads and WatchSource ---

  /** The index entry of `key`'s committed put, if the key exists now. */
  currentEntry(key: string): IndexEntry | undefined {
    return this.index.current(key);
  }

  /** The keys of `range` visible at `revision`, in byte order. */
  candidates(range: KeyRange, revision: number): RangeCandidate[] {
    return [...this.index.range(range, revision)];
  }

  /** The kv of a candidate. */
  load(candidate: RangeCandidate): KeyValue {
    if (candidate.kv !== undefined) return candidate.kv;
    assert(candidate.entry !== undefined, 'kv: range candidate without entry');
    return this.record(candidate.entry).kv;
  }

  /** Throws `COMPACTED` / `FUTURE_REV` unless `revision` can be read. */
  checkReadable(revision: number): void {
    if (revision < this.meta.compactRevision)
      throw new KvError('COMPACTED', undefined, this.meta.compactRevision);
    if (revision > this.meta.revision) throw new KvError('FUTURE_REV');
  }

  /** Whether lease `id` exists. */
  leaseExists(id: number): boolean {
    return this.leases.get(id) !== undefined;
  }

  /** The batches of revisions `from..to` that `watcher` matches (a watcher's catch-up). */
  history(from: number, to: number, watcher: Watcher): WatchBatch[] {
    const batches: WatchBatch[] = [];
    let revision = 0;
    let events: WatchEvent[] = [];
    const flush = () => {
      const selected = watcher.select(events);
      if (selected.length > 0) batches.push({ revision, events: selected });
      events = [];
    };
    for (const record of this.store.scanRecords(from, to)) {
      if (record.main !== revision) flush();
      revision = record.main;
      const key = keyString(record.kv.key);
      if (!inKeyRange(key, watcher.range)) continue;
      events.push(this.eventOf(key, record, watcher.wantsPrevKv));
    }
    flush();
    return batches;
  }

  private eventOf(key: string, record: StoredRecord, withPrevKv: boolean): WatchEvent {
    const type = record.tombstone ? 'DELETE' : 'PUT';
    const previous = withPrevKv ? this.index.before(key, record.main, record.sub) : undefined;
    if (previous === undefined) return { type, kv: record.kv };
    return { type, kv: record.kv, prevKv: this.record(previous).kv };
  }

  // --- Command execution ---

  private applyCommand(index: number, command: KvCommand): KvResult {
    // Reads are idempotent: a retried range is simply served again, never cached.
    const session = command.type === 'range' ? undefined : command.session;
    if (session !== undefined) {
      const known = validSession(session) ? this.sessions.get(session.clientId) : undefined;
      if (known !== undefined && session.seq <= known.seq) {
        return session.seq === known.seq
          ? known.result
          : { ok: false, error: staleSequence(session, known.seq) };
      }
    }
    const result = this.execute(command);
    if (session !== undefined && validSession(session)) this.recordSession(session, index, result);
    return result;
  }

  private execute(command: KvCommand): KvResult {
    try {
      validateCommand(command, this.options);
      if (this.alarms.raised('NOSPACE') && growsStore(command)) throw new KvError('NO_SPACE');
      return { ok: true, response: this.dispatch(command) };
    } catch (error) {
      // CORRUPT is a storage failure, not an outcome: it must halt the node.
      if (isKvError(error) && error.code !== 'CORRUPT') return { ok: false, error };
      throw error;
    }
  }

  private dispatch(command: KvCommand): KvResponse {
    switch (command.type) {
      case 'range':
        return { type: 'range', ...this.range(command) };
      case 'put':
      case 'deleteRange':
      case 'txn':
        return this.write((txn) => txn.run(command));
      case 'compact':
        return this.compact(command.revision);
      case 'leaseGrant':
        return this.leaseGrant(command);
      case 'leaseRevoke':
        return this.leaseRevoke(command.id);
      case 'leaseCheckpoint':
        return this.leaseCheckpoint(command);
      case 'alarm':
        return this.alarm(command);
    }
  }

  /** Runs `body` on a staged write, then commits it whole (nothing if `body` throws). */
  private write<Result>(body: (txn: WriteTxn) => Result): Result {
    const txn = new WriteTxn(this);
    const result = body(txn);
    this.commit(txn);
    txn.finish(this.meta.revision);
    return result;
  }

  private commit(txn: WriteTxn): void {
    if (txn.changes.length === 0) return;
    assert(txn.revision === this.meta.revision + 1, 'kv: write staged against an older revision');
    const events: WatchEvent[] = [];
    const loadPrevKv = this.hub.prevKvWatchers > 0;
    for (const { key, record, previous } of txn.changes) {
      this.store.putRecord(record);
      this.index.append(key, IndexEntry.of(record));
      this.leases.move(key, previous?.lease ?? 0, record.tombstone ? 0 : record.kv.lease);
      let prevKv = previous;
      if (prevKv instanceof IndexEntry) prevKv = loadPrevKv ? this.record(prevKv).kv : undefined;
      const event: WatchEvent = { type: record.tombstone ? 'DELETE' : 'PUT', kv: record.kv };
      events.push(prevKv === undefined ? event : { ...event, prevKv });
    }
    this.meta.revision = txn.revision;
    this.published.push({ revision: txn.revision, events });
  }

  /** Throws `CORRUPT` unless the key index and leases agree with every stored record (index-check.ts). */
  verifyIndex(): void {
    checkIndex(this.index, this.store, this.leases);
  }

  /** After a {@link reset} from a store whose compaction deletes were cut short: the records left. */
  compactLeftovers(): IndexEntry[] {
    return this.meta.compactRevision > 0 ? this.index.compact(this.meta.compactRevision) : [];
  }

  private compact(revision: number): KvResponse {
    if (revision <= this.meta.compactRevision) {
      throw new KvError('COMPACTED', undefined, this.meta.compactRevision);
    }
    if (revision > this.meta.revision) throw new KvError('FUTURE_REV');
    const dropped = this.index.compact(revision);
    this.store.deleteCompacted(dropped, this.meta.appliedIndex);
    this.meta.compactRevision = revision;
    return { type: 'compact', revision: this.meta.revision };
  }

  private leaseGrant(request: LeaseGrantRequest): KvResponse {
    if (this.leases.get(request.id) !== undefined) throw new KvError('LEASE_EXISTS');
    const { id, ttlSeconds, nowMs } = request;
    const lease: LeaseInfo = { id, ttlSeconds, remainingTtlSeconds: ttlSeconds, anchorMs: nowMs };
    this.leases.add(lease);
    this.store.putLease(lease);
    return { type: 'leaseGrant', revision: this.meta.revision, id, ttlSeconds };
  }

  private leaseRevoke(id: number): KvResponse {
    const lease = this.leases.get(id);
    if (lease === undefined) throw new KvError('LEASE_NOT_FOUND');
    // Sorted like etcd's lessor, so every replica writes the tombstones in the same order.
    const keys = [...lease.keys].sort();
    this.write((txn) => {
      for (const key of keys) txn.deleteKey(key);
    });
    this.leases.remove(id);
    this.store.deleteLease(id);
    return { type: 'leaseRevoke', revision: this.meta.revision };
  }

  private leaseCheckpoint(request: LeaseCheckpointRequest): KvResponse {
    const lease = this.leases.get(request.id);
    if (lease === undefined) throw new KvError('LEASE_NOT_FOUND');
    const { id, ttlSeconds } = lease.info;
    const info: LeaseInfo = {
      id,
      ttlSeconds,
      remainingTtlSeconds: request.remainingTtlSeconds,
      anchorMs: request.nowMs,
    };
    this.leases.update(info);
    this.store.putLease(info);
    return { type: 'leaseCheckpoint', revision: this.meta.revision };
  }

  private alarm(request: AlarmRequest): KvResponse {
    return { type: 'alarm', revision: this.meta.revision, alarms: this.alarms.apply(request) };
  }

  private recordSession(session: ClientSession, index: number, result: KvResult): void {
    const record: SessionRecord = { clientId: session.clientId, seq: session.seq, lastIndex: index, result };
    const evicted = this.sessions.put(record, this.options.sessionsMax);
    this.store.putSession(record);
    for (const old of evicted) this.store.deleteSession(old.clientId);
  }

  private record(entry: IndexEntry): StoredRecord {
    const record = this.store.getRecord(entry.main, entry.sub);
    if (record === undefined) assert(false, `kv: index points at missing record ${entry.main}.${entry.sub}`);
    return record;
  }
}

const numberBytes = new Uint8Array(8);

/** Records hashed per event-loop turn by {@link KvStateMachine.hashKvYielding}. */
const RECORDS_PER_TURN = 2048;

/** Feeds non-negative integers to `hash` as 8 big-endian bytes each. */
function hashNumbers(hash: Hash, ...values: number[]): void {
  for (const value of values) {
    writeUint64(numberBytes, 0, value);
    hash.update(numberBytes);
  }
}
