/**
 * What a range returns once its keys are known: etcd's applier logic for limit, filters,
 * sort, `more`, `count`, `keysOnly` and `countOnly` (etcdserver `Range`).
 */

import { assertNever } from '../raft/assert.js';
import { compareBytes, EMPTY_BYTES } from './bytes.js';
import type { KeyValue, RangeRequest, SortOrder, SortTarget } from './types.js';

/** A key in a range, with its visible kv or a way to load it. */
export interface RangeItem {
  readonly key: string;
}

/** A range result without its header revision. */
export interface RangeSelection {
  readonly kvs: readonly KeyValue[];
  readonly more: boolean;
  readonly count: number;
}

/**
 * Applies `request`'s limit, filters and sort to `items` (the keys of the range visible at
 * the read revision, in byte order), loading kvs only where needed.
 */
export function selectRange<Item extends RangeItem>(
  items: readonly Item[],
  request: RangeRequest,
  load: (item: Item) => KeyValue,
): RangeSelection {
  const count = items.length;
  if (request.countOnly === true) return { kvs: [], more: false, count };
  const limit = request.limit ?? 0;
  const order = effectiveOrder(request.sortTarget ?? 'KEY', request.sortOrder ?? 'NONE');
  let kvs: KeyValue[];
  let more = false;
  if (order === 'NONE' && !hasFilters(request) && limit > 0) {
    // Key order is index order: load only the kvs returned.
    kvs = items.slice(0, limit).map(load);
    more = count > limit;
  } else {
    kvs = items.map(load).filter((kv) => passesFilters(kv, request));
    if (order !== 'NONE') sortKvs(kvs, request.sortTarget ?? 'KEY', order);
    if (limit > 0 && kvs.length > limit) {
      kvs.length = limit;
      more = true;
    }
  }
  if (request.keysOnly === true) kvs = kvs.map((kv) => ({ ...kv, value: EMPTY_BYTES }));
  return { kvs, more, count };
}

/** etcd's defaults: a non-key target sorts ascending; ascending by key is the natural order. */
function effectiveOrder(target: SortTarget, order: SortOrder): SortOrder {
  if (target !== 'KEY' && order === 'NONE') return 'ASCEND';
  if (target === 'KEY' && order === 'ASCEND') return 'NONE';
  return order;
}

function hasFilters(request: RangeRequest): boolean {
  return (
    (request.minModRevision ?? 0) !== 0 ||
    (request.maxModRevision ?? 0) !== 0 ||
    (request.minCreateRevision ?? 0) !== 0 ||
    (request.maxCreateRevision ?? 0) !== 0
  );
}

function passesFilters(kv: KeyValue, request: RangeRequest): boolean {
  const { minModRevision = 0, maxModRevision = 0, minCreateRevision = 0, maxCreateRevision = 0 } = request;
  if (maxModRevision !== 0 && kv.modRevision > maxModRevision) return false;
  if (minModRevision !== 0 && kv.modRevision < minModRevision) return false;
  if (maxCreateRevision !== 0 && kv.createRevision > maxCreateRevision) return false;
  if (minCreateRevision !== 0 && kv.createRevision < minCreateRevision) return false;
  return true;
}

/** Sorts in place; the sort is stable, so ties keep key order in both directions. */
function sortKvs(kvs: KeyValue[], target: SortTarget, order: 'ASCEND' | 'DESCEND'): void {
  const sign = order === 'ASCEND' ? 1 : -1;
  const compare = comparator(target);
  kvs.sort((a, b) => sign * compare(a, b));
}

function comparator(target: SortTarget): (a: KeyValue, b: KeyValue) => number {
  switch (target) {
    case 'KEY':
      return (a, b) => compareBytes(a.key, b.key);
    case 'VERSION':
      return (a, b) => a.version - b.version;
    case 'CREATE':
      return (a, b) => a.createRevision - b.createRevision;
    case 'MOD':
      return (a, b) => a.modRevision - b.modRevision;
    case 'VALUE':
      return (a, b) => compareBytes(a.value, b.value);
    default:
      return assertNever(target, 'sort target');
  }
}
