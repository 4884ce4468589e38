/**
 * gRPC calls on server streams: a unary exchange (one request, one response, the hot path:
 * plain objects, one write), and a streaming call for server-streaming and bidirectional
 * methods (a Node `Duplex` in object mode, the shape grpc-js gives handlers: `write` with
 * back-pressure, `end`, `'data'`, `'cancelled'`, async iteration, and an `'error'` emitted on
 * it ends the call with that error's status).
 */
import { Duplex } from 'node:stream';
import { status } from '@grpc/grpc-js';
import { NO_ERROR } from '../http2/frames.js';
import {
  type CallMetadata,
  framed,
  OK_TRAILERS,
  RESPONSE_HEADERS,
  type StatusError,
  statusOf,
  statusTrailers,
  trailersOnly,
} from './status.js';
import { FRAME_ROOM, type ServerStream, type StreamEvents } from './stream.js';

/** How a method's messages are encoded (the proto loader's method definition has these). */
export interface MessageCodec<Req, Res> {
  requestDeserialize(bytes: Buffer): Req;
  responseSerialize(response: Res): Buffer;
}

/** What every call carries: its metadata, its deadline, and whether the client went away. */
export interface CallBase {
  readonly metadata: CallMetadata;
  /** When the call's `grpc-timeout` expires (ms since the epoch), or Infinity. */
  readonly deadline: number;
  readonly cancelled: boolean;
}

/** A unary call as its handler sees it. */
export interface UnaryCall<Req> extends CallBase {
  readonly request: Req;
}

/** Answers a unary call: an error (its status ends the call) or the response. */
export type UnaryCallback<Res> = (error: StatusError | null, response?: Res) => void;

/** Calls the server watches for `grpc-timeout`. */
export interface Expiring {
  readonly deadline: number;
  expire(): void;
}

/** What a call needs of the server. */
export interface CallHost {
  /** The largest request message accepted, in bytes. */
  readonly receiveBytesMax: number;
  watch(call: Expiring): void;
  unwatch(call: Expiring): void;
}

/** Splits a stream's DATA into gRPC messages, refusing a compressed one or one above the limit. */
export class MessageReader {
  private parts: Buffer[] = [];
  private bytes = 0;

  constructor(private readonly max: number) {}

  /** Adds `chunk`; returns the messages it completes. Throws a status error for a message it refuses. */
  push(chunk: Buffer): Buffer[] {
    const messages: Buffer[] = [];
    if (chunk.length > 0) {
      this.parts.push(chunk);
      this.bytes += chunk.length;
    }
    while (this.bytes >= 5) {
      if (this.parts[0]!.length < 5) this.parts = [Buffer.concat(this.parts, this.bytes)];
      const head = this.parts[0]!;
      if (head[0] !== 0) throw callError(status.UNIMPLEMENTED, 'grpc: compressed messages are not supported');
      const length = head.readUInt32BE(1);
      if (length > this.max) {
        throw callError(
          status.RESOURCE_EXHAUSTED,
          `grpc: received message larger than max (${length} vs. ${this.max})`,
        );
      }
      if (this.bytes < 5 + length) break;
      const whole = this.parts.length === 1 ? head : Buffer.concat(this.parts, this.bytes);
      messages.push(whole.subarray(5, 5 + length));
      const rest = whole.subarray(5 + length);
      this.parts = rest.length > 0 ? [rest] : [];
      this.bytes = rest.length;
    }
    return messages;
  }

  /** Bytes of an incomplete message held. */
  get pending(): number {
    return this.bytes;
  }
}

/** A status error. */
export function callError(code: number, message: string): StatusError & Error {
  return Object.assign(new Error(message), { code, details: message });
}

/** One unary call: collects the request, runs the handler once, sends its answer in one write. */
export class UnaryExchange<Req, Res> implements StreamEvents, UnaryCall<Req>, Expiring {
  cancelled = false;
  request!: Req;
  private readonly reader: MessageReader;
  private message: Buffer | undefined;
  private done = false;

  constructor(
    private readonly stream: ServerStream,
    readonly metadata: CallMetadata,
    readonly deadline: number,
    private readonly codec: MessageCodec<Req, Res>,
    private readonly handler: (call: UnaryCall<Req>, callback: UnaryCallback<Res>) => void,
    private readonly host: CallHost,
  ) {
    this.reader = new MessageReader(host.receiveBytesMax);
    if (deadline !== Number.POSITIVE_INFINITY) host.watch(this);
  }

