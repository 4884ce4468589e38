/**
 * The receiving end of one snapshot stream (see snapshot-stream.ts): chunks must continue
 * the payload without a gap; in `data` mode they are kept in memory (at most
 * `snapshotBytesMax`), in `stream` mode handed to the sink one at a time; the end frame's
 * length and CRC-32C must match what arrived before the message is delivered.
 */
import type { SnapshotRequest } from '../raft/types.js';
import { TransportError } from './errors.js';
import { PayloadDigest, type SnapshotMode, type SnapshotSink } from './snapshot-stream.js';

/** A snapshot stream being received. */
export class IncomingSnapshot {
  private readonly digest = new PayloadDigest();
  private readonly parts: Buffer[] = [];
  private settled = false;

  constructor(
    readonly streamId: number,
    readonly mode: SnapshotMode,
    private readonly message: SnapshotRequest,
    /** The sink of a `stream`-mode payload; undefined in `data` mode. */
    private readonly sink: SnapshotSink | undefined,
    private readonly bytesMax: number,
  ) {}

  /** Takes the chunk at `offset`; returns a promise while the sink writes it (read nothing more until then). */
  chunk(offset: number, data: Buffer): Promise<void> | undefined {
    const received = this.digest.bytes;
    if (offset !== received) {
      throw new TransportError(
        'PROTOCOL',
        `snapshot stream ${this.streamId}: chunk at ${offset} does not continue [0, ${received})`,
      );
    }
    if (this.sink === undefined && received + data.length > this.bytesMax) {
      throw new TransportError(
        'SNAPSHOT_TOO_LARGE',
        `snapshot of more than ${received + data.length} bytes exceeds snapshotBytesMax ${this.bytesMax}`,
      );
    }
    // A copy: `data` is a view into the frame reader's buffer.
    const copy = Buffer.from(data);
    this.digest.update(copy);
    if (this.sink !== undefined) return this.sink.write(copy);
    this.parts.push(copy);
    return undefined;
  }

  /**
   * Checks the end frame against what arrived; returns the message to deliver (in `stream`
   * mode once the sink has made the payload durable). Throws on a mismatch.
   */
  end(totalBytes: number, crc: number): SnapshotRequest | Promise<SnapshotRequest> {
    if (totalBytes !== this.digest.bytes || crc >>> 0 !== this.digest.crc >>> 0) {
      throw new TransportError(
        'MALFORMED',
        `snapshot stream ${this.streamId}: received ${this.digest.bytes} bytes with CRC-32C ` +
          `${this.digest.crc >>> 0}, the sender sent ${totalBytes} with ${crc >>> 0}`,
      );
    }
    this.settled = true;
    const sink = this.sink;
    if (sink !== undefined) return sink.finish().then(() => this.message);
    const whole = this.parts.length === 1 ? this.parts[0]! : Buffer.concat(this.parts, totalBytes);
    const data = new Uint8Array(whole.buffer, whole.byteOffset, whole.length);
    return { ...this.message, snapshot: { meta: this.message.snapshot.meta, data } };
  }

  /** The stream failed before its end was accepted: the sink discards what it wrote. */
  abort(): void {
    if (this.settled) return;
    this.settled = true;
    this.sink?.abort();
  }
}
