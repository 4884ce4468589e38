/**
 * The durable {@link LogStorage}: a write-ahead log for durability and a `MemoryStorage` as
 * the read cache, because the core reads synchronously. Every mutation is written to the WAL
 * and made durable first, and only then applied to the cache, so the read side never shows
 * anything that could be lost.
 *
 * Mutations run one at a time through a queue, so the frames of concurrent calls never
 * interleave. After any error the storage is failed: every later call rejects with that
 * first error and nothing more is acknowledged (a failed fsync may have dropped the dirty
 * pages, so retrying could report data durable that is not: the PostgreSQL "fsyncgate").
 */
import { dirname, join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { assert } from '../raft/assert.js';
import type { StorageUpdate } from '../raft/storage.js';
import { MemoryStorage } from '../raft/storage.js';
import type { ConfState, Entry, HardState, Snapshot } from '../raft/types.js';
import { FRAME_TYPE, FrameEncoder } from './codec.js';
import { ioError, StorageError } from './errors.js';
import { type FileSystem, nodeFileSystem } from './file-system.js';
import { type RecoveredWal, recoverWal, type TornTail } from './recovery.js';
import type { ReplicaStorage } from './replica-storage.js';
import { removeTemporaryFiles } from './segment-files.js';
import {
  listSnapshotFiles,
  loadRecordedSnapshot,
  pruneSnapshotFiles,
  writeSnapshotFile,
} from './snapshot-file.js';
import { carriedState, emptySnapshot, encodeUpdate, mustSync } from './update-encoding.js';
import { Wal } from './wal.js';

/** Options of {@link FileStorage.open}. */
export interface FileStorageOptions {
  /** Size at which the WAL rolls over to a new segment. Default 64 MiB. */
  readonly segmentSizeBytes: number;
  /** Fill WAL segments with zeros ahead of use (faster fdatasync). Default true. */
  readonly preallocate: boolean;
  /** Snapshot files kept (the newest ones). Default 2; at least 1. */
  readonly snapshotsRetained: number;
  /** The file layer; tests inject faults through it. Default: the real file system. */
  readonly fileSystem: FileSystem;
}

/** The defaults of {@link FileStorageOptions}. */
export const DEFAULT_FILE_STORAGE_OPTIONS: Readonly<FileStorageOptions> = Object.freeze({
  segmentSizeBytes: 64 * 1024 * 1024,
  preallocate: true,
  snapshotsRetained: 2,
  fileSystem: nodeFileSystem,
});

/** The smallest segment size accepted: a segment must hold its header and some frames. */
const SEGMENT_SIZE_BYTES_MIN = 1024;

/** What {@link FileStorage.open} found and did. */
export interface RecoveryReport {
  /** WAL segments read. */
  readonly segments: number;
  /** Entries recovered after the snapshot. */
  readonly entries: number;
  /** Index of the snapshot recovered (0: none). */
  readonly snapshotIndex: number;
  /** The torn tail that was cut from the last segment, if any (never acknowledged data). */
  readonly tornTail: TornTail | undefined;
  /** Leftover temporary and unreferenced snapshot files that were removed. */
  readonly removedFiles: readonly string[];
}

interface Layout {
  readonly directory: string;
  readonly walDirectory: string;
  readonly snapshotDirectory: string;
}

/** A {@link LogStorage} on disk: `<dir>/wal/*.wal` segments and `<dir>/snap/*.snap` snapshots. */
export class FileStorage implements ReplicaStorage {
  private failure: unknown;
  private closing = false;
  private queue: Promise<unknown> = Promise.resolve();
  private readonly encoder = new FrameEncoder();
  /**
   * Where the last {@link FileStorage.save} spent its time, in milliseconds: encoding the
   * frame, writing it, and in `fdatasync` (0 when the save needed no sync). The runtime's
   * per-stage write latency metrics read it.
   */
  readonly lastSave = { encodeMs: 0, writeMs: 0, syncMs: 0 };

  private constructor(
    private readonly layout: Layout,
    private readonly options: FileStorageOptions,
    private readonly cache: MemoryStorage,
    private readonly wal: Wal,
    /** What recovery found when this storage was opened. */
    readonly recovery: RecoveryReport,
  ) {}

  /**
   * Opens the storage in `directory`, creating it if new, and recovers its state. Rejects
   * with a {@link StorageError} naming the file and byte offset when the data cannot be
   * trusted (see docs/storage.md for the rules); a torn tail is cut and reported in
   * {@link FileStorage.recovery}.
   */
  static async open(directory: string, options: Partial<FileStorageOptions> = {}): Promise<FileStorage> {
    const resolved = { ...DEFAULT_FILE_STORAGE_OPTIONS, ...options };
    assert(
      resolved.segmentSizeBytes >= SEGMENT_SIZE_BYTES_MIN,
      `segmentSizeBytes ${resolved.segmentSizeBytes} too small`,
    );
    assert(resolved.snapshotsRetained >= 1, 'snapshotsRetained must be at least 1');
    const fs = resolved.fileSystem;
    const layout = {
      directory,
      walDirectory: join(directory, 'wal'),
      snapshotDirectory: join(directory, 'snap'),
    };
    await createDirectories(layout, fs);
    const removedFiles = await removeTemporaryFiles(layout.walDirectory, fs);
    const recovered = await recoverWal(layout.walDirectory, fs);
    const snapshot = await loadSnapshot(layout, fs, recovered);
    const pruned = await pruneSnapshotFiles(
      layout.snapshotDirectory,
      fs,
      resolved.snapshotsRetained,
      snapshot.meta.index,
    );
    const cache = MemoryStorage.from({ ...recovered, snapshot });
    const wal =
      recovered.segments.length === 0
        ? await Wal.create(layout.walDirectory, fs, resolved, carriedState(cache))
        : await Wal.resume(layout.walDirectory, fs, resolved, recovered);
    const recovery: RecoveryReport = {
      segments: recovered.segments.length,
      entries: recovered.entries.length,
      snapshotIndex: snapshot.meta.index,
      tornTail: recovered.tornTail,
      removedFiles: [...removedFiles, ...pruned],
    };
    return new FileStorage(layout, resolved, cache, wal, recovery);
  }

  /** The directory this storage owns. */
  get directory(): string {
    return this.layout.directory;
  }

  /** The paths of the WAL segments, oldest first. */
  get segmentPaths(): string[] {
    return this.wal.segmentPaths;
  }

  /** The first error that failed this storage, or undefined while it is healthy. */
  get failedWith(): unknown {
    return this.failure;
  }

  initialState(): { hardState: HardState; confState: ConfState } {
    return this.cache.initialState();
  }

  entries(lo: number, hi: number, maxBytes: number): Entry[] {
    return this.cache.entries(lo, hi, maxBytes);
  }

  term(index: number): number {
    return this.cache.term(index);
  }

  firstIndex(): number {
    return this.cache.firstIndex();
  }

  lastIndex(): number {
    return this.cache.lastIndex();
  }

  snapshot(): Snapshot {
    return this.cache.snapshot();
  }

  /**
   * Makes `update` durable with one write and one `fdatasync` (plus the snapshot file's own
   * syncs when it carries a snapshot), then applies it to the read side. Resolves once
   * durable; rejects (and fails the storage) on any error.
   *
   * An update that only moves the commit index is written but not synced (etcd's
   * `MustSync`): a commit index lost in a crash is learned again from the leader, or, when
   * the state machine had applied further, restored from its applied index (see the core's
   * `applied` option). It is made durable by the next synced write. This takes one
   * `fdatasync` per round trip off every node's write path.
   */
  save(update: StorageUpdate): Promise<void> {
    return this.enqueue(async () => {
      const started = performance.now();
      const batch = encodeUpdate(this.encoder, this.cache, update);
      this.lastSave.encodeMs = performance.now() - started;
      this.lastSave.writeMs = 0;
      this.lastSave.syncMs = 0;
      if (update.snapshot !== undefined)
        await writeSnapshotFile(this.layout.snapshotDirectory, this.fs, update.snapshot);
      if (batch !== undefined) {
        await this.wal.append(
          batch.frame,
          batch.maxEntryIndex,
          () => carriedState(this.cache),
          mustSync(update, this.cache.initialState().hardState),
        );
        this.lastSave.writeMs = this.wal.lastAppend.writeMs;
        this.lastSave.syncMs = this.wal.lastAppend.syncMs;
      }
      this.cache.saveSync(update);
      if (update.snapshot !== undefined) await this.pruneSnapshots();
    });
  }

  /**
   * Durably records the membership the runtime has applied; `initialState()` reports it
   * after a restart. Needed because the state machine persists its own applied index, so
   * conf-change entries it already applied are not replayed into the core after a restart.
   */
  saveConfState(confState: ConfState): Promise<void> {
    return this.enqueue(async () => {
      const frame = this.encoder.begin(FRAME_TYPE.BATCH).confStateRecord(confState).finish();
      await this.wal.append(frame, 0, () => carriedState(this.cache));
      this.cache.setConfState(confState);
    });
  }

  /**
   * Writes a snapshot file for the applied state at `index` (temp name, fsync, rename,
   * directory fsync), then records it in the WAL; older snapshot files beyond the retained
   * count are deleted. Entries stay until {@link FileStorage.compact}.
   */
  createSnapshot(index: number, confState: ConfState, data: Uint8Array): Promise<Snapshot> {
    return this.enqueue(async () => {
      const current = this.cache.snapshot().meta.index;
      assert(index > current, `snapshot index ${index} is not after ${current}`);
      assert(
        index <= this.cache.lastIndex(),
        `snapshot index ${index} is beyond the last index ${this.cache.lastIndex()}`,
      );
      const meta = { index, term: this.cache.term(index), confState };
      await writeSnapshotFile(this.layout.snapshotDirectory, this.fs, { meta, data });
      const frame = this.encoder.begin(FRAME_TYPE.BATCH).snapshot('created', meta).finish();
      await this.wal.append(frame, 0, () => carriedState(this.cache));
      const snapshot = this.cache.createSnapshotSync(index, confState, data);
      await this.pruneSnapshots();
      return snapshot;
    });
  }

  /**
   * Discards entries up to `index` (at most the snapshot index) from memory and deletes the
   * WAL segments that hold nothing newer.
   */
  compact(index: number): Promise<void> {
    return this.enqueue(async () => {
      this.cache.compactSync(index);
      await this.wal.deleteThrough(index);
    });
  }

  /**
   * Waits for queued calls, then closes the files. Later calls reject with a `CLOSED`
   * error. Resolves even when the storage has failed, so a stopping node can release it.
   */
  async close(): Promise<void> {
    if (this.closing) return;
    this.closing = true;
    await this.queue;
    await this.wal.close().catch(() => undefined);
  }

  private get fs(): FileSystem {
    return this.options.fileSystem;
  }

  private enqueue<T>(task: () => Promise<T>): Promise<T> {
    const run = async (): Promise<T> => {
      if (this.failure !== undefined) throw this.failure;
      try {
        return await task();
      } catch (error) {
        this.failure ??= error;
        throw error;
      }
    };
    if (this.closing)
      return Promise.reject(new StorageError('CLOSED', 'storage is closed', { file: this.directory }));
    const result = this.queue.then(run);
    this.queue = result.catch(() => undefined);
    return result;
  }

  private async pruneSnapshots(): Promise<void> {
    const newest = this.cache.snapshot().meta.index;
    await pruneSnapshotFiles(this.layout.snapshotDirectory, this.fs, this.options.snapshotsRetained, newest);
  }
}

async function createDirectories(layout: Layout, fs: FileSystem): Promise<void> {
  try {
    await fs.mkdir(layout.walDirectory);
    await fs.mkdir(layout.snapshotDirectory);
    // Make the new directory entries themselves durable, up to the data directory's parent.
    await fs.syncDirectory(layout.directory);
    await fs.syncDirectory(dirname(layout.directory));
  } catch (error) {
    throw ioError('data directory creation', layout.directory, error);
  }
}

/** Loads the snapshot the WAL points to; a WAL without segments must have no snapshot files. */
async function loadSnapshot(layout: Layout, fs: FileSystem, recovered: RecoveredWal): Promise<Snapshot> {
  if (recovered.segments.length === 0 && (await listSnapshotFiles(layout.snapshotDirectory, fs)).length > 0)
    throw new StorageError('MISSING_SEGMENT', 'snapshot files exist but the WAL has no segments', {
      file: layout.walDirectory,
    });
  if (recovered.snapshot.index === 0) return emptySnapshot();
  return loadRecordedSnapshot(layout.snapshotDirectory, fs, recovered.snapshot);
}
