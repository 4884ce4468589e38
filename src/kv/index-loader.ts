/**
 * Builds a store's key index from its records' heads (key, tombstone, and a put's create
 * revision, version and lease), in ascending revision order: the index a restart or a
 * restore starts from. Values are never needed, so callers feed it heads decoded without
 * touching them (codec.ts, `decodeRecordHead`).
 */

import { keyString } from './bytes.js';
import type { RecordHead } from './codec.js';
import { KvError } from './errors.js';
import { IndexEntry, KeyIndex } from './key-index.js';

/** A key index being loaded, with the lease each key is attached to. */
export class IndexLoader {
  private readonly keys = new KeyIndex();
  /** The lease of each key whose latest write attached one. */
  readonly leaseOfKey = new Map<string, number>();

  /** `revision`: the store's current revision, which no record may exceed. */
  constructor(private readonly revision: number) {}

  /** The index loaded; no record may be added once it is taken. */
  get index(): KeyIndex {
    this.keys.loaded();
    return this.keys;
  }

  /** Adds the record at (main, sub); records come in ascending revision order. */
  add(main: number, sub: number, head: RecordHead): void {
    if (main > this.revision) throw new KvError('CORRUPT', 'kv: record above the current revision');
    const key = keyString(head.key);
    if (head.tombstone) this.keys.load(key, IndexEntry.tombstone(main, sub));
    else {
      // A put's version is at least 1: version 0 marks a tombstone in the index.
      if (!(head.version >= 1)) throw new KvError('CORRUPT', `kv: record ${main}.${sub} with version 0`);
      this.keys.load(key, new IndexEntry(main, sub, head.createRevision, head.version, head.lease));
    }
    if (head.tombstone || head.lease === 0) this.leaseOfKey.delete(key);
    else this.leaseOfKey.set(key, head.lease);
  }
}
