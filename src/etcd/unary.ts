/**
 * Adapting async functions to `@grpc/grpc-js` unary handlers, for every etcd service; the
 * services import it from here and server.ts binds them, so no service imports the server.
 */
import type { ServerUnaryCall, sendUnaryData } from '@grpc/grpc-js';
import { toGrpcError } from './errors.js';

/**
 * A unary handler from an async function: its result is the response, anything it throws
 * becomes etcd's gRPC error (see errors.ts).
 */
export function unary<Req, Res>(
  run: (request: Req, call: ServerUnaryCall<Req, Res>) => Promise<Res>,
): (call: ServerUnaryCall<Req, Res>, callback: sendUnaryData<Res>) => void {
  return (call, callback) => {
    run(call.request, call).then(
      (response) => callback(null, response),
      (error: unknown) => callback(toGrpcError(error)),
    );
  };
}
