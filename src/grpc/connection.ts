/**
 * One HTTP/2 connection of the gRPC server (RFC 9113, server side), on a plain socket: the
 * client preface and SETTINGS, header blocks (HEADERS + CONTINUATION) decoded with HPACK,
 * DATA handed to the stream's call, flow control both ways, PING, RST_STREAM and GOAWAY.
 *
 * Frames to send are collected and written once per event-loop turn (in the check phase,
 * after every I/O callback of the turn has answered), so the responses of many calls that
 * complete together, and the frames of one response, leave in one socket write. Node's own
 * `http2` module (which `@grpc/grpc-js` builds on) costs several times more CPU per call:
 * see docs/grpc.md for the measurement.
 *
 * Memory per connection is bounded: a frame above our SETTINGS_MAX_FRAME_SIZE and a header
 * block above `headerListBytesMax` are connection errors, DATA beyond the windows we granted
 * is a flow-control error, and DATA to send waits for the peer's windows and for the socket
 * to drain (a client that stops reading holds at most one socket buffer and its windows).
 */
import type { Socket } from 'node:net';
import * as F from '../http2/frames.js';
import { type HeaderField, HpackDecoder } from '../http2/hpack.js';
import { ServerStream, type StreamOwner } from './stream.js';

/** Limits of one connection. */
export interface ConnectionLimits {
  /** SETTINGS_MAX_CONCURRENT_STREAMS: streams the client may have open at once. */
  readonly maxConcurrentStreams: number;
  /** The receive window of each stream (SETTINGS_INITIAL_WINDOW_SIZE). */
  readonly streamWindow: number;
  /** The receive window of the connection. */
  readonly connectionWindow: number;
  /** The largest header block (all HEADERS and CONTINUATION frames of one block), in bytes. */
  readonly headerBlockBytesMax: number;
}

/** Where a connection's new streams go. */
export interface StreamAcceptor {
  /** A stream opened with `fields`; the acceptor sets `stream.events`. `end`: no DATA follows. */
  open(stream: ServerStream, fields: HeaderField[], end: boolean): void;
}

/** Our SETTINGS_MAX_FRAME_SIZE (the protocol's default): the largest frame we accept. */
const FRAME_BYTES_MAX = 16_384;
/** Socket bytes buffered beyond which DATA waits for the socket to drain. */
const SOCKET_BYTES_HIGH = 1024 * 1024;

/** A header block spread over HEADERS and CONTINUATION frames. */
interface PartialBlock {
  readonly stream: number;
  readonly end: boolean;
  readonly parts: Buffer[];
  bytes: number;
}

/** One client connection. */
export class ServerConnection implements StreamOwner {
  maxFrame = FRAME_BYTES_MAX;
  private sendWindow = F.DEFAULT_WINDOW;
  private peerInitialWindow = F.DEFAULT_WINDOW;
  private receiveWindow: number;
  private readonly streams = new Map<number, ServerStream>();
  private readonly blocked = new Set<ServerStream>();
  private readonly decoder = new HpackDecoder();
  private input: Buffer | undefined;
  private prefaceSeen = false;
  private out: Buffer[] = [];
  private outBytes = 0;
  private flushScheduled = false;
  private lastStreamId = 0;
  private partial: PartialBlock | undefined;
  private closed = false;
  private readonly flush = (): void => this.flushNow();

  constructor(
    private readonly socket: Socket,
    private readonly acceptor: StreamAcceptor,
    private readonly limits: ConnectionLimits,
  ) {
    this.receiveWindow = limits.connectionWindow;
    socket.setNoDelay(true);
    socket.on('data', (chunk: Buffer) => this.receive(chunk));
    socket.on('drain', () => this.pumpBlocked());
    socket.on('error', () => this.lose());
    socket.on('close', () => this.lose());
    this.write(
      F.settingsFrame([
        [F.SETTINGS_MAX_CONCURRENT_STREAMS, limits.maxConcurrentStreams],
        [F.SETTINGS_INITIAL_WINDOW_SIZE, limits.streamWindow],
      ]),
    );
    if (limits.connectionWindow > F.DEFAULT_WINDOW) {
      this.write(F.windowUpdateFrame(0, limits.connectionWindow - F.DEFAULT_WINDOW));
    }
  }

  /** Says GOAWAY and closes: every open stream is lost (its call sees a cancellation). */
  shutdown(): void {
    if (this.closed) return;
    this.goAway(F.NO_ERROR, '');
  }

  // --- StreamOwner: what the streams use -------------------------------------------------

