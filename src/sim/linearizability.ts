/**
 * Linearizability checker for histories of a key-value register store.
 *
 * Implements the Wing & Gong / Lowe search (the algorithm behind Porcupine): the history becomes a
 * time-ordered doubly linked list of call and return entries; a depth-first search repeatedly picks
 * an operation whose call precedes the first remaining return, applies it to a sequential model and
 * "lifts" it out of the list, backtracking when a return is reached before its operation could be
 * linearized. A cache of (set of linearized operations, model state) prunes configurations already
 * explored, which is what keeps the search near-linear on well-behaved histories.
 *
 * Keys are independent registers, so the history is partitioned per key (P-compositionality) and
 * each partition is searched separately; this is both faster and gives a smaller explanation.
 *
 * Time ties: when one operation's `return` equals another's `call`, the return is ordered first, so
 * the first operation is taken to precede the second. Zero-length operations (`call === return`)
 * sit between the returns and the calls at that instant and are concurrent with each other.
 *
 * Unknown outcomes: an operation without a return is treated as returning at +infinity with any
 * output acceptable. It may then take effect anywhere after its call; taking effect "never" is the
 * same as taking effect after everything else, so the search may simply leave it unlinearized.
 *
 * Pure and deterministic: no I/O, no randomness beyond a fixed-seed hash table.
 */

/** A client request. `expected: null` on a cas means "succeed only if the key is absent". */
export type KvInput =
  | { kind: 'put'; key: string; value: string }
  | { kind: 'get'; key: string }
  | { kind: 'cas'; key: string; expected: string | null; value: string };

/** A response. Put always succeeds once it completes; a get returns `null` for an absent key. */
export type KvOutput = { kind: 'put' } | { kind: 'get'; value: string | null } | { kind: 'cas'; ok: boolean };

/** One operation of a concurrent history, as observed by a client. */
export interface Operation {
  /** The client that issued the operation (used only for descriptions, not for checking). */
  clientId: number;
  input: KvInput;
  /** Logical time the client invoked the operation. */
  call: number;
  /**
   * Logical time the response was received; undefined if the outcome is unknown (timed out / client
   * gave up): the op may or may not have taken effect, at any time after `call`.
   */
  return: number | undefined;
  /** undefined iff return is undefined. */
  output: KvOutput | undefined;
}

/** Verdict of {@link checkLinearizable}. */
export type CheckResult =
  | { result: 'ok' }
  | {
      result: 'illegal';
      key: string;
      /** A minimal-ish explanation: the ops of the offending key partition, and the longest linearizable prefix found. */
      detail: string;
    }
  | { result: 'unknown'; key: string; reason: string };

/** Tuning for {@link checkLinearizable}. */
export interface CheckOptions {
  /** Max DFS steps per key partition before giving up with 'unknown' (default 1_000_000). */
  maxStepsPerKey?: number;
}

const DEFAULT_MAX_STEPS_PER_KEY = 1_000_000;

/**
 * Decides whether `history` is linearizable with respect to a map of independent registers that
 * start absent. Operations with an unknown outcome may take effect at any point after their call,
 * or never. Reports the first illegal key partition if any; otherwise 'unknown' if some partition
 * ran out of budget (so 'ok' is only ever a proof); otherwise 'ok'.
 *
 * @throws RangeError if the history is malformed (return before call, output missing or of the
 *   wrong kind): that is a bug in whoever recorded it, not a linearizability violation.
 */
export function checkLinearizable(history: readonly Operation[], options?: CheckOptions): CheckResult {
  const maxSteps = options?.maxStepsPerKey ?? DEFAULT_MAX_STEPS_PER_KEY;
  history.forEach(validateOperation);
  let unknown: CheckResult | undefined;
  for (const [key, ops] of partitionByKey(history)) {
    const verdict = checkPartition(key, ops, maxSteps);
    if (verdict.result === 'illegal') return verdict;
    if (verdict.result === 'unknown' && unknown === undefined) unknown = verdict;
  }
  return unknown ?? { result: 'ok' };
}

