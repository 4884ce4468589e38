/**
 * One raft group's view of the shared WAL: a {@link ReplicaStorage} whose records go to the
 * host's log through its group committer, with a `MemoryStorage` read cache and snapshot
 * files of its own, exactly as {@link FileStorage} writes them.
 *
 * Calls run one at a time through a queue, as FileStorage's do: each encodes its record
 * synchronously when it reaches the head of the queue and hands it to the committer, which
 * writes it with whatever other groups have pending. Its read cache changes only once the
 * record is durable. The storage fails with the first error of its own calls or of the
 * shared log: a failed write or `fdatasync` of the log may have lost any group's pages.
 */
import { performance } from 'node:perf_hooks';
import { assert } from '../raft/assert.js';
import type { MemoryStorage, StorageUpdate } from '../raft/storage.js';
import type { ConfState, Entry, HardState, Snapshot } from '../raft/types.js';
import { FRAME_HEADER_BYTES, FRAME_TYPE, type FrameEncoder } from './codec.js';
import { StorageError } from './errors.js';
import type { FileSystem } from './file-system.js';
import type { CommitRequest, WriteTiming } from './group-commit.js';
import type { ReplicaStorage, SaveTiming } from './replica-storage.js';
import { GROUP_RECORD_KIND } from './shared-codec.js';
import { pruneSnapshotFiles, writeSnapshotFile } from './snapshot-file.js';
import { encodeUpdate, mustSync } from './update-encoding.js';

/** What a group storage needs of the shared WAL that hosts it. */
export interface GroupHost {
  readonly fileSystem: FileSystem;
  readonly snapshotsRetained: number;
  /** Encodes records; used synchronously, its bytes copied before the next use. */
  readonly encoder: FrameEncoder;
  /** The error that failed the shared log, or undefined. */
  readonly failedWith: unknown;
  /** Writes a record with the next group commit. */
  commit(request: CommitRequest): Promise<void>;
  /** Deletes the segments no group needs any more. */
  collect(): Promise<void>;
  /** The group's storage was closed. */
  released(groupId: number): void;
}

/** A raft group's {@link ReplicaStorage} in the shared WAL; see {@link SharedWal.openGroup}. */
export class GroupStorage implements ReplicaStorage {
  private failure: unknown;
  private closing = false;
  private queue: Promise<unknown> = Promise.resolve();
  /** The write of the last commit-only record, which its save did not wait for. */
  private unwritten: Promise<void> = Promise.resolve();
  /** The hard state of the last written record that restated one (the recovered one at first). */
  private logged: HardState;
  readonly lastSave: SaveTiming = { encodeMs: 0, writeMs: 0, syncMs: 0 };

  constructor(
    private readonly host: GroupHost,
    /** The group's id in the shared log. */
    readonly groupId: number,
    /** Where the group's snapshot files are. */
    readonly snapshotDirectory: string,
    private readonly cache: MemoryStorage,
  ) {
    this.logged = cache.initialState().hardState;
  }

  get failedWith(): unknown {
    return this.failure ?? this.host.failedWith;
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
   * The hard state as the log's written records restate it (what a segment's checkpoint must
   * carry, for recovery finds the checkpoint equal to what the earlier segments replay to):
   * the cache's, but while a commit-only record whose save resolved is still unwritten.
   */
  get loggedHardState(): HardState {
    return this.logged;
  }

  /** As {@link FileStorage.save}: one record, synced with the group commit unless commit-only. */
  save(update: StorageUpdate): Promise<void> {
    return this.enqueue(async () => {
      const started = performance.now();
      const batch = encodeUpdate(this.host.encoder, this.cache, update, false);
      const payload = batch === undefined ? undefined : payloadOf(batch.frame);
      this.lastSave.encodeMs = performance.now() - started;
      this.lastSave.writeMs = 0;
      this.lastSave.syncMs = 0;
      if (update.snapshot !== undefined)
        await writeSnapshotFile(this.snapshotDirectory, this.fs, update.snapshot);
      if (payload === undefined) this.cache.saveSync(update);
      else {
        const sync = mustSync(update, this.cache.initialState().hardState);
        const restated = update.hardState;
        const written = this.commit(payload, sync, batch!.maxEntryIndex, (timing) => {
          this.lastSave.writeMs = timing.writeMs;
          this.lastSave.syncMs = timing.syncMs;
          if (sync) this.cache.saveSync(update);
          if (restated !== undefined) this.logged = restated;
        });
        if (!sync) {
          // A record that need not be durable (the commit index alone moved: no entries,
          // term or vote) is done once it is queued behind this group's earlier records. Had
          // the save waited for its write, it would wait for the fdatasync of whatever other
          // groups' records the shared log is writing, and this group's next Ready with it:
          // with one client per group, a whole extra group commit per write on the leader.
          // The cache shows it at once, as a resolved save promises (a checkpoint written
          // before the record restates the logged hard state, `loggedHardState`); a crash
          // before the write loses only a commit index, which raft relearns. Its write failing
          // fails the log, and so every later save of every group; close waits for it.
          this.cache.saveSync(update);
          this.unwritten = written.catch((error: unknown) => {
            this.failure ??= error;
          });
          return;
        }
        await written;
      }
      if (update.snapshot !== undefined) await this.pruneSnapshots();
    });
  }

