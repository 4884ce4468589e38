/**
 * etcd requests as the proto loader hands them to handlers (see proto.ts): snake_case
 * fields, `bytes` as Buffers, 64-bit integers as decimal strings, enums as their names,
 * defaults filled in. The conversions to the KV data model the KV, Watch and Lease services
 * share live here. (Responses: codec.ts encodes the hot ones; the proto loader takes numbers
 * for 64-bit fields in the others.)
 */
import { Buffer } from 'node:buffer';
import type { SortOrder, SortTarget } from '../kv/index.js';
import { etcdError } from './errors.js';

/** A 64-bit integer field as decoded (decimal string) or as encoded (number). */
export type Int64 = string | number;

/** A decoded 64-bit integer as a number (exact below 2^53; etcd's revisions and counts stay far below). */
export function int64(value: Int64 | null | undefined): number {
  if (value === undefined || value === null || value === '0' || value === 0) return 0;
  return Number(value);
}

/**
 * A decoded lease or member id, or -1 when it cannot be one of Flotilla's (negative, or
 * beyond 2^53 where a JavaScript number loses precision; Flotilla's ids are below 2^48).
 */
export function id64(value: Int64 | null | undefined): number {
  const n = int64(value);
  return Number.isSafeInteger(n) && n >= 0 ? n : -1;
}

const EMPTY = new Uint8Array(0);

/**
 * etcd's range end for `key`, ready for the KV layer: empty (one key) and `\0` (every key
 * from `key`) as given; an end that sorts before `key` becomes `key`, the empty range, which
 * is what etcd makes of it (it returns, deletes, compares and watches nothing) where the KV
 * layer would refuse it.
 */
export function rangeEndOf(key: Uint8Array, rangeEnd: Uint8Array | null | undefined): Uint8Array {
  if (rangeEnd === undefined || rangeEnd === null || rangeEnd.length === 0) return EMPTY;
  if (rangeEnd.length === 1 && rangeEnd[0] === 0) return rangeEnd;
  return Buffer.compare(rangeEnd, key) < 0 ? key : rangeEnd;
}

/** Throws etcd's `key is not provided` for an empty key. */
export function requireKey(key: Uint8Array | null | undefined): Uint8Array {
  if (key === undefined || key === null || key.length === 0) throw etcdError('emptyKey');
  return key;
}

// Enum names as etcd's rpc.proto spells them and as etcd3's copy (the one in proto/etcd) does.
const SORT_ORDERS: ReadonlyMap<string | number, SortOrder> = new Map<string | number, SortOrder>([
  ['None', 'NONE'],
  ['NONE', 'NONE'],
  [0, 'NONE'],
  ['Ascend', 'ASCEND'],
  ['ASCEND', 'ASCEND'],
  [1, 'ASCEND'],
  ['Descend', 'DESCEND'],
  ['DESCEND', 'DESCEND'],
  [2, 'DESCEND'],
]);
const SORT_TARGETS: ReadonlyMap<string | number, SortTarget> = new Map<string | number, SortTarget>([
  ['Key', 'KEY'],
  ['KEY', 'KEY'],
  [0, 'KEY'],
  ['Version', 'VERSION'],
  ['VERSION', 'VERSION'],
  [1, 'VERSION'],
  ['Create', 'CREATE'],
  ['CREATE', 'CREATE'],
  [2, 'CREATE'],
  ['Mod', 'MOD'],
  ['MOD', 'MOD'],
  [3, 'MOD'],
  ['Value', 'VALUE'],
  ['VALUE', 'VALUE'],
  [4, 'VALUE'],
]);

/** A decoded sort order; etcd's `invalid sort option` for an unknown one. */
export function sortOrderOf(value: string | number | null | undefined): SortOrder {
  const order = SORT_ORDERS.get(value ?? 0);
  if (order === undefined) throw etcdError('invalidSortOption');
  return order;
}

/** A decoded sort target; etcd's `invalid sort option` for an unknown one. */
export function sortTargetOf(value: string | number | null | undefined): SortTarget {
  const target = SORT_TARGETS.get(value ?? 0);
  if (target === undefined) throw etcdError('invalidSortOption');
  return target;
}

/** Upper-case name of a decoded enum value (`Equal` and `EQUAL` both give `EQUAL`, `NotEqual` gives `NOT_EQUAL`). */
export function enumName(value: string | number | null | undefined, names: readonly string[]): string {
  if (typeof value === 'number') return names[value] ?? String(value);
  if (value === undefined || value === null) return names[0] ?? '';
  return value.replace(/([a-z])([A-Z])/g, '$1_$2').toUpperCase();
}
