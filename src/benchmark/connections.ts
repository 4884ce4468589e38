/**
 * The connections of `flotilla bench`, made as etcd's `benchmark` makes them: `--conns`
 * connections, connection `i` to endpoint `i % endpoints` (round-robin), and the clients
 * spread over the connections round-robin (client `c` uses connection `c % conns`). Every
 * connection is its own HTTP/2 connection (its own TCP socket): see grpc-connection.ts.
 *
 * Requests are serialized with the protobuf definitions of etcd's `.proto` files; responses
 * are handed back undecoded unless the caller decodes them.
 */
import type { MethodDefinition } from '@grpc/grpc-js';
import { type EtcdServiceName, etcdService } from '../etcd/proto.js';
import { Connection } from './grpc-connection.js';
import type { ConnectionOptions } from './options.js';

export { type BidiStream, Connection, GrpcCallError, statusName } from './grpc-connection.js';

/** A request path and its protobuf serializer (and response deserializer). */
export interface Method<Response = unknown> {
  readonly path: string;
  readonly serialize: (request: unknown) => Buffer;
  readonly deserialize: (bytes: Buffer) => Response;
}

/** Method `name` of etcd service `service`, with the serializers of etcd's `.proto`. */
export function etcdMethod<Response = unknown>(service: EtcdServiceName, name: string): Method<Response> {
  const definition = etcdService(service).service[name] as MethodDefinition<unknown, Response> | undefined;
  if (definition === undefined) throw new Error(`etcd service ${service} has no method ${name}`);
  return {
    path: definition.path,
    serialize: definition.requestSerialize,
    deserialize: definition.responseDeserialize,
  };
}

/**
 * Opens `count` connections, connection `i` to `endpoints[(first + i) % endpoints.length]`,
 * all at once; rejects (closing the others) if one is not up within `dialTimeoutMs`.
 */
export async function openConnections(
  endpoints: readonly string[],
  count: number,
  dialTimeoutMs: number,
  first = 0,
): Promise<Connection[]> {
  const attempts = await Promise.allSettled(
    Array.from({ length: count }, (_, i) =>
      Connection.open(i, endpoints[(first + i) % endpoints.length]!, dialTimeoutMs),
    ),
  );
  const failed = attempts.find((a) => a.status === 'rejected');
  if (failed !== undefined) {
    for (const a of attempts) if (a.status === 'fulfilled') a.value.close();
    throw failed.reason;
  }
  return attempts.map((a) => (a as PromiseFulfilledResult<Connection>).value);
}

/** Closes every connection. */
export function closeConnections(connections: readonly Connection[]): void {
  for (const c of connections) c.close();
}

/** Runs `body` with `count` connections opened as {@link openConnections} does; closes them after. */
export async function withConnections<T>(
  options: ConnectionOptions,
  count: number,
  body: (connections: Connection[]) => Promise<T>,
): Promise<T> {
  const connections = await openConnections(options.endpoints, count, options.dialTimeoutMs);
  try {
    return await body(connections);
  } finally {
    closeConnections(connections);
  }
}

/** A short, stable description of a failed request, for the error distribution. */
export function describeError(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
