/**
 * Linearizability checker for histories of a key-value register store, and of counters (add n
 * returning the new value, read returning the value: the simulator's user-level state machine).
 *
 * Implements the Wing & Gong / Lowe search (the algorithm behind Porcupine): the history becomes a
 * time-ordered doubly linked list of call and return entries; a depth-first search repeatedly picks
 * an operation whose call precedes the first remaining return, applies it to a sequential model and
 * "lifts" it out of the list, backtracking when a return is reached before its operation could be
 * linearized. A cache of (set of linearized operations, model state) prunes configurations already
 * explored, which is what keeps the search near-linear on well-behaved histories.
 *
 * Keys are independent registers (or counters), so the history is partitioned per key (P-compositionality) and
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
 *
 * This module is the entry point; the parts live beside it: the history and its partition by key
 * (`linearizability-history.ts`), the register model (`-model.ts`), the entry list (`-entries.ts`),
 * the linearized set and configuration cache (`-cache.ts`), the search (`-search.ts`) and the
 * explanation of a failure (`-explain.ts`).
 */

import { EntryList } from './linearizability-entries.js';
import { explainFailure } from './linearizability-explain.js';
import { type Operation, partitionByKey, quote, validateOperation } from './linearizability-history.js';
import { compileOps } from './linearizability-model.js';
import { Search } from './linearizability-search.js';

export {
  type CounterInput,
  type CounterOutput,
  describeOperation,
  type KvInput,
  type KvOutput,
  type Operation,
} from './linearizability-history.js';

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
 * start absent (put, get, cas) and counters that start at 0 (add, read). Operations with an unknown outcome may take effect at any point after their call,
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

/** Searches one key's operations for a linearization and turns the outcome into a verdict. */
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
