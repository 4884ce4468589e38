/**
 * One HTTP/2 stream of a server connection (RFC 9113 §5), as a gRPC call sees it: response
 * headers, DATA within the peer's flow-control windows (what does not fit waits, in order,
 * for WINDOW_UPDATE or for the socket to drain), trailers after the last DATA, and a reset.
 * The connection (connection.ts) owns the windows and the socket; a stream only queues.
 */
import {
  CANCEL,
  CONTINUATION,
  DATA,
  END_HEADERS,
  END_STREAM,
  frameHeader,
  HEADERS,
  NO_ERROR,
  rstStreamFrame,
} from '../http2/frames.js';

/** Bytes a payload leaves free before it for its DATA frame header ({@link ServerStream.dataInRoom}). */
export const FRAME_ROOM = 9;

/** What a stream needs of its connection. */
export interface StreamOwner {
  /** The peer's SETTINGS_MAX_FRAME_SIZE. */
  readonly maxFrame: number;
  /** Bytes the connection's send window allows now (0 while the socket is backed up). */
  sendable(): number;
  /** Takes `bytes` from the connection's send window. */
  take(bytes: number): void;
  /** Queues bytes for the socket (written once per event-loop turn). */
  write(bytes: Buffer): void;
  /** The stream waits for a window (connection or its own) to send its queued DATA. */
  block(stream: ServerStream): void;
  /** The stream is over on both sides (or reset): forget it. */
  close(stream: ServerStream): void;
}

/** What a call receives from its stream. */
export interface StreamEvents {
  /** DATA from the peer; `end` when the peer half-closed. */
  data(payload: Buffer, end: boolean): void;
  /** The stream was reset by the peer or lost with its connection. */
  reset(): void;
  /** The queued DATA went out: the call may write more. */
  drained(): void;
}

/** One stream of a server connection. */
export class ServerStream {
  /** The peer's window for this stream. */
  sendWindow: number;
  /** DATA bytes received since the last WINDOW_UPDATE of this stream. */
  received = 0;
  /** The peer half-closed (END_STREAM received). */
  remoteEnded = false;
  /** This side sent END_STREAM or reset the stream. */
  localEnded = false;
  events: StreamEvents | undefined;
  private readonly queue: Buffer[] = [];
  private queued = 0;
  private trailers: Buffer | undefined;

  constructor(
    readonly id: number,
    initialWindow: number,
    private readonly owner: StreamOwner,
  ) {
    this.sendWindow = initialWindow;
  }

  /** Bytes of DATA waiting for a window. */
  get unsentBytes(): number {
    return this.queued;
  }

  /** Sends a header block (response headers, or trailers when `end`). */
  headers(block: Buffer, end: boolean): void {
    if (this.localEnded) return;
    this.owner.write(headersFrames(this.id, block, end, this.owner.maxFrame));
    if (end) this.ended();
  }

  /**
   * A whole unary response: headers, one DATA payload and trailers, as one write when the
   * windows take the payload in one frame (the common case), else through the queue.
   */
  unary(headers: Buffer, payload: Buffer, trailers: Buffer): void {
    if (this.localEnded) return;
    const size = payload.length;
    const maxFrame = this.owner.maxFrame;
    if (!this.fitsOneFrame(size) || headers.length > maxFrame || trailers.length > maxFrame) {
      this.headers(headers, false);
      this.data(payload);
      this.end(trailers);
      return;
    }
    this.sendWindow -= size;
    this.owner.take(size);
    const out = Buffer.allocUnsafe(27 + headers.length + size + trailers.length);
    frameHeader(out, 0, headers.length, HEADERS, END_HEADERS, this.id);
    headers.copy(out, 9);
    let at = 9 + headers.length;
    frameHeader(out, at, size, DATA, 0, this.id);
    payload.copy(out, at + 9);
    at += 9 + size;
    frameHeader(out, at, trailers.length, HEADERS, END_HEADERS | END_STREAM, this.id);
    trailers.copy(out, at + 9);
    this.owner.write(out);
    this.ended();
  }

  /**
   * {@link data} for a payload after {@link FRAME_ROOM} spare bytes: when the windows take
   * it as one frame (the common case), the frame header goes into the room and the buffer
   * is written as it is.
   */
  dataInRoom(buffer: Buffer): void {
    const size = buffer.length - FRAME_ROOM;
    if (this.localEnded || size <= 0) return;
    if (!this.fitsOneFrame(size)) {
      this.data(buffer.subarray(FRAME_ROOM));
      return;
    }
    frameHeader(buffer, 0, size, DATA, 0, this.id);
    this.sendWindow -= size;
    this.owner.take(size);
    this.owner.write(buffer);
  }

