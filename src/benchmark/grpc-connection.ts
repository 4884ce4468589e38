/**
 * A lean gRPC client connection: HTTP/2 (RFC 9113) written directly on a TCP socket, for
 * the benchmark client, whose own CPU cost must stay well below the servers' it measures on
 * the same machine.
 *
 * Why not `@grpc/grpc-js` or `node:http2`: measured against etcd on this 2-core machine
 * (100 clients over 10 connections, 256-byte puts, the machine under load), grpc-js costs
 * about 350 µs of client CPU per call and node:http2 about 140 µs (Node's per-stream
 * objects, header conversion and async-hooks bookkeeping), where etcd's own Go client costs
 * about 90 µs. This connection costs about half the Go client's (25 µs against 45 µs in a
 * quieter moment): a request is one buffer (HEADERS with a header block encoded once per
 * path, then DATA) and all requests of one tick go out in one write.
 *
 * What it implements: the connection preface and SETTINGS (it advertises a 2^31-1 window and
 * no server push), HEADERS/CONTINUATION with a full HPACK decoder, DATA with flow control
 * both ways (frames split to the peer's window and frame size; WINDOW_UPDATE sent as
 * received data is consumed), the peer's stream concurrency limit (requests beyond it wait),
 * RST_STREAM, PING (answered), GOAWAY (streams above the last id fail; new requests go to a
 * new connection). Plain gRPC over cleartext HTTP/2: no TLS, no compression.
 */
import { connect, type Socket } from 'node:net';
import { status } from '@grpc/grpc-js';
import { encodeHeaders, type HeaderField, HpackDecoder } from './hpack.js';

/** A call that ended with a gRPC status other than OK, or never got one. */
export class GrpcCallError extends Error {
  override readonly name = 'GrpcCallError';
  constructor(
    /** The gRPC status code (`status.UNAVAILABLE` when the call got no status at all). */
    readonly code: number,
    readonly details: string,
  ) {
    super(`${statusName(code)}: ${details}`);
  }
}

/** The name of gRPC status `code` (`UNAVAILABLE`). */
export function statusName(code: number): string {
  return (status as unknown as Record<number, string | undefined>)[code] ?? `code ${code}`;
}

/** A message with gRPC's 5-byte prefix (not compressed, 32-bit big-endian length). */
export function grpcFrame(message: Uint8Array): Buffer {
  const frame = Buffer.allocUnsafe(5 + message.length);
  frame[0] = 0;
  frame.writeUInt32BE(message.length, 1);
  frame.set(message, 5);
  return frame;
}

/** Splits gRPC-framed bytes as they arrive into whole messages. */
export class MessageReader {
  private buffered: Buffer = Buffer.alloc(0);

  /** Adds `chunk`; returns the messages it completes. */
  push(chunk: Buffer): Buffer[] {
    this.buffered = this.buffered.length === 0 ? chunk : Buffer.concat([this.buffered, chunk]);
    const messages: Buffer[] = [];
    while (this.buffered.length >= 5) {
      const length = this.buffered.readUInt32BE(1);
      if (this.buffered.length < 5 + length) break;
      if (this.buffered[0] !== 0)
        throw new GrpcCallError(status.INTERNAL, 'compressed messages are not supported');
      messages.push(this.buffered.subarray(5, 5 + length));
      this.buffered = this.buffered.subarray(5 + length);
    }
    return messages;
  }
}

/** The gRPC outcome a header block carries: OK, an error, or nothing yet. */
function statusOf(fields: readonly HeaderField[]): GrpcCallError | 'ok' | undefined {
  let code: string | undefined;
  let message = '';
  for (const [name, value] of fields) {
    if (name === 'grpc-status') code = value;
    else if (name === 'grpc-message') message = value;
    else if (name === ':status' && value !== '200') {
      return new GrpcCallError(status.UNKNOWN, `HTTP status ${value}`);
    }
  }
  if (code === undefined) return undefined;
  if (code === '0') return 'ok';
  let details = message;
  try {
    details = decodeURIComponent(message);
  } catch {
    // not percent-encoded after all: keep it as sent
  }
  return new GrpcCallError(Number(code), details);
}

