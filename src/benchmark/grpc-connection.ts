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
 *
 * The pieces: {@link Connection} here (the call API); grpc-calls.ts (a call's view of its
 * stream), grpc-messages.ts (gRPC message framing), grpc-status.ts (call outcomes);
 * http2-session.ts (one HTTP/2 connection and its streams), http2-stream.ts (stream state),
 * http2-flow-control.ts (windows); ../http2/frames.ts (frame encoding and decoding), ../http2/hpack.ts
 * (header compression).
 */

import { encodeHeaders } from '../http2/hpack.js';
import { BidiCall, type BidiStream, requestFields, UnaryCall } from './grpc-calls.js';
import { grpcFrame } from './grpc-messages.js';
import { Session } from './http2-session.js';

export type { BidiStream } from './grpc-calls.js';
export { grpcFrame, MessageReader } from './grpc-messages.js';
export { GrpcCallError, statusName } from './grpc-status.js';

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
    const call = new BidiCall(onMessage, onEnd);
    const opened = session.open(this.headerBlock(path), undefined, false, call, Number.POSITIVE_INFINITY);
    call.cancel = () => session.cancel(opened);
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