  /** As {@link FileStorage.saveConfState}. */
  saveConfState(confState: ConfState): Promise<void> {
    return this.enqueue(async () => {
      const frame = this.host.encoder.begin(FRAME_TYPE.BATCH).confStateRecord(confState).finish();
      await this.commit(payloadOf(frame), true, 0, () => this.cache.setConfState(confState));
    });
  }

  /** As {@link FileStorage.createSnapshot}: the snapshot file first, then its WAL record. */
  createSnapshot(index: number, confState: ConfState, data: Uint8Array): Promise<Snapshot> {
    return this.enqueue(async () => {
      const current = this.cache.snapshot().meta.index;
      assert(index > current, `snapshot index ${index} is not after ${current}`);
      assert(
        index <= this.cache.lastIndex(),
        `snapshot index ${index} is beyond the last index ${this.cache.lastIndex()}`,
      );
      const meta = { index, term: this.cache.term(index), confState };
      const frame = this.host.encoder.begin(FRAME_TYPE.BATCH).snapshot('created', meta).finish();
      const payload = payloadOf(frame);
      await writeSnapshotFile(this.snapshotDirectory, this.fs, { meta, data });
      let snapshot: Snapshot | undefined;
      await this.commit(payload, true, 0, () => {
        snapshot = this.cache.createSnapshotSync(index, confState, data);
      });
      await this.pruneSnapshots();
      return snapshot!;
    });
  }

  /** Discards entries up to `index` and deletes the shared segments no group needs any more. */
  compact(index: number): Promise<void> {
    return this.enqueue(async () => {
      this.cache.compactSync(index);
      await this.host.collect();
    });
  }

  /** Waits for queued calls; later calls reject with CLOSED. The group may be opened again. */
  async close(): Promise<void> {
    if (this.closing) return;
    this.closing = true;
    await this.queue;
    await this.unwritten;
    this.host.released(this.groupId);
  }

  private get fs(): FileSystem {
    return this.host.fileSystem;
  }

  private commit(
    payload: Uint8Array,
    sync: boolean,
    maxEntryIndex: number,
    onDurable: (timing: WriteTiming) => void,
  ): Promise<void> {
    const record = { groupId: this.groupId, kind: GROUP_RECORD_KIND.BATCH, payload };
    return this.host.commit({ record, sync, maxEntryIndex, onDurable });
  }

  private enqueue<T>(task: () => Promise<T>): Promise<T> {
    const run = async (): Promise<T> => {
      const failure = this.failedWith;
      if (failure !== undefined) throw failure;
      try {
        return await task();
      } catch (error) {
        this.failure ??= error;
        throw error;
      }
    };
    if (this.closing)
      return Promise.reject(
        new StorageError('CLOSED', `storage of group ${this.groupId} is closed`, {
          file: this.snapshotDirectory,
        }),
      );
    const result = this.queue.then(run);
    this.queue = result.catch(() => undefined);
    return result;
  }

  private async pruneSnapshots(): Promise<void> {
    const newest = this.cache.snapshot().meta.index;
    await pruneSnapshotFiles(this.snapshotDirectory, this.fs, this.host.snapshotsRetained, newest);
  }
}

/** A batch frame's records (after its header and type byte), copied out of the shared encoder. */
function payloadOf(frame: Uint8Array): Uint8Array {
  return frame.slice(FRAME_HEADER_BYTES + 1);
}
