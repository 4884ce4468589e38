/** Explanations of an illegal key partition, from the longest linearizable prefix the search found. */
import { EntryList, RETURN_ENTRY } from './linearizability-entries.js';
import { describeOperation, type Operation, quote } from './linearizability-history.js';
import { type CompiledOps, describeState, stepModel } from './linearizability-model.js';

const MAX_LISTED = 20;
const MAX_FULL_PARTITION = 40;

/**
 * Explains an illegal partition from the longest linearizable prefix: the state it leaves, the
 * first operation that returned without being linearizable, and the candidates that could have
 * gone next. Replaying on a fresh entry list keeps the search itself free of bookkeeping.
 */
export function explainFailure(
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
    `Longest linearizable prefix found (${prefix.length} ops), leaving the value ${describeState(compiled, state)}:`,
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
