/**
 * What a normal log entry carries, as the runtime writes it: a request id followed by the
 * encoded KV command. And the framing of a KV snapshot's chunks inside a Raft snapshot.
 *
 * Why a request id in the entry, rather than matching proposals by (term, index): a
 * follower forwards proposals to the leader and never learns the index its entry got, and
 * an entry may be committed by a later leader than the one that appended it. The id
 * (`origin`, `seq`) is unique per process incarnation (`origin` is random at start), so
 * the node that proposed recognises its own entry whenever, and under whichever leader, it
 * applies — and never mistakes another node's or an earlier incarnation's entry for it.
 */
import { randomBytes } from 'node:crypto';

/** Bytes of the envelope header: magic (1), origin (8), sequence number (8). */
export const ENVELOPE_HEADER_BYTES = 17;
const MAGIC = 0xf1;
/** A command in a client session: the header, then client id (8) and session sequence (8). */
const SESSION_MAGIC = 0xf2;
const SESSION_HEADER_BYTES = ENVELOPE_HEADER_BYTES + 16;
/** Opens a client session: the header alone (the entry's index becomes the client id). */
const REGISTER_MAGIC = 0xf3;

/** Identifies a proposal: the proposing process incarnation and its sequence number there. */
export interface RequestId {
  /** Random per process start, as 16 hex digits. */
  readonly origin: string;
  readonly seq: number;
}

/** A command's place in a client session (see sessions.ts). */
export interface SessionTag {
  /** The session's id: the index of the entry that opened it. */
  readonly clientId: number;
  /** The command's sequence number in the session, from 1; a retry repeats it. */
  readonly seq: number;
}

/** What an entry carries, as the runtime wrote it. */
export interface Unwrapped {
  readonly id: RequestId;
  /** The encoded command (empty when `register`). */
  readonly command: Uint8Array;
  /** The command's session, if it was proposed in one. */
  readonly session?: SessionTag;
  /** The entry opens a client session. */
  readonly register?: true;
}

/** A fresh random origin for this process incarnation (8 bytes). */
export function newOrigin(): Uint8Array {
  return new Uint8Array(randomBytes(8));
}

/** Writes `value` (a non-negative safe integer) as 8 big-endian bytes at `offset`. */
function writeUint64(out: Uint8Array, offset: number, value: number): void {
  const high = Math.floor(value / 2 ** 32);
  const low = value >>> 0;
  out[offset] = high >>> 24;
  out[offset + 1] = (high >>> 16) & 0xff;
  out[offset + 2] = (high >>> 8) & 0xff;
  out[offset + 3] = high & 0xff;
  out[offset + 4] = low >>> 24;
  out[offset + 5] = (low >>> 16) & 0xff;
  out[offset + 6] = (low >>> 8) & 0xff;
  out[offset + 7] = low & 0xff;
}

/** The 4 big-endian bytes at `offset` as a number. */
function readUint32(data: Uint8Array, offset: number): number {
  return (
    ((data[offset]! << 24) | (data[offset + 1]! << 16) | (data[offset + 2]! << 8) | data[offset + 3]!) >>> 0
  );
}

/** The 8 big-endian bytes at `offset` as a number (rounded like `Number(bigint)` beyond 2^53). */
function readUint64(data: Uint8Array, offset: number): number {
  return readUint32(data, offset) * 2 ** 32 + readUint32(data, offset + 4);
}

/**
 * The origins seen, with their hex: a group has one per member incarnation, so every entry
 * finds its origin here and shares its string (no hex encoding per applied entry). Keyed by
 * the origin's first 4 bytes, checked against the other 4 (two origins sharing the first 4
 * bytes, a 2^-32 chance, are encoded each time); emptied when it gets large.
 */
const ORIGINS_CACHED_MAX = 4096;
const originCache = new Map<number, { readonly low: number; readonly hex: string }>();

/** The hex of the 8-byte origin at `data[1..9]`. */
function originHex(data: Uint8Array): string {
  const high = readUint32(data, 1);
  const low = readUint32(data, 5);
  const cached = originCache.get(high);
  if (cached !== undefined && cached.low === low) return cached.hex;
  const hex = Buffer.from(data.buffer, data.byteOffset + 1, 8).toString('hex');
  if (cached === undefined) {
    if (originCache.size >= ORIGINS_CACHED_MAX) originCache.clear();
    originCache.set(high, { low, hex });
  }
  return hex;
}

