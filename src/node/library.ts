/**
 * The library's public surface: what the package's `.` entry (src/index.ts) exports, and the
 * runtime's index with it. It imports the runtime's modules directly, not its index (which
 * adds what the command line and tests use: backups restored into a data directory, and so
 * the KV store): its declarations then reach no KV (and no lmdb) types. The KV database's
 * node (src/db/) and the etcd and HTTP servers use the runtime through this surface only.
 */
export type { PeerAddress, PeerStats, TransportStats } from '../transport/index.js';
export type { NodeCounters } from './counters.js';
export {
  createHost,
  FlotillaHost,
  type GroupConfig,
  type HostConfig,
  type HostLogStats,
  type HostPeerStats,
  type HostStats,
} from './create-host.js';
export { createNode, type NodeConfig, startNode } from './create-node.js';
export {
  DuplicateError,
  FatalError,
  FlotillaError,
  type FlotillaErrorCode,
  type FlotillaErrorOptions,
  isFlotillaError,
  isNodeError,
  NodeError,
  type NodeErrorCode,
  NotLeaderError,
  ProposalDroppedError,
  RefusedError,
  RemovedError,
  SessionExpiredError,
  StoppedError,
  TimeoutError,
  TooManyRequestsError,
} from './errors.js';
export {
  type AddMemberOptions,
  type ChangeOptions,
  FlotillaNode,
  type MemberInfo,
  type NodeEvents,
  type NodeStats,
  type ProposeOptions,
  type ReadOptions,
  type TransferOptions,
  type WaitOptions,
} from './flotilla-node.js';
export { nodeIdFromName, parseHostPort } from './identity.js';
export type { MemberAddress, MemberClientUrls } from './member-table.js';
export type { NodeStatus } from './node-status.js';
export { DEFAULT_NODE_OPTIONS, type NodeInit, type NodeLogger, type NodeOptions } from './options.js';
export type * from './state-machine.js';
export { WRITE_STAGES, type WriteStage, type WriteStageObserver } from './write-trace.js';
