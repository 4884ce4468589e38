/** Conformance tests: snapshots and restarts. */

import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { KvBackend } from './backend.js';
import {
  assertKvError,
  bytes,
  closeQuietly,
  describeBatches,
  drain,
  FROM_KEY,
  KvDriver,
  type WithDriver,
} from './conformance-harness.js';
import { isKvError } from './errors.js';

/** Fills a store with history, a compaction, leases and sessions. */
export function fillMixedState(driver: KvDriver): void {
  driver.ok({ type: 'leaseGrant', id: 3, ttlSeconds: 20, nowMs: 500 });
  for (let i = 0; i < 12; i++) driver.put(`key${i % 5}`, `value${i}`, i % 4 === 0 ? { lease: 3 } : {});
  driver.del('key1');
  driver.ok({ type: 'compact', revision: 6 });
  driver.ok({ type: 'put', key: bytes('s'), value: bytes('1'), session: { clientId: 11, seq: 4 } });
  driver.ok({ type: 'leaseCheckpoint', id: 3, remainingTtlSeconds: 12, nowMs: 900 });
  driver.applyAll([null]);
}

/** Asserts that two backends hold the same state. */
export function assertSameState(actual: KvBackend, expected: KvBackend): void {
  assert.deepEqual(
    [actual.appliedIndex, actual.revision, actual.compactRevision],
    [expected.appliedIndex, expected.revision, expected.compactRevision],
  );
  assert.equal(actual.hash(), expected.hash());
  assert.deepEqual(actual.hashKv(), expected.hashKv());
  const all = { key: FROM_KEY, rangeEnd: FROM_KEY };
  assert.deepEqual(actual.range(all), expected.range(all));
  assert.deepEqual(actual.leaseList(), expected.leaseList());
}

/** Snapshot round trips, consistency, corruption. */
export function registerSnapshotTests(withDriver: WithDriver): void {
  test(
    'a snapshot restores into a fresh store with the same state',
    withDriver(async (driver, factory) => {
      fillMixedState(driver);
      const snapshot = driver.kv.snapshot();
      assert.equal(snapshot.meta.appliedIndex, driver.kv.appliedIndex);
      const target = new KvDriver(await factory.open());
      try {
        target.put('stale', 'x');
        await target.kv.restore(snapshot);
        assertSameState(target.kv, driver.kv);
        assert.equal(target.get('stale'), undefined, 'restore replaces the whole state');
        const retry = {
          type: 'put',
          key: bytes('s'),
          value: bytes('2'),
          session: { clientId: 11, seq: 4 },
        } as const;
        assert.deepEqual(target.apply(retry), driver.apply(retry), 'sessions came along');
        assert.equal(target.value('s'), '1');
        target.put('after', '1');
        driver.put('after', '1');
        assertSameState(target.kv, driver.kv);
      } finally {
        await closeQuietly(target.kv);
      }
    }),
  );

  test(
    'a snapshot is the state when it was taken, even if entries apply meanwhile',
    withDriver(
      async (driver, factory) => {
        fillMixedState(driver);
        const hash = driver.kv.hash();
        const snapshot = driver.kv.snapshot();
        driver.put('later', '1');
        driver.ok({ type: 'compact', revision: driver.kv.revision });
        const chunks = [...snapshot];
        assert.ok(chunks.length > 3, 'a small chunk size splits the snapshot');
        const target = await factory.open();
        try {
          await target.restore(chunks);
          assert.equal(target.hash(), hash);
          assert.equal(target.appliedIndex, snapshot.meta.appliedIndex);
        } finally {
          await closeQuietly(target);
        }
      },
      { snapshotChunkBytesMax: 64 },
    ),
  );

  registerSnapshotDamageTests(withDriver);
}

/** Damaged snapshots and watchers across a restore. */
function registerSnapshotDamageTests(withDriver: WithDriver): void {
  test(
    'a damaged snapshot is refused and the store keeps its state',
    withDriver(async (driver, factory) => {
      fillMixedState(driver);
      const chunks = [...driver.kv.snapshot()];
      const target = new KvDriver(await factory.open());
      try {
        target.put('mine', '1');
        const before = target.kv.hash();
        const flipped = chunks.map((chunk, i) => (i === 1 ? flipLastByte(chunk) : chunk));
        for (const damaged of [chunks.slice(0, -1), flipped, chunks.slice(1), [chunks[0]!, ...chunks]]) {
          await assert.rejects(target.kv.restore(damaged), (error) => isKvError(error, 'CORRUPT'));
          assert.equal(target.kv.hash(), before);
        }
        target.put('mine', '2');
        assert.equal(target.value('mine'), '2', 'still usable');
      } finally {
        await closeQuietly(target.kv);
      }
    }),
  );

  test(
    'watchers carry on across a restore',
    withDriver(async (driver, factory) => {
      const source = new KvDriver(await factory.open());
      try {
        for (let i = 0; i < 4; i++) source.put('w', String(i));
        const watcher = driver.kv.watch({ key: bytes('w'), startRevision: 1 });
        await driver.kv.restore(source.kv.snapshot());
        assert.deepEqual(describeBatches(drain(watcher)), [
          '2:PUT w=0',
          '3:PUT w=1',
          '4:PUT w=2',
          '5:PUT w=3',
        ]);
      } finally {
        await closeQuietly(source.kv);
      }
    }),
  );
}

function flipLastByte(chunk: Uint8Array): Uint8Array {
  const copy = chunk.slice();
  copy[copy.length - 1]! ^= 0xff;
  return copy;
}

/** Restarts. */
export function registerReopenTests(withDriver: WithDriver): void {
  test(
    'reopening restores the stored state and applied index',
    withDriver(async (driver, factory) => {
      fillMixedState(driver);
      const expected = new KvDriver(await factory.open());
      try {
        await expected.kv.restore(driver.kv.snapshot());
        driver.kv = await factory.reopen(driver.kv);
        assertSameState(driver.kv, expected.kv);
        driver.put('next', '1');
        expected.put('next', '1');
        assertSameState(driver.kv, expected.kv);
        driver.kv = await factory.reopen(driver.kv);
        assertSameState(driver.kv, expected.kv);
      } finally {
        await closeQuietly(expected.kv);
      }
    }),
  );

  test(
    'a closed store refuses calls',
    withDriver(async (driver) => {
      await driver.kv.close();
      assertKvError(() => driver.kv.range({ key: bytes('a') }), 'CLOSED');
      assertKvError(() => driver.kv.applyBatch([{ index: 1, command: null }]), 'CLOSED');
    }),
  );
}
