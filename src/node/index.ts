/**
 * The node runtime: drives a raft group with real time, durable storage, the transport and a
 * state machine behind the public interface (`createNode` for any, `RaftNode` for the KV).
 */
export { encodeEtcdBackup } from './backup.js';
export { ENVELOPE_HEADER_BYTES, frameChunks, unframeChunks, unwrapCommand, wrapCommand } from './envelope.js';
export {
  type ClusterMember,
  checkName,
  clusterIdFrom,
  INITIAL_MEMBERS_MAX,
  MEMBER_NAME_CHARS_MAX,
  nodeIdFromName,
  parseHostPort,
  parseInitialCluster,
  withoutUnnamedMembers,
} from './identity.js';
export {
  type ClusterInfo,
  discoverCluster,
  type JoinOptions,
  type JoinResult,
  parseClusterInfo,
} from './join.js';
export { KV_COMMAND_CODEC, KvOnDiskStateMachine } from './kv-state-machine.js';
export * from './library.js';
export { type MemberFile, readMemberFile } from './member-file.js';
export {
  type MemberClientUrls,
  type MemberJson,
  type MemberUpdate,
  membersFromJson,
  membersToJson,
  splitSnapshotData,
} from './member-table.js';
export {
  DEFAULT_RAFT_NODE_OPTIONS,
  type HostStatus,
  type KvStoreSettings,
  type MemberAddress,
  type MemberChange,
  type NodeCounters,
  type NodeLogger,
  type NodeStatus,
  RaftNode,
  type RaftNodeInit,
  type RaftNodeOptions,
} from './raft-node.js';
export { type RestoreOptions, restoreDataDir } from './restore.js';
export {
  type SaveTimings,
  WRITE_STAGES,
  type WriteStage,
  type WriteStageObserver,
  WriteTrace,
} from './write-trace.js';