/** A one-line, human-readable rendering of `op`, e.g. `client 2: put("k", "v") -> ok @[3, 7]`. */
export function describeOperation(op: Operation): string {
  const input = op.input;
  let call: string;
  switch (input.kind) {
    case 'put':
      call = `put(${quote(input.key)}, ${quote(input.value)})`;
      break;
    case 'get':
      call = `get(${quote(input.key)})`;
      break;
    case 'cas':
      call = `cas(${quote(input.key)}, ${quote(input.expected)} -> ${quote(input.value)})`;
      break;
  }
  const window = op.return === undefined ? `@[${op.call}, pending)` : `@[${op.call}, ${op.return}]`;
  return `client ${op.clientId}: ${call} -> ${describeOutput(op.output)} ${window}`;
}

function describeOutput(output: KvOutput | undefined): string {
  if (output === undefined) return '?';
  switch (output.kind) {
    case 'put':
      return 'ok';
    case 'get':
      return quote(output.value);
    case 'cas':
      return output.ok ? 'ok' : 'failed';
  }
}

/** Renders a register value; `null` (absent) is shown as the bare word. */
function quote(value: string | null): string {
  return value === null ? 'null' : JSON.stringify(value);
}

function validateOperation(op: Operation): void {
  const fail = (why: string): never => {
    throw new RangeError(`malformed operation (${why}): ${describeOperation(op)}`);
  };
  if (!Number.isFinite(op.call)) fail('call time is not finite');
  if (op.return === undefined) {
    if (op.output !== undefined) fail('output without a return time');
    return;
  }
  if (Number.isNaN(op.return) || op.return < op.call) fail('return precedes call');
  if (op.output === undefined) fail('return time without an output');
  else if (op.output.kind !== op.input.kind) fail('output kind differs from input kind');
}

/**
 * Groups operations by key, in first-appearance order so results are deterministic. Pending gets are
 * dropped: they observed nothing and change nothing, so they cannot constrain the search.
 */
function partitionByKey(history: readonly Operation[]): Map<string, Operation[]> {
  const partitions = new Map<string, Operation[]>();
  for (const op of history) {
    if (op.input.kind === 'get' && op.return === undefined) continue;
    let ops = partitions.get(op.input.key);
    if (ops === undefined) {
      ops = [];
      partitions.set(op.input.key, ops);
    }
    ops.push(op);
  }
  return partitions;
}

// ---------------------------------------------------------------------------------------------
// Sequential model, compiled to integers so each DFS step is a few comparisons.

const PUT = 0;
const GET = 1;
const CAS_OK = 2;
const CAS_FAILED = 3;
/** A cas whose outcome is unknown: it behaves as the register dictates, any output being acceptable. */
const CAS_UNKNOWN = 4;

/** A key partition's operations with register values interned to small integers (0 = absent). */
interface CompiledOps {
  readonly kind: Uint8Array;
  /** put/cas: the value written; get: the value observed. */
  readonly value: Int32Array;
  /** cas: the expected value. */
  readonly expected: Int32Array;
  /** Interned id -> register value. */
  readonly values: (string | null)[];
}

function compileOps(ops: readonly Operation[]): CompiledOps {
  const ids = new Map<string | null, number>([[null, 0]]);
  const values: (string | null)[] = [null];
  const intern = (v: string | null): number => {
    let id = ids.get(v);
    if (id === undefined) {
      id = values.length;
      ids.set(v, id);
      values.push(v);
    }
    return id;
  };
  const n = ops.length;
  const compiled: CompiledOps = {
    kind: new Uint8Array(n),
    value: new Int32Array(n),
    expected: new Int32Array(n),
    values,
  };
  ops.forEach((op, i) => {
    const { input, output } = op;
    if (input.kind === 'put') {
      compiled.kind[i] = PUT;
      compiled.value[i] = intern(input.value);
    } else if (input.kind === 'get') {
      compiled.kind[i] = GET;
      compiled.value[i] = intern(output?.kind === 'get' ? output.value : null);
    } else {
      compiled.kind[i] = output?.kind !== 'cas' ? CAS_UNKNOWN : output.ok ? CAS_OK : CAS_FAILED;
      compiled.value[i] = intern(input.value);
      compiled.expected[i] = intern(input.expected);
    }
  });
  return compiled;
}

