/**
 * The sending end of one snapshot stream (see snapshot-stream.ts): the begin frame, then the
 * payload cut into chunk frames as the socket drains, then the end frame with the payload's
 * length and CRC-32C. The payload is read only as fast as the socket takes it.
 */
import type { Socket } from 'node:net';
import type { SnapshotRequest } from '../raft/types.js';
import { snapshotBeginFrame, snapshotChunkHeader, snapshotEndFrame } from './frames.js';
import { PayloadDigest, type SnapshotMode, type SnapshotPayload } from './snapshot-stream.js';

/** What the stream tells its link. */
export interface OutgoingSnapshotEvents {
  /** An asynchronous read of the payload finished: the link should flush again. */
  readable(): void;
  /** Reading the payload failed: the stream is cut. */
  failed(error: unknown): void;
  /** A frame of `bytes` was written. */
  wroteFrame(bytes: number): void;
}

/** A snapshot being streamed to one peer. */
export class OutgoingSnapshot {
  /** The acknowledgement timer, set once the end frame is written. */
  ackTimer: NodeJS.Timeout | undefined;
  /** Whether the begin frame was written. */
  begun = false;
  private piece: Uint8Array | undefined;
  private readingPayload = false;
  private exhausted = false;
  private closed = false;
  private readonly digest = new PayloadDigest();

  constructor(
    readonly message: SnapshotRequest,
    readonly mode: SnapshotMode,
    private readonly payload: SnapshotPayload,
    readonly streamId: number,
    private readonly events: OutgoingSnapshotEvents,
  ) {}

  /** Whether the stream waits for an asynchronous read of its payload. */
  get reading(): boolean {
    return this.readingPayload;
  }

  /** Whether the end frame was written (the stream waits for the acknowledgement). */
  get ended(): boolean {
    return this.ackTimer !== undefined;
  }

  /**
   * Writes the begin frame, then at most one chunk of `chunkBytes` (when the socket has
   * room), then the end frame once the payload is exhausted. Returns whether it wrote and
   * whether the end frame went out (the caller then waits for the acknowledgement).
   */
  step(socket: Socket, chunkBytes: number): { wrote: boolean; ended: boolean } {
    let wrote = false;
    if (!this.begun) {
      const begin = snapshotBeginFrame(this.streamId, this.message, this.mode);
      socket.write(begin);
      this.events.wroteFrame(begin.length);
      this.begun = true;
      wrote = true;
    }
    if (socket.writableNeedDrain) return { wrote, ended: false };
    if (this.piece === undefined && !this.exhausted && !this.readPiece()) return { wrote, ended: false };
    const piece = this.piece;
    if (piece !== undefined) {
      const bytes = Math.min(piece.length, chunkBytes);
      const header = snapshotChunkHeader(this.streamId, this.digest.bytes, bytes);
      const body = piece.subarray(0, bytes);
      socket.write(header);
      socket.write(body);
      this.digest.update(body);
      this.events.wroteFrame(header.length + bytes);
      this.piece = bytes < piece.length ? piece.subarray(bytes) : undefined;
      wrote = true;
    }
    if (!this.exhausted || this.piece !== undefined) return { wrote, ended: false };
    const end = snapshotEndFrame(this.streamId, this.digest.bytes, this.digest.crc);
    socket.write(end);
    this.events.wroteFrame(end.length);
    this.close();
    return { wrote: true, ended: true };
  }

  /** Releases the payload's source (idempotent). */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.payload.close();
  }

  /**
   * Reads the next piece of the payload (or notes its end); false while an asynchronous read
   * is in progress (its completion calls `readable`) or after a failed read.
   */
  private readPiece(): boolean {
    let next: ReturnType<SnapshotPayload['read']>;
    try {
      next = this.payload.read();
    } catch (error) {
      this.events.failed(error);
      return false;
    }
    if (!(next instanceof Promise)) {
      this.take(next);
      return true;
    }
    this.readingPayload = true;
    next.then(
      (piece) => {
        this.readingPayload = false;
        if (this.closed) return;
        this.take(piece);
        this.events.readable();
      },
      (error: unknown) => {
        this.readingPayload = false;
        if (!this.closed) this.events.failed(error);
      },
    );
    return false;
  }

  private take(piece: Uint8Array | undefined): void {
    if (piece === undefined) this.exhausted = true;
    else if (piece.length > 0) this.piece = piece;
  }
}
