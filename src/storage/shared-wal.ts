/**
 * The multi-raft host's shared write-ahead log: one log for every raft group of a process
 * (as Dragonboat's shared logdb or CockroachDB's one engine per store), so that 64 groups
 * with something to persist share one write and one `fdatasync`, and a restart reads one
 * directory of segments instead of one per group. docs/storage.md, "The shared WAL", has
 * the format and the rules.
 *
 * - Segments (`<directory>/<seq>.wal`) hold GROUP_COMMIT frames (shared-codec.ts) written by
 *   the {@link GroupCommitter}; each new segment starts with a checkpoint of every live
 *   group's carried state, so older segments hold nothing that is not restated later.
 * - The oldest segments are deleted once every live group has compacted past the entries it
 *   wrote in them; {@link SharedWal.pinningGroups} names the groups holding them back.
 * - Each group's snapshot files are in its own directory, as FileStorage writes them.
 */
import { dirname } from 'node:path';
import { assert } from '../raft/assert.js';
import { MemoryStorage } from '../raft/storage.js';
import type { CarriedState } from './codec.js';
import { FrameEncoder } from './codec.js';
import { ioError, StorageError } from './errors.js';
import { DEFAULT_FILE_STORAGE_OPTIONS } from './file-storage.js';
import type { FileSystem } from './file-system.js';
import { type CommitRequest, type GroupCommitStats, GroupCommitter } from './group-commit.js';
import { type GroupHost, GroupStorage } from './group-storage.js';
import type { TornTail } from './recovery.js';
import type { ReplayResult } from './replay.js';
import { removeTemporaryFiles, segmentSeqOf } from './segment-files.js';
import { encodeSharedHeader, GROUP_RECORD_KIND } from './shared-codec.js';
import { type RecoveredSharedWal, recoverSharedWal } from './shared-recovery.js';
import { loadRecordedSnapshot, pruneSnapshotFiles } from './snapshot-file.js';
import { carriedState, emptySnapshot } from './update-encoding.js';
import { SegmentLog } from './wal.js';

export type { GroupStorage } from './group-storage.js';

/** Options of {@link SharedWal.open}. */
export interface SharedWalOptions {
  /** Size at which the log rolls over to a new segment. Default 64 MiB. */
  readonly segmentSizeBytes: number;
  /** Fill segments with zeros ahead of use (faster fdatasync). Default true. */
  readonly preallocate: boolean;
  /** Snapshot files kept per group (the newest ones). Default 2; at least 1. */
  readonly snapshotsRetained: number;
  /** The file layer; tests inject faults through it. Default: the real file system. */
  readonly fileSystem: FileSystem;
}

/** The defaults of {@link SharedWalOptions} (those of FileStorage). */
export const DEFAULT_SHARED_WAL_OPTIONS: Readonly<SharedWalOptions> = DEFAULT_FILE_STORAGE_OPTIONS;

/** Group-commit counters of a {@link SharedWal}. */
export type SharedWalStats = Readonly<GroupCommitStats>;

/** What {@link SharedWal.open} found and did. */
export interface SharedWalRecovery {
  /** Segments read. */
  readonly segments: number;
  /** Group records read (one group's part of a write, or a drop). */
  readonly records: number;
  /** Live groups recovered. */
  readonly groups: number;
  /** The torn tail cut from the last segment, if any (never acknowledged data). */
  readonly tornTail: TornTail | undefined;
  /** Leftover temporary segment files removed. */
  readonly removedFiles: readonly string[];
}

const SEGMENT_SIZE_BYTES_MIN = 1024;

/** A live group: recovered from the log or opened since, not dropped. */
interface GroupState {
  /** Its replayed state, until it is opened and `cache` is built from it. */
  recovered: ReplayResult | undefined;
  cache: MemoryStorage | undefined;
  storage: GroupStorage | undefined;
  opening: boolean;
  /** Whether the log holds state of the group (segment checkpoints carry only those). */
  inLog: boolean;
}

