/**
 * Hand-written protobuf encoders for the responses on the hot paths: the KV service's and
 * the Watch stream's. They write etcd's wire format straight from the KV layer's objects
 * (`KeyValue`, `ResponseOp`, `WatchEvent`), with no intermediate message objects: the proto
 * loader's generic encoder (`fromObject`, then `encode`) costs more per response than a
 * single-key read. The encoding is proto3's canonical one, as etcd's Go server writes it:
 * fields in number order, defaults (0, false, empty) left out, a message field written
 * (possibly empty) when present. test/etcd-codec.test.ts decodes what these write with the
 * proto loader and compares.
 *
 * Requests are still decoded by the proto loader (see proto.ts); server.ts registers these
 * encoders in place of its ones ({@link RESPONSE_ENCODERS}).
 */
import { Buffer } from 'node:buffer';
import type {
  DeleteRangeResponse,
  KeyValue,
  PutResponse,
  RangeResponse,
  ResponseOp,
  TxnResponse,
  WatchEvent,
} from '../kv/index.js';

/** A response header as the encoders take it (a txn's nested headers carry only `revision`). */
export interface HeaderFields {
  readonly cluster_id?: number;
  readonly member_id?: number;
  readonly revision: number;
  readonly raft_term?: number;
}

/** A KV response: the KV layer's response and the header to send with it. */
export interface KvReply<Body> {
  readonly header: HeaderFields;
  readonly body: Body;
}

/** etcd `WatchResponse`, events as the KV layer gives them. */
export interface WatchReply {
  readonly header: HeaderFields;
  readonly watch_id: number;
  readonly created?: boolean;
  readonly canceled?: boolean;
  readonly compact_revision?: number;
  readonly cancel_reason?: string;
  readonly fragment?: boolean;
  readonly events?: readonly WatchEvent[];
}

// ---------------------------------------------------------------- primitives

/** Bytes of a varint holding `n` (a safe integer; negative int64s take 10 bytes). */
function varintSize(n: number): number {
  if (n < 0) return 10;
  if (n < 0x80) return 1;
  if (n < 0x4000) return 2;
  if (n < 0x200000) return 3;
  if (n < 0x10000000) return 4;
  if (n < 2 ** 35) return 5;
  if (n < 2 ** 42) return 6;
  if (n < 2 ** 49) return 7;
  return 8; // below 2^53 = Number.MAX_SAFE_INTEGER + 1 < 2^56
}

/** Size of a varint field (tag and value) holding `n`, 0 when it is the default. */
function intField(n: number): number {
  return n === 0 ? 0 : 1 + varintSize(n);
}

/** Size of a length-delimited field of `length` bytes (tag, length, bytes). */
function lengthField(length: number, tagBytes = 1): number {
  return tagBytes + varintSize(length) + length;
}

/** A growing position in one pre-sized buffer. */
class Writer {
  readonly buf: Buffer;
  pos = 0;

  constructor(size: number) {
    this.buf = Buffer.allocUnsafe(size);
  }

  varint(n: number): void {
    const buf = this.buf;
    if (n < 0) {
      this.negative(n);
      return;
    }
    while (n > 0x7fffffff) {
      buf[this.pos++] = (n % 0x80) | 0x80;
      n = Math.floor(n / 0x80);
    }
    while (n > 0x7f) {
      buf[this.pos++] = (n & 0x7f) | 0x80;
      n >>>= 7;
    }
    buf[this.pos++] = n;
  }

  /** A negative int64: ten bytes of two's complement. */
  private negative(n: number): void {
    let v = BigInt.asUintN(64, BigInt(n));
    for (let i = 0; i < 9; i++) {
      this.buf[this.pos++] = Number(v & 0x7fn) | 0x80;
      v >>= 7n;
    }
    this.buf[this.pos++] = Number(v);
  }

  /** A varint field, left out when 0. */
  int(tag: number, n: number): void {
    if (n === 0) return;
    this.buf[this.pos++] = tag;
    this.varint(n);
  }

