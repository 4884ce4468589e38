/**
 * The sequential model a history is checked against: a register per key, compiled to integers so
 * each search step is a few comparisons.
 */
import type { Operation } from './linearizability-history.js';

const PUT = 0;
const GET = 1;
const CAS_OK = 2;
const CAS_FAILED = 3;
/** A cas whose outcome is unknown: it behaves as the register dictates, any output being acceptable. */
const CAS_UNKNOWN = 4;

/** A key partition's operations with register values interned to small integers (0 = absent). */
export interface CompiledOps {
  readonly kind: Uint8Array;
  /** put/cas: the value written; get: the value observed. */
  readonly value: Int32Array;
  /** cas: the expected value. */
  readonly expected: Int32Array;
  /** Interned id -> register value. */
  readonly values: (string | null)[];
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
    default:
      return state === ops.expected[i] ? value : state;
  }
}