/** One write-ahead log for every raft group of a process. */
export class SharedWal implements GroupHost {
  private readonly live: Map<number, GroupState>;
  /** Per segment (by sequence number): the highest entry index each live group wrote in it. */
  private readonly segmentEntries: Map<number, Map<number, number>>;
  private readonly committer: GroupCommitter;
  private deletion: Promise<void> = Promise.resolve();
  private closing = false;
  /** @internal Encodes the groups' records, one call at a time (GroupHost). */
  readonly encoder = new FrameEncoder();

  private constructor(
    /** The directory of the segments. */
    readonly directory: string,
    private readonly options: SharedWalOptions,
    private readonly log: SegmentLog,
    recovered: RecoveredSharedWal,
    /** What recovery found. */
    readonly recovery: SharedWalRecovery,
    live: Map<number, GroupState>,
  ) {
    this.live = live;
    this.segmentEntries = recovered.segmentEntries;
    const header = (seq: number) => encodeSharedHeader({ seq, groups: checkpointOf(this.live) });
    this.committer = new GroupCommitter(log, header, (seq, requests) => this.written(seq, requests));
  }

  /**
   * Opens (creating if new) the shared log whose segments live in `directory`, recovering
   * every group's records, and deletes the oldest segments no group needs (left by a crash
   * between a compaction and its deletion). Rejects with a {@link StorageError} (file and offset) when the
   * data cannot be trusted; a torn tail is cut and reported in {@link SharedWal.recovery}.
   */
  static async open(directory: string, options: Partial<SharedWalOptions> = {}): Promise<SharedWal> {
    const resolved = { ...DEFAULT_SHARED_WAL_OPTIONS, ...options };
    assert(
      resolved.segmentSizeBytes >= SEGMENT_SIZE_BYTES_MIN,
      `segmentSizeBytes ${resolved.segmentSizeBytes} too small`,
    );
    assert(resolved.snapshotsRetained >= 1, 'snapshotsRetained must be at least 1');
    const fs = resolved.fileSystem;
    await createDirectory(directory, fs);
    const removedFiles = await removeTemporaryFiles(directory, fs);
    const recovered = await recoverSharedWal(directory, fs);
    const live = new Map<number, GroupState>();
    for (const [id, result] of recovered.groups)
      live.set(id, { recovered: result, cache: undefined, storage: undefined, opening: false, inLog: true });
    const header = (seq: number) => encodeSharedHeader({ seq, groups: checkpointOf(live) });
    const logOptions = { ...resolved, rollOverFromEmptySegment: false };
    const log =
      recovered.segments.length === 0
        ? await SegmentLog.create(directory, fs, logOptions, header)
        : await SegmentLog.resume(directory, fs, logOptions, recovered);
    if (recovered.segments.length === 0) recovered.segmentEntries.set(1, new Map());
    const recovery: SharedWalRecovery = {
      segments: recovered.segments.length,
      records: recovered.records,
      groups: recovered.groups.size,
      tornTail: recovered.tornTail,
      removedFiles,
    };
    const wal = new SharedWal(directory, resolved, log, recovered, recovery, live);
    // Segments no group needed any more when a crash came before their deletion.
    try {
      await wal.collect();
    } catch (error) {
      await log.close().catch(() => undefined);
      throw error;
    }
    return wal;
  }

  /** Group-commit counters: write calls, fdatasyncs, records written, most groups in one sync. */
  get stats(): SharedWalStats {
    return this.committer.stats;
  }

  /** The file layer in use. */
  get fileSystem(): FileSystem {
    return this.options.fileSystem;
  }

  /** Snapshot files kept per group. */
  get snapshotsRetained(): number {
    return this.options.snapshotsRetained;
  }

  /** The first error that failed the log (every group's storage fails with it), or undefined. */
  get failedWith(): unknown {
    return this.committer.failedWith;
  }

  /** The paths of the segments, oldest first. */
  get segmentPaths(): string[] {
    return this.log.segments.map((segment) => segment.path);
  }

