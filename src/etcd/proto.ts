/**
 * etcd's v3 API definitions (`proto/etcd/*.proto`, etcd's own files: see
 * `proto/etcd/README.md`), loaded once with `@grpc/proto-loader`.
 *
 * Loader options: field names as in the .proto (`create_revision`), 64-bit integers as
 * decimal strings (lease ids and member ids use all 64 bits in etcd, so numbers would lose
 * precision), enums as their names, defaults filled in.
 */
import { fileURLToPath } from 'node:url';
import { type GrpcObject, loadPackageDefinition, type ServiceClientConstructor } from '@grpc/grpc-js';
import { loadSync, type Options } from '@grpc/proto-loader';

/** The directory holding `rpc.proto`, `kv.proto` and `auth.proto` (compiled file: dist/src/etcd/). */
export const PROTO_DIR = fileURLToPath(new URL('../../../proto/etcd/', import.meta.url));

/** The options every Flotilla server and client loads the etcd definitions with. */
export const PROTO_LOADER_OPTIONS: Options = Object.freeze({
  keepCase: true,
  longs: String,
  enums: String,
  defaults: true,
  oneofs: true,
});

let loaded: GrpcObject | undefined;

/** The `etcdserverpb` package: service constructors (`KV`, `Watch`, ...) and message types. */
export function etcdserverpb(): GrpcObject {
  if (loaded === undefined) {
    const definition = loadSync(`${PROTO_DIR}rpc.proto`, PROTO_LOADER_OPTIONS);
    loaded = (loadPackageDefinition(definition) as { etcdserverpb: GrpcObject }).etcdserverpb;
  }
  return loaded;
}

/** Names of etcd's gRPC services. */
export type EtcdServiceName = 'KV' | 'Watch' | 'Lease' | 'Cluster' | 'Maintenance' | 'Auth';

/** The client constructor (and `.service` definition) of one etcd service. */
export function etcdService(name: EtcdServiceName): ServiceClientConstructor {
  return etcdserverpb()[name] as ServiceClientConstructor;
}
