/**
 * The write side of the write-ahead log: appends frames to the active segment, one write and
 * one `fdatasync` each, and rolls over to a new segment when the active one is full.
 *
 * A new segment is created under a temporary name (header written, `fdatasync`), then
 * renamed into place and the directory fsync'd, so a segment under its final name always
 * has a valid header.
 *
 * Preallocation: overwriting blocks that already exist lets `fdatasync` skip the metadata
 * (size, extents) journal commit, which nearly doubles the rate of small durable writes on
 * ext4 (bench/RESULTS.md). So small frames go into a zero-filled runway kept ahead of the
 * data, extended `RUNWAY_BYTES` at a time. Large frames skip it: writing zeros first would
 * double the bytes written while the metadata commit is cheap next to the data.
 */
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { assert } from '../raft/assert.js';
import { type CarriedState, FRAME_TYPE, FrameEncoder } from './codec.js';
import { ioError } from './errors.js';
import { type FileSystem, type StorageFile, writeFully } from './file-system.js';
import type { RecoveredWal, TornTail } from './recovery.js';
import { type SegmentFile, segmentFileName, segmentSeqOf, temporarySegmentName } from './segment-files.js';

/** Options of the WAL writer. */
export interface WalOptions {
  /** Roll over to a new segment when a frame would end beyond this size. */
  readonly segmentSizeBytes: number;
  /** Keep a zero-filled runway ahead of small frames (faster `fdatasync`). */
  readonly preallocate: boolean;
  /**
   * Whether a frame that does not fit rolls over even from a segment holding only its header
   * (default true, FileStorage's behaviour). The shared WAL says false: its checkpoint header
   * grows with the number of groups, and a segment must take at least one frame after it.
   */
  readonly rollOverFromEmptySegment?: boolean;
}

/** The header frame of segment `seq` (built when the segment is created). */
export type SegmentHeaderFrame = (seq: number) => Uint8Array;

/** Zeros written ahead of the data at a time. */
const RUNWAY_BYTES = 1024 * 1024;
/** Frames at least this large are written without a runway. */
const RUNWAY_FRAME_BYTES_MAX = 64 * 1024;
const ZERO_CHUNK_BYTES = 1024 * 1024;

/**
 * Appends frames to a directory of numbered segments, whatever their header: the writer of
 * both FileStorage's {@link Wal} and the multi-raft host's shared WAL. Not safe for
 * concurrent appends: the caller serializes them.
 */
export class SegmentLog {
  private file: StorageFile;
  private writeOffset: number;
  /** Bytes of the active segment that exist on disk (data or zeros). */
  private allocatedEnd: number;
  /** Whether the active segment holds frames written without `fdatasync` since the last one. */
  private unsynced = false;
  /** Whether the active segment holds nothing but its header (false when unknown: resumed). */
  private empty = false;
  /**
   * How long the last append spent writing and in `fdatasync` (0 when not synced), in
   * milliseconds: the runtime's per-stage latency metrics read it.
   */
  readonly lastAppend = { writeMs: 0, syncMs: 0 };

  private constructor(
    private readonly directory: string,
    private readonly fs: FileSystem,
    private readonly options: WalOptions,
    private readonly files: SegmentFile[],
    file: StorageFile,
    writeOffset: number,
    allocatedEnd: number,
  ) {
    this.file = file;
    this.writeOffset = writeOffset;
    this.allocatedEnd = allocatedEnd;
  }

  /** Starts a new log in an empty directory with segment 1. */
  static async create(
    directory: string,
    fs: FileSystem,
    options: WalOptions,
    header: SegmentHeaderFrame,
  ): Promise<SegmentLog> {
    const { file, path, headerBytes } = await createSegment(directory, fs, 1, header(1));
    const log = new SegmentLog(directory, fs, options, [{ seq: 1, path }], file, headerBytes, headerBytes);
    log.empty = true;
    return log;
  }

  /** Continues a recovered log: cuts its torn tail, then appends at `writeOffset` of the last segment. */
  static async resume(
    directory: string,
    fs: FileSystem,
    options: WalOptions,
    recovered: {
      readonly segments: readonly SegmentFile[];
      readonly writeOffset: number;
      readonly tornTail: TornTail | undefined;
    },
  ): Promise<SegmentLog> {
    const last = recovered.segments.at(-1);
    assert(last !== undefined, 'resume needs at least one segment');
    const files = recovered.segments.map((s) => ({ seq: s.seq, path: s.path }));
    let file: StorageFile;
    let size: number;
    try {
      file = await fs.open(last.path, 'update');
      size = await file.size();
    } catch (error) {
      throw ioError('WAL segment open', last.path, error);
    }
    const log = new SegmentLog(directory, fs, options, files, file, recovered.writeOffset, size);
    const torn = recovered.tornTail;
    if (torn !== undefined)
      await log.sync('WAL torn tail cut', torn.offset, () => writeZeros(file, torn.offset, torn.garbageEnd));
    return log;
  }

