/**
 * `flotilla repair`: cuts a damaged WAL at the first bad point so the node can start again.
 * Everything after the cut is dropped, including intact frames and later segments, because
 * replaying past a hole would build a log that never existed. That can drop acknowledged
 * entries: it needs the operator's explicit consent, and without it nothing is changed and
 * the report says what would be cut. A torn tail needs no repair (opening cuts it).
 */
import { join } from 'node:path';
import { decodeBatch, FRAME_TYPE } from './codec.js';
import { ioError, isStorageError } from './errors.js';
import { type FileSystem, nodeFileSystem } from './file-system.js';
import { analyzeWal, type CutPoint } from './recovery.js';
import type { SnapshotPointer } from './replay.js';
import type { SegmentFile } from './segment-files.js';
import { findValidFrame, readFrameAt } from './segment-scan.js';
import { loadRecordedSnapshot } from './snapshot-file.js';

/** Options of {@link repairWal}. */
export interface RepairOptions {
  /** Cut only when true; otherwise only report. */
  readonly consent: boolean;
  /** The file layer. Default: the real file system. */
  readonly fileSystem?: FileSystem;
}

/** What {@link repairWal} found and did. */
export interface RepairReport {
  /** Why the WAL is refused, or null when it opens as it is. */
  readonly problem: string | null;
  /** Where the WAL is (or would be) cut; null when nothing is cut. */
  readonly cutAt: { readonly file: string; readonly offset: number } | null;
  /** Entries in readable frames after the cut: they are (or would be) dropped. */
  readonly droppedEntries: number;
  /** Segments after the cut that are (or would be) deleted. */
  readonly removedSegments: readonly string[];
  /** Whether the cut was made (only with consent). */
  readonly applied: boolean;
  /** True when cutting the WAL cannot make it usable (e.g. the first segment's header or entries before it are lost). */
  readonly unrepairable: boolean;
}

/**
 * Checks the WAL of the storage in `directory` and, with `consent`, cuts it at the first bad
 * point: the damaged segment is truncated there and every later segment deleted.
 */
export async function repairWal(directory: string, options: RepairOptions): Promise<RepairReport> {
  const fs = options.fileSystem ?? nodeFileSystem;
  const analysis = await analyzeWal(join(directory, 'wal'), fs);
  if ('wal' in analysis) return checkSnapshot(directory, fs, analysis.wal.snapshot);
  const { error, cut, segments } = analysis.problem;
  if (cut === undefined) {
    return {
      problem: error.message,
      cutAt: null,
      droppedEntries: 0,
      removedSegments: [],
      applied: false,
      unrepairable: true,
    };
  }
  const removed = segments.slice(cut.offset === 0 ? cut.segmentIndex : cut.segmentIndex + 1);
  const droppedEntries = await countEntriesAfter(fs, segments, cut);
  if (options.consent) await applyCut(fs, join(directory, 'wal'), segments, cut);
  return {
    problem: error.message,
    cutAt: { file: cut.file, offset: cut.offset },
    droppedEntries,
    removedSegments: removed.map((s) => s.path),
    applied: options.consent,
    unrepairable: false,
  };
}

/** A readable WAL: the node can start unless the snapshot it records is missing or damaged. */
async function checkSnapshot(
  directory: string,
  fs: FileSystem,
  pointer: SnapshotPointer,
): Promise<RepairReport> {
  const report = { cutAt: null, droppedEntries: 0, removedSegments: [], applied: false };
  if (pointer.index === 0) return { ...report, problem: null, unrepairable: false };
  try {
    await loadRecordedSnapshot(join(directory, 'snap'), fs, pointer);
    return { ...report, problem: null, unrepairable: false };
  } catch (error) {
    if (!isStorageError(error) || error.code === 'IO') throw error;
    // The entries the snapshot replaced are gone: only a fresh copy from the leader helps.
    return { ...report, problem: error.message, unrepairable: true };
  }
}

/** Counts ENTRY records in every readable frame from the cut on, resynchronising past damage. */
async function countEntriesAfter(
  fs: FileSystem,
  segments: readonly SegmentFile[],
  cut: CutPoint,
): Promise<number> {
  let count = 0;
  for (let i = cut.segmentIndex; i < segments.length; i++) {
    const bytes = await fs.readFile(segments[i]!.path);
    count += countEntries(bytes, i === cut.segmentIndex ? cut.offset : 0);
  }
  return count;
}

function countEntries(bytes: Uint8Array, from: number): number {
  let count = 0;
  let offset: number | undefined = from;
  while (offset !== undefined && offset < bytes.length) {
    const read = readFrameAt(bytes, offset);
    if ('invalid' in read) {
      offset = findValidFrame(bytes, offset + 1);
      continue;
    }
    if (read.frame.type === FRAME_TYPE.BATCH) {
      try {
        count += decodeBatch(read.frame.payload).filter((record) => record.type === 'entry').length;
      } catch {
        // A frame with a valid checksum but invalid records holds no countable entries.
      }
    }
    offset = read.frame.end;
  }
  return count;
}

/** Deletes the later segments (newest first, so a crash never leaves a gap), then truncates. */
async function applyCut(
  fs: FileSystem,
  walDirectory: string,
  segments: readonly SegmentFile[],
  cut: CutPoint,
) {
  const firstRemoved = cut.offset === 0 ? cut.segmentIndex : cut.segmentIndex + 1;
  for (let i = segments.length - 1; i >= firstRemoved; i--) {
    const path = segments[i]!.path;
    try {
      await fs.unlink(path);
      await fs.syncDirectory(walDirectory);
    } catch (error) {
      throw ioError('repair: segment delete', path, error);
    }
  }
  if (cut.offset === 0) return;
  const file = await fs.open(cut.file, 'update');
  try {
    await file.truncate(cut.offset);
    await file.sync();
  } catch (error) {
    throw ioError('repair: truncate', cut.file, error, cut.offset);
  } finally {
    await file.close();
  }
}