  sendable(): number {
    return this.socket.writableLength + this.outBytes > SOCKET_BYTES_HIGH ? 0 : this.sendWindow;
  }

  take(bytes: number): void {
    this.sendWindow -= bytes;
  }

  write(bytes: Buffer): void {
    if (this.closed) return;
    this.out.push(bytes);
    this.outBytes += bytes.length;
    if (!this.flushScheduled) {
      this.flushScheduled = true;
      setImmediate(this.flush);
    }
  }

  block(stream: ServerStream): void {
    this.blocked.add(stream);
  }

  close(stream: ServerStream): void {
    this.blocked.delete(stream);
    this.streams.delete(stream.id);
  }

  // --- receiving ---------------------------------------------------------------------------

  private receive(chunk: Buffer): void {
    if (this.closed) return;
    let input = this.input === undefined ? chunk : Buffer.concat([this.input, chunk]);
    this.input = undefined;
    if (!this.prefaceSeen) {
      const compared = Math.min(input.length, F.PREFACE.length);
      if (!input.subarray(0, compared).equals(F.PREFACE.subarray(0, compared))) {
        this.goAway(F.PROTOCOL_ERROR, 'not an HTTP/2 client preface');
        return;
      }
      if (input.length < F.PREFACE.length) {
        this.input = input;
        return;
      }
      this.prefaceSeen = true;
      input = input.subarray(F.PREFACE.length);
    }
    this.readFrames(input);
  }

  private readFrames(input: Buffer): void {
    let at = 0;
    while (!this.closed && input.length - at >= 9) {
      const length = (input[at]! << 16) | (input[at + 1]! << 8) | input[at + 2]!;
      if (length > FRAME_BYTES_MAX) {
        this.goAway(F.FRAME_SIZE_ERROR, `frame of ${length} bytes above ${FRAME_BYTES_MAX}`);
        return;
      }
      if (input.length - at < 9 + length) break;
      const type = input[at + 3]!;
      const flags = input[at + 4]!;
      const stream = input.readUInt32BE(at + 5) & 0x7fffffff;
      const payload = input.subarray(at + 9, at + 9 + length);
      at += 9 + length;
      this.onFrame(type, flags, stream, payload);
    }
    if (!this.closed && at < input.length) this.input = input.subarray(at);
  }

  private onFrame(type: number, flags: number, id: number, payload: Buffer): void {
    if (this.partial !== undefined && (type !== F.CONTINUATION || id !== this.partial.stream)) {
      this.goAway(F.PROTOCOL_ERROR, 'a header block was interrupted');
      return;
    }
    switch (type) {
      case F.DATA:
        this.onData(flags, id, payload);
        return;
      case F.HEADERS:
        this.onHeaders(flags, id, payload);
        return;
      case F.CONTINUATION:
        this.onContinuation(flags, id, payload);
        return;
      case F.PRIORITY_FRAME:
        if (id === 0 || payload.length !== 5) this.goAway(F.PROTOCOL_ERROR, 'bad PRIORITY');
        return;
      case F.RST_STREAM:
        this.onReset(id, payload);
        return;
      case F.SETTINGS:
        this.onSettings(flags, id, payload);
        return;
      case F.PUSH_PROMISE:
        this.goAway(F.PROTOCOL_ERROR, 'a client cannot push');
        return;
      case F.PING:
        this.onPing(flags, id, payload);
        return;
      case F.GOAWAY:
        return; // the client opens no more streams; those open finish normally
      case F.WINDOW_UPDATE:
        this.onWindowUpdate(id, payload);
        return;
      default:
        return; // unknown frame types are ignored (RFC 9113 §4.1)
    }
  }

  private onData(flags: number, id: number, payload: Buffer): void {
    if (id === 0) {
      this.goAway(F.PROTOCOL_ERROR, 'DATA on stream 0');
      return;
    }
    this.receiveWindow -= payload.length;
    if (this.receiveWindow < 0) {
      this.goAway(F.FLOW_CONTROL_ERROR, 'DATA beyond the connection window');
      return;
    }
    if (this.receiveWindow < this.limits.connectionWindow / 2) {
      this.write(F.windowUpdateFrame(0, this.limits.connectionWindow - this.receiveWindow));
      this.receiveWindow = this.limits.connectionWindow;
    }
    const stream = this.streams.get(id);
    if (stream === undefined || stream.remoteEnded) {
      if (id > this.lastStreamId) {
        this.goAway(F.PROTOCOL_ERROR, `DATA on idle stream ${id}`);
        return;
      }
      return; // a stream this side already reset or finished: dropped (its window counted above)
    }
    const data = flags & F.PADDED ? unpad(payload) : payload;
    if (data === undefined) {
      this.goAway(F.PROTOCOL_ERROR, 'bad padding');
      return;
    }
    stream.received += payload.length;
    if (stream.received > this.limits.streamWindow) {
      stream.reset(F.FLOW_CONTROL_ERROR);
      return;
    }
    const end = (flags & F.END_STREAM) !== 0;
    if (!end && stream.received >= this.limits.streamWindow / 2) {
      this.write(F.windowUpdateFrame(id, stream.received));
      stream.received = 0;
    }
    if (end) this.remoteEnd(stream);
    stream.events?.data(data, end);
  }

