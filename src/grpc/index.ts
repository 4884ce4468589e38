/** Flotilla's gRPC server (see server.ts). */
export type { CallBase, UnaryCall, UnaryCallback } from './calls.js';
export { StreamingCall } from './calls.js';
export type { GrpcServerOptions, ServiceImplementation, StreamHandler, UnaryHandler } from './server.js';
export { GrpcServer } from './server.js';
export { CallMetadata, type StatusError } from './status.js';
export { FRAME_ROOM } from './stream.js';
