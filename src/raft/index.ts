/** The consensus core: a pure, deterministic Raft state machine. */
export { AssertionError, assert, assertNever } from './assert.js';
export {
  applyConfChangeTo,
  decodeConfChange,
  encodeConfChange,
  isLeaveJoint,
  replayConfChanges,
} from './confchange.js';
export { isRaftError, RaftError, type RaftErrorCode } from './errors.js';
export { Inflights } from './inflights.js';
export { RaftLog } from './log.js';
export {
  isMutationName,
  MUTATION_NAMES,
  type MutationName,
  type Mutations,
  mutationsFor,
  NO_MUTATIONS,
} from './mutations.js';
export { Prng, type Random } from './prng.js';
export { Progress, type ProgressState } from './progress.js';
export * from './quorum.js';
export { Raft } from './raft.js';
export { DEFAULT_RAFT_OPTIONS, type RaftOptions } from './raft-options.js';
export { RawNode, type Status } from './raw-node.js';
export { ReadOnly } from './read-only.js';
export {
  entrySizeBytes,
  type LogReader,
  type LogStorage,
  limitSize,
  MemoryStorage,
  type StorageUpdate,
} from './storage.js';
export {
  configFromConfState,
  confStateFromConfig,
  isJoint,
  ProgressTracker,
  type TrackerConfig,
} from './tracker.js';
export * from './types.js';
