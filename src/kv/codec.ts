/**
 * Byte encodings, all MessagePack (msgpackr with plain maps, no record extension, so any
 * MessagePack decoder can read them). The same encoder is used by every backend, which is
 * what makes stored bytes, snapshots and hashes identical across replicas and backends.
 */

import { Packr } from 'msgpackr';
import { copyBytes, EMPTY_BYTES, plainBytes, readUint32 } from './bytes.js';
import { KvError, type KvErrorCode } from './errors.js';
import type { KeyValue, KvCommand, KvResponse, KvResult } from './types.js';

const packr = new Packr({ useRecords: false, mapsAsObjects: true });

/** MessagePack-encodes `value` (maps keep the property order they were built with). */
export function pack(value: unknown): Uint8Array {
  return plainBytes(packr.pack(value));
}

/** Decodes MessagePack, turning every decoded Buffer into a plain Uint8Array. */
export function unpack(bytes: Uint8Array): unknown {
  return normalizeBytes(packr.unpack(bytes));
}

/** Walks a decoded value and replaces Buffers by plain Uint8Array views. */
function normalizeBytes(value: unknown): unknown {
  if (value instanceof Uint8Array) return plainBytes(value);
  if (Array.isArray(value)) {
    for (let i = 0; i < value.length; i++) value[i] = normalizeBytes(value[i]);
    return value;
  }
  if (typeof value === 'object' && value !== null) {
    const record = value as Record<string, unknown>;
    for (const name of Object.keys(record)) record[name] = normalizeBytes(record[name]);
  }
  return value;
}

/** Encodes a command for a Raft log entry. */
export function encodeCommand(command: KvCommand): Uint8Array {
  return pack(command);
}

/**
 * Decodes a log entry's command. The result is only shaped like a {@link KvCommand}: the
 * apply path validates every field, so a malformed entry yields an `INVALID_ARGUMENT`
 * result on every replica instead of corrupting state. Throws `INVALID_ARGUMENT` for bytes
 * that are not MessagePack of an object with a `type`.
 */
export function decodeCommand(data: Uint8Array): KvCommand {
  let value: unknown;
  try {
    value = unpack(data);
  } catch {
    throw new KvError('INVALID_ARGUMENT', 'etcdserver: malformed command');
  }
  if (typeof value !== 'object' || value === null || typeof (value as { type?: unknown }).type !== 'string') {
    throw new KvError('INVALID_ARGUMENT', 'etcdserver: malformed command');
  }
  return value as KvCommand;
}

/** One entry of the MVCC history: the write at revision (main, sub). */
export interface StoredRecord {
  readonly main: number;
  readonly sub: number;
  /** A deletion marker; its `kv` holds only the key and `modRevision`. */
  readonly tombstone: boolean;
  readonly kv: KeyValue;
}

/** A tombstone's kv: etcd's DELETE event shape (key and deletion revision, all else zero). */
export function tombstoneKv(key: Uint8Array, main: number): KeyValue {
  return { key, createRevision: 0, modRevision: main, version: 0, value: EMPTY_BYTES, lease: 0 };
}

/**
 * The stored bytes of a record (its revision is the storage key): a put is
 * `[key, value, createRevision, version, lease]`, a tombstone `[key]`.
 */
export function encodeRecord(record: StoredRecord): Uint8Array {
  const { kv } = record;
  if (record.tombstone) return pack([kv.key]);
  return pack([kv.key, kv.value, kv.createRevision, kv.version, kv.lease]);
}

/** Decodes the record at (main, sub) from its stored bytes; throws `CORRUPT` on a bad shape. */
export function decodeRecord(main: number, sub: number, bytes: Uint8Array): StoredRecord {
  let fields: unknown;
  try {
    fields = unpack(bytes);
  } catch {
    throw corrupt(main, sub);
  }
  if (!Array.isArray(fields) || !(fields[0] instanceof Uint8Array)) throw corrupt(main, sub);
  const key = fields[0];
  if (fields.length === 1) return { main, sub, tombstone: true, kv: tombstoneKv(key, main) };
  const [, value, createRevision, version, lease] = fields as unknown[];
  if (
    !(value instanceof Uint8Array) ||
    typeof createRevision !== 'number' ||
    typeof version !== 'number' ||
    typeof lease !== 'number'
  ) {
    throw corrupt(main, sub);
  }
  return {
    main,
    sub,
    tombstone: false,
    kv: { key, createRevision, modRevision: main, version, value, lease },
  };
}

/**
 * What the key index needs of a record: its key, whether it is a tombstone, and a put's
 * create revision, version and lease (zeros for a tombstone).
 */
export interface RecordHead {
  readonly key: Uint8Array;
  readonly tombstone: boolean;
  readonly createRevision: number;
  readonly version: number;
  readonly lease: number;
}

