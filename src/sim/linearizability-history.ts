/**
 * Histories as clients observe them, of a key-value register store or of counters: the
 * operation types, their one-line descriptions, validation of a recorded history, and its
 * partition by key (a counter is a key of its own).
 */

/** A client request. `expected: null` on a cas means "succeed only if the key is absent". */
export type KvInput =
  | { kind: 'put'; key: string; value: string }
  | { kind: 'get'; key: string }
  | { kind: 'cas'; key: string; expected: string | null; value: string };

/** A response. Put always succeeds once it completes; a get returns `null` for an absent key. */
export type KvOutput = { kind: 'put' } | { kind: 'get'; value: string | null } | { kind: 'cas'; ok: boolean };

/** A counter request: add `n` (a positive integer) to the counter `key`, or read it. */
export type CounterInput = { kind: 'add'; key: string; n: number } | { kind: 'read'; key: string };

/** A counter response: the value the add produced, or the value read. */
export type CounterOutput = { kind: 'add'; value: number } | { kind: 'read'; value: number };

/** One operation of a concurrent history, as observed by a client. */
export interface Operation {
  /** The client that issued the operation (used only for descriptions, not for checking). */
  clientId: number;
  input: KvInput | CounterInput;
  /** Logical time the client invoked the operation. */
  call: number;
  /**
   * Logical time the response was received; undefined if the outcome is unknown (timed out / client
   * gave up): the op may or may not have taken effect, at any time after `call`.
   */
  return: number | undefined;
  /** undefined iff return is undefined. */
  output: KvOutput | CounterOutput | undefined;
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
    case 'add':
      call = `add(${quote(input.key)}, ${input.n})`;
      break;
    case 'read':
      call = `read(${quote(input.key)})`;
      break;
  }
  const window = op.return === undefined ? `@[${op.call}, pending)` : `@[${op.call}, ${op.return}]`;
  return `client ${op.clientId}: ${call} -> ${describeOutput(op.output)} ${window}`;
}

function describeOutput(output: KvOutput | CounterOutput | undefined): string {
  if (output === undefined) return '?';
  switch (output.kind) {
    case 'put':
      return 'ok';
    case 'get':
      return quote(output.value);
    case 'cas':
      return output.ok ? 'ok' : 'failed';
    case 'add':
    case 'read':
      return String(output.value);
  }
}

/** Renders a register value; `null` (absent) is shown as the bare word. */
export function quote(value: string | null): string {
  return value === null ? 'null' : JSON.stringify(value);
}

/**
 * Throws a RangeError if `op` is malformed (return before call, output missing or of the wrong
 * kind): a bug in whoever recorded the history.
 */
export function validateOperation(op: Operation): void {
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
 * dropped, as are pending counter reads: they observed nothing and change nothing, so they cannot constrain the search.
 */
export function partitionByKey(history: readonly Operation[]): Map<string, Operation[]> {
  const partitions = new Map<string, Operation[]>();
  for (const op of history) {
    if ((op.input.kind === 'get' || op.input.kind === 'read') && op.return === undefined) continue;
    let ops = partitions.get(op.input.key);
    if (ops === undefined) {
      ops = [];
      partitions.set(op.input.key, ops);
    }
    ops.push(op);
  }
  return partitions;
}
