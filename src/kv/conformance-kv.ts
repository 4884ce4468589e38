/** Conformance tests: revisions, versions, puts, deletes and every range option. */

import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  assertKvError,
  bytes,
  FROM_KEY,
  type KvDriver,
  text,
  type WithDriver,
} from './conformance-harness.js';
import type { RangeRequest } from './types.js';

/** Revisions, versions, put and delete options. */
export function registerBasicTests(withDriver: WithDriver): void {
  test(
    'an empty store is at revision 1 and holds nothing',
    withDriver((driver) => {
      const { kv } = driver;
      assert.deepEqual([kv.appliedIndex, kv.revision, kv.compactRevision], [0, 1, 0]);
      assert.deepEqual(kv.range({ key: FROM_KEY, rangeEnd: FROM_KEY }), {
        revision: 1,
        kvs: [],
        more: false,
        count: 0,
      });
    }),
  );

  test(
    'puts and deletes advance revisions and versions like etcd',
    withDriver((driver) => {
      assert.equal(driver.put('a', '1'), 2);
      assert.deepEqual(driver.get('a'), kvOf('a', '1', 2, 2, 1));
      assert.equal(driver.put('a', '2'), 3);
      assert.deepEqual(driver.get('a'), kvOf('a', '2', 2, 3, 2));
      assert.equal(driver.put('b', 'x'), 4);
      assert.equal(driver.del('a'), 1);
      assert.equal(driver.kv.revision, 5);
      assert.equal(driver.get('a'), undefined);
      assert.equal(driver.del('a'), 0, 'deleting a missing key deletes nothing');
      assert.equal(driver.kv.revision, 5, 'a write that changes nothing keeps the revision');
      assert.equal(driver.put('a', '3'), 6);
      assert.deepEqual(driver.get('a'), kvOf('a', '3', 6, 6, 1), 're-created: version 1, new createRevision');
      assert.deepEqual(driver.get('a', 3), kvOf('a', '2', 2, 3, 2));
      assert.deepEqual(driver.get('a', 2), kvOf('a', '1', 2, 2, 1));
      assert.equal(driver.get('a', 5), undefined);
      assert.equal(driver.kv.appliedIndex, 6);
    }),
  );

  test(
    'entries without a command advance only the applied index',
    withDriver((driver) => {
      assert.deepEqual(driver.applyAll([null, null]), [null, null]);
      assert.deepEqual([driver.kv.appliedIndex, driver.kv.revision], [2, 1]);
    }),
  );

  test(
    'entries must follow the applied index without a gap',
    withDriver((driver) => {
      driver.put('a', '1');
      assert.throws(() => driver.kv.applyBatch([{ index: 5, command: null }]), /applied after entry 1/);
    }),
  );

  registerPutDeleteTests(withDriver);
}