  data(payload: Buffer, end: boolean): void {
    if (this.done) return;
    try {
      for (const message of this.reader.push(payload)) {
        if (this.message !== undefined)
          throw callError(status.UNIMPLEMENTED, 'grpc: more than one request message');
        this.message = message;
      }
      if (!end) return;
      if (this.message === undefined || this.reader.pending > 0) {
        throw callError(status.UNIMPLEMENTED, 'grpc: no request message');
      }
      this.request = this.codec.requestDeserialize(this.message);
    } catch (error) {
      this.answer(error as StatusError, undefined);
      return;
    }
    this.message = undefined;
    try {
      this.handler(this, (error, response) => this.answer(error, response));
    } catch {
      this.answer(callError(status.UNKNOWN, 'grpc: the method handler failed'), undefined);
    }
  }

  reset(): void {
    this.cancelled = true;
    this.finish();
  }

  drained(): void {}

  expire(): void {
    if (this.done) return;
    this.answer(callError(status.DEADLINE_EXCEEDED, 'Deadline exceeded'), undefined);
    this.cancelled = true;
  }

  private answer(error: StatusError | null, response: Res | undefined): void {
    if (this.done) return;
    this.finish();
    if (error === null) {
      let payload: Buffer;
      try {
        payload = framed(this.codec.responseSerialize(response as Res));
      } catch (serializeError) {
        this.fail(
          callError(
            status.INTERNAL,
            `grpc: error serializing the response: ${(serializeError as Error).message}`,
          ),
        );
        return;
      }
      this.stream.unary(RESPONSE_HEADERS, payload, OK_TRAILERS);
    } else {
      this.fail(error);
    }
  }

  private fail(error: StatusError): void {
    const { code, message } = statusOf(error);
    this.stream.refuse(trailersOnly(code, message));
  }

  private finish(): void {
    if (this.done) return;
    this.done = true;
    if (this.deadline !== Number.POSITIVE_INFINITY) this.host.unwatch(this);
  }
}

/** Queued response bytes beyond which a streaming call's `write` asks the writer to wait for `'drain'`. */
const STREAM_BYTES_HIGH = 256 * 1024;

/**
 * A server-streaming or bidirectional call. Requests arrive as `'data'` (object mode); the
 * handler writes responses, ends with `end()` (status OK), or with an error by emitting
 * `'error'` or calling `destroy(error)`; `'cancelled'` says the client went away first.
 */
export class StreamingCall<Req, Res> extends Duplex implements StreamEvents, CallBase, Expiring {
  cancelled = false;
  /** The request of a server-streaming call (bidirectional calls read theirs as `'data'`). */
  request: Req | undefined;
  private readonly reader: MessageReader;
  private headersSent = false;
  private finished = false;
  private waiting: (() => void) | undefined;
  /** `sendFramed` found the client behind: `'drain'` is owed once the stream drains. */
  private drainWanted = false;
  /** Framed responses held since {@link holdFramed}; undefined when not holding. */
  private heldFramed: Buffer[] | undefined;
  /** Their bytes, without their frame rooms. */
  private heldBytes = 0;
  /** Server-streaming: runs the handler once the one request is in. */
  private start: (() => void) | undefined;

  constructor(
    private readonly stream: ServerStream,
    readonly metadata: CallMetadata,
    readonly deadline: number,
    private readonly codec: MessageCodec<Req, Res>,
    private readonly host: CallHost,
  ) {
    super({ objectMode: true, allowHalfOpen: true });
    this.reader = new MessageReader(host.receiveBytesMax);
    // grpc-js semantics: an 'error' emitted on a server call ends it with that error's status.
    this.on('error', (error: unknown) => this.finishWith(error));
    if (deadline !== Number.POSITIVE_INFINITY) host.watch(this);
  }

  /** A server-streaming call: `handler` runs once the client sent its one request and half-closed. */
  startAfterRequest(handler: () => void): void {
    this.start = handler;
  }

  /** DATA from the client: each whole message is a request (pushed, or held for a server-streaming handler). */
  data(payload: Buffer, end: boolean): void {
    if (this.finished) return;
    try {
      for (const message of this.reader.push(payload)) {
        const request = this.codec.requestDeserialize(message);
        if (this.start === undefined) this.push(request);
        else if (this.request === undefined) this.request = request;
        else throw callError(status.UNIMPLEMENTED, 'grpc: more than one request message');
      }
      if (end && this.start !== undefined && (this.request === undefined || this.reader.pending > 0)) {
        throw callError(status.UNIMPLEMENTED, 'grpc: no request message');
      }
    } catch (error) {
      this.finishWith(error);
      return;
    }
    if (!end) return;
    this.push(null);
    const start = this.start;
    this.start = undefined;
    start?.();
  }

  reset(): void {
    if (this.finished) return;
    this.cancelled = true;
    this.finished = true;
    this.release();
    this.emit('cancelled');
    this.destroy();
  }

