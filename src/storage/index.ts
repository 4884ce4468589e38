/**
 * Durable storage: the write-ahead log, snapshot files and recovery behind the core's
 * `LogStorage` port. The conformance suite (`./conformance.js`) and the crash test
 * (`./crash-test.js`) import `node:test` and child processes, so they are not re-exported.
 */

export type { StorageErrorCode, StorageErrorLocation } from './errors.js';
export { isStorageError, StorageError } from './errors.js';
export type { Fault, FaultKind, FileOperation } from './faulty-file-system.js';
export { FaultyFileSystem } from './faulty-file-system.js';
export type { FileStorageOptions, RecoveryReport } from './file-storage.js';
export { DEFAULT_FILE_STORAGE_OPTIONS, FileStorage } from './file-storage.js';
export type { FileSystem, OpenMode, StorageFile } from './file-system.js';
export { nodeFileSystem, writeFully } from './file-system.js';
export type { RepairOptions, RepairReport } from './repair.js';
export { repairWal } from './repair.js';
export type { ReplicaStorage, SaveTiming } from './replica-storage.js';
export type { GroupStorage, SharedWalOptions, SharedWalRecovery, SharedWalStats } from './shared-wal.js';
export { DEFAULT_SHARED_WAL_OPTIONS, SharedWal } from './shared-wal.js';
export type { SnapshotFile, SnapshotReader } from './snapshot-file.js';
export { openSnapshotFile, readSnapshotFile, SnapshotWriter } from './snapshot-file.js';
export type { SnapshotPolicyOptions } from './snapshot-policy.js';
export { DEFAULT_SNAPSHOT_POLICY_OPTIONS, SnapshotPolicy } from './snapshot-policy.js';
