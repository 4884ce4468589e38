/**
 * The node runtime: drives a raft group with real time, durable storage, the transport and a
 * state machine behind the public interface (`createNode`, `startNode`). Its public surface
 * is library.ts (the package's `.` entry); this index adds what the command line and the
 * tests use besides: identity and join helpers, member files, backups restored into a data
 * directory. The KV database's node is src/db/kv-node.ts.
 */
export { ENVELOPE_HEADER_BYTES, frameChunks, unframeChunks, unwrapCommand, wrapCommand } from './envelope.js';
export {
  type ClusterMember,
  checkName,
  clusterIdFrom,
  INITIAL_MEMBERS_MAX,
  MEMBER_NAME_CHARS_MAX,
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
export * from './library.js';
export { type MemberFile, readMemberFile } from './member-file.js';
export {
  type MemberJson,
  type MemberUpdate,
  membersFromJson,
  membersToJson,
  splitSnapshotData,
} from './member-table.js';
export type { MemberChange } from './membership.js';
export { type RestoreOptions, restoreDataDir } from './restore.js';
export { type SaveTimings, WriteTrace } from './write-trace.js';
