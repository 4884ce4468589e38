/** Conformance tests: transactions, compaction, limits and bad input. */

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { decodeCommand } from './codec.js';
import {
  assertKvError,
  bytes,
  FROM_KEY,
  type KvDriver,
  text,
  type WithDriver,
} from './conformance-harness.js';
import { isKvError } from './errors.js';
import type { Compare, KvCommand, RequestOp } from './types.js';

const put = (key: string, value: string): RequestOp => ({
  type: 'put',
  key: bytes(key),
  value: bytes(value),
});

/** A txn that puts r=s on success and r=f on failure; returns whether it succeeded. */
function branchTaken(driver: KvDriver, compare: Compare[]): boolean {
  const response = driver.ok({ type: 'txn', compare, success: [put('r', 's')], failure: [put('r', 'f')] });
  assert.equal(driver.value('r'), response.succeeded ? 's' : 'f');
  return response.succeeded;
}

/** k: value "n", version 2, create 2, mod 3, no lease. */
const COMPARE_TABLE: readonly [Compare, boolean][] = [
  [{ key: bytes('k'), target: 'VERSION', result: 'EQUAL', value: 2 }, true],
  [{ key: bytes('k'), target: 'VERSION', result: 'GREATER', value: 1 }, true],
  [{ key: bytes('k'), target: 'VERSION', result: 'GREATER', value: 2 }, false],
  [{ key: bytes('k'), target: 'VERSION', result: 'LESS', value: 3 }, true],
  [{ key: bytes('k'), target: 'VERSION', result: 'NOT_EQUAL', value: 2 }, false],
  [{ key: bytes('k'), target: 'CREATE', result: 'EQUAL', value: 2 }, true],
  [{ key: bytes('k'), target: 'CREATE', result: 'LESS', value: 2 }, false],
  [{ key: bytes('k'), target: 'MOD', result: 'EQUAL', value: 3 }, true],
  [{ key: bytes('k'), target: 'MOD', result: 'GREATER', value: 2 }, true],
  [{ key: bytes('k'), target: 'MOD', result: 'NOT_EQUAL', value: 4 }, true],
  [{ key: bytes('k'), target: 'VALUE', result: 'EQUAL', value: bytes('n') }, true],
  [{ key: bytes('k'), target: 'VALUE', result: 'GREATER', value: bytes('m') }, true],
  [{ key: bytes('k'), target: 'VALUE', result: 'LESS', value: bytes('nn') }, true],
  [{ key: bytes('k'), target: 'VALUE', result: 'NOT_EQUAL', value: bytes('n') }, false],
  [{ key: bytes('k'), target: 'LEASE', result: 'EQUAL', value: 0 }, true],
  [{ key: bytes('k'), target: 'LEASE', result: 'LESS', value: 1 }, true],
  // A missing key compares as all zeros, but a VALUE compare on it is false.
  [{ key: bytes('x'), target: 'VERSION', result: 'EQUAL', value: 0 }, true],
  [{ key: bytes('x'), target: 'CREATE', result: 'EQUAL', value: 0 }, true],
  [{ key: bytes('x'), target: 'MOD', result: 'GREATER', value: 0 }, false],
  [{ key: bytes('x'), target: 'VALUE', result: 'EQUAL', value: new Uint8Array(0) }, false],
  [{ key: bytes('x'), target: 'VALUE', result: 'NOT_EQUAL', value: bytes('z') }, false],
  // A range compare must hold for every key in it: p1 has version 1, p2 version 2.
  [{ key: bytes('p'), rangeEnd: bytes('q'), target: 'VERSION', result: 'GREATER', value: 0 }, true],
  [{ key: bytes('p'), rangeEnd: bytes('q'), target: 'VERSION', result: 'EQUAL', value: 1 }, false],
  [{ key: bytes('p'), rangeEnd: FROM_KEY, target: 'VERSION', result: 'EQUAL', value: 2 }, false],
];

