/**
 * Snapshot streams: what a snapshot message carries besides the message itself, read from a
 * source on the sending side and written to a sink (or reassembled in memory) on the
 * receiving side, with flow control at both ends.
 *
 * Two modes (the SNAPSHOT_BEGIN frame says which, see frames.ts):
 *
 * - `data`: the payload is the snapshot's `data` itself, reassembled in memory by the
 *   receiver (bounded by `snapshotBytesMax`) and delivered as the message's data. An
 *   in-memory state machine's snapshot travels so.
 * - `stream`: the message carries its (small) data inline, and the payload is a side stream
 *   the receiver's {@link SnapshotSink} writes to disk before the message is delivered. An
 *   on-disk state machine's state travels so: the sender reads it from a pinned view while it
 *   writes, so neither side holds more than a few chunks in memory.
 *
 * Either way the SNAPSHOT_END frame carries the payload's length and CRC-32C, checked before
 * anything is delivered: a stream cut short or altered in transit is never trusted.
 */
import { crc32c } from '@node-rs/crc32';

/** How a snapshot's payload relates to its message (see the module comment). */
export type SnapshotMode = 'data' | 'stream';

/** The sending side's source of a payload. */
export interface SnapshotPayload {
  /**
   * The next piece of the payload (any length; the link cuts it into chunk frames), or
   * undefined at the end. May return a promise (a source that reads asynchronously).
   */
  read(): Uint8Array | undefined | Promise<Uint8Array | undefined>;
  /** Releases the source when the stream ends or fails; may be called again (then it does nothing). */
  close(): void;
}

/** The receiving side's destination of a `stream` payload. */
export interface SnapshotSink {
  /** Stores the next bytes (the caller does not reuse them); the connection reads no more until it resolves. */
  write(bytes: Uint8Array): Promise<void>;
  /** The whole payload arrived intact: make it durable. The message is delivered after this resolves. */
  finish(): Promise<void>;
  /** The stream failed (connection lost, bad checksum): discard what was written. Idempotent. */
  abort(): void;
}

/** A payload of one buffer (the `data` mode). */
export function bytesPayload(data: Uint8Array): SnapshotPayload {
  let done = false;
  return {
    read: () => {
      if (done) return undefined;
      done = true;
      return data;
    },
    close: () => {},
  };
}

/**
 * A payload of `[length u32 BE][chunk]` for each chunk (the framing envelope.ts reads back),
 * pulled from `chunks` only as fast as the link writes; `close` runs when it ends or fails.
 */
export function framedPayload(
  chunks: Iterable<Uint8Array> | AsyncIterable<Uint8Array>,
  close: () => void,
): SnapshotPayload {
  const iterator =
    Symbol.asyncIterator in chunks
      ? (chunks as AsyncIterable<Uint8Array>)[Symbol.asyncIterator]()
      : (chunks as Iterable<Uint8Array>)[Symbol.iterator]();
  let body: Uint8Array | undefined;
  let closed = false;
  const header = (chunk: Uint8Array): Uint8Array => {
    const bytes = new Uint8Array(4);
    new DataView(bytes.buffer).setUint32(0, chunk.length);
    body = chunk;
    return bytes;
  };
  const step = (result: IteratorResult<Uint8Array>): Uint8Array | undefined =>
    result.done === true ? undefined : header(result.value);
  return {
    read: () => {
      if (body !== undefined) {
        const next = body;
        body = undefined;
        return next;
      }
      const result = iterator.next();
      return result instanceof Promise ? result.then(step) : step(result);
    },
    close: () => {
      if (closed) return;
      closed = true;
      void iterator.return?.();
      close();
    },
  };
}

/** The running length and CRC-32C of a payload. */
export class PayloadDigest {
  bytes = 0;
  crc = 0;

  update(data: Uint8Array): void {
    this.bytes += data.length;
    this.crc = crc32c(Buffer.from(data.buffer, data.byteOffset, data.byteLength), this.crc);
  }
}
