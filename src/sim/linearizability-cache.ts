/**
 * The linearized set and the cache of explored configurations, which prunes what the search has
 * already tried.
 */

/** Deterministic 32-bit PRNG (mulberry32) for the hash table below. */
function mulberry32(seed: number): () => number {
  return () => {
    seed = (seed + 0x6d2b79f5) | 0;
    let t = Math.imul(seed ^ (seed >>> 15), seed | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return (t ^ (t >>> 14)) >>> 0;
  };
}

/**
 * A bitset over a partition's operations with an incrementally maintained Zobrist hash (XOR of a
 * random word per member), so a configuration's cache key costs O(1) per step instead of O(n).
 *
 * Operations are numbered completed-first, each group by call time (see `checkPartition` in linearizability.ts).
 * Completed operations occupy words [0, split): there a linearized set is a solid prefix plus a
 * ragged window of in-flight operations. Pending operations start at word `split`, so the many that
 * never take effect do not leave holes that would keep the completed prefix from being solid.
 */
export class LinearizedSet {
  readonly words: Uint32Array;
  /** First word of the pending operations' region. */
  readonly split: number;
  private readonly completed: number;
  private readonly zobrist1: Int32Array;
  private readonly zobrist2: Int32Array;
  hash1 = 0;
  hash2 = 0;

  constructor(completed: number, pending: number) {
    this.completed = completed;
    this.split = Math.ceil(completed / 32);
    this.words = new Uint32Array(this.split + Math.ceil(pending / 32));
    this.zobrist1 = new Int32Array(completed + pending);
    this.zobrist2 = new Int32Array(completed + pending);
    const random = mulberry32(0x5eed);
    for (let i = 0; i < completed + pending; i++) {
      this.zobrist1[i] = random();
      this.zobrist2[i] = random();
    }
  }

  /** Adds or removes operation `op` (its presence is known to the caller, so XOR toggles both). */
  toggle(op: number): void {
    const bit = op < this.completed ? op : this.split * 32 + (op - this.completed);
    this.words[bit >>> 5]! ^= 1 << (bit & 31);
    this.hash1 ^= this.zobrist1[op]!;
    this.hash2 ^= this.zobrist2[op]!;
  }
}

/** A remembered configuration; the set is stored compactly (see {@link ConfigCache}). */
interface CachedConfig {
  readonly state: number;
  /** Completed region: words below `low` are all ones, then `middle`, then zeros. */
  readonly low: number;
  readonly middle: Uint32Array;
  /** Pending region: `tail`, then zeros. */
  readonly tail: Uint32Array;
}

/**
 * Remembers every (linearized set, state) configuration the search has entered. Sets are compared
 * exactly on a hash match, so a hash collision costs time, never a wrong verdict. Only the ragged
 * part of each region of the set is stored, which keeps memory near-linear in the history.
 */
export class ConfigCache {
  private readonly table = new Map<number, CachedConfig[]>();

  /** Records the configuration; returns false if it was already present. */
  add(set: LinearizedSet, state: number): boolean {
    const h1 = set.hash1 ^ Math.imul(state + 1, 0x9e3779b1);
    const h2 = set.hash2 ^ Math.imul(state + 1, 0x85ebca6b);
    // 21 + 32 bits stay an exact integer, so the Map sees a well-spread number key.
    const key = (h1 & 0x1fffff) * 0x1_0000_0000 + (h2 >>> 0);
    const { words, split } = set;
    let low = 0;
    while (low < split && words[low] === 0xffffffff) low++;
    let high = split;
    while (high > low && words[high - 1] === 0) high--;
    let end = words.length;
    while (end > split && words[end - 1] === 0) end--;
    const bucket = this.table.get(key);
    for (const cached of bucket ?? []) {
      if (
        cached.state === state &&
        cached.low === low &&
        sameWords(cached.middle, words, low, high) &&
        sameWords(cached.tail, words, split, end)
      ) {
        return false;
      }
    }
    const config = { state, low, middle: words.slice(low, high), tail: words.slice(split, end) };
    if (bucket === undefined) this.table.set(key, [config]);
    else bucket.push(config);
    return true;
  }
}

function sameWords(stored: Uint32Array, words: Uint32Array, from: number, to: number): boolean {
  if (stored.length !== to - from) return false;
  for (let i = 0; i < stored.length; i++) if (stored[i] !== words[from + i]) return false;
  return true;
}