  drained(): void {
    this.release();
    if (this.drainWanted) {
      this.drainWanted = false;
      this.emit('drain');
    }
  }

  /**
   * Sends one response already encoded as a gRPC message (5-byte prefix and message) after
   * `FRAME_ROOM` spare bytes (stream.ts; where its DATA frame header goes, so the common case
   * copies nothing), past the Writable's buffering and encoder: for a handler that sends
   * many small responses and does its own back-pressure. Returns false when the client is
   * behind; `'drain'` follows once it caught up. A handler uses this or `write`, not both.
   */
  sendFramed(buffer: Buffer): boolean {
    if (this.finished) return true;
    this.sendHeaders();
    const held = this.heldFramed;
    if (held === undefined) this.stream.dataInRoom(buffer);
    else {
      held.push(buffer);
      this.heldBytes += buffer.length - FRAME_ROOM;
    }
    if (this.stream.unsentBytes + this.heldBytes <= STREAM_BYTES_HIGH) return true;
    this.drainWanted = true;
    return false;
  }

  /**
   * Holds what {@link sendFramed} sends until {@link releaseFramed}, which sends it all as one DATA
   * payload: one frame per `maxFrame` bytes rather than one per message. A gRPC message's
   * length prefix, not the frame, delimits it, so this changes nothing the client reads but
   * the number of frames it handles: a watch stream's responses to one write (one per
   * watcher) reach the client as one chunk, not one each.
   */
  holdFramed(): void {
    this.heldFramed ??= [];
  }

  /** Sends what {@link holdFramed} held; a call that finished meanwhile sent it before its trailers. */
  releaseFramed(): void {
    const held = this.heldFramed;
    if (held === undefined) return;
    this.heldFramed = undefined;
    const bytes = this.heldBytes;
    this.heldBytes = 0;
    if (held.length === 0 || this.stream.localEnded) return;
    if (held.length === 1) {
      this.stream.dataInRoom(held[0]!);
      return;
    }
    const out = Buffer.allocUnsafe(FRAME_ROOM + bytes);
    let at = FRAME_ROOM;
    for (const buffer of held) at += buffer.copy(out, at, FRAME_ROOM);
    this.stream.dataInRoom(out);
  }

  expire(): void {
    if (this.finished) return;
    this.finishWith(callError(status.DEADLINE_EXCEEDED, 'Deadline exceeded'));
    this.cancelled = true;
    this.emit('cancelled');
  }

  override _read(): void {}

  override _write(response: Res, _encoding: BufferEncoding, callback: (error?: Error | null) => void): void {
    if (this.finished) {
      callback();
      return;
    }
    let payload: Buffer;
    try {
      payload = framed(this.codec.responseSerialize(response));
    } catch (error) {
      this.finishWith(
        callError(status.INTERNAL, `grpc: error serializing a response: ${(error as Error).message}`),
      );
      callback();
      return;
    }
    this.sendHeaders();
    this.stream.data(payload);
    if (this.stream.unsentBytes <= STREAM_BYTES_HIGH) {
      callback();
      return;
    }
    this.waiting = () => callback();
  }

  override _final(callback: (error?: Error | null) => void): void {
    this.finishWith(null);
    callback();
  }

  override _destroy(error: Error | null, callback: (error?: Error | null) => void): void {
    if (!this.finished) {
      if (error !== null) this.finishWith(error);
      else this.abandon();
    }
    this.release();
    callback(error);
  }

  /** Ends the call: status OK for `null`, else the error's status; trailers follow the queued responses. */
  private finishWith(error: unknown): void {
    if (this.finished) return;
    this.releaseFramed();
    this.finished = true;
    if (this.deadline !== Number.POSITIVE_INFINITY) this.host.unwatch(this);
    const { code, message } = error === null ? { code: status.OK, message: '' } : statusOf(error);
    if (this.headersSent) this.stream.end(statusTrailers(code, message));
    else this.stream.headers(trailersOnly(code, message), true);
    // Ended before the client half-closed: it is told to stop sending (once the trailers are out).
    if (error !== null && this.stream.localEnded && !this.stream.remoteEnded) this.stream.reset(NO_ERROR);
    this.release();
    if (error !== null && !this.destroyed) queueMicrotask(() => this.destroy());
  }

  /** Destroyed without an error before it finished: the client is told the call was cancelled. */
  private abandon(): void {
    this.finished = true;
    if (this.deadline !== Number.POSITIVE_INFINITY) this.host.unwatch(this);
    this.stream.reset();
  }

  private sendHeaders(): void {
    if (this.headersSent) return;
    this.headersSent = true;
    this.stream.headers(RESPONSE_HEADERS, false);
  }

  private release(): void {
    const waiting = this.waiting;
    this.waiting = undefined;
    waiting?.();
  }
}
