/** The peer transport: raft messages over TCP, and a fault-injecting wrapper for tests. */
export { queryClusterInfo } from './cluster-query.js';
export { decodeMessage, encodeMessage } from './codec.js';
export { isTransportError, type RejectReason, TransportError, type TransportErrorCode } from './errors.js';
export {
  type FaultStats,
  FaultTransport,
  type FaultTransportOptions,
  type LinkFaults,
  NO_FAULTS,
  partition,
} from './fault-transport.js';
export { FRAME_HEADER_BYTES, FRAME_KIND, PROTOCOL_VERSION } from './frames.js';
export {
  backoffDelayMs,
  DEFAULT_TRANSPORT_LIMITS,
  type MessageSender,
  type PeerAddress,
  type PeerStats,
  rejectedDelayMs,
  type TcpTransportOptions,
  type TransportLimits,
  type TransportLogger,
  type TransportStats,
} from './options.js';
export {
  bytesPayload,
  framedPayload,
  type SnapshotMode,
  type SnapshotPayload,
  type SnapshotSink,
} from './snapshot-stream.js';
export { TcpTransport } from './tcp-transport.js';