  private onHeaders(flags: number, id: number, payload: Buffer): void {
    if (id === 0) {
      this.goAway(F.PROTOCOL_ERROR, 'HEADERS on stream 0');
      return;
    }
    let block: Buffer | undefined = flags & F.PADDED ? unpad(payload) : payload;
    if (block === undefined) {
      this.goAway(F.PROTOCOL_ERROR, 'bad padding');
      return;
    }
    if (flags & F.PRIORITY) block = block.subarray(5);
    const partial: PartialBlock = {
      stream: id,
      end: (flags & F.END_STREAM) !== 0,
      parts: [block],
      bytes: block.length,
    };
    if (flags & F.END_HEADERS) this.onHeaderBlock(partial);
    else this.partial = partial;
  }

  private onContinuation(flags: number, id: number, payload: Buffer): void {
    const partial = this.partial;
    if (partial === undefined || partial.stream !== id) {
      this.goAway(F.PROTOCOL_ERROR, 'stray CONTINUATION');
      return;
    }
    partial.parts.push(payload);
    partial.bytes += payload.length;
    if (partial.bytes > this.limits.headerBlockBytesMax) {
      this.goAway(F.PROTOCOL_ERROR, `header block above ${this.limits.headerBlockBytesMax} bytes`);
      return;
    }
    if (flags & F.END_HEADERS) {
      this.partial = undefined;
      this.onHeaderBlock(partial);
    }
  }

  /** A complete header block: decoded always (the HPACK table must follow every block), then a new stream or trailers. */
  private onHeaderBlock(partial: PartialBlock): void {
    if (partial.bytes > this.limits.headerBlockBytesMax) {
      this.goAway(F.PROTOCOL_ERROR, `header block above ${this.limits.headerBlockBytesMax} bytes`);
      return;
    }
    let fields: HeaderField[];
    try {
      fields = this.decoder.decode(
        partial.parts.length === 1 ? partial.parts[0]! : Buffer.concat(partial.parts),
      );
    } catch (error) {
      this.goAway(F.COMPRESSION_ERROR, (error as Error).message);
      return;
    }
    const id = partial.stream;
    const open = this.streams.get(id);
    if (open !== undefined) {
      // Trailers from the client (gRPC clients send none): they end its side.
      if (!partial.end) {
        open.reset(F.PROTOCOL_ERROR);
        return;
      }
      this.remoteEnd(open);
      open.events?.data(Buffer.alloc(0), true);
      return;
    }
    if (id <= this.lastStreamId || id % 2 === 0) {
      if (id % 2 === 0) {
        this.goAway(F.PROTOCOL_ERROR, `client stream id ${id} is even`);
        return;
      }
      this.write(F.rstStreamFrame(id, F.STREAM_CLOSED));
      return;
    }
    this.lastStreamId = id;
    if (this.streams.size >= this.limits.maxConcurrentStreams) {
      this.write(F.rstStreamFrame(id, F.REFUSED_STREAM));
      return;
    }
    const stream = new ServerStream(id, this.peerInitialWindow, this);
    this.streams.set(id, stream);
    if (partial.end) stream.remoteEnded = true;
    this.acceptor.open(stream, fields, partial.end);
  }

  private remoteEnd(stream: ServerStream): void {
    stream.remoteEnded = true;
    if (stream.localEnded) this.close(stream);
  }

  private onReset(id: number, payload: Buffer): void {
    if (id === 0 || payload.length !== 4) {
      this.goAway(F.PROTOCOL_ERROR, 'bad RST_STREAM');
      return;
    }
    const stream = this.streams.get(id);
    if (stream === undefined) return;
    this.close(stream);
    stream.lost();
  }

