/**
 * One HTTP/2 connection (one socket) of the benchmark's gRPC client: the connection preface
 * and SETTINGS, streams opened up to the peer's concurrency limit (requests beyond it wait),
 * received frames dispatched to their streams, deadlines, and every stream failed when the
 * connection goes away. Frame encoding is in ../http2/frames.ts, flow control in
 * http2-flow-control.ts; see grpc-connection.ts for why this client exists.
 */
import { connect, type Socket } from 'node:net';
import { status } from '@grpc/grpc-js';
import {
  ACK,
  CANCEL,
  CONTINUATION,
  DATA,
  DEFAULT_WINDOW,
  END_HEADERS,
  END_STREAM,
  type FrameHandler,
  frame,
  frameHeader,
  GOAWAY,
  HEADERS,
  MAX_WINDOW,
  PADDED,
  PING,
  PREFACE,
  PRIORITY,
  PUSH_PROMISE,
  REFUSED_STREAM,
  RST_STREAM,
  readFrames,
  rstStreamFrame,
  SETTINGS,
  SETTINGS_ENABLE_PUSH,
  SETTINGS_INITIAL_WINDOW_SIZE,
  SETTINGS_MAX_CONCURRENT_STREAMS,
  SETTINGS_MAX_FRAME_SIZE,
  settingsFrame,
  WINDOW_UPDATE,
  windowUpdateFrame,
} from '../http2/frames.js';
import { HpackDecoder } from '../http2/hpack.js';
import { GrpcCallError } from './grpc-status.js';
import { FlowControl } from './http2-flow-control.js';
import type { StreamHandler, StreamRef, StreamState, Waiting } from './http2-stream.js';

/** One HTTP/2 connection (one socket). */
export class Session {
  private readonly socket: Socket;
  private readonly decoder = new HpackDecoder();
  readonly streams = new Map<number, StreamState>();
  private readonly waiting: Waiting[] = [];
  private nextStreamId = 1;
  private peerMaxConcurrent = 100;
  private readonly flow = new FlowControl((buffer) => this.write(buffer));
  private input: Buffer = Buffer.alloc(0);
  private output: Buffer[] = [];
  private flushScheduled = false;
  /** A header block arriving in HEADERS + CONTINUATION frames. */
  private partial: { stream: number; end: boolean; fragments: Buffer[] } | undefined;
  /** No new streams: GOAWAY received, ids exhausted, or the socket is gone. */
  draining = false;
  closed = false;
  readonly ready: Promise<void>;
  private settled = false;
  private resolveReady!: () => void;
  private rejectReady!: (error: Error) => void;
  private readonly onFrame: FrameHandler = (type, flags, id, payload) => this.frame(type, flags, id, payload);
  private readonly isClosed = (): boolean => this.closed;

  constructor(readonly endpoint: string) {
    this.ready = new Promise((resolve, reject) => {
      this.resolveReady = resolve;
      this.rejectReady = reject;
    });
    this.ready.catch(() => undefined);
    const colon = endpoint.lastIndexOf(':');
    const host = endpoint.slice(0, colon).replace(/^\[|\]$/g, '');
    this.socket = connect({ host, port: Number(endpoint.slice(colon + 1)), noDelay: true });
    this.socket.on('data', (chunk: Buffer) => this.receive(chunk));
    this.socket.on('error', (error) => this.fail(error));
    this.socket.on('close', () => this.fail(new Error('connection closed')));
    const settings = settingsFrame([
      [SETTINGS_ENABLE_PUSH, 0],
      [SETTINGS_INITIAL_WINDOW_SIZE, MAX_WINDOW],
    ]);
    this.write(Buffer.concat([PREFACE, settings, windowUpdateFrame(0, MAX_WINDOW - DEFAULT_WINDOW)]));
  }

  /** Opens a stream: HEADERS (encoded `headerBlock`), then `body` as DATA; `end` ends our side. */
  open(
    headerBlock: Buffer,
    body: Buffer | undefined,
    end: boolean,
    handler: StreamHandler,
    deadline: number,
    ref: StreamRef = { id: 0, waiting: undefined },
  ): StreamRef {
    if (this.streams.size >= this.peerMaxConcurrent) {
      ref.waiting = { ref, headerBlock, body, end, handler, deadline };
      this.waiting.push(ref.waiting);
      return ref;
    }
    ref.waiting = undefined;
    const id = this.nextStreamId;
    ref.id = id;
    this.nextStreamId += 2;
    if (this.nextStreamId > MAX_WINDOW) this.draining = true;
    const stream: StreamState = {
      id,
      handler,
      deadline,
      sendWindow: this.flow.initialWindow,
      unsent: undefined,
      endAfterUnsent: false,
      received: 0,
    };
    this.streams.set(id, stream);
    const headersEnd = body === undefined && end ? END_STREAM : 0;
    const length = body?.length ?? 0;
    if (body !== undefined && this.flow.takeWhole(stream, length)) {
      // The common case: HEADERS and the whole body in one buffer.
      const out = Buffer.allocUnsafe(18 + headerBlock.length + length);
      frameHeader(out, 0, headerBlock.length, HEADERS, END_HEADERS, id);
      headerBlock.copy(out, 9);
      const at = 9 + headerBlock.length;
      frameHeader(out, at, length, DATA, end ? END_STREAM : 0, id);
      body.copy(out, at + 9);
      this.write(out);
    } else {
      const out = Buffer.allocUnsafe(9 + headerBlock.length);
      frameHeader(out, 0, headerBlock.length, HEADERS, END_HEADERS | headersEnd, id);
      headerBlock.copy(out, 9);
      this.write(out);
      if (body !== undefined) this.flow.send(stream, body, end);
    }
    return ref;
  }