  /** Whether `size` bytes of DATA can go now as one frame, with nothing queued before them. */
  private fitsOneFrame(size: number): boolean {
    return (
      this.queued === 0 &&
      size <= this.owner.maxFrame &&
      size <= this.sendWindow &&
      size <= this.owner.sendable()
    );
  }

  /** Queues DATA; sends what the windows allow now. */
  data(payload: Buffer): void {
    if (this.localEnded || payload.length === 0) return;
    this.queue.push(payload);
    this.queued += payload.length;
    this.pump();
  }

  /** Ends the stream with `trailers`, after every queued DATA byte. */
  end(trailers: Buffer): void {
    if (this.localEnded || this.trailers !== undefined) return;
    if (this.queued === 0) this.headers(trailers, true);
    else this.trailers = trailers;
  }

  /**
   * Ends the stream with one header block (a trailers-only status or a plain HTTP status) and,
   * when the client has not half-closed, tells it to stop sending (RST_STREAM NO_ERROR).
   */
  refuse(block: Buffer): void {
    this.headers(block, true);
    if (!this.remoteEnded) this.reset(NO_ERROR);
  }

  /** Resets the stream (RST_STREAM with `code`); queued DATA is dropped. */
  reset(code: number = CANCEL): void {
    if (this.localEnded && this.remoteEnded) return;
    this.owner.write(rstStreamFrame(this.id, code));
    this.dropQueue();
    this.localEnded = true;
    this.remoteEnded = true;
    this.owner.close(this);
  }

  /** Sends queued DATA within the windows; the trailers once the queue is empty. */
  pump(): void {
    while (this.queued > 0) {
      const size = Math.min(this.queued, this.owner.maxFrame, this.sendWindow, this.owner.sendable());
      if (size <= 0) {
        this.owner.block(this);
        return;
      }
      this.owner.write(this.take(size));
      this.sendWindow -= size;
      this.owner.take(size);
    }
    if (this.trailers !== undefined) {
      const trailers = this.trailers;
      this.trailers = undefined;
      this.headers(trailers, true);
      return;
    }
    this.events?.drained();
  }

  /** The peer reset the stream or the connection is gone. */
  lost(): void {
    this.dropQueue();
    this.localEnded = true;
    this.remoteEnded = true;
    this.events?.reset();
  }

  /** One DATA frame of `size` bytes from the front of the queue. */
  private take(size: number): Buffer {
    const out = Buffer.allocUnsafe(9 + size);
    frameHeader(out, 0, size, DATA, 0, this.id);
    let at = 9;
    while (at < 9 + size) {
      const head = this.queue[0]!;
      const n = Math.min(head.length, 9 + size - at);
      head.copy(out, at, 0, n);
      at += n;
      if (n === head.length) this.queue.shift();
      else this.queue[0] = head.subarray(n);
    }
    this.queued -= size;
    return out;
  }

  private dropQueue(): void {
    this.queue.length = 0;
    this.queued = 0;
    this.trailers = undefined;
  }

  private ended(): void {
    this.localEnded = true;
    if (this.remoteEnded) this.owner.close(this);
  }
}

/** A header block as a HEADERS frame and, when it is larger than a frame, CONTINUATION frames. */
function headersFrames(stream: number, block: Buffer, end: boolean, maxFrame: number): Buffer {
  const endFlag = end ? END_STREAM : 0;
  if (block.length <= maxFrame) {
    const out = Buffer.allocUnsafe(9 + block.length);
    frameHeader(out, 0, block.length, HEADERS, END_HEADERS | endFlag, stream);
    block.copy(out, 9);
    return out;
  }
  const frames = Math.ceil(block.length / maxFrame);
  const out = Buffer.allocUnsafe(9 * frames + block.length);
  let at = 0;
  for (let i = 0; i < frames; i++) {
    const part = block.subarray(i * maxFrame, (i + 1) * maxFrame);
    const last = i === frames - 1;
    const type = i === 0 ? HEADERS : CONTINUATION;
    const flags = (last ? END_HEADERS : 0) | (i === 0 ? endFlag : 0);
    frameHeader(out, at, part.length, type, flags, stream);
    part.copy(out, at + 9);
    at += 9 + part.length;
  }
  return out;
}
