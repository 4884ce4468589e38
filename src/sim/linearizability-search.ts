/** The depth-first search for a linearization of one key partition. */
import { ConfigCache, LinearizedSet } from './linearizability-cache.js';
import { CALL_ENTRY, type EntryList, HEAD, RETURN_ENTRY } from './linearizability-entries.js';
import { type CompiledOps, stepModel } from './linearizability-model.js';

/** How a search ended: a linearization exists, none does, or the step budget ran out. */
export type SearchOutcome =
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
export class Search {
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
