/**
 * The frames of the shared WAL (one log for every raft group of a process), built on the
 * framing of codec.ts: `[length u32][crc32c u32][type u8][payload]`.
 *
 *     SHARED_HEADER  magic "FSWL" u32, version u8, seq u64, group count u32,
 *                    then per live group: group id u64, carried state (as a segment header's)
 *     GROUP_COMMIT   a sequence of group records, everything one write of the log carries:
 *                    group id u64, kind u8, length u32, payload
 *                    kind BATCH: the records of one group's call (codec.ts batch records)
 *                    kind DROP:  empty; the group is gone, its earlier records are void
 *
 * One checksum covers the whole write, so a crash leaves all of it or none: the pages of a
 * write can reach the disk in any order, and a frame per group would let a later group's
 * frame survive an earlier one's loss (which recovery would have to call damage).
 */
import {
  type CarriedState,
  CodecError,
  decodeBatch,
  FORMAT_VERSION,
  FRAME_TYPE,
  FrameEncoder,
  PayloadReader,
  readCarriedState,
  type WalRecord,
} from './codec.js';

/** Identifies a shared WAL segment's header: "FSWL" read as a little-endian u32. */
export const SHARED_SEGMENT_MAGIC = 0x4c575346;

/** Kinds of group records in a GROUP_COMMIT frame. */
export const GROUP_RECORD_KIND = Object.freeze({ BATCH: 0, DROP: 1 } as const);

/** A shared segment's header: the sequence number and every live group's carried state. */
export interface SharedSegmentHeader {
  readonly seq: number;
  readonly groups: ReadonlyMap<number, CarriedState>;
}

/** One group's part of a GROUP_COMMIT frame, decoded. */
export type GroupRecord =
  | { readonly kind: 'batch'; readonly groupId: number; readonly records: WalRecord[] }
  | { readonly kind: 'drop'; readonly groupId: number };

/** One group's part of a write, encoded: its kind and (for a batch) the batch records' bytes. */
export interface PendingGroupRecord {
  readonly groupId: number;
  readonly kind: (typeof GROUP_RECORD_KIND)[keyof typeof GROUP_RECORD_KIND];
  readonly payload: Uint8Array;
}

/** Bytes of a group record's `[group id u64][kind u8][length u32]` header. */
const GROUP_RECORD_HEADER_BYTES = 13;

/** Encodes the header frame of shared segment `seq`. */
export function encodeSharedHeader(header: SharedSegmentHeader): Uint8Array {
  const encoder = new FrameEncoder(256 + 128 * header.groups.size).begin(FRAME_TYPE.SHARED_HEADER);
  encoder.reserve(17).u32(SHARED_SEGMENT_MAGIC).u8(FORMAT_VERSION).u64(header.seq).u32(header.groups.size);
  for (const [groupId, carry] of header.groups) encoder.reserve(8).u64(groupId).carriedState(carry);
  return encoder.finish();
}

/** Decodes a SHARED_HEADER payload (after the type byte). */
export function decodeSharedHeader(payload: Uint8Array): SharedSegmentHeader {
  const reader = new PayloadReader(payload);
  const magic = reader.u32('magic');
  if (magic !== SHARED_SEGMENT_MAGIC)
    throw new CodecError(`bad shared segment magic 0x${magic.toString(16)}`, 0);
  const version = reader.u8('version');
  if (version !== FORMAT_VERSION) throw new CodecError(`unsupported format version ${version}`, 4);
  const seq = reader.u64('seq');
  const count = reader.u32('group count');
  const groups = new Map<number, CarriedState>();
  for (let i = 0; i < count; i++) {
    const at = reader.pos;
    const groupId = reader.u64('group id');
    if (groups.has(groupId)) throw new CodecError(`group ${groupId} appears twice`, at);
    groups.set(groupId, readCarriedState(reader));
  }
  reader.end('shared segment header');
  return { seq, groups };
}

/** Encodes one write: the records of every group in it, as one GROUP_COMMIT frame. */
export function encodeGroupCommit(encoder: FrameEncoder, records: readonly PendingGroupRecord[]): Uint8Array {
  encoder.begin(FRAME_TYPE.GROUP_COMMIT);
  for (const record of records) {
    encoder.reserve(GROUP_RECORD_HEADER_BYTES).u64(record.groupId).u8(record.kind).u32(record.payload.length);
    encoder.raw(record.payload);
  }
  return encoder.finish();
}

/** Decodes a GROUP_COMMIT payload (after the type byte); offsets in errors are payload-relative. */
export function decodeGroupCommit(payload: Uint8Array): GroupRecord[] {
  const reader = new PayloadReader(payload);
  const records: GroupRecord[] = [];
  while (reader.remaining > 0) {
    const groupId = reader.u64('group id');
    const kind = reader.u8('group record kind');
    const length = reader.u32('group record length');
    reader.need(length, 'group record payload');
    const start = reader.pos;
    reader.pos += length;
    if (kind === GROUP_RECORD_KIND.DROP) {
      if (length !== 0) throw new CodecError(`drop record of ${length} bytes`, start);
      records.push({ kind: 'drop', groupId });
    } else if (kind === GROUP_RECORD_KIND.BATCH) {
      const batch = decodeBatchAt(payload.subarray(start, start + length), start);
      records.push({ kind: 'batch', groupId, records: batch });
    } else {
      throw new CodecError(`unknown group record kind ${kind}`, start - 5);
    }
  }
  return records;
}

function decodeBatchAt(bytes: Uint8Array, start: number): WalRecord[] {
  try {
    return decodeBatch(bytes);
  } catch (error) {
    if (error instanceof CodecError) throw new CodecError(error.message, start + error.offset);
    throw error;
  }
}