/** Put options and delete ranges. */
function registerPutDeleteTests(withDriver: WithDriver): void {
  test(
    'put returns the previous kv on request and honours ignoreValue / ignoreLease',
    withDriver((driver) => {
      const first = driver.ok({ type: 'put', key: bytes('k'), value: bytes('v1'), prevKv: true });
      assert.equal(first.prevKv, undefined, 'no prevKv for a new key');
      const second = driver.ok({ type: 'put', key: bytes('k'), value: bytes('v2'), prevKv: true });
      assert.deepEqual(second.prevKv, kvOf('k', 'v1', 2, 2, 1));
      driver.ok({ type: 'leaseGrant', id: 9, ttlSeconds: 60, nowMs: 0 });
      driver.ok({ type: 'put', key: bytes('k'), value: bytes('v3'), lease: 9 });
      driver.ok({ type: 'put', key: bytes('k'), value: new Uint8Array(0), ignoreValue: true });
      assert.deepEqual(
        driver.get('k'),
        kvOf('k', 'v3', 2, 5, 4, 0),
        'ignoreValue keeps the value, not the lease',
      );
      driver.ok({ type: 'put', key: bytes('k'), value: bytes('v4'), lease: 9 });
      driver.ok({ type: 'put', key: bytes('k'), value: bytes('v5'), ignoreLease: true });
      assert.deepEqual(driver.get('k'), kvOf('k', 'v5', 2, 7, 6, 9), 'ignoreLease keeps the lease');
    }),
  );

  test(
    'put errors: ignore flags on a missing key, unknown lease, value with ignoreValue',
    withDriver((driver) => {
      const put = { type: 'put', key: bytes('m'), value: new Uint8Array(0) } as const;
      driver.fail({ ...put, ignoreValue: true }, 'KEY_NOT_FOUND');
      driver.fail({ ...put, ignoreLease: true }, 'KEY_NOT_FOUND');
      driver.fail({ ...put, lease: 42 }, 'LEASE_NOT_FOUND');
      driver.put('m', 'x');
      driver.fail({ ...put, value: bytes('y'), ignoreValue: true }, 'INVALID_ARGUMENT');
      driver.fail({ ...put, lease: 1, ignoreLease: true }, 'INVALID_ARGUMENT');
      assert.equal(driver.kv.revision, 2);
    }),
  );

  test(
    'deleteRange deletes a range in one revision and returns the deleted kvs',
    withDriver((driver) => {
      for (const key of ['a', 'b', 'c', 'd']) driver.put(key, key.toUpperCase());
      const response = driver.ok({
        type: 'deleteRange',
        key: bytes('a'),
        rangeEnd: bytes('c'),
        prevKv: true,
      });
      assert.equal(response.deleted, 2);
      assert.equal(response.revision, 6);
      assert.deepEqual(response.prevKvs, [kvOf('a', 'A', 2, 2, 1), kvOf('b', 'B', 3, 3, 1)]);
      const silent = driver.ok({ type: 'deleteRange', key: bytes('c') });
      assert.deepEqual(silent.prevKvs, [], 'no prevKvs unless asked');
      assert.equal(driver.del('a', '\0'), 1, 'from key: only d is left');
      assert.equal(driver.kv.revision, 8);
      assert.equal(driver.kv.range({ key: FROM_KEY, rangeEnd: FROM_KEY }).count, 0);
    }),
  );
}

/** A kv for assertions. */
export function kvOf(key: string, value: string, create: number, mod: number, version: number, lease = 0) {
  return { key: bytes(key), createRevision: create, modRevision: mod, version, value: bytes(value), lease };
}

/** a(c2 m2 v1 "v3"), b(c3 m5 v2 "v4"), c(c4 m4 v1 "v2"), d(c6 m6 v1 "v0"); revision 6. */
function fillRangeFixture(driver: KvDriver): void {
  driver.put('a', 'v3');
  driver.put('b', 'v1');
  driver.put('c', 'v2');
  driver.put('b', 'v4');
  driver.put('d', 'v0');
}

const ALL: RangeRequest = { key: FROM_KEY, rangeEnd: FROM_KEY };

/** Every range option. */
export function registerRangeTests(withDriver: WithDriver): void {
  test(
    'range ends: single key, [key, end), from key, everything, empty',
    withDriver((driver) => {
      fillRangeFixture(driver);
      assert.deepEqual(driver.keys({ key: bytes('b') }), ['b']);
      assert.deepEqual(driver.keys({ key: bytes('b'), rangeEnd: new Uint8Array(0) }), ['b']);
      assert.deepEqual(driver.keys({ key: bytes('bb') }), []);
      assert.deepEqual(driver.keys({ key: bytes('b'), rangeEnd: bytes('d') }), ['b', 'c']);
      assert.deepEqual(driver.keys({ key: bytes('b'), rangeEnd: FROM_KEY }), ['b', 'c', 'd']);
      assert.deepEqual(driver.keys(ALL), ['a', 'b', 'c', 'd']);
      assert.deepEqual(driver.keys({ key: bytes('b'), rangeEnd: bytes('b') }), []);
      assert.deepEqual(driver.keys({ key: bytes('a'), rangeEnd: bytes('a\0') }), ['a']);
    }),
  );

  test(
    'limit, more, count, keysOnly, countOnly',
    withDriver((driver) => {
      fillRangeFixture(driver);
      const limited = driver.kv.range({ ...ALL, limit: 2 });
      assert.deepEqual(
        limited.kvs.map((kv) => text(kv.key)),
        ['a', 'b'],
      );
      assert.deepEqual([limited.more, limited.count, limited.revision], [true, 4, 6]);
      assert.equal(driver.kv.range({ ...ALL, limit: 4 }).more, false);
      const keysOnly = driver.kv.range({ ...ALL, keysOnly: true });
      assert.deepEqual(keysOnly.kvs[1], { ...kvOf('b', '', 3, 5, 2) });
      assert.deepEqual(driver.kv.range({ ...ALL, countOnly: true, limit: 1 }), {
        revision: 6,
        kvs: [],
        more: false,
        count: 4,
      });
    }),
  );

  registerRangeSortFilterTests(withDriver);
}

