/**
 * Recovery of the shared WAL: reads every segment once, splits the records by group and
 * replays each group's records on its own {@link WalReplay}, with FileStorage's rules
 * (recovery.ts) applied to the log as a whole:
 *
 * 1. Segment numbers are consecutive; every segment starts with a valid SHARED_HEADER.
 * 2. Damage followed by a valid frame in a segment is damage in the middle: refuse. Damage
 *    at the end of the last segment is a torn tail (a write whose `fdatasync` never
 *    completed, so nothing in it was acknowledged): it is cut.
 * 3. A segment's header must restate exactly the state the older segments replay to, for
 *    exactly the groups live then: any acknowledged write lost at the end of the older
 *    segment shows up as a difference.
 * 4. A DROP record voids the group: its state is forgotten and later headers omit it.
 * 5. Each group's records must replay cleanly and its entries after the snapshot must all be
 *    present.
 */
import { EMPTY_CONF_STATE, EMPTY_HARD_STATE } from '../raft/types.js';
import { type CarriedState, CodecError, FRAME_TYPE } from './codec.js';
import { StorageError } from './errors.js';
import type { FileSystem } from './file-system.js';
import { checkConsecutive, checkTail, Refusal, type TornTail, tornTailOf } from './recovery.js';
import { carriedStateEqual, ReplayError, type ReplayResult, WalReplay } from './replay.js';
import { listSegments, type SegmentFile } from './segment-files.js';
import { type Frame, type SegmentScan, SHARED_WAL_FRAME_TYPES, scanSegment } from './segment-scan.js';
import { decodeGroupCommit, decodeSharedHeader, type SharedSegmentHeader } from './shared-codec.js';

/** What a readable shared WAL holds. */
export interface RecoveredSharedWal {
  /** The segments in order; empty for a new log. */
  readonly segments: readonly SegmentFile[];
  /** Per segment (by sequence number): the highest entry index each live group wrote in it. */
  readonly segmentEntries: Map<number, Map<number, number>>;
  /** Each live group's replayed state. */
  readonly groups: Map<number, ReplayResult>;
  /** Group records read (a group's part of a write, or a drop). */
  readonly records: number;
  /** Where the next frame goes in the last segment. */
  readonly writeOffset: number;
  /** The torn tail to cut before writing, if any. */
  readonly tornTail: TornTail | undefined;
}

/** The state of a group that has no records yet. */
export const EMPTY_CARRIED_STATE: CarriedState = Object.freeze({
  hardState: EMPTY_HARD_STATE,
  confState: EMPTY_CONF_STATE,
  snapshotIndex: 0,
  snapshotTerm: 0,
  lastIndex: 0,
  lastTerm: 0,
});

interface ReplayState {
  readonly replays: Map<number, WalReplay>;
  readonly segmentEntries: Map<number, Map<number, number>>;
  records: number;
}

/** Reads and checks every segment in `directory`; modifies nothing. Refusals throw {@link StorageError}. */
export async function recoverSharedWal(directory: string, fs: FileSystem): Promise<RecoveredSharedWal> {
  const segments = await listSegments(directory, fs);
  try {
    return await recoverSegments(segments, fs);
  } catch (error) {
    if (error instanceof Refusal) throw error.error;
    throw error;
  }
}

async function recoverSegments(
  segments: readonly SegmentFile[],
  fs: FileSystem,
): Promise<RecoveredSharedWal> {
  checkConsecutive(segments);
  const state: ReplayState = { replays: new Map(), segmentEntries: new Map(), records: 0 };
  let previousEnd = 0;
  let scan: SegmentScan | undefined;
  for (const [i, segment] of segments.entries()) {
    scan = scanSegment(await fs.readFile(segment.path), SHARED_WAL_FRAME_TYPES);
    const header = readHeader(segment, scan);
    if (i === 0) for (const [id, carry] of header.groups) state.replays.set(id, new WalReplay(carry));
    else checkCarry(segments, i, previousEnd, state.replays, header);
    state.segmentEntries.set(segment.seq, new Map());
    replaySegment(state, segment, scan.frames.slice(1));
    checkTail(segment, i, scan);
    previousEnd = scan.end;
  }
  const groups = new Map<number, ReplayResult>();
  for (const [id, replay] of state.replays) groups.set(id, finishReplay(id, replay, segments));
  const { segmentEntries, records } = state;
  if (scan === undefined)
    return { segments, segmentEntries, groups, records, writeOffset: 0, tornTail: undefined };
  return { segments, segmentEntries, groups, records, ...tornTailOf(segments, scan) };
}

