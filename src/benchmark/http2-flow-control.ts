/**
 * HTTP/2 flow control (RFC 9113 §5.2) of one connection of the benchmark's gRPC client, both
 * ways: DATA is split to the peer's frame size and to the connection's and the stream's send
 * windows (what does not fit waits for WINDOW_UPDATE), and received DATA is given back with
 * WINDOW_UPDATE once a large amount has accumulated.
 */
import { DATA, DEFAULT_WINDOW, END_STREAM, frame, windowUpdateFrame } from '../http2/frames.js';
import type { StreamState } from './http2-stream.js';

/** Received bytes after which a WINDOW_UPDATE gives them back. */
const WINDOW_REFILL = 2 ** 30;

/** The windows of one connection and its streams; frames go out through `write`. */
export class FlowControl {
  /** The peer's SETTINGS_MAX_FRAME_SIZE: the largest DATA frame it accepts. */
  maxFrame = 16_384;
  private peerInitialWindow = DEFAULT_WINDOW;
  private sendWindow = DEFAULT_WINDOW;
  private receivedOnConnection = 0;
  /** Streams with DATA waiting for a window. */
  private readonly blocked = new Set<StreamState>();

  constructor(private readonly write: (buffer: Buffer) => void) {}

  /** The send window a new stream starts with (the peer's SETTINGS_INITIAL_WINDOW_SIZE). */
  get initialWindow(): number {
    return this.peerInitialWindow;
  }

  /**
   * Whether `length` bytes can go out on `stream` as one DATA frame right now; if so, they
   * are taken from the windows (the caller writes the frame).
   */
  takeWhole(stream: StreamState, length: number): boolean {
    if (length > this.maxFrame || length > stream.sendWindow || length > this.sendWindow) return false;
    stream.sendWindow -= length;
    this.sendWindow -= length;
    return true;
  }

  /** Sends `data` on `stream` (within flow control; the rest waits for WINDOW_UPDATE). */
  send(stream: StreamState, data: Buffer, end: boolean): void {
    stream.unsent = stream.unsent === undefined ? data : Buffer.concat([stream.unsent, data]);
    stream.endAfterUnsent = end;
    this.pump(stream);
  }

  private pump(stream: StreamState): void {
    let unsent = stream.unsent;
    while (unsent !== undefined) {
      const size = Math.min(unsent.length, this.maxFrame, stream.sendWindow, this.sendWindow);
      if (size <= 0 && unsent.length > 0) {
        this.blocked.add(stream);
        stream.unsent = unsent;
        return;
      }
      const last = size === unsent.length;
      this.write(
        frame(DATA, last && stream.endAfterUnsent ? END_STREAM : 0, stream.id, unsent.subarray(0, size)),
      );
      stream.sendWindow -= size;
      this.sendWindow -= size;
      unsent = last ? undefined : unsent.subarray(size);
    }
    stream.unsent = undefined;
    this.blocked.delete(stream);
  }

  /** The stream is over: it no longer waits for a window. */
  forget(stream: StreamState): void {
    this.blocked.delete(stream);
  }

  /** A WINDOW_UPDATE of the connection: the blocked streams send what now fits. */
  connectionWindowUpdate(increment: number): void {
    this.sendWindow += increment;
    this.pumpBlocked();
  }

  /** A WINDOW_UPDATE of `stream`: it sends what now fits. */
  streamWindowUpdate(stream: StreamState, increment: number): void {
    stream.sendWindow += increment;
    if (stream.unsent !== undefined) this.pump(stream);
  }

  /** The peer changed SETTINGS_INITIAL_WINDOW_SIZE to `value`: every open stream's window moves by the difference. */
  initialWindowChanged(value: number, streams: Iterable<StreamState>): void {
    const delta = value - this.peerInitialWindow;
    this.peerInitialWindow = value;
    for (const stream of streams) stream.sendWindow += delta;
    this.pumpBlocked();
  }

  private pumpBlocked(): void {
    for (const stream of [...this.blocked]) this.pump(stream);
  }

  /**
   * Gives received DATA bytes back to the peer's windows (the connection's, and that of
   * `stream` if it is still open) once a large amount has accumulated.
   */
  received(stream: StreamState | undefined, length: number): void {
    this.receivedOnConnection += length;
    if (this.receivedOnConnection >= WINDOW_REFILL) {
      this.write(windowUpdateFrame(0, this.receivedOnConnection));
      this.receivedOnConnection = 0;
    }
    if (stream !== undefined) {
      stream.received += length;
      if (stream.received >= WINDOW_REFILL) {
        this.write(windowUpdateFrame(stream.id, stream.received));
        stream.received = 0;
      }
    }
  }
}