  /** The segment files, oldest first (the last one is the active one). */
  get segments(): readonly SegmentFile[] {
    return this.files;
  }

  /**
   * Writes `frame`, rolling over to a new segment first (headed by `header`) when it would
   * not fit, and makes it durable with one `fdatasync` unless `durable` is false; see
   * {@link Wal.append}. Returns the sequence number of the segment written to.
   */
  async append(frame: Uint8Array, header: SegmentHeaderFrame, durable = true): Promise<number> {
    if (this.writeOffset + frame.length > this.options.segmentSizeBytes && this.mayRollOver())
      await this.rollOver(header);
    const position = this.writeOffset;
    const end = position + frame.length;
    const write = async (): Promise<void> => {
      if (this.needsRunway(frame.length, end)) await this.extendRunway(end);
      await writeFully(this.file, frame, 0, frame.length, position);
    };
    if (durable) {
      await this.sync('WAL append', position, write);
      this.unsynced = false;
    } else {
      try {
        const started = performance.now();
        await write();
        this.lastAppend.writeMs = performance.now() - started;
        this.lastAppend.syncMs = 0;
      } catch (error) {
        throw ioError('WAL append', this.files.at(-1)!.path, error, position);
      }
      this.unsynced = true;
    }
    this.writeOffset = end;
    this.allocatedEnd = Math.max(this.allocatedEnd, end);
    this.empty = false;
    return this.files.at(-1)!.seq;
  }

  /**
   * Deletes the oldest segments while `deletable` says so (never the active one). Each
   * unlink is made durable before the next, so a crash can never leave a gap in the numbering.
   */
  async deleteOldest(deletable: (segment: SegmentFile) => boolean): Promise<string[]> {
    const deleted: string[] = [];
    while (this.files.length > 1 && deletable(this.files[0]!)) {
      const oldest = this.files[0]!;
      try {
        await this.fs.unlink(oldest.path);
        await this.fs.syncDirectory(this.directory);
      } catch (error) {
        throw ioError('WAL segment delete', oldest.path, error);
      }
      this.files.shift();
      deleted.push(oldest.path);
    }
    return deleted;
  }

  /** Closes the active segment's file. */
  async close(): Promise<void> {
    await this.file.close();
  }

  private mayRollOver(): boolean {
    return !this.empty || this.options.rollOverFromEmptySegment !== false;
  }

  private needsRunway(frameBytes: number, end: number): boolean {
    return this.options.preallocate && frameBytes < RUNWAY_FRAME_BYTES_MAX && end > this.allocatedEnd;
  }

  /** Writes zeros from the allocated end (or `end`) up to a runway past `end`, within the segment. */
  private async extendRunway(end: number): Promise<void> {
    const runwayEnd = Math.max(end, Math.min(end + RUNWAY_BYTES, this.options.segmentSizeBytes));
    const from = Math.max(this.allocatedEnd, end);
    await writeZeros(this.file, from, runwayEnd);
    this.allocatedEnd = runwayEnd;
  }

  /** Runs `writes` on the active segment, then `fdatasync`; errors become IO storage errors. */
  private async sync(operation: string, offset: number, writes: () => Promise<void>): Promise<void> {
    try {
      const started = performance.now();
      await writes();
      const written = performance.now();
      await this.file.datasync();
      this.lastAppend.writeMs = written - started;
      this.lastAppend.syncMs = performance.now() - written;
    } catch (error) {
      throw ioError(operation, this.files.at(-1)!.path, error, offset);
    }
  }

  private async rollOver(header: SegmentHeaderFrame): Promise<void> {
    // Only the last segment may end torn: make unsynced frames of this one durable first.
    if (this.unsynced) await this.sync('WAL segment seal', this.writeOffset, async () => {});
    this.unsynced = false;
    const seq = this.files.at(-1)!.seq + 1;
    const { file, path, headerBytes } = await createSegment(this.directory, this.fs, seq, header(seq));
    const previous = this.file;
    this.files.push({ seq, path });
    this.file = file;
    this.writeOffset = headerBytes;
    this.allocatedEnd = headerBytes;
    this.empty = true;
    await previous.close().catch(() => undefined);
  }
}