/** Applies op `i` to register state `state`; returns the new state, or -1 if the output is impossible. */
function stepModel(ops: CompiledOps, i: number, state: number): number {
  const value = ops.value[i]!;
  switch (ops.kind[i]) {
    case PUT:
      return value;
    case GET:
      return value === state ? state : -1;
    case CAS_OK:
      return state === ops.expected[i] ? value : -1;
    case CAS_FAILED:
      return state !== ops.expected[i] ? state : -1;
    default:
      return state === ops.expected[i] ? value : state;
  }
}

// ---------------------------------------------------------------------------------------------
// The entry list: call/return events in time order, with O(1) removal and LIFO re-insertion.

/** Head sentinel of the entry list. */
const HEAD = 0;
const RETURN_ENTRY = 0;
const CALL_ENTRY = 1;
const PENDING_CALL_ENTRY = 2;

/**
 * Entries are numbered from 1 in time order, 0 being the head sentinel and -1 "none". A pending
 * operation returns at +infinity: it gets no return entry, so it stays a candidate from its call
 * on. (Trying pending operations at their call position, as Porcupine does, measured far faster
 * than deferring them until other candidates fail: eagerly linearized lost writes are usually
 * overwritten harmlessly, whereas deferring them makes the search commit to wrong orders first.)
 *
 * Removal leaves an entry's own links intact so that undoing removals in reverse order restores the
 * list exactly ("dancing links"), which is all a depth-first search needs.
 */
class EntryList {
  readonly next: Int32Array;
  readonly prev: Int32Array;
  /** Entry -> operation index. */
  readonly opOf: Int32Array;
  /** Entry -> RETURN_ENTRY, CALL_ENTRY or PENDING_CALL_ENTRY. */
  readonly kind: Uint8Array;
  /** Operation index -> its return entry (completed operations only). */
  private readonly returnEntry: Int32Array;

  constructor(ops: readonly Operation[]) {
    const order = sortEvents(ops);
    const size = order.length + 1;
    this.next = new Int32Array(size).fill(-1);
    this.prev = new Int32Array(size).fill(-1);
    this.opOf = new Int32Array(size);
    this.kind = new Uint8Array(size);
    this.returnEntry = new Int32Array(ops.length);
    order.forEach((event, k) => {
      const entry = k + 1;
      const op = event >> 1;
      this.opOf[entry] = op;
      this.prev[entry] = entry - 1;
      this.next[entry - 1] = entry;
      if ((event & 1) === 0) {
        this.kind[entry] = RETURN_ENTRY;
        this.returnEntry[op] = entry;
      } else {
        this.kind[entry] = ops[op]!.return === undefined ? PENDING_CALL_ENTRY : CALL_ENTRY;
      }
    });
  }

  /** Removes call entry `call` and, for a completed operation, its return entry. */
  lift(call: number): void {
    this.unlink(call);
    if (this.kind[call] === CALL_ENTRY) this.unlink(this.returnEntry[this.opOf[call]!]!);
  }

  /** Undoes the matching {@link lift}; must be called in reverse order of the lifts. */
  unlift(call: number): void {
    if (this.kind[call] === CALL_ENTRY) this.relink(this.returnEntry[this.opOf[call]!]!);
    this.relink(call);
  }

  private unlink(entry: number): void {
    const prev = this.prev[entry]!;
    const next = this.next[entry]!;
    this.next[prev] = next;
    if (next !== -1) this.prev[next] = prev;
  }

  private relink(entry: number): void {
    const next = this.next[entry]!;
    this.next[this.prev[entry]!] = entry;
    if (next !== -1) this.prev[next] = entry;
  }
}