function header(magic: number, origin: Uint8Array, seq: number, bytes: number): Uint8Array {
  const out = new Uint8Array(bytes);
  out[0] = magic;
  out.set(origin, 1);
  writeUint64(out, 9, seq);
  return out;
}

/** Prefixes an encoded command with its request id (and its session, if any). */
export function wrapCommand(
  origin: Uint8Array,
  seq: number,
  command: Uint8Array,
  session?: SessionTag,
): Uint8Array {
  if (session === undefined) {
    const out = header(MAGIC, origin, seq, ENVELOPE_HEADER_BYTES + command.length);
    out.set(command, ENVELOPE_HEADER_BYTES);
    return out;
  }
  const out = header(SESSION_MAGIC, origin, seq, SESSION_HEADER_BYTES + command.length);
  writeUint64(out, ENVELOPE_HEADER_BYTES, session.clientId);
  writeUint64(out, ENVELOPE_HEADER_BYTES + 8, session.seq);
  out.set(command, SESSION_HEADER_BYTES);
  return out;
}

/** The entry that opens a client session. */
export function wrapRegister(origin: Uint8Array, seq: number): Uint8Array {
  return header(REGISTER_MAGIC, origin, seq, ENVELOPE_HEADER_BYTES);
}

/** Splits an entry into its request id, command and session; undefined when it is not an envelope. */
export function unwrapCommand(data: Uint8Array): Unwrapped | undefined {
  const magic = data[0];
  if (data.length < ENVELOPE_HEADER_BYTES) return undefined;
  if (magic !== MAGIC && magic !== SESSION_MAGIC && magic !== REGISTER_MAGIC) return undefined;
  const id = { origin: originHex(data), seq: readUint64(data, 9) };
  if (magic === MAGIC) return { id, command: data.subarray(ENVELOPE_HEADER_BYTES) };
  if (magic === REGISTER_MAGIC) return { id, command: data.subarray(data.length), register: true };
  if (data.length < SESSION_HEADER_BYTES) return undefined;
  const session = {
    clientId: readUint64(data, ENVELOPE_HEADER_BYTES),
    seq: readUint64(data, ENVELOPE_HEADER_BYTES + 8),
  };
  return { id, command: data.subarray(SESSION_HEADER_BYTES), session };
}

/** Joins KV snapshot chunks into one buffer: `[length u32 BE][chunk]` each. */
export function frameChunks(chunks: Iterable<Uint8Array>): Uint8Array {
  const parts: Uint8Array[] = [];
  let total = 0;
  for (const chunk of chunks) {
    const header = new Uint8Array(4);
    new DataView(header.buffer).setUint32(0, chunk.length);
    parts.push(header, chunk);
    total += 4 + chunk.length;
  }
  const out = new Uint8Array(total);
  let offset = 0;
  for (const part of parts) {
    out.set(part, offset);
    offset += part.length;
  }
  return out;
}

/**
 * {@link frameChunks}, yielding to the event loop after each chunk so that building a large
 * snapshot never stalls heartbeats, client requests or elections. The chunks must come from
 * a consistent view (a KV snapshot holds its own read transaction; an in-memory state
 * machine captures its state when asked), since other work runs in between.
 */
export async function frameChunksAsync(
  chunks: AsyncIterable<Uint8Array> | Iterable<Uint8Array>,
): Promise<Uint8Array> {
  const parts: Uint8Array[] = [];
  for await (const chunk of chunks) {
    parts.push(chunk);
    await new Promise<void>((resolve) => setImmediate(resolve));
  }
  return frameChunks(parts);
}

/** Splits a buffer made by {@link frameChunks} back into chunks (views, no copy). */
export function* unframeChunks(data: Uint8Array): Generator<Uint8Array> {
  const view = new DataView(data.buffer, data.byteOffset, data.byteLength);
  let offset = 0;
  while (offset < data.length) {
    if (offset + 4 > data.length) throw new Error('snapshot data: truncated chunk header');
    const length = view.getUint32(offset);
    offset += 4;
    if (offset + length > data.length) throw new Error('snapshot data: truncated chunk');
    yield data.subarray(offset, offset + length);
    offset += length;
  }
}
