/**
 * The port the runtime drives: a replicated key-value state machine with MVCC history,
 * leases, sessions, watches and snapshots. Two implementations pass one conformance suite
 * (conformance.ts): {@link MemoryKvBackend} for the simulator and {@link LmdbKvBackend}
 * for real nodes. Their snapshots are interchangeable.
 */

import { KvError } from './errors.js';
import type { KvOptions, KvStateMachine } from './state-machine.js';
import type {
  KvAlarm,
  KvEntry,
  KvHash,
  KvMeta,
  KvResult,
  LeaseInfo,
  LeaseTimeToLive,
  RangeRequest,
  RangeResponse,
  WatchRequest,
} from './types.js';
import type { Watcher } from './watch-hub.js';

/** A replicated key-value state machine. */
export interface KvBackend {
  /** Index of the last applied entry (0 for a new store); the runtime replays from the next one. */
  readonly appliedIndex: number;
  /** The current revision (1 for an empty store). */
  readonly revision: number;
  /** The compacted revision (0 before any compaction). */
  readonly compactRevision: number;
  /** The options in force. */
  readonly options: KvOptions;
  /**
   * How many watchers are active, and how many of them are synced (the rest are behind,
   * catching up from history or parked because their consumer is not reading, or waiting
   * for a future start revision).
   */
  readonly watcherCounts: WatcherCounts;

  /**
   * Applies committed entries, in index order, starting right after `appliedIndex` with no
   * gap; returns one outcome per entry (null for an entry without a command). The batch
   * and the new applied index become visible to every read together, on return; watchers
   * see the batch's revisions then too. LMDB stores the batch with its applied index in one
   * transaction committed in the background (see {@link KvBackend.sync}). Throws only for a
   * storage failure or a broken invariant: the backend is then unusable and the node must
   * restart.
   */
  applyBatch(entries: readonly KvEntry[]): (KvResult | null)[];
  /**
   * Undefined when `applyBatch` may be called now; otherwise a promise that resolves once the
   * backend's work in flight (LMDB: batches whose commit has not resolved) is back within its
   * bound. The apply path awaits it before each batch. Rejects after a storage failure.
   */
  backPressure(): Promise<void> | undefined;
  /**
   * Registers `listener` for a storage failure found in the background (LMDB: a failed
   * commit); the backend is unusable from then on and the node must stop.
   */
  onFailure(listener: (error: unknown) => void): void;
  /** A local read (serve it once `appliedIndex` has reached the read index for linearizability). */
  range(request: RangeRequest): RangeResponse;
  /** Every lease by ascending id. */
  leaseList(): LeaseInfo[];
  /** The raised alarms (replicated state; see alarms.ts), by member id. */
  alarmList(): KvAlarm[];
  /** etcd `LeaseTimeToLive` as of the caller's clock; `ttlSeconds` -1 for an unknown lease. */
  leaseTimeToLive(id: number, nowMs: number, withKeys?: boolean): LeaseTimeToLive;
  /** Starts a watcher (see {@link Watcher}). */
  watch(request: WatchRequest): Watcher;
  /** etcd `HashKV` up to `revision` (0: current). */
  hashKv(revision?: number): KvHash;
  /** A hash of the whole replicated state except the applied index. */
  hash(): string;
  /**
   * {@link hashKv} without holding the event loop for long: over a view pinned at the call,
   * in slices (what the servers use; a large store takes seconds to hash).
   */
  hashKvAsync(revision?: number): Promise<KvHash>;
  /** A consistent snapshot of the whole state as of now (see snapshot.ts for the format). */
  snapshot(): KvSnapshot;
  /**
   * Replaces the whole state by a snapshot's (from either backend). Nothing changes unless
   * every chunk arrived intact; throws `CORRUPT` otherwise. Do not apply entries meanwhile.
   */
  restore(chunks: Iterable<Uint8Array> | AsyncIterable<Uint8Array>): Promise<void>;
  /**
   * Resolves once everything applied before the call is durable: committed and flushed to
   * disk (the runtime calls it before it drops WAL entries).
   */
  sync(): Promise<void>;
  /** Cancels watchers, waits for writes in flight, releases resources; later calls throw `CLOSED`. */
  close(): Promise<void>;
}

/**
 * A snapshot in progress: its position (`meta`) and its chunks. Iterate it once; iteration
 * to the end or an early `return` releases what it holds (an LMDB read transaction), and so
 * does {@link KvSnapshot.release} for a snapshot that is never iterated.
 */