  /** A bool field, left out when false. */
  bool(tag: number, value: boolean | undefined): void {
    if (value !== true) return;
    this.buf[this.pos++] = tag;
    this.buf[this.pos++] = 1;
  }

  /** A bytes field, left out when empty. */
  bytes(tag: number, bytes: Uint8Array): void {
    if (bytes.length === 0) return;
    const buf = this.buf;
    buf[this.pos++] = tag;
    this.varint(bytes.length);
    const length = bytes.length;
    if (length < 64) {
      // A loop beats set()'s call overhead for short keys and values.
      let pos = this.pos;
      for (let i = 0; i < length; i++) buf[pos++] = bytes[i]!;
      this.pos = pos;
    } else {
      buf.set(bytes, this.pos);
      this.pos += length;
    }
  }

  /** The tag and length of a message field whose body follows. */
  message(tag: number, size: number): void {
    this.buf[this.pos++] = tag;
    this.varint(size);
  }

  /** The buffer, checked to be exactly full. */
  done(): Buffer {
    if (this.pos !== this.buf.length) {
      throw new Error(`etcd codec: wrote ${this.pos} bytes of ${this.buf.length}`);
    }
    return this.buf;
  }
}

// Tags: (field number << 3) | wire type (0 varint, 2 length-delimited).
const T1_VARINT = 0x08;
const T1_BYTES = 0x0a;
const T2_VARINT = 0x10;
const T2_BYTES = 0x12;
const T3_VARINT = 0x18;
const T3_BYTES = 0x1a;
const T4_VARINT = 0x20;
const T4_BYTES = 0x22;
const T5_VARINT = 0x28;
const T5_BYTES = 0x2a;
const T6_VARINT = 0x30;
const T6_BYTES = 0x32;
const T7_VARINT = 0x38;
const T11_BYTES = 0x5a;

// ---------------------------------------------------------------- shared messages

function headerSize(h: HeaderFields): number {
  return (
    intField(h.cluster_id ?? 0) +
    intField(h.member_id ?? 0) +
    intField(h.revision) +
    intField(h.raft_term ?? 0)
  );
}

function writeHeader(w: Writer, h: HeaderFields, size: number): void {
  w.message(T1_BYTES, size);
  w.int(T1_VARINT, h.cluster_id ?? 0);
  w.int(T2_VARINT, h.member_id ?? 0);
  w.int(T3_VARINT, h.revision);
  w.int(T4_VARINT, h.raft_term ?? 0);
}

/** `mvccpb.KeyValue`: key 1, create_revision 2, mod_revision 3, version 4, value 5, lease 6. */
function kvSize(kv: KeyValue): number {
  const { key, value } = kv;
  return (
    (key.length === 0 ? 0 : lengthField(key.length)) +
    intField(kv.createRevision) +
    intField(kv.modRevision) +
    intField(kv.version) +
    (value.length === 0 ? 0 : lengthField(value.length)) +
    intField(kv.lease)
  );
}

function writeKv(w: Writer, tag: number, kv: KeyValue): void {
  w.message(tag, kvSize(kv));
  w.bytes(T1_BYTES, kv.key);
  w.int(T2_VARINT, kv.createRevision);
  w.int(T3_VARINT, kv.modRevision);
  w.int(T4_VARINT, kv.version);
  w.bytes(T5_BYTES, kv.value);
  w.int(T6_VARINT, kv.lease);
}

function kvsSize(kvs: readonly KeyValue[]): number {
  let size = 0;
  for (const kv of kvs) size += lengthField(kvSize(kv));
  return size;
}

// ---------------------------------------------------------------- KV responses

/** RangeResponse: header 1, kvs 2, more 3, count 4. */
function rangeBodySize(r: Pick<RangeResponse, 'kvs' | 'more' | 'count'>, header: HeaderFields): number {
  return lengthField(headerSize(header)) + kvsSize(r.kvs) + (r.more ? 2 : 0) + intField(r.count);
}

