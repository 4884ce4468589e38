/**
 * gRPC call outcomes for the benchmark's gRPC client: the error a failed call rejects with,
 * and the status a response's header block (headers or trailers) carries.
 */
import { status } from '@grpc/grpc-js';
import type { HeaderField } from '../http2/hpack.js';

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

/** What a call's header blocks have said so far: OK, an error, or nothing yet. */
export type CallOutcome = GrpcCallError | 'ok' | undefined;

/** The gRPC outcome a header block carries: OK, an error, or nothing yet. */
export function statusOf(fields: readonly HeaderField[]): CallOutcome {
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

/**
 * How a call ended once its stream closed: undefined for status OK, else the stream's
 * `error`, the error status the server sent, or INTERNAL if it sent no status at all.
 */
export function callFailure(error: Error | undefined, outcome: CallOutcome): Error | undefined {
  if (error !== undefined) return error;
  if (outcome === 'ok') return undefined;
  return outcome ?? new GrpcCallError(status.INTERNAL, 'stream ended without a gRPC status');
}
