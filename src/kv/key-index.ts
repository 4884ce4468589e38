/**
 * The in-memory key index (etcd's `treeIndex`): for every key, the ascending list of
 * revisions that wrote it, and the keys in byte order for range scans. Values live in the
 * backend's revision store; the index says which revision of a key is visible at a given
 * revision. Both backends use it; the LMDB backend rebuilds it from its revision store on
 * open, as etcd rebuilds its treeIndex from bbolt.
 *
 * Each put's entry also carries the record's create revision, version and lease (what etcd
 * keeps in a keyIndex generation and in its lessor's item map), so a write learns them from
 * memory: it reads the previous record from the store only when it needs the value.
 * A key written once (most keys of a large, compacted store) keeps its one entry without an
 * array around it.
 */

import { assert } from '../raft/assert.js';
import type { KeyRange } from './bytes.js';
import type { StoredRecord } from './codec.js';

/**
 * One write of a key: revision (main, sub) and, for a put, its create revision, version and
 * lease. A tombstone has version 0 (a put's version is at least 1) and zeros elsewhere.
 */
export class IndexEntry {
  constructor(
    readonly main: number,
    readonly sub: number,
    readonly createRevision: number,
    readonly version: number,
    readonly lease: number,
  ) {}

  /** A deletion of the key. */
  static tombstone(main: number, sub: number): IndexEntry {
    return new IndexEntry(main, sub, 0, 0, 0);
  }

  /** The entry of `record`. */
  static of(record: StoredRecord): IndexEntry {
    const { main, sub, kv } = record;
    if (record.tombstone) return IndexEntry.tombstone(main, sub);
    return new IndexEntry(main, sub, kv.createRevision, kv.version, kv.lease);
  }

  /** Whether the write was a deletion. */
  get tombstone(): boolean {
    return this.version === 0;
  }

  /** The revision of the write (what a kv calls its mod revision). */
  get modRevision(): number {
    return this.main;
  }
}

/** A key and the entry of it visible at some revision. */
export interface VisibleKey {
  readonly key: string;
  readonly entry: IndexEntry;
}

/** A key's writes: one entry alone, or two and more in ascending order. */
type History = IndexEntry | IndexEntry[];

/** Keys per chunk of the sorted key list: inserts cost O(chunk) instead of O(keys). */
const chunkKeysMax = 512;

/** A sorted set of strings kept as sorted chunks (a one-level B-tree). */
export class SortedKeys {
  // Invariant: every chunk is non-empty and sorted, and chunks are in order.
  private chunks: string[][] = [];

  /** Adds `key` (it must be absent). */
  insert(key: string): void {
    if (this.chunks.length === 0) {
      this.chunks.push([key]);
      return;
    }
    const chunkIndex = this.chunkFor(key);
    const chunk = this.chunks[chunkIndex]!;
    const position = lowerBound(chunk, key);
    // The message is built only on failure (this runs for every new key).
    if (chunk[position] === key) assert(false, `key index: duplicate key ${JSON.stringify(key)}`);
    chunk.splice(position, 0, key);
    if (chunk.length > 2 * chunkKeysMax) this.chunks.splice(chunkIndex + 1, 0, chunk.splice(chunkKeysMax));
  }

  /**
   * Adds `keys`, sorted and each absent, to an empty set: chunks filled to
   * `chunkKeysMax`. Loading a whole index so (one sort) is 3-4x faster than an insertion per
   * key in revision order, which is random key order.
   */
  fill(keys: readonly string[]): void {
    assert(this.chunks.length === 0, 'key index: filled when not empty');
    for (let at = 0; at < keys.length; at += chunkKeysMax)
      this.chunks.push(keys.slice(at, at + chunkKeysMax));
  }

