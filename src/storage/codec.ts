/**
 * The binary format of WAL segments (little endian throughout).
 *
 * A segment is a sequence of frames. A frame is the unit of checksumming and of atomicity:
 *
 *     frame  = [length u32][crc32c u32][type u8][payload]
 *              length = 1 + payload bytes; crc32c covers type and payload
 *
 * Frame types: `SEGMENT_HEADER` (first frame of every segment; carries the state needed to
 * recover without the older segments), `BATCH` (everything one `save` wrote) and
 * `SNAPSHOT_META` (index u64, term u64, conf state; only in snapshot files). A batch
 * payload is a sequence of records `[type u8][length u32][payload]`:
 *
 *     ENTRY       index u64, term u64, entry type u8, data
 *     HARD_STATE  term u64, vote u64, commit u64 (always together)
 *     TRUNCATE    index u64: entries at and after index are removed
 *     SNAPSHOT    kind u8 (created / received), index u64, term u64, conf state
 *     CONF_STATE  conf state
 *
 * Why one checksum per batch rather than per record: a Ready's records must stand or fall
 * together (hard state without its entries may claim a commit index beyond the log), so the
 * batch needs its own framing anyway, and one crc32c call per write is far cheaper than one
 * per entry (about 250 ns per call, a quarter of the per-entry budget at 1M entries/s).
 */
import { crc32c } from '@node-rs/crc32';
import { AssertionError, assert } from '../raft/assert.js';
import type { ConfState, Entry, EntryType, HardState, SnapshotMeta } from '../raft/types.js';

/** Bytes of a frame's `[length][crc32c]` header. */
export const FRAME_HEADER_BYTES = 8;

/** Frame type bytes. */
export const FRAME_TYPE = Object.freeze({
  SEGMENT_HEADER: 1,
  BATCH: 2,
  SNAPSHOT_META: 3,
  /** The shared WAL's segment header: every live group's carried state (shared-codec.ts). */
  SHARED_HEADER: 4,
  /** One write of the shared WAL: the batches of several groups (shared-codec.ts). */
  GROUP_COMMIT: 5,
} as const);

/** Record type bytes inside a batch. */
export const RECORD_TYPE = Object.freeze({
  ENTRY: 1,
  HARD_STATE: 2,
  TRUNCATE: 3,
  SNAPSHOT: 4,
  CONF_STATE: 5,
} as const);

/** Identifies a segment file's header: "FWAL" read as a little-endian u32. */
export const SEGMENT_MAGIC = 0x4c415746;

/** The version of this format, stored in every segment header. */
export const FORMAT_VERSION = 1;

/** Bytes of an inner record's `[type u8][length u32]` header. */
const RECORD_HEADER_BYTES = 5;

const TWO_POW_32 = 0x1_0000_0000;

/** The state a segment starts from, so that older segments can be deleted (see docs/storage.md). */
export interface CarriedState {
  readonly hardState: HardState;
  readonly confState: ConfState;
  readonly snapshotIndex: number;
  readonly snapshotTerm: number;
  readonly lastIndex: number;
  readonly lastTerm: number;
}

/** The first frame of every segment. */
export interface SegmentHeader {
  /** The segment's sequence number; must match its file name. */
  readonly seq: number;
  readonly carry: CarriedState;
}

/** Whether a snapshot marker records a local `createSnapshot` or a snapshot received from the leader. */
export type SnapshotKind = 'created' | 'received';

/** One record of a batch, decoded. */
export type WalRecord =
  | { readonly type: 'entry'; readonly entry: Entry }
  | { readonly type: 'hard-state'; readonly hardState: HardState }
  | { readonly type: 'truncate'; readonly index: number }
  | { readonly type: 'snapshot'; readonly kind: SnapshotKind; readonly meta: SnapshotMeta }
  | { readonly type: 'conf-state'; readonly confState: ConfState };

/** A malformed payload; `offset` is relative to the payload start. */
export class CodecError extends Error {
  override readonly name = 'CodecError';
  constructor(
    message: string,
    readonly offset: number,
  ) {
    super(message);
  }
}

/**
 * Builds one frame in a reusable buffer. Usage: `begin(type)`, add records, `finish()`.
 * The returned bytes stay valid until the next `begin`.
 */
export class FrameEncoder {
  private buf: Uint8Array;
  /** A view of `buf` for multi-byte fields (faster than Buffer's checked writers). */
  private view: DataView;
  private pos = 0;
  private recordStart = -1;

