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
import {
  intField,
  lengthField,
  T1_BYTES,
  T1_VARINT,
  T2_BYTES,
  T2_VARINT,
  T3_BYTES,
  T3_VARINT,
  T4_BYTES,
  T4_VARINT,
  T5_BYTES,
  T5_VARINT,
  T6_BYTES,
  T6_VARINT,
  T7_VARINT,
  T11_BYTES,
  Writer,
} from './proto-writer.js';

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

// ---------------------------------------------------------------- shared messages

/** An encoded header body, and what it encodes. */
interface EncodedHeader {
  readonly cluster: number;
  readonly member: number;
  readonly revision: number;
  readonly term: number;
  readonly body: Buffer;
}

/**
 * The last header encoded. Responses in a row mostly share one (a watch event fanned out to
 * many watchers, a burst of reads at one revision), and the cluster and member ids are
 * 8-byte varints that cost more to encode than to copy.
 */
let lastHeader: EncodedHeader | undefined;

/** A header's body (cluster_id 1, member_id 2, revision 3, raft_term 4). */
function headerBody(h: HeaderFields): Buffer {
  const cluster = h.cluster_id ?? 0;
  const member = h.member_id ?? 0;
  const term = h.raft_term ?? 0;
  const last = lastHeader;
  if (
    last !== undefined &&
    last.revision === h.revision &&
    last.term === term &&
    last.cluster === cluster &&
    last.member === member
  ) {
    return last.body;
  }
  const w = new Writer(intField(cluster) + intField(member) + intField(h.revision) + intField(term));
  w.int(T1_VARINT, cluster);
  w.int(T2_VARINT, member);
  w.int(T3_VARINT, h.revision);
  w.int(T4_VARINT, term);
  const body = w.done();
  lastHeader = { cluster, member, revision: h.revision, term, body };
  return body;
}

function headerSize(h: HeaderFields): number {
  return headerBody(h).length;
}

function writeHeader(w: Writer, h: HeaderFields, size: number): void {
  w.message(T1_BYTES, size);
  const body = headerBody(h);
  for (let i = 0; i < body.length; i++) w.buf[w.pos++] = body[i]!;
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

function watchSize(r: WatchReply, reasonBytes: number, eventsBytes: number): number {
  return (
    lengthField(headerSize(r.header)) +
    intField(r.watch_id) +
    (r.created === true ? 2 : 0) +
    (r.canceled === true ? 2 : 0) +
    intField(r.compact_revision ?? 0) +
    (reasonBytes === 0 ? 0 : lengthField(reasonBytes)) +
    (r.fragment === true ? 2 : 0) +
    eventsBytes
  );
}

/** The encoded size of `events` as field 11 of a watch response. */
function eventsSize(events: readonly WatchEvent[] | undefined): number {
  let size = 0;
  for (const event of events ?? []) size += lengthField(eventSize(event));
  return size;
}

function writeEvents(w: Writer, events: readonly WatchEvent[]): void {
  for (const event of events) {
    w.message(T11_BYTES, eventSize(event));
    if (event.type === 'DELETE') w.int(T1_VARINT, 1);
    writeKv(w, T2_BYTES, event.kv);
    if (event.prevKv !== undefined) writeKv(w, T3_BYTES, event.prevKv);
  }
}

/**
 * Writes etcd `WatchResponse` (header 1, watch_id 2, created 3, canceled 4,
 * compact_revision 5, cancel_reason 6, fragment 7, events 11) after `prefix` bytes left for
 * the caller; the events are `r.events`, or `encodedEvents` when given.
 */
function encodeWatch(r: WatchReply, prefix: number, encodedEvents: Uint8Array | undefined): Writer {
  const reason = r.cancel_reason ?? '';
  const reasonBytes = reason.length === 0 ? 0 : Buffer.byteLength(reason);
  const eventsBytes = encodedEvents === undefined ? eventsSize(r.events) : encodedEvents.length;
  const w = new Writer(prefix + watchSize(r, reasonBytes, eventsBytes));
  w.pos = prefix;
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
  if (encodedEvents === undefined) writeEvents(w, r.events ?? []);
  else {
    w.buf.set(encodedEvents, w.pos);
    w.pos += encodedEvents.length;
  }
  return w;
}

/** Encodes etcd `WatchResponse` (see {@link encodeWatch}). */
export function encodeWatchResponse(r: WatchReply): Buffer {
  return encodeWatch(r, 0, undefined).done();
}

/**
 * `events` as the events field of a watch response, to be passed to
 * {@link encodeFramedWatchResponse}: encoded once, sent to every watcher that takes them.
 */
export function encodeWatchEvents(events: readonly WatchEvent[]): Buffer {
  const w = new Writer(eventsSize(events));
  writeEvents(w, events);
  return w.done();
}

/**
 * Encodes etcd `WatchResponse` as one gRPC message (its 5-byte length prefix first) after
 * `room` spare bytes, with `r.events`, or with events already encoded by
 * {@link encodeWatchEvents}.
 */
export function encodeFramedWatchResponse(r: WatchReply, room: number, encodedEvents?: Uint8Array): Buffer {
  const w = encodeWatch(r, room + 5, encodedEvents);
  const buf = w.done();
  buf[room] = 0;
  buf.writeUInt32BE(buf.length - room - 5, room + 1);
  return buf;
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