// Frame types, flags, settings and error codes of RFC 9113.
const DATA = 0x0;
const HEADERS = 0x1;
const RST_STREAM = 0x3;
const SETTINGS = 0x4;
const PUSH_PROMISE = 0x5;
const PING = 0x6;
const GOAWAY = 0x7;
const WINDOW_UPDATE = 0x8;
const CONTINUATION = 0x9;
const END_STREAM = 0x1;
const ACK = 0x1;
const END_HEADERS = 0x4;
const PADDED = 0x8;
const PRIORITY = 0x20;
const SETTINGS_ENABLE_PUSH = 0x2;
const SETTINGS_MAX_CONCURRENT_STREAMS = 0x3;
const SETTINGS_INITIAL_WINDOW_SIZE = 0x4;
const SETTINGS_MAX_FRAME_SIZE = 0x5;
const CANCEL = 0x8;
const REFUSED_STREAM = 0x7;
const MAX_WINDOW = 2 ** 31 - 1;
const DEFAULT_WINDOW = 65_535;
/** Received bytes after which a WINDOW_UPDATE gives them back. */
const WINDOW_REFILL = 2 ** 30;
const PREFACE = Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n', 'latin1');

function frameHeader(
  target: Buffer,
  at: number,
  length: number,
  type: number,
  flags: number,
  stream: number,
): void {
  target[at] = (length >>> 16) & 0xff;
  target[at + 1] = (length >>> 8) & 0xff;
  target[at + 2] = length & 0xff;
  target[at + 3] = type;
  target[at + 4] = flags;
  target.writeUInt32BE(stream, at + 5);
}

function frame(type: number, flags: number, stream: number, payload: Uint8Array = Buffer.alloc(0)): Buffer {
  const out = Buffer.allocUnsafe(9 + payload.length);
  frameHeader(out, 0, payload.length, type, flags, stream);
  out.set(payload, 9);
  return out;
}

/** What a stream's owner is told. */
interface StreamHandler {
  /** A complete header block; `end`: it ended the stream (trailers, or a trailers-only response). */
  headers(fields: HeaderField[], end: boolean): void;
  data(payload: Buffer): void;
  /** The stream is over: `error` undefined if the server ended it (END_STREAM). Called once. */
  closed(error: Error | undefined): void;
}

interface StreamState {
  readonly id: number;
  readonly handler: StreamHandler;
  /** When the call fails with DEADLINE_EXCEEDED (ms since epoch; Infinity: never). */
  readonly deadline: number;
  sendWindow: number;
  /** DATA still to send (flow control), and whether the last of it ends the stream. */
  unsent: Buffer | undefined;
  endAfterUnsent: boolean;
  received: number;
}

/** A request waiting for the peer's concurrency limit (what its owner writes meanwhile is added to `body`). */
interface Waiting {
  readonly ref: StreamRef;
  readonly headerBlock: Buffer;
  body: Buffer | undefined;
  end: boolean;
  readonly handler: StreamHandler;
  readonly deadline: number;
}

/** A stream as its owner holds it: `id` 0 while it waits for the peer's concurrency limit. */
interface StreamRef {
  id: number;
  waiting: Waiting | undefined;
}

