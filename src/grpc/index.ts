/** Flotilla's gRPC server (see server.ts). */
export type { CallBase, StatusErrorLike, UnaryCall, UnaryCallback } from './calls.js';
export { StreamingCall } from './calls.js';
export type { GrpcServerOptions, ServiceImplementation, StreamHandler, UnaryHandler } from './server.js';
export { GrpcServer } from './server.js';
export { CallMetadata } from './status.js';