function readHeader(segment: SegmentFile, scan: SegmentScan): SharedSegmentHeader {
  const first = scan.frames[0];
  const fail = (reason: string): never => {
    const error = new StorageError('CORRUPT', `invalid shared WAL segment header: ${reason}`, {
      file: segment.path,
      offset: 0,
    });
    throw new Refusal(error, undefined);
  };
  if (first === undefined || first.offset !== 0) return fail('no valid frame at the start');
  if (first.type !== FRAME_TYPE.SHARED_HEADER) return fail(`first frame has type ${first.type}`);
  try {
    const header = decodeSharedHeader(first.payload);
    if (header.seq !== segment.seq) return fail(`header names segment ${header.seq}`);
    return header;
  } catch (error) {
    if (error instanceof CodecError) return fail(error.message);
    throw error;
  }
}

/** Refuses a header that does not restate exactly the replayed state of the live groups. */
function checkCarry(
  segments: readonly SegmentFile[],
  i: number,
  previousEnd: number,
  replays: ReadonlyMap<number, WalReplay>,
  header: SharedSegmentHeader,
): void {
  const previous = segments[i - 1]!;
  const segment = segments[i]!;
  const lost = (detail: string): never => {
    const message = `${detail}: data at the end of shared WAL segment ${previous.seq} was lost`;
    const error = new StorageError('CORRUPT', message, { file: previous.path, offset: previousEnd });
    throw new Refusal(error, undefined);
  };
  if (header.groups.size !== replays.size)
    lost(`segment ${segment.seq} carries ${header.groups.size} groups but ${replays.size} are live`);
  for (const [id, replay] of replays) {
    const carried = header.groups.get(id);
    if (carried === undefined) {
      lost(`segment ${segment.seq} does not carry live group ${id}`);
      return;
    }
    if (!carriedStateEqual(replay.carry(), carried))
      lost(
        `segment ${segment.seq} starts group ${id} from ${JSON.stringify(carried)} ` +
          `but it replays to ${JSON.stringify(replay.carry())}`,
      );
  }
}

/** Replays the GROUP_COMMIT frames after a segment's header. */
function replaySegment(state: ReplayState, segment: SegmentFile, frames: readonly Frame[]): void {
  const entries = state.segmentEntries.get(segment.seq)!;
  for (const frame of frames) {
    let groupId: number | undefined;
    try {
      if (frame.type !== FRAME_TYPE.GROUP_COMMIT)
        throw new CodecError(`unexpected frame type ${frame.type}`, 0);
      for (const record of decodeGroupCommit(frame.payload)) {
        groupId = record.groupId;
        state.records++;
        if (record.kind === 'drop') {
          state.replays.delete(record.groupId);
          for (const groups of state.segmentEntries.values()) groups.delete(record.groupId);
          continue;
        }
        const replay = state.replays.get(record.groupId) ?? new WalReplay(EMPTY_CARRIED_STATE);
        state.replays.set(record.groupId, replay);
        for (const walRecord of record.records) replay.apply(walRecord);
        const max = maxEntryIndexOf(record.records);
        if (max > 0) entries.set(record.groupId, Math.max(entries.get(record.groupId) ?? 0, max));
      }
    } catch (error) {
      if (!(error instanceof CodecError || error instanceof ReplayError)) throw error;
      const of = groupId === undefined ? '' : ` (group ${groupId})`;
      const storageError = new StorageError('CORRUPT', `invalid shared WAL record${of}: ${error.message}`, {
        file: segment.path,
        offset: frame.offset,
      });
      throw new Refusal(storageError, undefined);
    }
  }
}

function maxEntryIndexOf(
  records: readonly { readonly type: string; readonly entry?: { index: number } }[],
): number {
  let max = 0;
  for (const record of records) if (record.entry !== undefined) max = Math.max(max, record.entry.index);
  return max;
}

function finishReplay(groupId: number, replay: WalReplay, segments: readonly SegmentFile[]): ReplayResult {
  try {
    return replay.finish();
  } catch (error) {
    if (!(error instanceof ReplayError)) throw error;
    const first = segments[0]!;
    const message = `group ${groupId}: ${error.message}: a shared WAL segment before segment ${first.seq} was lost`;
    throw new Refusal(
      new StorageError('MISSING_SEGMENT', message, { file: first.path, offset: 0 }),
      undefined,
    );
  }
}