  constructor(initialCapacityBytes = 64 * 1024) {
    this.buf = new Uint8Array(initialCapacityBytes);
    this.view = new DataView(this.buf.buffer);
  }

  /** Starts a new frame of `type`, discarding any unfinished one. */
  begin(type: number): this {
    this.pos = FRAME_HEADER_BYTES;
    this.ensure(1);
    this.buf[this.pos++] = type;
    return this;
  }

  /** Bytes written so far, including the frame header. */
  get sizeBytes(): number {
    return this.pos;
  }

  /** Appends an ENTRY record. */
  entry(entry: Entry): this {
    this.beginRecord(RECORD_TYPE.ENTRY, 17 + entry.data.length);
    this.u64(entry.index)
      .u64(entry.term)
      .u8(entry.type === 'normal' ? 0 : 1);
    this.buf.set(entry.data, this.pos);
    this.pos += entry.data.length;
    return this.endRecord();
  }

  /** Appends a HARD_STATE record. */
  hardState(hardState: HardState): this {
    this.beginRecord(RECORD_TYPE.HARD_STATE, 24);
    this.u64(hardState.term).u64(hardState.vote).u64(hardState.commit);
    return this.endRecord();
  }

  /** Appends a TRUNCATE record: entries at and after `index` are removed. */
  truncate(index: number): this {
    this.beginRecord(RECORD_TYPE.TRUNCATE, 8);
    this.u64(index);
    return this.endRecord();
  }

  /** Appends a SNAPSHOT marker. */
  snapshot(kind: SnapshotKind, meta: SnapshotMeta): this {
    this.beginRecord(RECORD_TYPE.SNAPSHOT, 17 + confStateBytes(meta.confState));
    this.u8(kind === 'created' ? 0 : 1)
      .u64(meta.index)
      .u64(meta.term)
      .confState(meta.confState);
    return this.endRecord();
  }

  /** Appends a CONF_STATE record. */
  confStateRecord(confState: ConfState): this {
    this.beginRecord(RECORD_TYPE.CONF_STATE, confStateBytes(confState));
    this.confState(confState);
    return this.endRecord();
  }

  /** Writes a segment header's payload (the frame must have been begun as SEGMENT_HEADER). */
  segmentHeader(header: SegmentHeader): this {
    this.ensure(17);
    this.u32(SEGMENT_MAGIC).u8(FORMAT_VERSION).u64(header.seq);
    return this.carriedState(header.carry);
  }

  /** Writes a carried state (as in a segment header, after its sequence number). */
  carriedState(carry: CarriedState): this {
    this.ensure(7 * 8 + confStateBytes(carry.confState));
    this.u64(carry.hardState.term).u64(carry.hardState.vote).u64(carry.hardState.commit);
    this.u64(carry.snapshotIndex).u64(carry.snapshotTerm).u64(carry.lastIndex).u64(carry.lastTerm);
    return this.confState(carry.confState);
  }

  /** Makes room for `bytes` more bytes written with the field writers below. */
  reserve(bytes: number): this {
    this.ensure(bytes);
    return this;
  }

  /** Appends raw bytes. */
  raw(bytes: Uint8Array): this {
    this.ensure(bytes.length);
    this.buf.set(bytes, this.pos);
    this.pos += bytes.length;
    return this;
  }

  /** Writes a snapshot file's metadata (the frame must have been begun as SNAPSHOT_META). */
  snapshotMeta(meta: SnapshotMeta): this {
    this.ensure(16 + confStateBytes(meta.confState));
    return this.u64(meta.index).u64(meta.term).confState(meta.confState);
  }

  /**
   * The frame's bytes without its length and checksum filled in (a view of the internal
   * buffer): for records that travel inside another frame, which carries the checksum.
   */
  unsealed(): Uint8Array {
    assert(this.recordStart < 0, 'frame finished inside a record');
    return this.buf.subarray(0, this.pos);
  }

  /** Fills in length and checksum; returns the frame's bytes (a view of the internal buffer). */
  finish(): Uint8Array {
    assert(this.recordStart < 0, 'frame finished inside a record');
    const length = this.pos - FRAME_HEADER_BYTES;
    assert(length >= 1 && length < TWO_POW_32, `frame length ${length} out of range`);
    const body = this.buf.subarray(FRAME_HEADER_BYTES, this.pos);
    this.view.setUint32(0, length, true);
    this.view.setUint32(4, crc32c(body), true);
    return this.buf.subarray(0, this.pos);
  }

