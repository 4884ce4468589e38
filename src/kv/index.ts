/**
 * The replicated key-value state machine: etcd's MVCC data model (revisions, versions,
 * ranges, transactions, compaction, leases, watches) plus client sessions for
 * exactly-once commands, over an in-memory or an LMDB backend. See docs/kv.md. The
 * conformance suite (`conformance.ts`) is imported directly by tests: it depends on
 * `node:test` and `fast-check`.
 */

export { growsStore } from './alarms.js';
export { type KvBackend, KvSnapshot, type WatcherCounts } from './backend.js';
export { decodeBackup, encodeEtcdBackup } from './backup.js';
export { compareBytes, keyBytes, keyString } from './bytes.js';
export { decodeCommand, encodeCommand } from './codec.js';
export { ETCD_MESSAGES, isKvError, KvError, type KvErrorCode } from './errors.js';
export {
  DEFAULT_LMDB_KV_OPTIONS,
  LmdbKvBackend,
  type LmdbKvOptions,
  type LmdbKvTestHooks,
} from './lmdb-backend.js';
export { MemoryKvBackend } from './memory-backend.js';
export { SNAPSHOT_FORMAT, SNAPSHOT_VERSION } from './snapshot.js';
export { DEFAULT_KV_OPTIONS, EMPTY_KV_META, type KvOptions } from './state-machine.js';
export type * from './types.js';
export { DEFAULT_KV_LIMITS, type KvLimits, payloadBytes, validateCommand } from './validate.js';
export { Watcher } from './watch-hub.js';