  /** Removes `key` (it must be present). */
  delete(key: string): void {
    const chunkIndex = this.chunkFor(key);
    const chunk = this.chunks[chunkIndex];
    const position = chunk === undefined ? -1 : lowerBound(chunk, key);
    if (chunk === undefined || chunk[position] !== key) {
      assert(false, `key index: missing key ${JSON.stringify(key)}`);
    }
    chunk.splice(position, 1);
    if (chunk.length === 0) this.chunks.splice(chunkIndex, 1);
  }

  /** Keys `>= start` in ascending order. The set must not change during the iteration. */
  *from(start: string): Generator<string> {
    if (this.chunks.length === 0) return;
    let chunkIndex = this.chunkFor(start);
    let position = lowerBound(this.chunks[chunkIndex]!, start);
    for (; chunkIndex < this.chunks.length; chunkIndex++, position = 0) {
      const chunk = this.chunks[chunkIndex]!;
      for (; position < chunk.length; position++) yield chunk[position]!;
    }
  }

  /** Removes every key. */
  clear(): void {
    this.chunks = [];
  }

  /** The chunk that holds, or would hold, `key`: the last one whose first key is <= `key`. */
  private chunkFor(key: string): number {
    let low = 0;
    let high = this.chunks.length - 1;
    while (low < high) {
      const middle = (low + high + 1) >>> 1;
      if (this.chunks[middle]![0]! <= key) low = middle;
      else high = middle - 1;
    }
    return low;
  }
}

/** The first position in sorted `items` whose item is >= `key`. */
function lowerBound(items: readonly string[], key: string): number {
  let low = 0;
  let high = items.length;
  while (low < high) {
    const middle = (low + high) >>> 1;
    if (items[middle]! < key) low = middle + 1;
    else high = middle;
  }
  return low;
}

/** Compares revisions (main, sub). */
function compareRevision(entry: IndexEntry, main: number, sub: number): number {
  return entry.main !== main ? entry.main - main : entry.sub - sub;
}

/** Every key's revision history, and the keys in byte order. */
export class KeyIndex {
  // Invariant: every history is non-empty and strictly ascending by (main, sub); an array
  // holds at least two entries.
  private readonly histories = new Map<string, History>();
  private readonly sorted = new SortedKeys();
  /** New keys of {@link KeyIndex.load}, not yet in `sorted` ({@link KeyIndex.loaded} puts them there). */
  private loading: string[] = [];

  /** How many keys have history (live or deleted but not yet compacted away). */
  get size(): number {
    return this.histories.size;
  }

  /** Records a write of `key`; it must be newer than every recorded write of `key`. */
  append(key: string, entry: IndexEntry): void {
    const history = this.histories.get(key);
    if (history === undefined) {
      this.histories.set(key, entry);
      this.sorted.insert(key);
      return;
    }
    this.appendTo(key, history, entry);
  }

  private appendTo(key: string, history: History, entry: IndexEntry): void {
    const last = lastOf(history);
    assert(compareRevision(last, entry.main, entry.sub) < 0, `key index: revision goes back for a key`);
    if (Array.isArray(history)) history.push(entry);
    else this.histories.set(key, [history, entry]);
  }

  /**
   * As `append`, into an index being loaded (empty before the first call): a new key joins
   * the sorted key list at {@link KeyIndex.loaded}, in one sort, which must come before any
   * other call.
   */
  load(key: string, entry: IndexEntry): void {
    const history = this.histories.get(key);
    if (history === undefined) {
      this.histories.set(key, entry);
      this.loading.push(key);
    } else this.appendTo(key, history, entry);
  }

  /** Ends a load: the loaded keys join the sorted key list. */
  loaded(): void {
    if (this.loading.length === 0) return;
    // Default sort: by UTF-16 code unit, which for latin1 key strings is byte order.
    this.sorted.fill(this.loading.sort());
    this.loading = [];
  }

  /** The latest write of `key` if it is a put (the key exists now), else undefined. */
  current(key: string): IndexEntry | undefined {
    const history = this.histories.get(key);
    const last = history === undefined ? undefined : lastOf(history);
    return last === undefined || last.tombstone ? undefined : last;
  }

