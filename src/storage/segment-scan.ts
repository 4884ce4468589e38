/**
 * Splits a segment file's bytes into checksummed frames and classifies what follows the last
 * valid one. Pure functions over bytes: recovery, repair and tests share them.
 */
import { FRAME_HEADER_BYTES, FRAME_TYPE, frameChecksum } from './codec.js';

/** One valid frame: its checksum matched. */
export interface Frame {
  /** Byte offset of the frame's header in the segment. */
  readonly offset: number;
  /** Offset just past the frame. */
  readonly end: number;
  readonly type: number;
  /** The frame's payload (after the type byte); a view into the segment's bytes. */
  readonly payload: Uint8Array;
}

/** What a segment holds after its last valid frame. */
export type SegmentTail =
  /** The last frame ends exactly at the end of the file. */
  | { readonly kind: 'eof' }
  /** Only zero bytes follow (preallocated space that was never written). */
  | { readonly kind: 'zeros' }
  /**
   * Bytes that are not a valid frame follow. `garbageEnd` is one past the last non-zero
   * byte; `nextValidFrame` is the offset of a valid frame further on, if there is one.
   */
  | {
      readonly kind: 'bad';
      readonly reason: string;
      readonly garbageEnd: number;
      readonly nextValidFrame: number | undefined;
    };

/** The valid frames of a segment, where its data ends, and what follows. */
export interface SegmentScan {
  readonly frames: Frame[];
  /** Offset just past the last valid frame (0 when there is none). */
  readonly end: number;
  readonly tail: SegmentTail;
}

/** A valid frame at `offset`, or why there is none. */
export type FrameRead = { readonly frame: Frame } | { readonly invalid: string };

/** Reads the frame at `offset`, checking its bounds and checksum (not its payload's structure). */
export function readFrameAt(bytes: Uint8Array, offset: number): FrameRead {
  if (offset + FRAME_HEADER_BYTES > bytes.length) return { invalid: 'truncated frame header' };
  const length = readU32(bytes, offset);
  const checksum = readU32(bytes, offset + 4);
  if (length === 0) return { invalid: checksum === 0 ? 'zero frame header' : 'frame length 0' };
  const end = offset + FRAME_HEADER_BYTES + length;
  if (end > bytes.length) return { invalid: `frame of ${length} bytes extends past the end of the file` };
  const body = bytes.subarray(offset + FRAME_HEADER_BYTES, end);
  if (frameChecksum(body) !== checksum) return { invalid: 'checksum mismatch' };
  return { frame: { offset, end, type: body[0]!, payload: body.subarray(1) } };
}

/** The frame types a FileStorage segment holds. */
export const WAL_FRAME_TYPES: readonly number[] = [FRAME_TYPE.BATCH, FRAME_TYPE.SEGMENT_HEADER];

/** The frame types a shared WAL segment holds. */
export const SHARED_WAL_FRAME_TYPES: readonly number[] = [FRAME_TYPE.GROUP_COMMIT, FRAME_TYPE.SHARED_HEADER];

/** Scans a whole segment from offset 0; `frameTypes` are those a valid frame after damage may have. */
export function scanSegment(bytes: Uint8Array, frameTypes: readonly number[] = WAL_FRAME_TYPES): SegmentScan {
  const frames: Frame[] = [];
  let offset = 0;
  for (;;) {
    if (offset === bytes.length) return { frames, end: offset, tail: { kind: 'eof' } };
    const read = readFrameAt(bytes, offset);
    if ('invalid' in read)
      return { frames, end: offset, tail: classifyTail(bytes, offset, read.invalid, frameTypes) };
    frames.push(read.frame);
    offset = read.frame.end;
  }
}

function classifyTail(
  bytes: Uint8Array,
  offset: number,
  reason: string,
  frameTypes: readonly number[],
): SegmentTail {
  const garbageEnd = nonZeroEnd(bytes, offset);
  if (garbageEnd === offset) return { kind: 'zeros' };
  return { kind: 'bad', reason, garbageEnd, nextValidFrame: findValidFrame(bytes, offset + 1, frameTypes) };
}

/**
 * The offset of the first valid frame (known type, matching checksum) starting at or after
 * `from`, trying every byte offset, or undefined. Used to tell a torn tail (nothing valid
 * follows the bad bytes) from damage in the middle of the log (valid data follows).
 */
export function findValidFrame(
  bytes: Uint8Array,
  from: number,
  frameTypes: readonly number[] = WAL_FRAME_TYPES,
): number | undefined {
  const last = bytes.length - FRAME_HEADER_BYTES - 1;
  for (let offset = from; offset <= last; offset++) {
    const length = readU32(bytes, offset);
    // Cheap filters first: most garbage offsets fail on length or type before any checksum.
    if (length === 0 || offset + FRAME_HEADER_BYTES + length > bytes.length) continue;
    const type = bytes[offset + FRAME_HEADER_BYTES];
    if (type === undefined || !frameTypes.includes(type)) continue;
    if ('frame' in readFrameAt(bytes, offset)) return offset;
  }
  return undefined;
}

const ZEROS = new Uint8Array(64 * 1024);

/** One past the last non-zero byte in `bytes[from, end)`, or `from` when they are all zero. */
export function nonZeroEnd(bytes: Uint8Array, from: number): number {
  let end = bytes.length;
  while (end > from) {
    const start = Math.max(from, end - ZEROS.length);
    if (Buffer.compare(bytes.subarray(start, end), ZEROS.subarray(0, end - start)) !== 0) {
      for (let i = end - 1; i >= start; i--) if (bytes[i] !== 0) return i + 1;
    }
    end = start;
  }
  return from;
}

function readU32(bytes: Uint8Array, offset: number): number {
  return (
    (bytes[offset]! | (bytes[offset + 1]! << 8) | (bytes[offset + 2]! << 16) | (bytes[offset + 3]! << 24)) >>>
    0
  );
}
