/**
 * The sequential models a history is checked against, compiled to integers so each search step
 * is a few comparisons: a register per key (the state is the interned value), or a counter per
 * key (the state is the counter's value). A key is one or the other.
 */
import type { Operation } from './linearizability-history.js';

const PUT = 0;
const GET = 1;
const CAS_OK = 2;
const CAS_FAILED = 3;
/** A cas whose outcome is unknown: it behaves as the register dictates, any output being acceptable. */
const CAS_UNKNOWN = 4;
/** A counter add that returned the value it produced, in `expected`. */
const ADD = 5;
/** An add whose outcome is unknown: it adds, any output being acceptable. */
const ADD_UNKNOWN = 6;
/** A counter read of the value in `value`. */
const READ = 7;

/**
 * A key partition's operations with register values interned to small integers (0 = absent),
 * or a counter's operations with their numbers as they are.
 */
export interface CompiledOps {
  readonly kind: Uint8Array;
  /** put/cas: the value written; get: the value observed; add: the amount; read: the value read. */
  readonly value: Int32Array;
  /** cas: the expected value; add: the value it returned. */
  readonly expected: Int32Array;
  /** Interned id -> register value (registers only). */
  readonly values: (string | null)[];
  /** Whether the key is a counter (its state is the counter's value, starting at 0). */
  readonly counter: boolean;
}

/** Compiles a key partition's operations, interning their register values. */
export function compileOps(ops: readonly Operation[]): CompiledOps {
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
  const counter = ops.some((op) => isCounterOp(op));
  if (ops.some((op) => isCounterOp(op) !== counter)) {
    throw new RangeError(`key ${JSON.stringify(ops[0]?.input.key)} has both register and counter operations`);
  }
  const compiled: CompiledOps = {
    kind: new Uint8Array(n),
    value: new Int32Array(n),
    expected: new Int32Array(n),
    values,
    counter,
  };
  ops.forEach((op, i) => {
    const { input, output } = op;
    if (input.kind === 'add') {
      compiled.kind[i] = output?.kind === 'add' ? ADD : ADD_UNKNOWN;
      compiled.value[i] = input.n;
      compiled.expected[i] = output?.kind === 'add' ? output.value : 0;
    } else if (input.kind === 'read') {
      compiled.kind[i] = READ;
      compiled.value[i] = output?.kind === 'read' ? output.value : 0;
    } else if (input.kind === 'put') {
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
export function stepModel(ops: CompiledOps, i: number, state: number): number {
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
    case CAS_UNKNOWN:
      return state === ops.expected[i] ? value : state;
    case ADD:
      return state + value === ops.expected[i] ? state + value : -1;
    case ADD_UNKNOWN:
      return state + value;
    default:
      return value === state ? state : -1;
  }
}

/** The model state `state` as the history shows it: a register value, or a counter's value. */
export function describeState(ops: CompiledOps, state: number): string {
  if (ops.counter) return String(state);
  const value = ops.values[state] ?? null;
  return value === null ? 'null' : JSON.stringify(value);
}

function isCounterOp(op: Operation): boolean {
  return op.input.kind === 'add' || op.input.kind === 'read';
}
