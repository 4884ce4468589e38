/**
 * A check that the key index says what the stored records say: every entry's tombstone,
 * create revision, version and lease equal its record's (a full decode), a live key's
 * current lease holds it, and each lease holds only keys whose current put names it. The
 * write path takes these fields from the index instead of reading the previous record, so
 * a disagreement would be written into every later version of the key.
 */

import { KvError } from './errors.js';
import type { KeyIndex } from './key-index.js';
import type { LeaseTable } from './leases.js';
import type { KvStore } from './store.js';

/** Throws `CORRUPT` at the first disagreement between `index`, `store` and `leases`. */
export function checkIndex(index: KeyIndex, store: KvStore, leases: LeaseTable): void {
  const leaseOfKey = new Map<string, number>();
  for (const [key, entries] of index.entries()) {
    for (const entry of entries) {
      const record = store.getRecord(entry.main, entry.sub);
      const at = `${JSON.stringify(key)} at ${entry.main}.${entry.sub}`;
      if (record === undefined) throw new KvError('CORRUPT', `kv index check: no record for ${at}`);
      const { kv } = record;
      const agrees =
        record.tombstone === entry.tombstone &&
        kv.createRevision === entry.createRevision &&
        kv.version === entry.version &&
        kv.lease === entry.lease &&
        kv.modRevision === entry.main;
      if (!agrees)
        throw new KvError('CORRUPT', `kv index check: the index disagrees with the record of ${at}`);
    }
    const last = entries[entries.length - 1]!;
    if (!last.tombstone && last.lease !== 0) leaseOfKey.set(key, last.lease);
  }
  for (const lease of leases.list()) {
    for (const key of leases.get(lease.id)!.keys) {
      if (leaseOfKey.get(key) !== lease.id)
        throw new KvError('CORRUPT', `kv index check: lease ${lease.id} holds a key not on it`);
      leaseOfKey.delete(key);
    }
  }
  if (leaseOfKey.size > 0)
    throw new KvError('CORRUPT', 'kv index check: a key on a lease the lease does not hold');
}