/**
 * Orders the events (event = op * 2 + isCall; pending operations have no return event) by time. At
 * equal times: returns of ordinary ops, then calls of zero-length ops, then their returns, then
 * calls of ordinary ops, so that a return at t precedes a call at t (see the module comment).
 * Remaining ties break by op index.
 */
function sortEvents(ops: readonly Operation[]): number[] {
  const time = new Float64Array(2 * ops.length);
  const rank = new Uint8Array(2 * ops.length);
  const events: number[] = [];
  ops.forEach((op, i) => {
    const instant = op.return === op.call;
    if (op.return !== undefined) {
      events.push(2 * i);
      time[2 * i] = op.return;
      rank[2 * i] = instant ? 2 : 0;
    }
    events.push(2 * i + 1);
    time[2 * i + 1] = op.call;
    rank[2 * i + 1] = instant ? 1 : 3;
  });
  return events.sort((a, b) => time[a]! - time[b]! || rank[a]! - rank[b]! || (a >> 1) - (b >> 1));
}

// ---------------------------------------------------------------------------------------------
// The linearized set and the cache of explored configurations.

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
 * Operations are numbered completed-first, each group by call time (see {@link checkPartition}).
 * Completed operations occupy words [0, split): there a linearized set is a solid prefix plus a
 * ragged window of in-flight operations. Pending operations start at word `split`, so the many that
 * never take effect do not leave holes that would keep the completed prefix from being solid.
 */
class LinearizedSet {
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
class ConfigCache {
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

// ---------------------------------------------------------------------------------------------
// The search.

type SearchOutcome =
  | { kind: 'ok' }
  | { kind: 'illegal'; longestPrefix: number[] }
  | { kind: 'unknown'; steps: number };

/**
 * Iterative depth-first search (explicit stack: histories can be far deeper than the JS call stack).
 *
 * The candidates at any point are the calls before the first return entry in the list. A step
 * either linearizes a candidate (push), moves to the next candidate, or, on reaching that return
 * (its operation could not be linearized in time), pops the most recent choice and tries its
 * successor. The search succeeds once every completed operation is linearized: the remaining
 * pending operations may take effect after everything else, or never.
 */
class Search {
  private readonly linearized: LinearizedSet;
  private readonly cache = new ConfigCache();
  /** Per depth: the entry chosen and the state before it. */
  private readonly stackEntry: Int32Array;
  private readonly stackState: Int32Array;
  private depth = 0;
  private state = 0;
  /** Completed operations not yet linearized. */
  private remaining: number;
  private longestPrefix: number[] = [];

  constructor(
    private readonly ops: CompiledOps,
    private readonly list: EntryList,
    completed: number,
  ) {
    const n = ops.kind.length;
    this.linearized = new LinearizedSet(completed, n - completed);
    this.stackEntry = new Int32Array(n);
    this.stackState = new Int32Array(n);
    this.remaining = completed;
  }

  run(maxSteps: number): SearchOutcome {
    const { next, kind } = this.list;
    // While a completed operation remains, its return entry ends every scan before the list does.
    let entry = next[HEAD]!;
    for (let steps = 1; this.remaining > 0; steps++) {
      if (steps > maxSteps) return { kind: 'unknown', steps: maxSteps };
      if (kind[entry] !== RETURN_ENTRY) {
        entry = this.tryLinearize(entry) ? next[HEAD]! : next[entry]!;
      } else {
        if (this.depth === 0) return { kind: 'illegal', longestPrefix: this.longestPrefix };
        entry = next[this.backtrack()]!;
      }
    }
    return { kind: 'ok' };
  }

  /** Linearizes the operation of call entry `entry` if legal and not yet explored; reports success. */
  private tryLinearize(entry: number): boolean {
    const op = this.list.opOf[entry]!;
    const newState = stepModel(this.ops, op, this.state);
    if (newState < 0) return false;
    this.linearized.toggle(op);
    if (!this.cache.add(this.linearized, newState)) {
      this.linearized.toggle(op);
      return false;
    }
    this.stackEntry[this.depth] = entry;
    this.stackState[this.depth++] = this.state;
    this.state = newState;
    if (this.list.kind[entry] === CALL_ENTRY) this.remaining--;
    this.list.lift(entry);
    return true;
  }