  private beginRecord(type: number, payloadBytes: number): void {
    this.ensure(RECORD_HEADER_BYTES + payloadBytes);
    this.buf[this.pos] = type;
    this.recordStart = this.pos;
    this.pos += RECORD_HEADER_BYTES;
  }

  private endRecord(): this {
    const payloadBytes = this.pos - this.recordStart - RECORD_HEADER_BYTES;
    this.view.setUint32(this.recordStart + 1, payloadBytes, true);
    this.recordStart = -1;
    return this;
  }

  private confState(confState: ConfState): this {
    for (const list of confStateLists(confState)) {
      this.u32(list.length);
      for (const id of list) this.u64(id);
    }
    return this.u8(confState.autoLeave ? 1 : 0);
  }

  /** Field writers: the caller {@link FrameEncoder.reserve}s room first. */
  u8(value: number): this {
    this.buf[this.pos++] = value;
    return this;
  }

  u32(value: number): this {
    this.view.setUint32(this.pos, value, true);
    this.pos += 4;
    return this;
  }

  u64(value: number): this {
    // Not `assert(…, message)`: this runs per field, and the message would be built every time.
    if (!Number.isSafeInteger(value) || value < 0)
      throw new AssertionError(`u64 field out of range: ${value}`);
    this.view.setUint32(this.pos, value >>> 0, true);
    this.view.setUint32(this.pos + 4, Math.floor(value / TWO_POW_32), true);
    this.pos += 8;
    return this;
  }

  /** Grows the buffer so `bytes` more fit, keeping what was written. */
  private ensure(bytes: number): void {
    const needed = this.pos + bytes;
    if (needed <= this.buf.length) return;
    const grown = new Uint8Array(Math.max(needed, this.buf.length * 2));
    grown.set(this.buf.subarray(0, this.pos));
    this.buf = grown;
    this.view = new DataView(grown.buffer);
  }
}

function confStateLists(confState: ConfState): readonly (readonly number[])[] {
  return [
    confState.voters,
    confState.votersOutgoing,
    confState.learners,
    confState.learnersNext,
    confState.removed ?? [],
  ];
}

function confStateBytes(confState: ConfState): number {
  let bytes = 1;
  for (const list of confStateLists(confState)) bytes += 4 + 8 * list.length;
  return bytes;
}

/** The checksum a frame with this body (type byte and payload) must carry. */
export function frameChecksum(body: Uint8Array): number {
  return crc32c(body);
}

/** Reads fields from a payload, throwing {@link CodecError} on malformed input. */
export class PayloadReader {
  private readonly view: DataView;
  pos = 0;

  constructor(private readonly bytes: Uint8Array) {
    this.view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  }

  get remaining(): number {
    return this.bytes.length - this.pos;
  }

  need(bytes: number, what: string): void {
    if (bytes > this.remaining)
      throw new CodecError(`${what}: needs ${bytes} bytes, ${this.remaining} left`, this.pos);
  }

  u8(what: string): number {
    this.need(1, what);
    return this.view.getUint8(this.pos++);
  }

  u32(what: string): number {
    this.need(4, what);
    const value = this.view.getUint32(this.pos, true);
    this.pos += 4;
    return value;
  }

  u64(what: string): number {
    this.need(8, what);
    const low = this.view.getUint32(this.pos, true);
    const high = this.view.getUint32(this.pos + 4, true);
    if (high >= 0x20_0000) throw new CodecError(`${what}: u64 beyond 2^53`, this.pos);
    this.pos += 8;
    return high * TWO_POW_32 + low;
  }

  /** A copy, so decoded entries do not pin the whole segment buffer in memory. */
  bytesCopy(length: number, what: string): Uint8Array {
    this.need(length, what);
    // `new Uint8Array(view)` copies; `slice` on a Buffer would return a view instead.
    const copy = new Uint8Array(this.bytes.subarray(this.pos, this.pos + length));
    this.pos += length;
    return copy;
  }

  confState(): ConfState {
    const voters = this.ids('voters');
    const votersOutgoing = this.ids('votersOutgoing');
    const learners = this.ids('learners');
    const learnersNext = this.ids('learnersNext');
    const removed = this.ids('removed');
    const autoLeave = this.u8('autoLeave');
    if (autoLeave > 1) throw new CodecError(`autoLeave: invalid value ${autoLeave}`, this.pos - 1);
    const base = { voters, votersOutgoing, learners, learnersNext, autoLeave: autoLeave === 1 };
    return removed.length > 0 ? { ...base, removed } : base;
  }