  /** Ids of the groups that have state in the log (recovered or opened since, not dropped), ascending. */
  groups(): number[] {
    return [...this.live.keys()].sort((a, b) => a - b);
  }

  /**
   * One group's storage; its snapshot files go in `snapshotDirectory` (created if missing).
   * A group with no records gets an empty storage. At most one open storage per group.
   */
  async openGroup(groupId: number, snapshotDirectory: string): Promise<GroupStorage> {
    this.checkUsable();
    assert(Number.isSafeInteger(groupId) && groupId >= 0, `invalid group id ${groupId}`);
    let state = this.live.get(groupId);
    if (state === undefined) {
      state = { recovered: undefined, cache: undefined, storage: undefined, opening: false, inLog: false };
      this.live.set(groupId, state);
    }
    assert(state.storage === undefined && !state.opening, `group ${groupId} is already open`);
    state.opening = true;
    try {
      await createDirectory(snapshotDirectory, this.fileSystem);
      const cache = state.cache ?? (await this.loadGroup(state, snapshotDirectory));
      state.storage = new GroupStorage(this, groupId, snapshotDirectory, cache);
      return state.storage;
    } finally {
      state.opening = false;
    }
  }

  /**
   * Durably records that `groupId` is gone: its open storage (if any) is closed, its records
   * are ignored by every later recovery, and it no longer keeps segments alive.
   */
  async dropGroup(groupId: number): Promise<void> {
    this.checkUsable();
    const state = this.live.get(groupId);
    if (state === undefined) return;
    await state.storage?.close();
    const record = { groupId, kind: GROUP_RECORD_KIND.DROP, payload: new Uint8Array() };
    await this.committer.submit({
      record,
      sync: true,
      maxEntryIndex: 0,
      onDurable: () => this.forget(groupId),
    });
    await this.collect();
  }

  /**
   * Groups whose uncompacted entries keep segments older than the active one from being
   * deleted, those holding the oldest segment first: the runtime asks them to snapshot and
   * compact.
   */
  pinningGroups(): number[] {
    const pinning = new Set<number>();
    for (const segment of this.log.segments.slice(0, -1))
      for (const groupId of this.pinnedBy(segment.seq)) pinning.add(groupId);
    return [...pinning];
  }

  /** Waits for queued writes and closes the files; groups' storages reject later calls with CLOSED. */
  async close(): Promise<void> {
    if (this.closing) return;
    this.closing = true;
    await Promise.all([...this.live.values()].map((state) => state.storage?.close()));
    await this.committer.idle();
    await this.deletion;
    await this.log.close().catch(() => undefined);
  }

  /**
   * Resolves when no write is queued or in flight: every record handed over so far is written
   * (a commit-only record's save resolves once it is queued, before its write).
   */
  idle(): Promise<void> {
    return this.committer.idle();
  }

  /** @internal Writes a group's record with the next group commit (GroupHost). */
  commit(request: CommitRequest): Promise<void> {
    return this.committer.submit(request);
  }

  /** @internal Deletes the oldest segments no live group needs any more (GroupHost). */
  collect(): Promise<void> {
    const run = async (): Promise<void> => {
      if (this.failedWith !== undefined) throw this.failedWith;
      try {
        const deleted = await this.log.deleteOldest((segment) => this.pinnedBy(segment.seq).length === 0);
        for (const path of deleted) this.segmentEntries.delete(segmentSeqOf(path));
      } catch (error) {
        this.committer.fail(error);
        throw error;
      }
    };
    const result = this.deletion.then(run);
    this.deletion = result.catch(() => undefined);
    return result;
  }

  /** @internal A group's storage was closed (GroupHost). */
  released(groupId: number): void {
    const state = this.live.get(groupId);
    if (state !== undefined) state.storage = undefined;
  }

  private checkUsable(): void {
    if (this.closing) throw new StorageError('CLOSED', 'shared WAL is closed', { file: this.directory });
    if (this.failedWith !== undefined) throw this.failedWith;
  }