  /** Sends `data` on a stream (within flow control; the rest waits for WINDOW_UPDATE). */
  sendOn(ref: StreamRef, data: Buffer, end: boolean): void {
    if (ref.waiting !== undefined) {
      ref.waiting.body = ref.waiting.body === undefined ? data : Buffer.concat([ref.waiting.body, data]);
      ref.waiting.end = end;
      return;
    }
    const stream = this.streams.get(ref.id);
    if (stream !== undefined) this.flow.send(stream, data, end);
  }

  /** Resets a stream (RST_STREAM CANCEL); its handler is not called again. */
  cancel(ref: StreamRef): void {
    const waiting = ref.waiting;
    if (waiting !== undefined) {
      this.waiting.splice(this.waiting.indexOf(waiting), 1);
      ref.waiting = undefined;
      return;
    }
    this.reset(ref.id);
  }

  private reset(id: number): void {
    if (!this.streams.delete(id)) return;
    this.write(rstStreamFrame(id, CANCEL));
    this.startWaiting();
  }

  /** Fails the streams past their deadline. */
  expire(now: number): void {
    for (const stream of this.streams.values()) {
      if (stream.deadline <= now) {
        this.reset(stream.id);
        stream.handler.closed(new GrpcCallError(status.DEADLINE_EXCEEDED, 'deadline exceeded'));
      }
    }
    for (let i = this.waiting.length - 1; i >= 0; i--) {
      const waiting = this.waiting[i]!;
      if (waiting.deadline <= now) {
        this.waiting.splice(i, 1);
        waiting.handler.closed(new GrpcCallError(status.DEADLINE_EXCEEDED, 'deadline exceeded'));
      }
    }
  }

  private write(buffer: Buffer): void {
    if (this.closed) return;
    this.output.push(buffer);
    if (!this.flushScheduled) {
      this.flushScheduled = true;
      process.nextTick(() => this.flush());
    }
  }

  private flush(): void {
    this.flushScheduled = false;
    const output = this.output;
    this.output = [];
    if (this.closed || output.length === 0) return;
    this.socket.write(output.length === 1 ? output[0]! : Buffer.concat(output));
  }

  private receive(chunk: Buffer): void {
    const input = this.input.length === 0 ? chunk : Buffer.concat([this.input, chunk]);
    let rest: Buffer | undefined;
    try {
      rest = readFrames(input, this.onFrame, this.isClosed);
    } catch (error) {
      this.destroy(error as Error);
      return;
    }
    if (rest === undefined) return;
    this.input = rest.length === 0 ? Buffer.alloc(0) : rest;
  }

  private frame(type: number, flags: number, id: number, payload: Buffer): void {
    if (this.partial !== undefined && type !== CONTINUATION) {
      throw new Error('protocol error: header block interrupted');
    }
    switch (type) {
      case DATA:
        this.data(flags, id, payload);
        return;
      case HEADERS:
        this.headers(flags, id, payload);
        return;
      case CONTINUATION:
        this.continuation(flags, id, payload);
        return;
      case RST_STREAM:
        this.streamReset(id, payload.readUInt32BE(0));
        return;
      case SETTINGS:
        if (!(flags & ACK)) this.settings(payload);
        return;
      case PING:
        if (!(flags & ACK)) this.write(frame(PING, ACK, 0, payload));
        return;
      case GOAWAY:
        this.goAway(payload.readUInt32BE(0) & 0x7fffffff, payload.readUInt32BE(4));
        return;
      case WINDOW_UPDATE:
        this.windowUpdate(id, payload.readUInt32BE(0) & 0x7fffffff);
        return;
      case PUSH_PROMISE:
        throw new Error('protocol error: PUSH_PROMISE although push is disabled');
      default:
        return; // PRIORITY and unknown frame types are ignored
    }
  }

  private data(flags: number, id: number, payload: Buffer): void {
    const stream = this.streams.get(id);
    this.flow.received(stream, payload.length);
    if (stream === undefined) return;
    const data = flags & PADDED ? payload.subarray(1, payload.length - payload[0]!) : payload;
    if (data.length > 0) stream.handler.data(data);
    if (flags & END_STREAM) this.finish(id, undefined);
  }

