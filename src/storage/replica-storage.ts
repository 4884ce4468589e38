/**
 * What the runtime needs of one replica's durable log: the core's {@link LogStorage} (reads,
 * served from memory) plus the writes the Ready loop, the apply step and the snapshot step
 * make. Two implementations: {@link FileStorage} (a WAL of its own, for one group) and a
 * group's view of the host's shared WAL (shared-wal.ts: every group of a multi-raft host in
 * one log, one `fdatasync` per write for every group with something to persist).
 *
 * Every write resolves once durable (a commit-only HardState change excepted, see `save`) and
 * only then shows on the read side; after any error the storage is failed and every later
 * call rejects with that first error.
 */
import type { LogStorage, StorageUpdate } from '../raft/storage.js';
import type { ConfState, Snapshot } from '../raft/types.js';

/** Where the last `save` spent its time, in milliseconds (0 for a step it did not take). */
export interface SaveTiming {
  encodeMs: number;
  writeMs: number;
  syncMs: number;
}

/** One replica's durable log. */
export interface ReplicaStorage extends LogStorage {
  /** Where the last {@link ReplicaStorage.save} spent its time. */
  readonly lastSave: SaveTiming;
  /** The first error that failed this storage, or undefined while it is healthy. */
  readonly failedWith: unknown;
  /**
   * Makes a Ready's snapshot, entries and hard state durable as one atomic record, then
   * applies them to the read side. A commit-only HardState change may be written without
   * a sync (etcd's `MustSync`).
   */
  save(update: StorageUpdate): Promise<void>;
  /** Durably records the membership the runtime has applied (`initialState()` reports it). */
  saveConfState(confState: ConfState): Promise<void>;
  /** Records a snapshot of the applied state at `index`; entries stay until `compact`. */
  createSnapshot(index: number, confState: ConfState, data: Uint8Array): Promise<Snapshot>;
  /** Discards entries up to `index` (at most the snapshot index) and the log files only they needed. */
  compact(index: number): Promise<void>;
  /** Waits for queued calls, then releases the storage; resolves even when it has failed. */
  close(): Promise<void>;
}
