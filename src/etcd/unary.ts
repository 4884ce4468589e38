/**
 * Adapting async functions to unary gRPC handlers (src/grpc/), for every etcd service; the
 * services import it from here and server.ts binds them, so no service imports the server.
 */
import type { UnaryCall, UnaryCallback } from '../grpc/index.js';
import { toGrpcError } from './errors.js';

/**
 * A unary handler from an async function: its result is the response, anything it throws
 * becomes etcd's gRPC error (see errors.ts).
 */
export function unary<Req, Res>(
  run: (request: Req, call: UnaryCall<Req>) => Promise<Res>,
): (call: UnaryCall<Req>, callback: UnaryCallback<Res>) => void {
  return (call, callback) => {
    run(call.request, call).then(
      (response) => callback(null, response),
      (error: unknown) => callback(toGrpcError(error)),
    );
  };
}