/** One HTTP/2 connection (one socket). */
class Session {
  private readonly socket: Socket;
  private readonly decoder = new HpackDecoder();
  readonly streams = new Map<number, StreamState>();
  private readonly waiting: Waiting[] = [];
  private nextStreamId = 1;
  private peerMaxConcurrent = 100;
  private peerInitialWindow = DEFAULT_WINDOW;
  private peerMaxFrame = 16_384;
  private sendWindow = DEFAULT_WINDOW;
  private receivedOnConnection = 0;
  private readonly blocked = new Set<StreamState>();
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
    const settings = Buffer.alloc(12);
    settings.writeUInt16BE(SETTINGS_ENABLE_PUSH, 0);
    settings.writeUInt32BE(0, 2);
    settings.writeUInt16BE(SETTINGS_INITIAL_WINDOW_SIZE, 6);
    settings.writeUInt32BE(MAX_WINDOW, 8);
    const increment = Buffer.alloc(4);
    increment.writeUInt32BE(MAX_WINDOW - DEFAULT_WINDOW, 0);
    this.write(
      Buffer.concat([PREFACE, frame(SETTINGS, 0, 0, settings), frame(WINDOW_UPDATE, 0, 0, increment)]),
    );
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
      sendWindow: this.peerInitialWindow,
      unsent: undefined,
      endAfterUnsent: false,
      received: 0,
    };
    this.streams.set(id, stream);
    const headersEnd = body === undefined && end ? END_STREAM : 0;
    const length = body?.length ?? 0;
    if (
      body !== undefined &&
      length <= this.peerMaxFrame &&
      length <= stream.sendWindow &&
      length <= this.sendWindow
    ) {
      // The common case: HEADERS and the whole body in one buffer.
      const out = Buffer.allocUnsafe(18 + headerBlock.length + length);
      frameHeader(out, 0, headerBlock.length, HEADERS, END_HEADERS, id);
      headerBlock.copy(out, 9);
      const at = 9 + headerBlock.length;
      frameHeader(out, at, length, DATA, end ? END_STREAM : 0, id);
      body.copy(out, at + 9);
      stream.sendWindow -= length;
      this.sendWindow -= length;
      this.write(out);
    } else {
      const out = Buffer.allocUnsafe(9 + headerBlock.length);
      frameHeader(out, 0, headerBlock.length, HEADERS, END_HEADERS | headersEnd, id);
      headerBlock.copy(out, 9);
      this.write(out);
      if (body !== undefined) this.send(stream, body, end);
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
    if (stream !== undefined) this.send(stream, data, end);
  }

  private send(stream: StreamState, data: Buffer, end: boolean): void {
    stream.unsent = stream.unsent === undefined ? data : Buffer.concat([stream.unsent, data]);
    stream.endAfterUnsent = end;
    this.pump(stream);
  }

  private pump(stream: StreamState): void {
    let unsent = stream.unsent;
    while (unsent !== undefined) {
      const size = Math.min(unsent.length, this.peerMaxFrame, stream.sendWindow, this.sendWindow);
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
    const code = Buffer.alloc(4);
    code.writeUInt32BE(CANCEL, 0);
    this.write(frame(RST_STREAM, 0, id, code));
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
    let input = this.input.length === 0 ? chunk : Buffer.concat([this.input, chunk]);
    try {
      while (input.length >= 9) {
        const length = (input[0]! << 16) | (input[1]! << 8) | input[2]!;
        if (input.length < 9 + length) break;
        const type = input[3]!;
        const flags = input[4]!;
        const stream = input.readUInt32BE(5) & 0x7fffffff;
        const payload = input.subarray(9, 9 + length);
        input = input.subarray(9 + length);
        this.frame(type, flags, stream, payload);
        if (this.closed) return;
      }
    } catch (error) {
      this.destroy(error as Error);
      return;
    }
    this.input = input.length === 0 ? Buffer.alloc(0) : input;
  }

  private frame(type: number, flags: number, id: number, payload: Buffer): void {
    if (this.partial !== undefined && type !== CONTINUATION) {
      throw new Error('protocol error: header block interrupted');
    }
    switch (type) {
      case DATA: {
        this.received(id, payload.length);
        const stream = this.streams.get(id);
        if (stream === undefined) return;
        const data = flags & PADDED ? payload.subarray(1, payload.length - payload[0]!) : payload;
        if (data.length > 0) stream.handler.data(data);
        if (flags & END_STREAM) this.finish(id, undefined);
        return;
      }
      case HEADERS: {
        let fragment = payload;
        if (flags & PADDED) fragment = fragment.subarray(1, fragment.length - payload[0]!);
        if (flags & PRIORITY) fragment = fragment.subarray(5);
        this.partial = { stream: id, end: (flags & END_STREAM) !== 0, fragments: [fragment] };
        if (flags & END_HEADERS) this.headerBlockDone();
        return;
      }
      case CONTINUATION: {
        if (this.partial === undefined || this.partial.stream !== id)
          throw new Error('protocol error: stray CONTINUATION');
        this.partial.fragments.push(payload);
        if (flags & END_HEADERS) this.headerBlockDone();
        return;
      }
      case RST_STREAM: {
        const code = payload.readUInt32BE(0);
        this.finish(
          id,
          new GrpcCallError(
            code === REFUSED_STREAM
              ? status.UNAVAILABLE
              : code === CANCEL
                ? status.CANCELLED
                : status.INTERNAL,
            `stream reset by the server (HTTP/2 error ${code})`,
          ),
        );
        return;
      }
      case SETTINGS:
        if (!(flags & ACK)) this.settings(payload);
        return;
      case PING:
        if (!(flags & ACK)) this.write(frame(PING, ACK, 0, payload));
        return;
      case GOAWAY: {
        const lastId = payload.readUInt32BE(0) & 0x7fffffff;
        const code = payload.readUInt32BE(4);
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
        return;
      }
      case WINDOW_UPDATE: {
        const increment = payload.readUInt32BE(0) & 0x7fffffff;
        if (id === 0) {
          this.sendWindow += increment;
          for (const stream of [...this.blocked]) this.pump(stream);
        } else {
          const stream = this.streams.get(id);
          if (stream !== undefined) {
            stream.sendWindow += increment;
            if (stream.unsent !== undefined) this.pump(stream);
          }
        }
        return;
      }
      case PUSH_PROMISE:
        throw new Error('protocol error: PUSH_PROMISE although push is disabled');
      default:
        return; // PRIORITY and unknown frame types are ignored
    }
  }

  /** Gives received DATA bytes back to the peer's windows once a large amount has accumulated. */
  private received(id: number, length: number): void {
    this.receivedOnConnection += length;
    if (this.receivedOnConnection >= WINDOW_REFILL) {
      this.windowUpdate(0, this.receivedOnConnection);
      this.receivedOnConnection = 0;
    }
    const stream = this.streams.get(id);
    if (stream !== undefined) {
      stream.received += length;
      if (stream.received >= WINDOW_REFILL) {
        this.windowUpdate(id, stream.received);
        stream.received = 0;
      }
    }
  }

  private windowUpdate(id: number, increment: number): void {
    const payload = Buffer.alloc(4);
    payload.writeUInt32BE(increment, 0);
    this.write(frame(WINDOW_UPDATE, 0, id, payload));
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

  private settings(payload: Buffer): void {
    for (let at = 0; at + 6 <= payload.length; at += 6) {
      const setting = payload.readUInt16BE(at);
      const value = payload.readUInt32BE(at + 2);
      if (setting === SETTINGS_MAX_CONCURRENT_STREAMS) this.peerMaxConcurrent = value;
      else if (setting === SETTINGS_MAX_FRAME_SIZE) this.peerMaxFrame = value;
      else if (setting === SETTINGS_INITIAL_WINDOW_SIZE) {
        const delta = value - this.peerInitialWindow;
        this.peerInitialWindow = value;
        for (const stream of this.streams.values()) stream.sendWindow += delta;
        for (const stream of [...this.blocked]) this.pump(stream);
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
    this.blocked.delete(stream);
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

/** Fields of every request's headers but the path. */
function requestFields(path: string, authority: string): HeaderField[] {
  return [
    [':method', 'POST'],
    [':scheme', 'http'],
    [':path', path],
    [':authority', authority],
    ['content-type', 'application/grpc'],
    ['te', 'trailers'],
    ['user-agent', 'flotilla-bench'],
  ];
}

/** A unary call's view of its stream. */
class UnaryCall implements StreamHandler {
  private outcome: GrpcCallError | 'ok' | undefined;
  private readonly chunks: Buffer[] = [];
  constructor(
    private readonly resolve: (response: Buffer) => void,
    private readonly reject: (error: Error) => void,
  ) {}

  headers(fields: HeaderField[]): void {
    this.outcome ??= statusOf(fields);
  }

  data(payload: Buffer): void {
    this.chunks.push(payload);
  }

  closed(error: Error | undefined): void {
    if (error !== undefined) this.reject(error);
    else if (this.outcome === 'ok') {
      const body = this.chunks.length === 1 ? this.chunks[0]! : Buffer.concat(this.chunks);
      this.resolve(body.subarray(5));
    } else
      this.reject(this.outcome ?? new GrpcCallError(status.INTERNAL, 'stream ended without a gRPC status'));
  }
}

/** A bidirectional stream of one connection (etcd's Watch). */
export interface BidiStream {
  write(message: Uint8Array): void;
  /** Resets the stream; its `onEnd` is not called. */
  cancel(): void;
}

/**
 * One gRPC connection to one endpoint: one HTTP/2 connection at a time, replaced by a new
 * one (as a gRPC channel would reconnect) once it is lost or told to go away.
 */
export class Connection {
  private session: Session;
  /** Earlier sessions still finishing their streams (after GOAWAY). */
  private retired: Session[] = [];
  private readonly headerBlocks = new Map<string, Buffer>();
  private readonly sweeper: NodeJS.Timeout;

  private constructor(
    readonly index: number,
    readonly endpoint: string,
  ) {
    this.session = new Session(endpoint);
    this.sweeper = setInterval(() => this.expire(), 100);
    this.sweeper.unref();
  }

  /** Connects to `endpoint` (`host:port`); rejects if the server's SETTINGS do not arrive within `timeoutMs`. */
  static async open(index: number, endpoint: string, timeoutMs: number): Promise<Connection> {
    const connection = new Connection(index, endpoint);
    let timer: NodeJS.Timeout | undefined;
    try {
      await Promise.race([
        connection.session.ready,
        new Promise((_, reject) => {
          timer = setTimeout(
            () => reject(new Error(`no HTTP/2 connection within ${timeoutMs} ms`)),
            timeoutMs,
          );
        }),
      ]);
    } catch (error) {
      connection.close();
      throw new Error(`cannot connect to ${endpoint}: ${(error as Error).message}`);
    } finally {
      clearTimeout(timer);
    }
    return connection;
  }

  private live(): Session {
    if (this.session.draining) {
      if (!this.session.closed) this.retired.push(this.session);
      this.session = new Session(this.endpoint);
    }
    return this.session;
  }

  private expire(): void {
    const now = Date.now();
    this.session.expire(now);
    if (this.retired.length > 0) {
      this.retired = this.retired.filter((s) => !s.closed);
      for (const session of this.retired) session.expire(now);
    }
  }

  private headerBlock(path: string): Buffer {
    let block = this.headerBlocks.get(path);
    if (block === undefined) {
      block = encodeHeaders(requestFields(path, this.endpoint));
      this.headerBlocks.set(path, block);
    }
    return block;
  }

  /**
   * A unary call: sends the serialized `message` to `path`; resolves with the response
   * message (undecoded), or rejects with a {@link GrpcCallError} (DEADLINE_EXCEEDED after `timeoutMs`).
   */
  unary(path: string, message: Uint8Array, timeoutMs: number): Promise<Buffer> {
    return new Promise((resolve, reject) => {
      this.live().open(
        this.headerBlock(path),
        grpcFrame(message),
        true,
        new UnaryCall(resolve, reject),
        Date.now() + timeoutMs,
      );
    });
  }

  /**
   * Opens a bidirectional stream to `path`: `onMessage` gets each response message
   * (undecoded); `onEnd` how it ended (undefined: status OK).
   */
  bidi(
    path: string,
    onMessage: (message: Buffer) => void,
    onEnd: (error: Error | undefined) => void,
  ): BidiStream {
    const session = this.live();
    const reader = new MessageReader();
    let outcome: GrpcCallError | 'ok' | undefined;
    let ref: StreamRef | undefined;
    const handler: StreamHandler = {
      headers: (fields) => {
        outcome ??= statusOf(fields);
      },
      data: (payload) => {
        try {
          for (const message of reader.push(payload)) onMessage(message);
        } catch (error) {
          if (ref !== undefined) session.cancel(ref);
          onEnd(error as Error);
        }
      },
      closed: (error) => {
        if (error !== undefined) onEnd(error);
        else if (outcome === 'ok') onEnd(undefined);
        else onEnd(outcome ?? new GrpcCallError(status.INTERNAL, 'stream ended without a gRPC status'));
      },
    };
    const opened = session.open(this.headerBlock(path), undefined, false, handler, Number.POSITIVE_INFINITY);
    ref = opened;
    return {
      write: (message) => session.sendOn(opened, grpcFrame(message), false),
      cancel: () => session.cancel(opened),
    };
  }

  /** Closes the connection (calls in flight fail with UNAVAILABLE). */
  close(): void {
    clearInterval(this.sweeper);
    for (const session of this.retired) session.destroy(undefined);
    this.session.destroy(undefined);
  }
}
