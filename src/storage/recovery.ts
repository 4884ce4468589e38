/**
 * Reads a WAL directory and decides, without modifying anything, what state it holds or
 * why it cannot be trusted. The rules (also in docs/storage.md):
 *
 * 1. Segments are numbered; the numbers must be consecutive (a gap is a missing segment).
 * 2. Every segment starts with a valid header naming its own number.
 * 3. In every segment the data ends at the first position that is not a valid frame. If any
 *    valid frame follows that position in the same segment, the damage is in the middle of
 *    the log: refuse.
 * 4. Bytes after the end in the LAST segment are a torn tail: the frame that was being
 *    written when the node stopped. Its `fdatasync` never completed, so it was never
 *    acknowledged, and it is cut off.
 * 5. In an earlier segment the next segment's header must carry exactly the state replayed
 *    so far; any acknowledged frame lost at the end of the earlier segment shows up as a
 *    difference (every frame changes the carried state, or repeats it), so refuse.
 * 6. Records must replay cleanly (see `WalReplay`) and the entries after the snapshot must
 *    all be present.
 */
import { EMPTY_CONF_STATE, EMPTY_HARD_STATE } from '../raft/types.js';
import { type CarriedState, CodecError, decodeBatch, decodeSegmentHeader, FRAME_TYPE } from './codec.js';
import { StorageError } from './errors.js';
import type { FileSystem } from './file-system.js';
import { carriedStateEqual, ReplayError, type ReplayResult, WalReplay } from './replay.js';
import { listSegments, type SegmentFile, segmentFileName } from './segment-files.js';
import { type Frame, type SegmentScan, scanSegment } from './segment-scan.js';

/** A segment found by recovery. */
export interface RecoveredSegment extends SegmentFile {
  /** The highest entry index written in the segment (0 when none): it may be deleted once compacted past this. */
  readonly maxEntryIndex: number;
}

/** A torn tail found at the end of the last segment. */
export interface TornTail {
  readonly file: string;
  /** Where the last valid frame ends: the cut point. */
  readonly offset: number;
  /** One past the last non-zero byte of the torn bytes. */
  readonly garbageEnd: number;
}

/** What a readable WAL holds. */
export interface RecoveredWal extends ReplayResult {
  /** The segments in order; empty for a new WAL. */
  readonly segments: readonly RecoveredSegment[];
  /** Where the next frame goes in the last segment. */
  readonly writeOffset: number;
  /** The torn tail to cut before writing, if any. */
  readonly tornTail: TornTail | undefined;
}

/** Where repair would cut: keep `segments[0, segmentIndex)` and the first `offset` bytes of `segments[segmentIndex]`. */
export interface CutPoint {
  readonly segmentIndex: number;
  readonly file: string;
  readonly offset: number;
}

/** A WAL recovery refuses; `cut` is undefined when cutting the log cannot help. */
export interface WalProblem {
  readonly error: StorageError;
  readonly cut: CutPoint | undefined;
  readonly segments: readonly SegmentFile[];
}

/** The result of {@link analyzeWal}. */
export type WalAnalysis = { readonly wal: RecoveredWal } | { readonly problem: WalProblem };

/** Why recovery refuses a WAL, and where repair could cut it (shared-recovery.ts throws its error). */
export class Refusal extends Error {
  constructor(
    readonly error: StorageError,
    readonly cut: CutPoint | undefined,
  ) {
    super(error.message);
  }
}

/** Reads and checks every segment in `walDirectory`; modifies nothing. I/O errors are thrown. */
export async function analyzeWal(walDirectory: string, fs: FileSystem): Promise<WalAnalysis> {
  const segments = await listSegments(walDirectory, fs);
  try {
    return { wal: await recoverSegments(segments, fs) };
  } catch (error) {
    if (!(error instanceof Refusal)) throw error;
    return { problem: { error: error.error, cut: error.cut, segments } };
  }
}

/** Like {@link analyzeWal} but throws the refusal's {@link StorageError}. */
export async function recoverWal(walDirectory: string, fs: FileSystem): Promise<RecoveredWal> {
  const analysis = await analyzeWal(walDirectory, fs);
  if ('problem' in analysis) throw analysis.problem.error;
  return analysis.wal;
}

async function recoverSegments(segments: readonly SegmentFile[], fs: FileSystem): Promise<RecoveredWal> {
  checkConsecutive(segments);
  const recovered: RecoveredSegment[] = [];
  let replay: WalReplay | undefined;
  let previousEnd = 0;
  let scan: SegmentScan | undefined;
  for (const [i, segment] of segments.entries()) {
    scan = scanSegment(await fs.readFile(segment.path));
    const carry = readHeader(segment, i, scan);
    if (replay === undefined) replay = new WalReplay(carry);
    else checkCarry(segments, i, previousEnd, replay.carry(), carry);
    const maxEntryIndex = replaySegment(replay, segment, i, scan.frames.slice(1));
    checkTail(segment, i, scan);
    recovered.push({ ...segment, maxEntryIndex });
    previousEnd = scan.end;
  }
  if (replay === undefined || scan === undefined) return emptyWal();
  return { ...finishReplay(replay, segments), segments: recovered, ...tornTailOf(segments, scan) };
}

