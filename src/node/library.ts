/**
 * The library's public surface: what the package's `.` entry (src/index.ts) exports, and the
 * runtime's index with it. It imports the runtime's modules directly, not its index (which
 * also exports the KV database's node): its declarations then reach no KV (and no lmdb) types.
 */
export {
  createHost,
  FlotillaHost,
  type GroupConfig,
  type HostConfig,
  type HostPeerStats,
  type HostStats,
} from './create-host.js';
export { createNode, type NodeConfig } from './create-node.js';
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
  type ChangeOptions,
  FlotillaNode,
  type MemberInfo,
  type NodeEvents,
  type ProposeOptions,
  type ReadOptions,
  type TransferOptions,
} from './flotilla-node.js';
export type { NodeStatus } from './node-status.js';
export type { NodeLogger } from './options.js';
export type * from './state-machine.js';
