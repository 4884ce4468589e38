/**
 * Splits a TCP byte stream into frames (`[length u32 BE][payload]`, see frames.ts).
 *
 * Socket reads arrive in arbitrary pieces; the reader keeps them as a list and copies only
 * when a frame spans several pieces, so a large frame costs one copy rather than one per read.
 * The declared length is checked against the limit before any byte of the payload is
 * buffered, so a peer cannot make us allocate more than `frameBytesMax`.
 */
import { TransportError } from './errors.js';

const LENGTH_BYTES = 4;

/** Incremental frame parser for one connection. */
export class FrameReader {
  private readonly chunks: Buffer[] = [];
  private bufferedBytes = 0;
  /** Payload length of the frame being read, or -1 while its length prefix is incomplete. */
  private payloadBytes = -1;

  /**
   * @param frameBytesMax the largest payload accepted; may be raised later (e.g. after the
   *   handshake) through {@link FrameReader.setFrameBytesMax}.
   */
  constructor(private frameBytesMax: number) {}

  /** Changes the payload limit for frames whose length has not been read yet. */
  setFrameBytesMax(frameBytesMax: number): void {
    this.frameBytesMax = frameBytesMax;
  }

  /** Bytes received but not yet returned as frames. */
  get pendingBytes(): number {
    return this.bufferedBytes;
  }

  /** Appends bytes read from the socket. */
  push(chunk: Buffer): void {
    if (chunk.length === 0) return;
    this.chunks.push(chunk);
    this.bufferedBytes += chunk.length;
  }

  /**
   * The payload (kind byte and body) of the next complete frame, or undefined if more bytes
   * are needed. Throws `FRAME_TOO_LARGE` when the declared length exceeds the limit and
   * `MALFORMED` for an empty frame; the stream cannot be resynchronised after either.
   */
  next(): Buffer | undefined {
    if (this.payloadBytes < 0) {
      if (this.bufferedBytes < LENGTH_BYTES) return undefined;
      const length = this.take(LENGTH_BYTES).readUInt32BE(0);
      if (length > this.frameBytesMax) {
        throw new TransportError(
          'FRAME_TOO_LARGE',
          `frame of ${length} bytes exceeds frameBytesMax ${this.frameBytesMax}`,
        );
      }
      if (length === 0) throw new TransportError('MALFORMED', 'malformed frame: zero length');
      this.payloadBytes = length;
    }
    if (this.bufferedBytes < this.payloadBytes) return undefined;
    const payload = this.take(this.payloadBytes);
    this.payloadBytes = -1;
    return payload;
  }

  /** Removes and returns the first `n` buffered bytes (`n <= bufferedBytes`). */
  private take(n: number): Buffer {
    this.bufferedBytes -= n;
    const first = this.chunks[0]!;
    if (first.length >= n) {
      if (first.length === n) this.chunks.shift();
      else this.chunks[0] = first.subarray(n);
      return first.subarray(0, n);
    }
    const out = Buffer.allocUnsafe(n);
    let filled = 0;
    while (filled < n) {
      const chunk = this.chunks[0]!;
      const used = Math.min(chunk.length, n - filled);
      chunk.copy(out, filled, 0, used);
      filled += used;
      if (used === chunk.length) this.chunks.shift();
      else this.chunks[0] = chunk.subarray(used);
    }
    return out;
  }
}
