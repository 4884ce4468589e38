/**
 * The persistence port of the state machine: where a backend keeps the MVCC history
 * (revision-keyed records), leases and sessions. The state machine keeps the key index,
 * lease table and session table in memory and calls these methods to mirror every change;
 * the LMDB backend turns them into writes of the LMDB transaction that is open for the
 * batch being applied, the memory backend into array and map updates.
 */

import type { StoredRecord } from './codec.js';
import type { SessionRecord } from './sessions.js';
import type { LeaseInfo } from './types.js';

/** A revision (main, sub). */
export interface Revision {
  readonly main: number;
  readonly sub: number;
}

/** Storage for the MVCC history, leases and sessions. */
export interface KvStore {
  /** The record written at (main, sub), if stored. */
  getRecord(main: number, sub: number): StoredRecord | undefined;
  /** The records with `fromMain <= main <= toMain`, ascending by revision. */
  scanRecords(fromMain: number, toMain: number): Iterable<StoredRecord>;
  /** The same records as (16-byte revision key, stored bytes) pairs, for hashing. */
  scanEncoded(fromMain: number, toMain: number): Iterable<readonly [Uint8Array, Uint8Array]>;
  /** Stores a record newer than every stored one. */
  putRecord(record: StoredRecord): void;
  /** Deletes the records at `revisions`. */
  deleteRecords(revisions: readonly Revision[]): void;
  /**
   * Deletes the records compaction dropped at applied index `index` (each key's in ascending
   * order). Nothing reaches them through the key index any more, so a store may delete them
   * in the background; its scans must not show them meanwhile.
   */
  deleteCompacted(revisions: readonly Revision[], index: number): void;
  /** Stores or replaces a lease. */
  putLease(lease: LeaseInfo): void;
  /** Deletes a lease. */
  deleteLease(id: number): void;
  /** Stores or replaces a session. */
  putSession(session: SessionRecord): void;
  /** Deletes a session. */
  deleteSession(clientId: number): void;
}
