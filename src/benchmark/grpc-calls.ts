/**
 * gRPC calls on HTTP/2 streams for the benchmark's gRPC client: a request's header fields,
 * and the stream handlers of a unary call and of a bidirectional stream, which turn what
 * their stream receives into response messages and a call outcome.
 */

import type { HeaderField } from '../http2/hpack.js';
import { MessageReader } from './grpc-messages.js';
import { type CallOutcome, callFailure, statusOf } from './grpc-status.js';
import type { StreamHandler } from './http2-stream.js';

/** Fields of every request's headers but the path. */
export function requestFields(path: string, authority: string): HeaderField[] {
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
export class UnaryCall implements StreamHandler {
  private outcome: CallOutcome;
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
    const failure = callFailure(error, this.outcome);
    if (failure !== undefined) this.reject(failure);
    else {
      const body = this.chunks.length === 1 ? this.chunks[0]! : Buffer.concat(this.chunks);
      this.resolve(body.subarray(5));
    }
  }
}

/** A bidirectional stream of one connection (etcd's Watch). */
export interface BidiStream {
  write(message: Uint8Array): void;
  /** Resets the stream; its `onEnd` is not called. */
  cancel(): void;
}

/**
 * A bidirectional call's view of its stream: `onMessage` gets each response message
 * (undecoded); `onEnd` how it ended (undefined: status OK).
 */
export class BidiCall implements StreamHandler {
  private outcome: CallOutcome;
  private readonly reader = new MessageReader();
  /** Resets the stream, once it is opened: a response that cannot be read ends the call. */
  cancel: (() => void) | undefined;

  constructor(
    private readonly onMessage: (message: Buffer) => void,
    private readonly onEnd: (error: Error | undefined) => void,
  ) {}

  headers(fields: HeaderField[]): void {
    this.outcome ??= statusOf(fields);
  }

  data(payload: Buffer): void {
    try {
      for (const message of this.reader.push(payload)) this.onMessage(message);
    } catch (error) {
      this.cancel?.();
      this.onEnd(error as Error);
    }
  }

  closed(error: Error | undefined): void {
    this.onEnd(callFailure(error, this.outcome));
  }
}
