/**
 * The routing index of a watch hub: which watchers an event's key reaches. A single-key
 * watcher is found by a hash lookup on its key; every other range (a prefix, `[start, end)`,
 * from a key on) sits in an interval tree that is searched with the event's key as a point,
 * as etcd's `watcherGroup` keeps a key map and an interval tree. Routing one key costs the
 * watchers it reaches plus a lookup and a logarithmic search, not a visit to every watcher.
 */

import IntervalTree, { Interval } from '@flatten-js/interval-tree';
import { isSingleKey, type KeyRange } from './bytes.js';

/** What the index needs of an entry: its key range. */
export interface Routed {
  readonly range: KeyRange;
}

/** Deliberate routing bugs that only the watch model test switches on. */
export interface WatchMutations {
  /** Ranges hold their end key too (`[start, end]`): an event at the end key is misrouted. */
  readonly rangeEndInclusive: boolean;
}

/** No deliberate bugs: what every production path uses. */
export const NO_WATCH_MUTATIONS: WatchMutations = Object.freeze({ rangeEndInclusive: false });

/**
 * The tree's intervals are closed, `[low, high]`; a key range is `[start, end)`. A range's
 * interval is `[start, end]` (or `[start, UNBOUNDED]`), and a search result whose end equals
 * the searched key is dropped. UNBOUNDED sorts above every key: keys are latin1 strings
 * (see bytes.ts), so each of their chars is below U+0100.
 */
const UNBOUNDED = '\u0100';

function intervalOf(range: KeyRange): Interval {
  return new Interval(range.start, range.end ?? UNBOUNDED);
}

/** Entries indexed by key range. */
export class WatchRoutes<T extends Routed> {
  // Most keys have one watcher: it is held directly, and an array only once there are more.
  private readonly byKey = new Map<string, T | T[]>();
  private readonly ranges = new IntervalTree<T>();
  private count = 0;

  constructor(private readonly mutations: WatchMutations = NO_WATCH_MUTATIONS) {}

  /** How many entries are indexed. */
  get size(): number {
    return this.count;
  }

  /** Indexes `entry` (which must not be indexed yet). */
  add(entry: T): void {
    this.count++;
    const range = entry.range;
    if (!isSingleKey(range)) {
      this.ranges.insert(intervalOf(range), entry);
      return;
    }
    const present = this.byKey.get(range.start);
    if (present === undefined) this.byKey.set(range.start, entry);
    else if (Array.isArray(present)) present.push(entry);
    else this.byKey.set(range.start, [present, entry]);
  }

  /** Removes `entry`; returns whether it was indexed. */
  remove(entry: T): boolean {
    const range = entry.range;
    const removed = isSingleKey(range) ? this.removeKey(range.start, entry) : this.removeRange(entry);
    if (removed) this.count--;
    return removed;
  }

  /** Calls `visit` with every entry whose range holds `key`. */
  forEachMatch(key: string, visit: (entry: T) => void): void {
    const exact = this.byKey.get(key);
    if (exact !== undefined) {
      if (Array.isArray(exact)) for (const entry of exact) visit(entry);
      else visit(exact);
    }
    if (this.ranges.isEmpty()) return;
    const inclusive = this.mutations.rangeEndInclusive;
    for (const entry of this.ranges.search(new Interval(key, key))) {
      const end = entry.range.end;
      if (end === null || key < end || inclusive) visit(entry);
    }
  }

  /** Every indexed entry. */
  all(): T[] {
    const entries: T[] = [];
    for (const present of this.byKey.values()) {
      if (Array.isArray(present)) entries.push(...present);
      else entries.push(present);
    }
    entries.push(...this.ranges.values);
    return entries;
  }

  private removeKey(key: string, entry: T): boolean {
    const present = this.byKey.get(key);
    if (present === entry) return this.byKey.delete(key);
    if (!Array.isArray(present)) return false;
    const at = present.indexOf(entry);
    if (at < 0) return false;
    present.splice(at, 1);
    if (present.length === 1) this.byKey.set(key, present[0]!);
    return true;
  }

  private removeRange(entry: T): boolean {
    return this.ranges.remove(intervalOf(entry.range), entry) !== undefined;
  }
}