  private headers(flags: number, id: number, payload: Buffer): void {
    let fragment = payload;
    if (flags & PADDED) fragment = fragment.subarray(1, fragment.length - payload[0]!);
    if (flags & PRIORITY) fragment = fragment.subarray(5);
    this.partial = { stream: id, end: (flags & END_STREAM) !== 0, fragments: [fragment] };
    if (flags & END_HEADERS) this.headerBlockDone();
  }

  private continuation(flags: number, id: number, payload: Buffer): void {
    if (this.partial === undefined || this.partial.stream !== id)
      throw new Error('protocol error: stray CONTINUATION');
    this.partial.fragments.push(payload);
    if (flags & END_HEADERS) this.headerBlockDone();
  }

  private headerBlockDone(): void {
    const { stream: id, end, fragments } = this.partial!;
    this.partial = undefined;
    // Every block is decoded, even of streams no longer wanted: the decoder's table depends on it.
    const fields = this.decoder.decode(fragments.length === 1 ? fragments[0]! : Buffer.concat(fragments));
    const stream = this.streams.get(id);
    if (stream === undefined) return;
    stream.handler.headers(fields, end);
    if (end) this.finish(id, undefined);
  }

  /** RST_STREAM from the server, with HTTP/2 error `code`. */
  private streamReset(id: number, code: number): void {
    this.finish(
      id,
      new GrpcCallError(
        code === REFUSED_STREAM ? status.UNAVAILABLE : code === CANCEL ? status.CANCELLED : status.INTERNAL,
        `stream reset by the server (HTTP/2 error ${code})`,
      ),
    );
  }

  /** GOAWAY: streams above `lastId` fail, and so do the waiting requests; the rest may finish. */
  private goAway(lastId: number, code: number): void {
    this.draining = true;
    for (const stream of [...this.streams.values()]) {
      if (stream.id > lastId) {
        this.finish(
          stream.id,
          new GrpcCallError(status.UNAVAILABLE, `connection going away (HTTP/2 error ${code})`),
        );
      }
    }
    this.failWaiting(new GrpcCallError(status.UNAVAILABLE, 'connection going away'));
    if (this.streams.size === 0) this.destroy(undefined);
  }

  private windowUpdate(id: number, increment: number): void {
    if (id === 0) {
      this.flow.connectionWindowUpdate(increment);
    } else {
      const stream = this.streams.get(id);
      if (stream !== undefined) this.flow.streamWindowUpdate(stream, increment);
    }
  }

  private settings(payload: Buffer): void {
    for (let at = 0; at + 6 <= payload.length; at += 6) {
      const setting = payload.readUInt16BE(at);
      const value = payload.readUInt32BE(at + 2);
      if (setting === SETTINGS_MAX_CONCURRENT_STREAMS) this.peerMaxConcurrent = value;
      else if (setting === SETTINGS_MAX_FRAME_SIZE) this.flow.maxFrame = value;
      else if (setting === SETTINGS_INITIAL_WINDOW_SIZE) {
        this.flow.initialWindowChanged(value, this.streams.values());
      }
    }
    this.write(frame(SETTINGS, ACK, 0));
    if (!this.settled) {
      this.settled = true;
      this.resolveReady();
    }
    this.startWaiting();
  }

  /** Ends stream `id` and tells its handler. */
  private finish(id: number, error: Error | undefined): void {
    const stream = this.streams.get(id);
    if (stream === undefined) return;
    this.streams.delete(id);
    this.flow.forget(stream);
    stream.handler.closed(error);
    this.startWaiting();
    if (this.draining && this.streams.size === 0 && !this.closed) this.destroy(undefined);
  }

  private startWaiting(): void {
    while (this.waiting.length > 0 && this.streams.size < this.peerMaxConcurrent && !this.draining) {
      const w = this.waiting.shift()!;
      this.open(w.headerBlock, w.body, w.end, w.handler, w.deadline, w.ref);
    }
  }

  private failWaiting(error: Error): void {
    for (const w of this.waiting.splice(0)) w.handler.closed(error);
  }

  /** The socket failed or closed: every stream fails. */
  private fail(error: Error): void {
    if (this.closed) return;
    this.closed = true;
    this.draining = true;
    if (!this.settled) {
      this.settled = true;
      this.rejectReady(error);
    }
    const failure = new GrpcCallError(
      status.UNAVAILABLE,
      `connection to ${this.endpoint} lost: ${error.message}`,
    );
    for (const stream of [...this.streams.values()]) this.finish(stream.id, failure);
    this.failWaiting(failure);
    this.socket.destroy();
  }

  /** Closes the connection (`error`: why, for the streams still open). */
  destroy(error: Error | undefined): void {
    if (!this.closed && error === undefined) this.flush();
    this.fail(error ?? new Error('closed by the client'));
  }
}
