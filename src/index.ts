/**
 * Flotilla as a library: `createNode` replicates any state machine with Raft. See
 * docs/library.md. The KV database, the raft core and the other layers have their own
 * subpath exports (`flotilla/raft`, `flotilla/kv`, ...).
 */
export {
  createNode,
  type FlotillaNode,
  type HostStatus as NodeStatus,
  isNodeError,
  type NodeConfig,
  NodeError,
  type NodeErrorCode,
  type NodeLogger,
  type ProposeOptions,
  type ReadOptions,
} from './node/index.js';
export type * from './node/state-machine.js';