export class KvSnapshot implements Iterable<Uint8Array> {
  private released = false;

  constructor(
    /** The applied index and revisions the snapshot captures. */
    readonly meta: KvMeta,
    private readonly chunks: Generator<Uint8Array>,
    private readonly onRelease: () => void = () => {},
  ) {}

  /** The chunks, in order; a snapshot can be iterated once. */
  *[Symbol.iterator](): Generator<Uint8Array> {
    if (this.released) throw new KvError('CLOSED', 'kv: snapshot already consumed or released');
    try {
      yield* this.chunks;
    } finally {
      this.release();
    }
  }

  /** Releases the snapshot's resources; idempotent. */
  release(): void {
    if (this.released) return;
    this.released = true;
    this.chunks.return(undefined);
    this.onRelease();
  }
}

/** See {@link KvBackend.watcherCounts}. */
export interface WatcherCounts {
  readonly watchers: number;
  readonly synced: number;
}

/** What both backends share: reads served by the state machine, and the usable-state guard. */
export abstract class BaseKvBackend {
  /** Set when a storage failure left memory and storage apart: the backend must be reopened. */
  protected failure: unknown;
  protected closed = false;

  protected constructor(protected readonly machine: KvStateMachine) {}

  /** Index of the last applied entry. */
  get appliedIndex(): number {
    return this.machine.appliedIndex;
  }

  /** The current revision. */
  get revision(): number {
    return this.machine.revision;
  }

  /** The compacted revision. */
  get compactRevision(): number {
    return this.machine.compactRevision;
  }

  /** The options in force. */
  get options(): KvOptions {
    return this.machine.options;
  }

  /** See {@link KvBackend.watcherCounts}. */
  get watcherCounts(): WatcherCounts {
    return { watchers: this.machine.hub.size, synced: this.machine.hub.syncedSize };
  }

  /** See {@link KvBackend.range}. */
  range(request: RangeRequest): RangeResponse {
    this.ensureUsable();
    return this.machine.range(request);
  }

  /** See {@link KvBackend.leaseList}. */
  leaseList(): LeaseInfo[] {
    this.ensureUsable();
    return this.machine.leaseList();
  }

  /** See {@link KvBackend.alarmList}. */
  alarmList(): KvAlarm[] {
    this.ensureUsable();
    return this.machine.alarmList();
  }

  /** See {@link KvBackend.leaseTimeToLive}. */
  leaseTimeToLive(id: number, nowMs: number, withKeys = false): LeaseTimeToLive {
    this.ensureUsable();
    return this.machine.leaseTimeToLive(id, nowMs, withKeys);
  }

  /** See {@link KvBackend.watch}. */
  watch(request: WatchRequest): Watcher {
    this.ensureUsable();
    return this.machine.watch(request);
  }

  /**
   * Throws `CORRUPT` unless the in-memory key index and lease table agree with the stored
   * records (reads all of them; for tests and diagnostics).
   */
  verifyIndex(): void {
    this.ensureUsable();
    this.machine.verifyIndex();
  }

  /** See {@link KvBackend.hashKv}. */
  hashKv(revision = 0): KvHash {
    this.ensureUsable();
    return this.machine.hashKv(revision);
  }

  /** See {@link KvBackend.hash}. */
  hash(): string {
    this.ensureUsable();
    return this.machine.hash();
  }

  /** See {@link KvBackend.hashKvAsync}. */
  async hashKvAsync(revision = 0): Promise<KvHash> {
    this.ensureUsable();
    const view = this.pinRecords();
    if (view === undefined) return this.machine.hashKv(revision);
    try {
      return await this.machine.hashKvYielding(revision, view.scan);
    } finally {
      view.release();
    }
  }

  /**
   * A view of the stored records pinned now, for work that yields to the event loop while
   * applies go on; undefined when the backend has none (then such work runs at once).
   */
  protected pinRecords():
    | { scan(upTo: number): Iterable<readonly [Uint8Array, Uint8Array]>; release(): void }
    | undefined {
    return undefined;
  }

  /** Throws if the backend was closed or failed. */
  protected ensureUsable(): void {
    if (this.closed) throw new KvError('CLOSED', 'kv: backend is closed');
    if (this.failure !== undefined) throw this.failure;
  }
}