  /** The put of `key` visible at `revision` (the latest write at or below it, if a put). */
  at(key: string, revision: number): IndexEntry | undefined {
    const history = this.histories.get(key);
    if (history === undefined) return undefined;
    const entry = entryAt(history, lastAtOrBefore(history, revision, Number.MAX_SAFE_INTEGER));
    return entry === undefined || entry.tombstone ? undefined : entry;
  }

  /** The put of `key` visible just before revision (main, sub): a write's previous version. */
  before(key: string, main: number, sub: number): IndexEntry | undefined {
    const history = this.histories.get(key);
    if (history === undefined) return undefined;
    const position = lastAtOrBefore(history, main, sub);
    const atPosition = entryAt(history, position);
    const isSelf = atPosition !== undefined && compareRevision(atPosition, main, sub) === 0;
    const entry = isSelf ? entryAt(history, position - 1) : atPosition;
    return entry === undefined || entry.tombstone ? undefined : entry;
  }

  /** The keys of `range` that exist at `revision`, in byte order, with their visible puts. */
  *range(range: KeyRange, revision: number): Generator<VisibleKey> {
    for (const key of this.sorted.from(range.start)) {
      if (range.end !== null && key >= range.end) return;
      const entry = this.at(key, revision);
      if (entry !== undefined) yield { key, entry };
    }
  }

  /**
   * Forgets history below `revision` (etcd compaction): per key, keeps the latest write at
   * or below it if that is a put, or a tombstone written exactly at `revision` (so a watch
   * from the compacted revision still sees that deletion), plus everything above. Returns
   * the dropped revisions for the store to delete.
   */
  compact(revision: number): IndexEntry[] {
    const dropped: IndexEntry[] = [];
    const emptied: string[] = [];
    for (const [key, history] of this.histories) {
      const position = lastAtOrBefore(history, revision, Number.MAX_SAFE_INTEGER);
      if (position < 0) continue;
      const kept = entryAt(history, position)!;
      const keepKept = !kept.tombstone || kept.main === revision;
      const dropCount = keepKept ? position : position + 1;
      if (dropCount === 0) continue;
      if (!Array.isArray(history)) {
        dropped.push(history);
        emptied.push(key);
        continue;
      }
      dropped.push(...history.splice(0, dropCount));
      if (history.length === 0) emptied.push(key);
      // Setting an existing key's value does not disturb the iteration.
      else if (history.length === 1) this.histories.set(key, history[0]!);
    }
    for (const key of emptied) {
      this.histories.delete(key);
      this.sorted.delete(key);
    }
    return dropped;
  }

  /** Every key with its entries, oldest first (for checks). */
  *entries(): Generator<readonly [string, readonly IndexEntry[]]> {
    for (const [key, history] of this.histories) yield [key, Array.isArray(history) ? history : [history]];
  }

  /** Removes everything. */
  clear(): void {
    this.histories.clear();
    this.sorted.clear();
  }
}

/** The newest entry of `history`. */
function lastOf(history: History): IndexEntry {
  return Array.isArray(history) ? history[history.length - 1]! : history;
}

/** The entry at `position` of `history` (undefined outside it). */
function entryAt(history: History, position: number): IndexEntry | undefined {
  if (Array.isArray(history)) return history[position];
  return position === 0 ? history : undefined;
}

/** The position of the last entry at or before (main, sub) in ascending `history`, or -1. */
function lastAtOrBefore(history: History, main: number, sub: number): number {
  if (!Array.isArray(history)) return compareRevision(history, main, sub) <= 0 ? 0 : -1;
  let low = 0;
  let high = history.length;
  while (low < high) {
    const middle = (low + high) >>> 1;
    if (compareRevision(history[middle]!, main, sub) <= 0) low = middle + 1;
    else high = middle;
  }
  return low - 1;
}
