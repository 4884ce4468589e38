/**
 * The KV database on the public runtime: a {@link KvNode} is a `FlotillaNode` replicating the
 * LMDB key-value store (an on-disk state machine), with the KV's validation, backend and
 * lease expiry. The etcd and HTTP servers serve one.
 */

export {
  DEFAULT_KV_SETTINGS,
  KvNode,
  type KvNodeInit,
  type KvNodeOptions,
  type KvNodeStatus,
  type KvRaftNode,
  type KvSettings,
  type KvStoreSettings,
} from './kv-node.js';
export { KV_COMMAND_CODEC, KvOnDiskStateMachine } from './kv-state-machine.js';
export { expiredLeases, LEASE_SCAN_INTERVAL_MS } from './lease-keeper.js';
