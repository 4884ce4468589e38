/** The etcd v3 gRPC API: server, error mapping and the shared proto definitions. */
export {
  DEFAULT_ETCD_SERVICE_OPTIONS,
  EtcdContext,
  type EtcdServiceOptions,
  type WireHeader,
} from './context.js';
export { ETCD_ERRORS, EtcdGrpcError, etcdError, toGrpcError } from './errors.js';
export { type EtcdServiceName, etcdService, etcdserverpb, PROTO_DIR, PROTO_LOADER_OPTIONS } from './proto.js';
export { EtcdGrpcServer, type EtcdGrpcServerOptions, GRPC_RECEIVE_BYTES_MAX } from './server.js';
export { unary } from './unary.js';