/** Txn compares, branches, nesting, shared revisions and duplicate keys. */
export function registerTxnTests(withDriver: WithDriver): void {
  test(
    'compares: every target and result, missing keys and ranges',
    withDriver((driver) => {
      driver.put('k', 'm');
      driver.put('k', 'n');
      driver.put('p1', '1');
      driver.put('p2', '1');
      driver.put('p2', '2');
      for (const [compare, expected] of COMPARE_TABLE) {
        assert.equal(
          branchTaken(driver, [compare]),
          expected,
          JSON.stringify({ ...compare, key: text(compare.key) }),
        );
      }
      const both = [COMPARE_TABLE[0]![0], COMPARE_TABLE[2]![0]];
      assert.equal(branchTaken(driver, both), false, 'every compare must hold');
      assert.equal(branchTaken(driver, []), true, 'no compare: success');
    }),
  );

  registerTxnStructureTests(withDriver);
  registerTxnDuplicateTests(withDriver);
}

/** Shared revisions, nesting and branches. */
function registerTxnStructureTests(withDriver: WithDriver): void {
  test(
    'all writes of a txn, nested ones too, share one revision; reads see earlier writes',
    withDriver((driver) => {
      driver.put('z', '0');
      const response = driver.ok({
        type: 'txn',
        compare: [],
        success: [
          put('x', '1'),
          { type: 'range', key: bytes('x') },
          {
            type: 'txn',
            // Nested compares see the state before the outer txn: x does not exist yet.
            compare: [{ key: bytes('x'), target: 'VERSION', result: 'EQUAL', value: 0 }],
            success: [put('y', '2'), { type: 'deleteRange', key: bytes('z') }],
            failure: [],
          },
        ],
        failure: [],
      });
      assert.equal(response.revision, 3);
      assert.equal(driver.kv.revision, 3);
      const [putResponse, rangeResponse, nested] = response.responses;
      assert.deepEqual(putResponse, { type: 'put', revision: 3 });
      assert.ok(rangeResponse?.type === 'range' && rangeResponse.revision === 3);
      assert.deepEqual(
        rangeResponse.kvs.map((kv) => [text(kv.value), kv.modRevision]),
        [['1', 3]],
      );
      assert.ok(nested?.type === 'txn' && nested.succeeded && nested.revision === 3);
      assert.deepEqual(nested.responses[1], { type: 'deleteRange', revision: 3, deleted: 1, prevKvs: [] });
      assert.deepEqual(
        [driver.get('x')?.modRevision, driver.get('y')?.modRevision, driver.get('z')],
        [3, 3, undefined],
      );
    }),
  );

  test(
    'the failure branch runs when a compare fails; a read-only txn keeps the revision',
    withDriver((driver) => {
      driver.put('a', '1');
      const response = driver.ok({
        type: 'txn',
        compare: [{ key: bytes('a'), target: 'VALUE', result: 'EQUAL', value: bytes('2') }],
        success: [put('b', 'yes')],
        failure: [{ type: 'range', key: bytes('a') }],
      });
      assert.equal(response.succeeded, false);
      assert.equal(response.revision, 2);
      assert.equal(driver.kv.revision, 2);
      assert.ok(response.responses[0]?.type === 'range');
      assert.equal(response.responses[0].kvs.length, 1);
      assert.equal(driver.get('b'), undefined);
    }),
  );
}

