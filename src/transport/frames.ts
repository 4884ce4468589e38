/**
 * The framing of the peer protocol. Every frame is
 *
 *     [length u32 BE][kind u8][body]        length = 1 + body bytes, at most frameBytesMax
 *
 * Frame kinds and bodies (u32/u64 big endian; "msgpack" = one MessagePack value):
 *
 *     HELLO           msgpack [magic, protocolVersion, clusterId, fromNodeId, toNodeId]  dialer → acceptor
 *     ACCEPT          msgpack [protocolVersion, nodeId]                                   acceptor → dialer
 *     REJECT          msgpack [reason, message]                                           acceptor → dialer
 *     MESSAGE         msgpack message tuple (see codec.ts)                                dialer → acceptor
 *     SNAPSHOT_BEGIN  streamId u32, mode u8, msgpack message tuple (see below)            dialer → acceptor
 *     SNAPSHOT_CHUNK  streamId u32, offset u64, raw bytes of the payload                  dialer → acceptor
 *     SNAPSHOT_END    streamId u32, totalBytes u64, crc32c u32 of the whole payload        dialer → acceptor
 *     SNAPSHOT_ACK    streamId u32: the snapshot was received and delivered               acceptor → dialer
 *     CLUSTER_QUERY   msgpack [magic, protocolVersion]  instead of HELLO                   dialer → acceptor
 *     CLUSTER_INFO    msgpack [protocolVersion, text]: the acceptor's answer, then it closes acceptor → dialer
 *     HOST            msgpack value, opaque to the transport                               dialer → acceptor
 *
 * HOST frames carry what one host tells another about itself rather than about one raft
 * group: a multi-raft host's node-level heartbeat, quiesce notices and wake requests
 * (src/node/host-beat.ts). They travel in the same queue as MESSAGE frames, so both keep their
 * send order; a transport without a handler for them drops them.
 *
 * CLUSTER_QUERY/CLUSTER_INFO is a one-shot exchange on its own connection, not a peer link: a
 * member joining a running cluster asks any member it was told about for the cluster's id
 * and member list (see src/node/join.ts) before it knows its own id.
 *
 * A snapshot's payload travels as raw chunk bodies rather than inside MessagePack so the
 * sender can write a slice of the caller's buffer without copying it, and so no single frame
 * needs to be as large as the snapshot. Mode 0 (`data`): the payload is the snapshot's data and
 * the begin frame's message has empty data; mode 1 (`stream`): the message carries its data
 * inline and the payload is a side stream for the receiver's sink (see snapshot-stream.ts).
 */
import type { Message, NodeId, SnapshotRequest } from '../raft/types.js';
import { messageFromTuple, messageToTuple, packWithHeader, TupleReader, unpackValue } from './codec.js';
import { type RejectReason, TransportError } from './errors.js';
import type { SnapshotMode } from './snapshot-stream.js';

/** Bytes of `[length u32][kind u8]` in front of every frame body. */
export const FRAME_HEADER_BYTES = 5;

/** Bytes of the `[streamId u32][offset u64]` prefix of a snapshot chunk body. */
export const SNAPSHOT_PREFIX_BYTES = 12;

/** Frame kind bytes. Never renumber: they are part of the protocol. */
export const FRAME_KIND = Object.freeze({
  HELLO: 1,
  ACCEPT: 2,
  REJECT: 3,
  MESSAGE: 4,
  SNAPSHOT_BEGIN: 5,
  SNAPSHOT_CHUNK: 6,
  SNAPSHOT_ACK: 7,
  CLUSTER_QUERY: 8,
  CLUSTER_INFO: 9,
  SNAPSHOT_END: 10,
  HOST: 11,
} as const);

/** The version of this protocol; peers with another version are rejected at the handshake. */
export const PROTOCOL_VERSION = 4;

/** First slot of the hello frame, so a connection from some other program is recognised at once. */
const HELLO_MAGIC = 'flotilla-raft';

const TWO_POW_32 = 0x1_0000_0000;

const REJECT_REASONS: ReadonlySet<string> = new Set<RejectReason>([
  'cluster-id-mismatch',
  'node-id-mismatch',
  'unknown-node',
  'protocol-version-mismatch',
]);

/** The dialer's first frame. */
export interface Hello {
  readonly protocolVersion: number;
  readonly clusterId: number;
  readonly fromNodeId: NodeId;
  readonly toNodeId: NodeId;
}

/** Writes the `[length][kind]` header into the first {@link FRAME_HEADER_BYTES} of `frame`. */
function sealFrame(frame: Buffer, kind: number): Buffer {
  frame.writeUInt32BE(frame.length - 4, 0);
  frame[4] = kind;
  return frame;
}

function writeU64(target: Buffer, value: number, offset: number): void {
  target.writeUInt32BE(Math.floor(value / TWO_POW_32), offset);
  target.writeUInt32BE(value >>> 0, offset + 4);
}

