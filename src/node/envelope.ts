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

/** Identifies a proposal: the proposing process incarnation and its sequence number there. */
export interface RequestId {
  /** Random per process start, as 16 hex digits. */
  readonly origin: string;
  readonly seq: number;
}

/** A fresh random origin for this process incarnation (8 bytes). */
export function newOrigin(): Uint8Array {
  return new Uint8Array(randomBytes(8));
}

/** Prefixes an encoded command with its request id. */
export function wrapCommand(origin: Uint8Array, seq: number, command: Uint8Array): Uint8Array {
  const out = new Uint8Array(ENVELOPE_HEADER_BYTES + command.length);
  out[0] = MAGIC;
  out.set(origin, 1);
  new DataView(out.buffer).setBigUint64(9, BigInt(seq));
  out.set(command, ENVELOPE_HEADER_BYTES);
  return out;
}

/** Splits an entry into its request id and command bytes; undefined when it is not an envelope. */
export function unwrapCommand(data: Uint8Array): { id: RequestId; command: Uint8Array } | undefined {
  if (data.length < ENVELOPE_HEADER_BYTES || data[0] !== MAGIC) return undefined;
  const view = new DataView(data.buffer, data.byteOffset, data.byteLength);
  const origin = Buffer.from(data.buffer, data.byteOffset + 1, 8).toString('hex');
  const seq = Number(view.getBigUint64(9));
  return { id: { origin, seq }, command: data.subarray(ENVELOPE_HEADER_BYTES) };
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
