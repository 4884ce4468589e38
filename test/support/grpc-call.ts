/** One unary call of a gRPC client made from the etcd proto, as a promise. */
import type { Client } from '@grpc/grpc-js';

/** Calls `method` of `client` with `request`; resolves with the response, rejects with the error. */
export function unaryCall<T>(client: Client, method: string, request: object): Promise<T> {
  const fn = (client as unknown as Record<string, unknown>)[method] as (
    r: object,
    cb: (e: Error | null, r: T) => void,
  ) => void;
  return new Promise((resolve, reject) => {
    fn.call(client, request, (error, response) => (error === null ? resolve(response) : reject(error)));
  });
}