/** Duplicate keys and undone txns. */
function registerTxnDuplicateTests(withDriver: WithDriver): void {
  test(
    'rejects a txn that writes a key twice (etcd DUPLICATE_KEY)',
    withDriver((driver) => {
      const txn = (success: RequestOp[], failure: RequestOp[] = []): KvCommand => ({
        type: 'txn',
        compare: [],
        success,
        failure,
      });
      const nested = (success: RequestOp[], failure: RequestOp[]): RequestOp => ({
        type: 'txn',
        compare: [],
        success,
        failure,
      });
      const deleteAll: RequestOp = { type: 'deleteRange', key: bytes('a'), rangeEnd: FROM_KEY };
      driver.fail(txn([put('a', '1'), put('a', '2')]), 'DUPLICATE_KEY');
      driver.fail(txn([deleteAll, put('b', '1')]), 'DUPLICATE_KEY');
      driver.fail(txn([put('a', '1'), nested([put('a', '2')], [])]), 'DUPLICATE_KEY');
      driver.fail(txn([], [put('a', '1'), put('a', '1')]), 'DUPLICATE_KEY');
      driver.fail(txn([nested([deleteAll], []), put('c', '1')]), 'DUPLICATE_KEY');
      assert.equal(driver.kv.revision, 1);
      driver.ok(txn([nested([put('a', '1')], [put('a', '2')])]));
      driver.ok(txn([put('a', '3')], [put('a', '4')]));
      driver.ok(txn([deleteAll, { type: 'deleteRange', key: bytes('a') }]));
      assert.equal(driver.kv.revision, 4);
    }),
  );

  test(
    'a failing op undoes the whole txn',
    withDriver((driver) => {
      driver.put('a', '1');
      const before = driver.kv.hash();
      driver.fail(
        {
          type: 'txn',
          compare: [],
          success: [put('a', '2'), { type: 'deleteRange', key: bytes('a'), rangeEnd: FROM_KEY }],
          failure: [],
        },
        'DUPLICATE_KEY',
      );
      driver.fail(
        {
          type: 'txn',
          compare: [],
          success: [put('b', '2'), { type: 'put', key: bytes('c'), value: bytes('3'), lease: 77 }],
          failure: [],
        },
        'LEASE_NOT_FOUND',
      );
      driver.fail(
        {
          type: 'txn',
          compare: [],
          success: [put('b', '2'), { type: 'range', key: bytes('a'), revision: 9 }],
          failure: [],
        },
        'FUTURE_REV',
      );
      assert.equal(driver.kv.hash(), before);
      assert.equal(driver.kv.revision, 2);
    }),
  );
}

/** Compaction. */
export function registerCompactionTests(withDriver: WithDriver): void {
  test(
    'compaction keeps the latest version of each key and refuses older reads',
    withDriver((driver) => {
      driver.put('a', '1');
      driver.put('a', '2');
      driver.put('b', '1');
      driver.del('b');
      driver.put('c', '1');
      const hashAt6 = driver.kv.hashKv(6);
      assert.deepEqual(driver.ok({ type: 'compact', revision: 5 }), { type: 'compact', revision: 6 });
      assert.deepEqual([driver.kv.compactRevision, driver.kv.revision], [5, 6]);
      assertKvError(() => driver.kv.range({ key: bytes('a'), revision: 4 }), 'COMPACTED');
      assert.deepEqual(driver.keys({ key: FROM_KEY, rangeEnd: FROM_KEY, revision: 5 }), ['a']);
      assert.equal(driver.value('a', 5), '2');
      assert.equal(driver.value('c'), '1');
      assert.notEqual(driver.kv.hashKv(6).hash, hashAt6.hash, 'compaction drops history');
      assertKvError(() => driver.kv.hashKv(4), 'COMPACTED');
      const error = driver.fail({ type: 'compact', revision: 5 }, 'COMPACTED');
      assert.equal(error.compactRevision, 5);
      driver.fail({ type: 'compact', revision: 4 }, 'COMPACTED');
      driver.fail({ type: 'compact', revision: 7 }, 'FUTURE_REV');
      driver.put('a', '3');
      assert.deepEqual([driver.get('a')?.version, driver.get('a')?.createRevision], [3, 2]);
      driver.ok({ type: 'compact', revision: 7 });
      assert.deepEqual(driver.keys({ key: FROM_KEY, rangeEnd: FROM_KEY, revision: 7 }), ['a', 'c']);
    }),
  );
}