  /**
   * Builds a group's read cache from its recovered state and snapshot file. Sets `cache`
   * and clears `recovered` together: a checkpoint may be taken at any moment.
   */
  private async loadGroup(state: GroupState, snapshotDirectory: string): Promise<MemoryStorage> {
    const fs = this.fileSystem;
    const recovered = state.recovered;
    const pointer = recovered?.snapshot ?? { index: 0, term: 0 };
    const snapshot =
      pointer.index === 0 ? emptySnapshot() : await loadRecordedSnapshot(snapshotDirectory, fs, pointer);
    await pruneSnapshotFiles(snapshotDirectory, fs, this.snapshotsRetained, snapshot.meta.index);
    const cache =
      recovered === undefined ? new MemoryStorage() : MemoryStorage.from({ ...recovered, snapshot });
    state.cache = cache;
    state.recovered = undefined;
    return cache;
  }

  /** After a write to segment `seq`: the groups it carried are in the log, their entries in `seq`. */
  private written(seq: number, requests: readonly CommitRequest[]): void {
    const entries = this.segmentEntries.get(seq) ?? new Map<number, number>();
    this.segmentEntries.set(seq, entries);
    for (const { record, maxEntryIndex } of requests) {
      const state = this.live.get(record.groupId);
      if (state !== undefined && record.kind === GROUP_RECORD_KIND.BATCH) state.inLog = true;
      if (maxEntryIndex > 0)
        entries.set(record.groupId, Math.max(entries.get(record.groupId) ?? 0, maxEntryIndex));
    }
  }

  /** A dropped group: no state, no pins. */
  private forget(groupId: number): void {
    this.live.delete(groupId);
    for (const entries of this.segmentEntries.values()) entries.delete(groupId);
  }

  /** The live groups whose entries in segment `seq` are beyond their compaction point. */
  private pinnedBy(seq: number): number[] {
    const pinned: number[] = [];
    for (const [groupId, maxEntryIndex] of this.segmentEntries.get(seq) ?? []) {
      const state = this.live.get(groupId);
      if (state !== undefined && maxEntryIndex > compactionPoint(state)) pinned.push(groupId);
    }
    return pinned;
  }
}

/** Every live group's carried state, for the header of a new segment. */
function checkpointOf(live: ReadonlyMap<number, GroupState>): Map<number, CarriedState> {
  const groups = new Map<number, CarriedState>();
  for (const [groupId, state] of live) if (state.inLog) groups.set(groupId, carryOf(state));
  return groups;
}

function carryOf(state: GroupState): CarriedState {
  if (state.cache !== undefined) {
    const carried = carriedState(state.cache);
    // A commit index whose commit-only record is not written yet is not in the checkpoint
    // either (that record follows it): recovery checks that a checkpoint restates exactly
    // what the earlier segments replay to, and refuses the log otherwise.
    const logged = state.storage?.loggedHardState;
    return logged === undefined ? carried : { ...carried, hardState: logged };
  }
  const recovered = state.recovered!;
  const last = recovered.entries.at(-1);
  return {
    hardState: recovered.hardState,
    confState: recovered.confState,
    snapshotIndex: recovered.snapshot.index,
    snapshotTerm: recovered.snapshot.term,
    lastIndex: last?.index ?? recovered.snapshot.index,
    lastTerm: last?.term ?? recovered.snapshot.term,
  };
}

/** The index through which the group no longer needs its entries in the log. */
function compactionPoint(state: GroupState): number {
  if (state.cache !== undefined) return state.cache.firstIndex() - 1;
  return state.recovered?.snapshot.index ?? 0;
}

async function createDirectory(directory: string, fs: FileSystem): Promise<void> {
  try {
    await fs.mkdir(directory);
    await fs.syncDirectory(directory);
    await fs.syncDirectory(dirname(directory));
  } catch (error) {
    throw ioError('directory creation', directory, error);
  }
}