function readU64(source: Buffer, offset: number, field: string): number {
  const value = source.readUInt32BE(offset) * TWO_POW_32 + source.readUInt32BE(offset + 4);
  if (!Number.isSafeInteger(value))
    throw new TransportError('MALFORMED', `malformed frame: ${field} ${value} is too large`);
  return value;
}

/** A MESSAGE frame carrying `m` (which must not be a snapshot: those are streamed). */
export function messageFrame(m: Message): Buffer {
  return sealFrame(packWithHeader(messageToTuple(m), FRAME_HEADER_BYTES), FRAME_KIND.MESSAGE);
}

/** Decodes a MESSAGE frame body. */
export function decodeMessageBody(body: Buffer): Message {
  return messageFromTuple(unpackValue(body, 'message'));
}

/** A HOST frame carrying `value` (any MessagePack value; see the module comment). */
export function hostFrame(value: unknown): Buffer {
  return sealFrame(packWithHeader(value, FRAME_HEADER_BYTES), FRAME_KIND.HOST);
}

/** Decodes a HOST frame body into the value it carries (checked by its receiver). */
export function decodeHostBody(body: Buffer): unknown {
  return unpackValue(body, 'host frame');
}

/** The HELLO frame. */
export function helloFrame(h: Hello): Buffer {
  const tuple = [HELLO_MAGIC, h.protocolVersion, h.clusterId, h.fromNodeId, h.toNodeId];
  return sealFrame(packWithHeader(tuple, FRAME_HEADER_BYTES), FRAME_KIND.HELLO);
}

/** Decodes a HELLO frame body. The version is read first so any future layout can be told apart. */
export function decodeHello(body: Buffer): Hello {
  const r = new TupleReader(unpackValue(body, 'handshake'), 'handshake');
  if (r.string('magic') !== HELLO_MAGIC) throw r.error('not a flotilla peer (wrong magic)');
  const protocolVersion = r.uint('protocolVersion');
  const hello = {
    protocolVersion,
    clusterId: r.uint('clusterId'),
    fromNodeId: r.uint('fromNodeId'),
    toNodeId: r.uint('toNodeId'),
  };
  r.end();
  return hello;
}

/** The ACCEPT frame. */
export function acceptFrame(nodeId: NodeId): Buffer {
  return sealFrame(packWithHeader([PROTOCOL_VERSION, nodeId], FRAME_HEADER_BYTES), FRAME_KIND.ACCEPT);
}

/** Decodes an ACCEPT frame body. */
export function decodeAccept(body: Buffer): { protocolVersion: number; nodeId: NodeId } {
  const r = new TupleReader(unpackValue(body, 'handshake acceptance'), 'handshake acceptance');
  const accept = { protocolVersion: r.uint('protocolVersion'), nodeId: r.uint('nodeId') };
  r.end();
  return accept;
}

/** The REJECT frame. */
export function rejectFrame(reason: RejectReason, message: string): Buffer {
  return sealFrame(packWithHeader([reason, message], FRAME_HEADER_BYTES), FRAME_KIND.REJECT);
}

/** Decodes a REJECT frame body. */
export function decodeReject(body: Buffer): { reason: RejectReason; message: string } {
  const r = new TupleReader(unpackValue(body, 'handshake rejection'), 'handshake rejection');
  const reason = r.string('reason');
  if (!REJECT_REASONS.has(reason)) throw r.error(`unknown rejection reason ${JSON.stringify(reason)}`);
  const message = r.string('message');
  r.end();
  return { reason: reason as RejectReason, message };
}

/** Bytes of the `[streamId u32][mode u8]` prefix of a snapshot begin body. */
const SNAPSHOT_BEGIN_PREFIX_BYTES = 5;

/**
 * The SNAPSHOT_BEGIN frame of stream `streamId`. In `data` mode the message goes without its
 * data (the payload is the data); in `stream` mode with it.
 */
export function snapshotBeginFrame(streamId: number, m: SnapshotRequest, mode: SnapshotMode): Buffer {
  const sent: SnapshotRequest =
    mode === 'stream' ? m : { ...m, snapshot: { meta: m.snapshot.meta, data: new Uint8Array(0) } };
  const frame = packWithHeader(messageToTuple(sent), FRAME_HEADER_BYTES + SNAPSHOT_BEGIN_PREFIX_BYTES);
  frame.writeUInt32BE(streamId, FRAME_HEADER_BYTES);
  frame[FRAME_HEADER_BYTES + 4] = mode === 'stream' ? 1 : 0;
  return sealFrame(frame, FRAME_KIND.SNAPSHOT_BEGIN);
}

/** Decodes a SNAPSHOT_BEGIN frame body. */
export function decodeSnapshotBegin(body: Buffer): {
  streamId: number;
  mode: SnapshotMode;
  message: SnapshotRequest;
} {
  if (body.length < SNAPSHOT_BEGIN_PREFIX_BYTES)
    throw new TransportError('MALFORMED', 'malformed frame: short snapshot begin');
  const streamId = body.readUInt32BE(0);
  const modeByte = body[4]!;
  if (modeByte > 1) throw new TransportError('MALFORMED', `malformed frame: snapshot mode ${modeByte}`);
  const message = decodeMessageBody(body.subarray(SNAPSHOT_BEGIN_PREFIX_BYTES));
  if (message.type !== 'snapshot') {
    throw new TransportError(
      'MALFORMED',
      `malformed frame: snapshot begin carries a ${message.type} message`,
    );
  }
  return { streamId, mode: modeByte === 1 ? 'stream' : 'data', message };
}