function emptyWal(): RecoveredWal {
  const empty = new WalReplay({
    hardState: EMPTY_HARD_STATE,
    confState: EMPTY_CONF_STATE,
    snapshotIndex: 0,
    snapshotTerm: 0,
    lastIndex: 0,
    lastTerm: 0,
  });
  return { ...empty.finish(), segments: [], writeOffset: 0, tornTail: undefined };
}

/** Refuses a gap in the segment numbering. */
export function checkConsecutive(segments: readonly SegmentFile[]): void {
  for (let i = 1; i < segments.length; i++) {
    const previous = segments[i - 1]!;
    const segment = segments[i]!;
    if (segment.seq === previous.seq + 1) continue;
    const error = new StorageError(
      'MISSING_SEGMENT',
      `WAL segment ${previous.seq + 1} (${segmentFileName(previous.seq + 1)}) is missing: segment ${previous.seq} is followed by ${segment.seq}`,
      { file: segment.path, offset: 0 },
    );
    throw new Refusal(error, { segmentIndex: i, file: segment.path, offset: 0 });
  }
}

function readHeader(segment: SegmentFile, i: number, scan: SegmentScan): CarriedState {
  const first = scan.frames[0];
  const fail = (reason: string): never => {
    const error = new StorageError('CORRUPT', `invalid WAL segment header: ${reason}`, {
      file: segment.path,
      offset: 0,
    });
    // Cutting the first segment away would leave nothing to recover from.
    throw new Refusal(error, i === 0 ? undefined : { segmentIndex: i, file: segment.path, offset: 0 });
  };
  if (first === undefined || first.offset !== 0) return fail('no valid frame at the start');
  if (first.type !== FRAME_TYPE.SEGMENT_HEADER) return fail(`first frame has type ${first.type}`);
  try {
    const header = decodeSegmentHeader(first.payload);
    if (header.seq !== segment.seq) return fail(`header names segment ${header.seq}`);
    return header.carry;
  } catch (error) {
    if (error instanceof CodecError) return fail(error.message);
    throw error;
  }
}

function checkCarry(
  segments: readonly SegmentFile[],
  i: number,
  previousEnd: number,
  replayed: CarriedState,
  carried: CarriedState,
): void {
  if (carriedStateEqual(replayed, carried)) return;
  const previous = segments[i - 1]!;
  const error = new StorageError(
    'CORRUPT',
    `WAL segment ${segments[i]!.seq} starts from ${JSON.stringify(carried)} but segment ${previous.seq} ` +
      `ends at ${JSON.stringify(replayed)}: data at the end of segment ${previous.seq} was lost`,
    { file: previous.path, offset: previousEnd },
  );
  throw new Refusal(error, { segmentIndex: i - 1, file: previous.path, offset: previousEnd });
}

/** Replays the frames after the header; returns the highest entry index written. */
function replaySegment(replay: WalReplay, segment: SegmentFile, i: number, frames: readonly Frame[]): number {
  let maxEntryIndex = 0;
  for (const frame of frames) {
    try {
      if (frame.type !== FRAME_TYPE.BATCH) throw new CodecError(`unexpected frame type ${frame.type}`, 0);
      for (const record of decodeBatch(frame.payload)) {
        replay.apply(record);
        if (record.type === 'entry') maxEntryIndex = Math.max(maxEntryIndex, record.entry.index);
      }
    } catch (error) {
      if (!(error instanceof CodecError || error instanceof ReplayError)) throw error;
      const message = `invalid WAL record: ${error.message}`;
      const storageError = new StorageError('CORRUPT', message, { file: segment.path, offset: frame.offset });
      throw new Refusal(storageError, { segmentIndex: i, file: segment.path, offset: frame.offset });
    }
  }
  return maxEntryIndex;
}

/** Refuses damage followed by a valid frame in a segment. */
export function checkTail(segment: SegmentFile, i: number, scan: SegmentScan): void {
  const { tail } = scan;
  if (tail.kind !== 'bad' || tail.nextValidFrame === undefined) return;
  const error = new StorageError(
    'CORRUPT',
    `damaged WAL frame (${tail.reason}) followed by a valid frame at byte offset ${tail.nextValidFrame}: ` +
      'the log is damaged in the middle, not torn at its end',
    { file: segment.path, offset: scan.end },
  );
  throw new Refusal(error, { segmentIndex: i, file: segment.path, offset: scan.end });
}

function finishReplay(replay: WalReplay, segments: readonly SegmentFile[]): ReplayResult {
  try {
    return replay.finish();
  } catch (error) {
    if (!(error instanceof ReplayError)) throw error;
    const first = segments[0]!;
    const message = `${error.message}: a WAL segment before segment ${first.seq} was lost`;
    throw new Refusal(
      new StorageError('MISSING_SEGMENT', message, { file: first.path, offset: 0 }),
      undefined,
    );
  }
}

/** Where the next frame goes in the last segment, and its torn tail to cut, if any. */
export function tornTailOf(
  segments: readonly SegmentFile[],
  scan: SegmentScan,
): { writeOffset: number; tornTail: TornTail | undefined } {
  const last = segments.at(-1)!;
  const { tail } = scan;
  const tornTail =
    tail.kind === 'bad' ? { file: last.path, offset: scan.end, garbageEnd: tail.garbageEnd } : undefined;
  return { writeOffset: scan.end, tornTail };
}