/** Range sorting, filters and historical reads. */
function registerRangeSortFilterTests(withDriver: WithDriver): void {
  test(
    'sorts by every target in both orders (ties keep key order)',
    withDriver((driver) => {
      fillRangeFixture(driver);
      const sorted = (sortTarget: RangeRequest['sortTarget'], sortOrder: RangeRequest['sortOrder']) =>
        driver.keys({ ...ALL, ...(sortTarget ? { sortTarget } : {}), ...(sortOrder ? { sortOrder } : {}) });
      assert.deepEqual(sorted('KEY', 'DESCEND'), ['d', 'c', 'b', 'a']);
      assert.deepEqual(sorted('KEY', 'ASCEND'), ['a', 'b', 'c', 'd']);
      assert.deepEqual(sorted('VERSION', 'ASCEND'), ['a', 'c', 'd', 'b']);
      assert.deepEqual(
        sorted('VERSION', 'NONE'),
        ['a', 'c', 'd', 'b'],
        'a non-key target defaults to ascending',
      );
      assert.deepEqual(sorted('VERSION', 'DESCEND'), ['b', 'a', 'c', 'd']);
      assert.deepEqual(sorted('CREATE', 'DESCEND'), ['d', 'c', 'b', 'a']);
      assert.deepEqual(sorted('MOD', 'ASCEND'), ['a', 'c', 'b', 'd']);
      assert.deepEqual(sorted('VALUE', 'ASCEND'), ['d', 'c', 'a', 'b']);
      assert.deepEqual(sorted('VALUE', 'DESCEND'), ['b', 'a', 'c', 'd']);
      const top = driver.kv.range({ ...ALL, sortTarget: 'MOD', sortOrder: 'DESCEND', limit: 2 });
      assert.deepEqual([top.kvs.map((kv) => text(kv.key)), top.more, top.count], [['d', 'b'], true, 4]);
    }),
  );

  test(
    'filters on mod and create revisions (count ignores filters, like etcd)',
    withDriver((driver) => {
      fillRangeFixture(driver);
      assert.deepEqual(driver.keys({ ...ALL, minModRevision: 5 }), ['b', 'd']);
      assert.deepEqual(driver.keys({ ...ALL, maxModRevision: 4 }), ['a', 'c']);
      assert.deepEqual(driver.keys({ ...ALL, minCreateRevision: 4 }), ['c', 'd']);
      assert.deepEqual(driver.keys({ ...ALL, maxCreateRevision: 3 }), ['a', 'b']);
      const filtered = driver.kv.range({ ...ALL, minModRevision: 4, limit: 1 });
      assert.deepEqual(
        [filtered.kvs.map((kv) => text(kv.key)), filtered.more, filtered.count],
        [['b'], true, 4],
      );
    }),
  );

  test(
    'reads at an older revision; future and compacted revisions fail',
    withDriver((driver) => {
      fillRangeFixture(driver);
      const old = driver.kv.range({ ...ALL, revision: 4 });
      assert.deepEqual(
        old.kvs.map((kv) => `${text(kv.key)}=${text(kv.value)}`),
        ['a=v3', 'b=v1', 'c=v2'],
      );
      assert.equal(old.revision, 6, 'the header revision is the current one');
      assertKvError(() => driver.kv.range({ ...ALL, revision: 7 }), 'FUTURE_REV');
      driver.ok({ type: 'compact', revision: 3 });
      assertKvError(() => driver.kv.range({ ...ALL, revision: 2 }), 'COMPACTED');
      assert.deepEqual(driver.keys({ ...ALL, revision: 3 }), ['a', 'b']);
      const range = driver.ok({ type: 'range', ...ALL, revision: 5, limit: 1 });
      assert.deepEqual([range.kvs.length, range.more, range.count, range.revision], [1, true, 3, 6]);
    }),
  );
}
