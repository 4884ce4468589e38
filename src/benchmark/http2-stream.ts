/**
 * The state of one HTTP/2 stream of the benchmark's gRPC client: what its owner (a call) is
 * told, what the session keeps of an open stream, and a request waiting for the peer's
 * stream concurrency limit.
 */
import type { HeaderField } from '../http2/hpack.js';

/** What a stream's owner is told. */
export interface StreamHandler {
  /** A complete header block; `end`: it ended the stream (trailers, or a trailers-only response). */
  headers(fields: HeaderField[], end: boolean): void;
  data(payload: Buffer): void;
  /** The stream is over: `error` undefined if the server ended it (END_STREAM). Called once. */
  closed(error: Error | undefined): void;
}

/** An open stream as its session keeps it. */
export interface StreamState {
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
export interface Waiting {
  readonly ref: StreamRef;
  readonly headerBlock: Buffer;
  body: Buffer | undefined;
  end: boolean;
  readonly handler: StreamHandler;
  readonly deadline: number;
}

/** A stream as its owner holds it: `id` 0 while it waits for the peer's concurrency limit. */
export interface StreamRef {
  id: number;
  waiting: Waiting | undefined;
}