function writeRangeBody(
  w: Writer,
  r: Pick<RangeResponse, 'kvs' | 'more' | 'count'>,
  header: HeaderFields,
): void {
  writeHeader(w, header, headerSize(header));
  for (const kv of r.kvs) writeKv(w, T2_BYTES, kv);
  w.bool(T3_VARINT, r.more);
  w.int(T4_VARINT, r.count);
}

/** PutResponse: header 1, prev_kv 2. */
function putBodySize(r: Pick<PutResponse, 'prevKv'>, header: HeaderFields): number {
  return lengthField(headerSize(header)) + (r.prevKv === undefined ? 0 : lengthField(kvSize(r.prevKv)));
}

function writePutBody(w: Writer, r: Pick<PutResponse, 'prevKv'>, header: HeaderFields): void {
  writeHeader(w, header, headerSize(header));
  if (r.prevKv !== undefined) writeKv(w, T2_BYTES, r.prevKv);
}

/** DeleteRangeResponse: header 1, deleted 2, prev_kvs 3. */
function deleteBodySize(r: Pick<DeleteRangeResponse, 'deleted' | 'prevKvs'>, header: HeaderFields): number {
  return lengthField(headerSize(header)) + intField(r.deleted) + kvsSize(r.prevKvs);
}

function writeDeleteBody(
  w: Writer,
  r: Pick<DeleteRangeResponse, 'deleted' | 'prevKvs'>,
  header: HeaderFields,
): void {
  writeHeader(w, header, headerSize(header));
  w.int(T2_VARINT, r.deleted);
  for (const kv of r.prevKvs) writeKv(w, T3_BYTES, kv);
}

/** TxnResponse: header 1, succeeded 2, responses 3 (ResponseOp). */
function txnBodySize(r: Pick<TxnResponse, 'succeeded' | 'responses'>, header: HeaderFields): number {
  let size = lengthField(headerSize(header)) + (r.succeeded ? 2 : 0);
  for (const op of r.responses) size += lengthField(responseOpSize(op));
  return size;
}

function writeTxnBody(
  w: Writer,
  r: Pick<TxnResponse, 'succeeded' | 'responses'>,
  header: HeaderFields,
): void {
  writeHeader(w, header, headerSize(header));
  w.bool(T2_VARINT, r.succeeded);
  for (const op of r.responses) {
    w.message(T3_BYTES, responseOpSize(op));
    writeResponseOp(w, op);
  }
}

/** ResponseOp: response_range 1, response_put 2, response_delete_range 3, response_txn 4; nested headers hold the revision only. */
function responseOpSize(op: ResponseOp): number {
  const header = { revision: op.revision };
  switch (op.type) {
    case 'range':
      return lengthField(rangeBodySize(op, header));
    case 'put':
      return lengthField(putBodySize(op, header));
    case 'deleteRange':
      return lengthField(deleteBodySize(op, header));
    case 'txn':
      return lengthField(txnBodySize(op, header));
  }
}

function writeResponseOp(w: Writer, op: ResponseOp): void {
  const header = { revision: op.revision };
  switch (op.type) {
    case 'range':
      w.message(T1_BYTES, rangeBodySize(op, header));
      writeRangeBody(w, op, header);
      return;
    case 'put':
      w.message(T2_BYTES, putBodySize(op, header));
      writePutBody(w, op, header);
      return;
    case 'deleteRange':
      w.message(T3_BYTES, deleteBodySize(op, header));
      writeDeleteBody(w, op, header);
      return;
    case 'txn':
      w.message(T4_BYTES, txnBodySize(op, header));
      writeTxnBody(w, op, header);
      return;
  }
}

/** Encodes etcd `RangeResponse`. */
export function encodeRangeResponse(reply: KvReply<Pick<RangeResponse, 'kvs' | 'more' | 'count'>>): Buffer {
  const w = new Writer(rangeBodySize(reply.body, reply.header));
  writeRangeBody(w, reply.body, reply.header);
  return w.done();
}

/** Encodes etcd `PutResponse`. */
export function encodePutResponse(reply: KvReply<Pick<PutResponse, 'prevKv'>>): Buffer {
  const w = new Writer(putBodySize(reply.body, reply.header));
  writePutBody(w, reply.body, reply.header);
  return w.done();
}