/** The SNAPSHOT_END frame of stream `streamId`: the payload's length and CRC-32C. */
export function snapshotEndFrame(streamId: number, totalBytes: number, crc: number): Buffer {
  const frame = Buffer.allocUnsafe(FRAME_HEADER_BYTES + 16);
  frame.writeUInt32BE(streamId, FRAME_HEADER_BYTES);
  writeU64(frame, totalBytes, FRAME_HEADER_BYTES + 4);
  frame.writeUInt32BE(crc >>> 0, FRAME_HEADER_BYTES + 12);
  return sealFrame(frame, FRAME_KIND.SNAPSHOT_END);
}

/** Decodes a SNAPSHOT_END frame body. */
export function decodeSnapshotEnd(body: Buffer): { streamId: number; totalBytes: number; crc: number } {
  if (body.length !== 16)
    throw new TransportError('MALFORMED', `malformed frame: snapshot end of ${body.length} bytes`);
  return {
    streamId: body.readUInt32BE(0),
    totalBytes: readU64(body, 4, 'snapshot size'),
    crc: body.readUInt32BE(12),
  };
}

/**
 * The header (frame header plus stream id and offset) of a SNAPSHOT_CHUNK frame whose body
 * continues with `chunkBytes` of data; the caller writes the data right after it.
 */
export function snapshotChunkHeader(streamId: number, offset: number, chunkBytes: number): Buffer {
  const header = Buffer.allocUnsafe(FRAME_HEADER_BYTES + SNAPSHOT_PREFIX_BYTES);
  header.writeUInt32BE(1 + SNAPSHOT_PREFIX_BYTES + chunkBytes, 0);
  header[4] = FRAME_KIND.SNAPSHOT_CHUNK;
  header.writeUInt32BE(streamId, FRAME_HEADER_BYTES);
  writeU64(header, offset, FRAME_HEADER_BYTES + 4);
  return header;
}

/** Decodes a SNAPSHOT_CHUNK frame body; `data` is a view into `body`. */
export function decodeSnapshotChunk(body: Buffer): { streamId: number; offset: number; data: Buffer } {
  if (body.length < SNAPSHOT_PREFIX_BYTES)
    throw new TransportError('MALFORMED', 'malformed frame: short snapshot chunk');
  return {
    streamId: body.readUInt32BE(0),
    offset: readU64(body, 4, 'snapshot offset'),
    data: body.subarray(SNAPSHOT_PREFIX_BYTES),
  };
}

/** The SNAPSHOT_ACK frame of stream `streamId`. */
export function snapshotAckFrame(streamId: number): Buffer {
  const frame = Buffer.allocUnsafe(FRAME_HEADER_BYTES + 4);
  frame.writeUInt32BE(streamId, FRAME_HEADER_BYTES);
  return sealFrame(frame, FRAME_KIND.SNAPSHOT_ACK);
}

/** Decodes a SNAPSHOT_ACK frame body. */
export function decodeSnapshotAck(body: Buffer): number {
  if (body.length !== 4)
    throw new TransportError('MALFORMED', `malformed frame: snapshot ack of ${body.length} bytes`);
  return body.readUInt32BE(0);
}

/** The CLUSTER_QUERY frame (sent instead of a HELLO). */
export function clusterQueryFrame(): Buffer {
  return sealFrame(
    packWithHeader([HELLO_MAGIC, PROTOCOL_VERSION], FRAME_HEADER_BYTES),
    FRAME_KIND.CLUSTER_QUERY,
  );
}

/** Decodes a CLUSTER_QUERY frame body; returns the dialer's protocol version. */
export function decodeClusterQuery(body: Buffer): number {
  const r = new TupleReader(unpackValue(body, 'cluster query'), 'cluster query');
  if (r.string('magic') !== HELLO_MAGIC) throw r.error('not a flotilla peer (wrong magic)');
  const version = r.uint('protocolVersion');
  r.end();
  return version;
}

/** The CLUSTER_INFO frame: the acceptor's description of its cluster (opaque text, JSON). */
export function clusterInfoFrame(text: string): Buffer {
  return sealFrame(packWithHeader([PROTOCOL_VERSION, text], FRAME_HEADER_BYTES), FRAME_KIND.CLUSTER_INFO);
}

/** Decodes a CLUSTER_INFO frame body. */
export function decodeClusterInfo(body: Buffer): { protocolVersion: number; text: string } {
  const r = new TupleReader(unpackValue(body, 'cluster info'), 'cluster info');
  const info = { protocolVersion: r.uint('protocolVersion'), text: r.string('text') };
  r.end();
  return info;
}