/** Size limits and malformed input: an error changes nothing. */
export function registerValidationTests(withDriver: WithDriver): void {
  test(
    'size limits: REQUEST_TOO_LARGE, TOO_MANY_OPS, and the state is untouched',
    withDriver(
      (driver) => {
        driver.put('a', '1');
        const before = driver.kv.hash();
        driver.fail({ type: 'put', key: bytes('k'), value: new Uint8Array(1024) }, 'REQUEST_TOO_LARGE');
        const ops = Array.from({ length: 9 }, (_, i) => put(`k${i}`, 'v'));
        driver.fail({ type: 'txn', compare: [], success: ops, failure: [] }, 'TOO_MANY_OPS');
        const big = Array.from({ length: 4 }, (_, i) => put(`k${i}`, 'x'.repeat(300)));
        driver.fail({ type: 'txn', compare: [], success: big, failure: [] }, 'REQUEST_TOO_LARGE');
        assert.equal(driver.kv.hash(), before);
        driver.ok({ type: 'put', key: bytes('k'), value: new Uint8Array(1023) });
        driver.ok({ type: 'txn', compare: [], success: ops.slice(0, 8), failure: [] });
      },
      { requestBytesMax: 1024, txnOpsMax: 8 },
    ),
  );

  test(
    'bad input is INVALID_ARGUMENT and changes nothing',
    withDriver((driver) => {
      driver.put('b', '1');
      const before = driver.kv.hash();
      for (const command of badCommands()) {
        const result = driver.apply(command);
        assert.ok(!result.ok && isKvError(result.error, 'INVALID_ARGUMENT'), JSON.stringify(command));
      }
      assert.equal(driver.kv.hash(), before);
      assert.equal(driver.kv.revision, 2);
      assertKvError(() => driver.kv.range({ key: new Uint8Array(0) }), 'INVALID_ARGUMENT');
      assertKvError(() => driver.kv.range({ key: bytes('b'), rangeEnd: bytes('a') }), 'INVALID_ARGUMENT');
      assertKvError(() => driver.kv.range({ key: bytes('b'), limit: -1 }), 'INVALID_ARGUMENT');
      assertKvError(() => decodeCommand(Uint8Array.of(0xc1)), 'INVALID_ARGUMENT');
      assertKvError(() => driver.kv.watch({ key: new Uint8Array(0) }), 'INVALID_ARGUMENT');
    }),
  );
}

function badCommands(): KvCommand[] {
  const empty = new Uint8Array(0);
  const loose = (command: Record<string, unknown>) => command as unknown as KvCommand;
  return [
    { type: 'put', key: empty, value: bytes('v') },
    { type: 'deleteRange', key: empty },
    { type: 'deleteRange', key: bytes('b'), rangeEnd: bytes('a') },
    { type: 'range', key: bytes('a'), limit: -1 },
    { type: 'range', key: bytes('a'), revision: 1.5 },
    loose({ type: 'range', key: bytes('a'), sortOrder: 'SIDEWAYS' }),
    loose({ type: 'put', key: 'a', value: bytes('v') }),
    loose({ type: 'put', key: bytes('a'), value: bytes('v'), lease: -3 }),
    loose({ type: 'frobnicate' }),
    loose({ type: 'txn', compare: [], success: [{ type: 'put', key: empty, value: empty }], failure: [] }),
    loose({
      type: 'txn',
      compare: [{ key: bytes('a'), target: 'VALUE', result: 'EQUAL', value: 1 }],
      success: [],
      failure: [],
    }),
    loose({
      type: 'txn',
      compare: [{ key: bytes('a'), target: 'COLOR', result: 'EQUAL', value: 1 }],
      success: [],
      failure: [],
    }),
    loose({ type: 'txn', compare: [], success: 'nope', failure: [] }),
    { type: 'leaseGrant', id: 0, ttlSeconds: 10, nowMs: 0 },
    { type: 'leaseGrant', id: 1, ttlSeconds: 0, nowMs: 0 },
    { type: 'leaseRevoke', id: -1 },
    { type: 'leaseCheckpoint', id: 1, remainingTtlSeconds: -1, nowMs: 0 },
    { type: 'compact', revision: -1 },
    { type: 'put', key: bytes('a'), value: bytes('v'), session: { clientId: 0, seq: 1 } },
  ];
}