/** Encodes etcd `DeleteRangeResponse`. */
export function encodeDeleteRangeResponse(
  reply: KvReply<Pick<DeleteRangeResponse, 'deleted' | 'prevKvs'>>,
): Buffer {
  const w = new Writer(deleteBodySize(reply.body, reply.header));
  writeDeleteBody(w, reply.body, reply.header);
  return w.done();
}

/** Encodes etcd `TxnResponse`. */
export function encodeTxnResponse(reply: KvReply<Pick<TxnResponse, 'succeeded' | 'responses'>>): Buffer {
  const w = new Writer(txnBodySize(reply.body, reply.header));
  writeTxnBody(w, reply.body, reply.header);
  return w.done();
}

/** Encodes etcd `CompactionResponse` (a header only). */
export function encodeCompactionResponse(reply: { readonly header: HeaderFields }): Buffer {
  const size = headerSize(reply.header);
  const w = new Writer(lengthField(size));
  writeHeader(w, reply.header, size);
  return w.done();
}

// ---------------------------------------------------------------- watch responses

/** `mvccpb.Event`: type 1 (PUT = 0, left out), kv 2, prev_kv 3. */
function eventSize(event: WatchEvent): number {
  return (
    (event.type === 'DELETE' ? 2 : 0) +
    lengthField(kvSize(event.kv)) +
    (event.prevKv === undefined ? 0 : lengthField(kvSize(event.prevKv)))
  );
}

function watchSize(r: WatchReply, reasonBytes: number): number {
  let size =
    lengthField(headerSize(r.header)) +
    intField(r.watch_id) +
    (r.created === true ? 2 : 0) +
    (r.canceled === true ? 2 : 0) +
    intField(r.compact_revision ?? 0) +
    (reasonBytes === 0 ? 0 : lengthField(reasonBytes)) +
    (r.fragment === true ? 2 : 0);
  for (const event of r.events ?? []) size += lengthField(eventSize(event));
  return size;
}

/**
 * Encodes etcd `WatchResponse`: header 1, watch_id 2, created 3, canceled 4,
 * compact_revision 5, cancel_reason 6, fragment 7, events 11.
 */
export function encodeWatchResponse(r: WatchReply): Buffer {
  const reason = r.cancel_reason ?? '';
  const reasonBytes = reason.length === 0 ? 0 : Buffer.byteLength(reason);
  const w = new Writer(watchSize(r, reasonBytes));
  writeHeader(w, r.header, headerSize(r.header));
  w.int(T2_VARINT, r.watch_id);
  w.bool(T3_VARINT, r.created);
  w.bool(T4_VARINT, r.canceled);
  w.int(T5_VARINT, r.compact_revision ?? 0);
  if (reasonBytes > 0) {
    w.message(T6_BYTES, reasonBytes);
    w.pos += w.buf.write(reason, w.pos, 'utf8');
  }
  w.bool(T7_VARINT, r.fragment);
  for (const event of r.events ?? []) {
    w.message(T11_BYTES, eventSize(event));
    if (event.type === 'DELETE') w.int(T1_VARINT, 1);
    writeKv(w, T2_BYTES, event.kv);
    if (event.prevKv !== undefined) writeKv(w, T3_BYTES, event.prevKv);
  }
  return w.done();
}

/** The encoded size of one event in a watch response (what fragmenting measures). */
export function watchEventBytes(event: WatchEvent): number {
  return lengthField(eventSize(event));
}

/** The encoders server.ts registers, by service and method, in place of the proto loader's. */
export const RESPONSE_ENCODERS = Object.freeze({
  KV: {
    Range: encodeRangeResponse,
    Put: encodePutResponse,
    DeleteRange: encodeDeleteRangeResponse,
    Txn: encodeTxnResponse,
    Compact: encodeCompactionResponse,
  },
  Watch: { Watch: encodeWatchResponse },
}) satisfies Partial<Record<string, Record<string, (response: never) => Buffer>>>;