/** FileStorage's WAL: a {@link SegmentLog} whose segment headers carry one replica's state. */
export class Wal {
  /** The highest entry index written in each segment (0 if none), by sequence number. */
  private readonly maxEntryIndex = new Map<number, number>();

  private constructor(private readonly log: SegmentLog) {}

  /** Starts a new WAL in an empty directory with segment 1 carrying `carry`. */
  static async create(
    directory: string,
    fs: FileSystem,
    options: WalOptions,
    carry: CarriedState,
  ): Promise<Wal> {
    return new Wal(
      await SegmentLog.create(
        directory,
        fs,
        options,
        headerOf(() => carry),
      ),
    );
  }

  /** Continues a recovered WAL: cuts its torn tail, then appends after its last frame. */
  static async resume(
    directory: string,
    fs: FileSystem,
    options: WalOptions,
    recovered: RecoveredWal,
  ): Promise<Wal> {
    const wal = new Wal(await SegmentLog.resume(directory, fs, options, recovered));
    for (const segment of recovered.segments) wal.maxEntryIndex.set(segment.seq, segment.maxEntryIndex);
    return wal;
  }

  /** How long the last append spent writing and in `fdatasync`, in milliseconds. */
  get lastAppend(): { readonly writeMs: number; readonly syncMs: number } {
    return this.log.lastAppend;
  }

  /** The segment files, oldest first. */
  get segmentPaths(): string[] {
    return this.log.segments.map((s) => s.path);
  }

  /**
   * Writes `frame` and makes it durable with one `fdatasync`. `maxEntryIndex` is the highest
   * entry index in the frame (0 if none); `carry` returns the state before this frame, for
   * the header of a new segment if one is needed.
   *
   * With `durable` false the frame is written but not synced: the next durable append (or
   * the roll-over to a new segment) syncs it along, since `fdatasync` flushes every earlier
   * write of the file. Until then a crash may lose it or leave it torn at the tail, which
   * recovery cuts. For frames whose loss is harmless only (a commit-only HardState).
   */
  async append(
    frame: Uint8Array,
    maxEntryIndex: number,
    carry: () => CarriedState,
    durable = true,
  ): Promise<void> {
    const seq = await this.log.append(frame, headerOf(carry), durable);
    this.maxEntryIndex.set(seq, Math.max(this.maxEntryIndex.get(seq) ?? 0, maxEntryIndex));
  }

  /**
   * Deletes the oldest segments whose entries are all at or below `index` (never the active
   * one: a newer segment's header carries everything else they held).
   */
  async deleteThrough(index: number): Promise<string[]> {
    const deleted = await this.log.deleteOldest((s) => (this.maxEntryIndex.get(s.seq) ?? 0) <= index);
    for (const path of deleted) this.maxEntryIndex.delete(segmentSeqOf(path));
    return deleted;
  }

  /** Closes the active segment's file. */
  async close(): Promise<void> {
    await this.log.close();
  }
}

/** FileStorage's segment header: one replica's carried state. */
function headerOf(carry: () => CarriedState): SegmentHeaderFrame {
  return (seq) =>
    new FrameEncoder(1024).begin(FRAME_TYPE.SEGMENT_HEADER).segmentHeader({ seq, carry: carry() }).finish();
}

/** Creates segment `seq`: header under a temporary name, `fdatasync`, rename, directory fsync. */
async function createSegment(
  directory: string,
  fs: FileSystem,
  seq: number,
  header: Uint8Array,
): Promise<{ file: StorageFile; path: string; headerBytes: number }> {
  const temporaryPath = join(directory, temporarySegmentName(seq));
  const path = join(directory, segmentFileName(seq));
  try {
    const file = await fs.open(temporaryPath, 'create');
    await writeFully(file, header, 0, header.length, 0);
    await file.datasync();
    await fs.rename(temporaryPath, path);
    await fs.syncDirectory(directory);
    return { file, path, headerBytes: header.length };
  } catch (error) {
    throw ioError('WAL segment creation', path, error);
  }
}

let zeroChunk: Uint8Array | undefined;

/** Writes zeros over `[from, to)`. */
async function writeZeros(file: StorageFile, from: number, to: number): Promise<void> {
  zeroChunk ??= new Uint8Array(ZERO_CHUNK_BYTES);
  for (let position = from; position < to; position += ZERO_CHUNK_BYTES) {
    await writeFully(file, zeroChunk, 0, Math.min(ZERO_CHUNK_BYTES, to - position), position);
  }
}