  /** Undoes the most recent choice, remembering the deepest prefix for the explanation. */
  private backtrack(): number {
    const { opOf, kind } = this.list;
    if (this.depth > this.longestPrefix.length) {
      this.longestPrefix = Array.from(this.stackEntry.subarray(0, this.depth), (e) => opOf[e]!);
    }
    const entry = this.stackEntry[--this.depth]!;
    this.state = this.stackState[this.depth]!;
    this.linearized.toggle(opOf[entry]!);
    if (kind[entry] === CALL_ENTRY) this.remaining++;
    this.list.unlift(entry);
    return entry;
  }
}

function checkPartition(key: string, unsorted: readonly Operation[], maxSteps: number): CheckResult {
  // Completed first, each group by call time: keeps linearized sets compact (see LinearizedSet).
  const ops = [...unsorted].sort(
    (a, b) => Number(a.return === undefined) - Number(b.return === undefined) || a.call - b.call,
  );
  const completed = ops.filter((op) => op.return !== undefined).length;
  const compiled = compileOps(ops);
  const outcome = new Search(compiled, new EntryList(ops), completed).run(maxSteps);
  switch (outcome.kind) {
    case 'ok':
      return { result: 'ok' };
    case 'unknown':
      return {
        result: 'unknown',
        key,
        reason: `search of the ${ops.length} operations on key ${quote(key)} exceeded ${outcome.steps} steps`,
      };
    case 'illegal':
      return { result: 'illegal', key, detail: explainFailure(key, ops, compiled, outcome.longestPrefix) };
  }
}

// ---------------------------------------------------------------------------------------------
// Explanations.

const MAX_LISTED = 20;
const MAX_FULL_PARTITION = 40;

/**
 * Explains an illegal partition from the longest linearizable prefix: the state it leaves, the
 * first operation that returned without being linearizable, and the candidates that could have
 * gone next. Replaying on a fresh entry list keeps the search itself free of bookkeeping.
 */
function explainFailure(
  key: string,
  ops: readonly Operation[],
  compiled: CompiledOps,
  prefix: readonly number[],
): string {
  const inPrefix = new Uint8Array(ops.length);
  let state = 0;
  for (const op of prefix) {
    inPrefix[op] = 1;
    state = stepModel(compiled, op, state);
  }
  const list = new EntryList(ops);
  let blocking = -1;
  const candidates: number[] = [];
  for (let entry = 1; entry < list.kind.length && blocking === -1; entry++) {
    const op = list.opOf[entry]!;
    if (inPrefix[op] === 1) continue;
    if (list.kind[entry] === RETURN_ENTRY) blocking = op;
    else candidates.push(op);
  }
  const lines = [
    `key ${quote(key)}: no linearization exists for its ${ops.length} operations.`,
    `Longest linearizable prefix found (${prefix.length} ops), leaving the value ${quote(compiled.values[state] ?? null)}:`,
    ...listOps(ops, prefix),
  ];
  if (blocking !== -1) {
    lines.push(
      'From there, every choice among the operations invoked before the next return reaches a dead end:',
      ...listOps(ops, candidates),
      `where this one must take effect before it returns: ${describeOperation(ops[blocking]!)}`,
    );
  }
  if (ops.length <= MAX_FULL_PARTITION) {
    const all = ops.map((_, i) => i);
    lines.push(`All operations on ${quote(key)}:`, ...listOps(ops, all, MAX_FULL_PARTITION));
  }
  return lines.join('\n');
}

/** Indented descriptions of `indices`, keeping only the last `limit` of a long list. */
function listOps(ops: readonly Operation[], indices: readonly number[], limit = MAX_LISTED): string[] {
  const shown = indices.slice(-limit).map((i) => `  ${describeOperation(ops[i]!)}`);
  if (indices.length > limit) shown.unshift(`  ... ${indices.length - limit} earlier`);
  return shown;
}