  private onSettings(flags: number, id: number, payload: Buffer): void {
    if (id !== 0 || payload.length % 6 !== 0) {
      this.goAway(F.PROTOCOL_ERROR, 'bad SETTINGS');
      return;
    }
    if (flags & F.ACK) return;
    for (let at = 0; at < payload.length; at += 6) {
      const setting = payload.readUInt16BE(at);
      const value = payload.readUInt32BE(at + 2);
      if (setting === F.SETTINGS_INITIAL_WINDOW_SIZE) {
        if (value > F.MAX_WINDOW) {
          this.goAway(F.FLOW_CONTROL_ERROR, 'initial window above 2^31-1');
          return;
        }
        const delta = value - this.peerInitialWindow;
        this.peerInitialWindow = value;
        for (const stream of this.streams.values()) stream.sendWindow += delta;
      } else if (setting === F.SETTINGS_MAX_FRAME_SIZE) {
        if (value < 16_384 || value > 16_777_215) {
          this.goAway(F.PROTOCOL_ERROR, 'bad max frame size');
          return;
        }
        this.maxFrame = value;
      }
    }
    this.write(F.frame(F.SETTINGS, F.ACK, 0));
    this.pumpBlocked();
  }

  private onPing(flags: number, id: number, payload: Buffer): void {
    if (id !== 0 || payload.length !== 8) {
      this.goAway(F.PROTOCOL_ERROR, 'bad PING');
      return;
    }
    if ((flags & F.ACK) === 0) this.write(F.frame(F.PING, F.ACK, 0, payload));
  }

  private onWindowUpdate(id: number, payload: Buffer): void {
    if (payload.length !== 4) {
      this.goAway(F.FRAME_SIZE_ERROR, 'bad WINDOW_UPDATE');
      return;
    }
    const increment = payload.readUInt32BE(0) & 0x7fffffff;
    if (id === 0) {
      if (increment === 0) {
        this.goAway(F.PROTOCOL_ERROR, 'window increment 0');
        return;
      }
      this.sendWindow += increment;
      if (this.sendWindow > F.MAX_WINDOW) {
        this.goAway(F.FLOW_CONTROL_ERROR, 'connection window above 2^31-1');
        return;
      }
      this.pumpBlocked();
      return;
    }
    const stream = this.streams.get(id);
    if (stream === undefined) return;
    if (increment === 0) {
      stream.reset(F.PROTOCOL_ERROR);
      return;
    }
    stream.sendWindow += increment;
    if (stream.sendWindow > F.MAX_WINDOW) {
      stream.reset(F.FLOW_CONTROL_ERROR);
      return;
    }
    stream.pump();
  }

  // --- sending and closing -------------------------------------------------------------------

  private pumpBlocked(): void {
    if (this.blocked.size === 0) return;
    const streams = [...this.blocked];
    this.blocked.clear();
    for (const stream of streams) {
      if (this.sendable() <= 0) {
        this.blocked.add(stream);
        continue;
      }
      stream.pump();
    }
  }

  private flushNow(): void {
    this.flushScheduled = false;
    if (this.out.length === 0) return;
    const out = this.out.length === 1 ? this.out[0]! : Buffer.concat(this.out, this.outBytes);
    this.out = [];
    this.outBytes = 0;
    if (this.socket.destroyed) return;
    // Streams blocked on the bytes buffered in this turn go on once the socket took them
    // (when it did not, 'drain' resumes them).
    if (this.socket.write(out) && this.blocked.size > 0) this.pumpBlocked();
  }

  /** Sends GOAWAY with `code`, then closes the connection; every open stream is lost. */
  private goAway(code: number, reason: string): void {
    if (this.closed) return;
    const payload = Buffer.allocUnsafe(8 + Buffer.byteLength(reason));
    payload.writeUInt32BE(this.lastStreamId, 0);
    payload.writeUInt32BE(code, 4);
    payload.write(reason, 8);
    this.write(F.frame(F.GOAWAY, 0, 0, payload));
    this.flushNow();
    this.lose();
    this.socket.end();
    // A client that never reads would keep the socket: it is destroyed shortly after.
    setTimeout(() => this.socket.destroy(), 1000).unref();
  }

  /** The connection is gone: every stream is lost. */
  private lose(): void {
    if (this.closed) return;
    this.closed = true;
    this.out = [];
    this.outBytes = 0;
    const streams = [...this.streams.values()];
    this.streams.clear();
    this.blocked.clear();
    for (const stream of streams) stream.lost();
  }
}

/** A padded frame's payload without its padding, or undefined when the padding is longer than the frame. */
function unpad(payload: Buffer): Buffer | undefined {
  if (payload.length === 0) return undefined;
  const padding = payload[0]!;
  if (padding >= payload.length) return undefined;
  return payload.subarray(1, payload.length - padding);
}