  private ids(what: string): number[] {
    const count = this.u32(`${what} count`);
    this.need(count * 8, what);
    const ids: number[] = [];
    for (let i = 0; i < count; i++) ids.push(this.u64(what));
    return ids;
  }

  end(what: string): void {
    if (this.remaining !== 0)
      throw new CodecError(`${what}: ${this.remaining} unexpected trailing bytes`, this.pos);
  }
}

/** Decodes a SEGMENT_HEADER payload (after the type byte). */
export function decodeSegmentHeader(payload: Uint8Array): SegmentHeader {
  const reader = new PayloadReader(payload);
  const magic = reader.u32('magic');
  if (magic !== SEGMENT_MAGIC) throw new CodecError(`bad segment magic 0x${magic.toString(16)}`, 0);
  const version = reader.u8('version');
  if (version !== FORMAT_VERSION) throw new CodecError(`unsupported format version ${version}`, 4);
  const seq = reader.u64('seq');
  const carry = readCarriedState(reader);
  reader.end('segment header');
  return { seq, carry };
}

/** Reads a carried state written by {@link FrameEncoder.carriedState}. */
export function readCarriedState(reader: PayloadReader): CarriedState {
  const hardState = { term: reader.u64('term'), vote: reader.u64('vote'), commit: reader.u64('commit') };
  const snapshotIndex = reader.u64('snapshot index');
  const snapshotTerm = reader.u64('snapshot term');
  const lastIndex = reader.u64('last index');
  const lastTerm = reader.u64('last term');
  const confState = reader.confState();
  return { hardState, confState, snapshotIndex, snapshotTerm, lastIndex, lastTerm };
}

/** Decodes a SNAPSHOT_META payload (after the type byte). */
export function decodeSnapshotMeta(payload: Uint8Array): SnapshotMeta {
  const reader = new PayloadReader(payload);
  const meta = {
    index: reader.u64('snapshot index'),
    term: reader.u64('snapshot term'),
    confState: reader.confState(),
  };
  reader.end('snapshot metadata');
  return meta;
}

/** Decodes a BATCH payload (after the type byte) into its records, in order. */
export function decodeBatch(payload: Uint8Array): WalRecord[] {
  const reader = new PayloadReader(payload);
  const records: WalRecord[] = [];
  while (reader.remaining > 0) {
    const type = reader.u8('record type');
    const length = reader.u32('record length');
    reader.need(length, 'record payload');
    const start = reader.pos;
    records.push(decodeRecord(reader, type, length, start));
    if (reader.pos !== start + length)
      throw new CodecError(`record length ${length} does not match its content`, start);
  }
  return records;
}

function decodeRecord(reader: PayloadReader, type: number, length: number, start: number): WalRecord {
  switch (type) {
    case RECORD_TYPE.ENTRY:
      return { type: 'entry', entry: decodeEntry(reader, length) };
    case RECORD_TYPE.HARD_STATE:
      return {
        type: 'hard-state',
        hardState: { term: reader.u64('term'), vote: reader.u64('vote'), commit: reader.u64('commit') },
      };
    case RECORD_TYPE.TRUNCATE:
      return { type: 'truncate', index: reader.u64('truncate index') };
    case RECORD_TYPE.SNAPSHOT: {
      const kind = reader.u8('snapshot kind');
      if (kind > 1) throw new CodecError(`invalid snapshot kind ${kind}`, start);
      const index = reader.u64('snapshot index');
      const term = reader.u64('snapshot term');
      const meta = { index, term, confState: reader.confState() };
      return { type: 'snapshot', kind: kind === 0 ? 'created' : 'received', meta };
    }
    case RECORD_TYPE.CONF_STATE:
      return { type: 'conf-state', confState: reader.confState() };
    default:
      throw new CodecError(`unknown record type ${type}`, start - RECORD_HEADER_BYTES);
  }
}

function decodeEntry(reader: PayloadReader, length: number): Entry {
  if (length < 17) throw new CodecError(`entry record of ${length} bytes is too short`, reader.pos);
  const index = reader.u64('entry index');
  const term = reader.u64('entry term');
  const typeByte = reader.u8('entry type');
  if (typeByte > 1) throw new CodecError(`invalid entry type ${typeByte}`, reader.pos - 1);
  const type: EntryType = typeByte === 0 ? 'normal' : 'conf-change';
  return { index, term, type, data: reader.bytesCopy(length - 17, 'entry data') };
}