/**
 * The head of the record at (main, sub) from its stored bytes, the first `size` of `bytes`
 * (which may be a buffer LMDB reuses: the head keeps a copy of the key only). Reads the
 * MessagePack that {@link encodeRecord} writes without decoding the value; any other shape
 * is left to {@link decodeRecord}, so the result is always what a full decode would give.
 */
export function decodeRecordHead(
  main: number,
  sub: number,
  bytes: Uint8Array,
  size = bytes.length,
): RecordHead {
  const head = readRecordHead(bytes, size);
  if (head !== undefined) return head;
  const { tombstone, kv } = decodeRecord(main, sub, bytes.subarray(0, size));
  const { createRevision, version, lease } = kv;
  return { key: copyBytes(kv.key), tombstone, createRevision, version, lease };
}

/** {@link decodeRecordHead}'s fast path alone: undefined for bytes of any other shape. */
export function readRecordHead(bytes: Uint8Array, size = bytes.length): RecordHead | undefined {
  const reader = new HeadReader(bytes, size);
  const fields = bytes[0];
  const key = fields === 0x91 || fields === 0x95 ? reader.bin(1) : undefined;
  if (key === undefined) return undefined;
  if (fields === 0x91) {
    return reader.at === size
      ? { key: bytes.slice(key.start, key.end), tombstone: true, createRevision: 0, version: 0, lease: 0 }
      : undefined;
  }
  const value = reader.bin(key.end);
  const createRevision = value === undefined ? undefined : reader.number(value.end);
  const version = createRevision === undefined ? undefined : reader.number(reader.at);
  const lease = version === undefined ? undefined : reader.number(reader.at);
  if (createRevision === undefined || version === undefined || lease === undefined) return undefined;
  if (reader.at !== size) return undefined;
  return { key: bytes.slice(key.start, key.end), tombstone: false, createRevision, version, lease };
}

/** Reads MessagePack `bin` and number items at given offsets; undefined for any other item. */
class HeadReader {
  /** The offset after the last item read. */
  at = 0;

  constructor(
    private readonly bytes: Uint8Array,
    private readonly size: number,
  ) {}

  /** The `bin` item at `offset`: where its bytes start and end. */
  bin(offset: number): { start: number; end: number } | undefined {
    const bytes = this.bytes;
    let length: number;
    let start: number;
    const type = bytes[offset];
    if (type === 0xc4 && offset + 2 <= this.size) {
      length = bytes[offset + 1]!;
      start = offset + 2;
    } else if (type === 0xc5 && offset + 3 <= this.size) {
      length = (bytes[offset + 1]! << 8) | bytes[offset + 2]!;
      start = offset + 3;
    } else if (type === 0xc6 && offset + 5 <= this.size) {
      length = readUint32(bytes, offset + 1);
      start = offset + 5;
    } else return undefined;
    if (start + length > this.size) return undefined;
    this.at = start + length;
    return { start, end: start + length };
  }

  /** The non-negative integer or float64 item at `offset`. */
  number(offset: number): number | undefined {
    const bytes = this.bytes;
    const type = bytes[offset];
    let value: number;
    let length: number;
    if (type === undefined || offset >= this.size) return undefined;
    if (type <= 0x7f) [value, length] = [type, 1];
    else if (type === 0xcc) [value, length] = [bytes[offset + 1]!, 2];
    else if (type === 0xcd) [value, length] = [(bytes[offset + 1]! << 8) | bytes[offset + 2]!, 3];
    else if (type === 0xce && offset + 5 <= this.size) [value, length] = [readUint32(bytes, offset + 1), 5];
    else if (type === 0xcb && offset + 9 <= this.size) {
      value = new DataView(bytes.buffer, bytes.byteOffset + offset + 1, 8).getFloat64(0);
      length = 9;
    } else return undefined;
    if (offset + length > this.size) return undefined;
    this.at = offset + length;
    return value;
  }
}

function corrupt(main: number, sub: number): KvError {
  return new KvError('CORRUPT', `kv: malformed record at revision ${main}.${sub}`);
}

/** Encodes a command's outcome for the session table. */
export function encodeResult(result: KvResult): Uint8Array {
  if (result.ok) return pack([1, result.response]);
  const { error } = result;
  return pack([0, error.code, error.message, error.compactRevision]);
}

/** Decodes what {@link encodeResult} produced; throws `CORRUPT` on a bad shape. */
export function decodeResult(bytes: Uint8Array): KvResult {
  const fields = unpack(bytes);
  if (Array.isArray(fields) && fields[0] === 1 && typeof fields[1] === 'object') {
    return { ok: true, response: fields[1] as KvResponse };
  }
  if (Array.isArray(fields) && fields[0] === 0 && typeof fields[1] === 'string') {
    const error = new KvError(fields[1] as KvErrorCode, String(fields[2]), Number(fields[3]));
    return { ok: false, error };
  }
  throw new KvError('CORRUPT', 'kv: malformed session result');
}
