/** Conformance tests: watches (replay, live, filters, slow consumers, compaction). */

import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  assertKvError,
  bytes,
  describeBatches,
  drain,
  FROM_KEY,
  type WithDriver,
} from './conformance-harness.js';
import { isKvError } from './errors.js';
import type { WatchBatch } from './types.js';

/** Registers the watch tests. */
export function registerWatchTests(withDriver: WithDriver): void {
  test(
    'replays history, then continues live: each event exactly once, in order',
    withDriver((driver) => {
      driver.put('a', '1');
      driver.put('b', '1');
      driver.put('a', '2');
      const watcher = driver.kv.watch({
        key: bytes('a'),
        rangeEnd: FROM_KEY,
        startRevision: 2,
        prevKv: true,
      });
      driver.put('c', '1');
      assert.deepEqual(describeBatches(drain(watcher)), [
        '2:PUT a=1',
        '3:PUT b=1',
        '4:PUT a=2 prev=1',
        '5:PUT c=1',
      ]);
      driver.put('a', '3');
      driver.del('b');
      assert.deepEqual(describeBatches(drain(watcher)), ['6:PUT a=3 prev=2', '7:DELETE b= prev=1']);
      assert.deepEqual(drain(watcher), []);
      const live = driver.kv.watch({ key: bytes('a') });
      driver.put('a', '4');
      assert.deepEqual(describeBatches(drain(live)), ['8:PUT a=4'], 'start 0: live only, no prevKv unasked');
    }),
  );

  test(
    'events of one revision come together; filters and ranges apply',
    withDriver((driver) => {
      driver.put('z', '0');
      const all = driver.kv.watch({ key: bytes('x'), rangeEnd: FROM_KEY });
      const noPut = driver.kv.watch({ key: bytes('x'), rangeEnd: FROM_KEY, noPut: true, prevKv: true });
      const noDelete = driver.kv.watch({ key: bytes('x'), rangeEnd: FROM_KEY, noDelete: true });
      const onlyX = driver.kv.watch({ key: bytes('x') });
      driver.ok({
        type: 'txn',
        compare: [],
        success: [
          { type: 'put', key: bytes('y'), value: bytes('1') },
          { type: 'put', key: bytes('x'), value: bytes('1') },
          { type: 'deleteRange', key: bytes('z') },
        ],
        failure: [],
      });
      const batches = drain(all);
      assert.equal(batches.length, 1);
      assert.deepEqual(describeBatches(batches), ['3:PUT y=1', '3:PUT x=1', '3:DELETE z=']);
      assert.deepEqual(batches[0]!.events[2]!.kv.modRevision, 3);
      assert.deepEqual(describeBatches(drain(noPut)), ['3:DELETE z= prev=0']);
      assert.deepEqual(describeBatches(drain(noDelete)), ['3:PUT y=1', '3:PUT x=1']);
      assert.deepEqual(describeBatches(drain(onlyX)), ['3:PUT x=1']);
    }),
  );

  registerWatchBacklogTests(withDriver);
  registerWatchStartTests(withDriver);
}

/** Slow watchers and compaction. */
function registerWatchBacklogTests(withDriver: WithDriver): void {
  test(
    'a slow watcher falls back to history and catches up without gap or duplicate',
    withDriver(
      (driver) => {
        const watcher = driver.kv.watch({ key: bytes('k'), startRevision: 1 });
        for (let i = 0; i < 10; i++) driver.put('k', String(i));
        const revisions = drain(watcher).map((batch) => batch.revision);
        assert.deepEqual(revisions, [2, 3, 4, 5, 6, 7, 8, 9, 10, 11]);
        driver.put('k', 'x');
        assert.deepEqual(describeBatches(drain(watcher)), ['12:PUT k=x']);
      },
      { watchQueueBatchesMax: 2, watchCatchUpRevisionsMax: 3 },
    ),
  );

  test(
    'watching below the compacted revision fails with COMPACTED',
    withDriver(
      (driver) => {
        driver.put('a', '1');
        driver.put('b', '1');
        const behind = driver.kv.watch({ key: bytes('a'), rangeEnd: FROM_KEY });
        driver.put('a', '2');
        driver.put('a', '3');
        driver.del('b');
        driver.ok({ type: 'compact', revision: 6 });
        assertKvError(() => driver.kv.watch({ key: bytes('a'), startRevision: 5 }), 'COMPACTED');
        assert.throws(
          () => drain(behind),
          (error) => isKvError(error, 'COMPACTED') && error.compactRevision === 6,
        );
        assert.ok(behind.isCanceled);
        const fromCompacted = driver.kv.watch({ key: bytes('a'), rangeEnd: FROM_KEY, startRevision: 6 });
        assert.deepEqual(
          describeBatches(drain(fromCompacted)),
          ['6:DELETE b='],
          'a deletion at the compacted revision',
        );
      },
      { watchQueueBatchesMax: 1 },
    ),
  );
}

/** Future starts, async iteration, cancel. */
function registerWatchStartTests(withDriver: WithDriver): void {
  test(
    'a future start revision waits for it',
    withDriver((driver) => {
      const watcher = driver.kv.watch({ key: bytes('k'), startRevision: 3 });
      driver.put('k', '1');
      assert.deepEqual(drain(watcher), []);
      driver.put('k', '2');
      assert.deepEqual(describeBatches(drain(watcher)), ['3:PUT k=2']);
    }),
  );

  test(
    'async iteration delivers as entries apply and ends on cancel',
    withDriver(async (driver) => {
      const watcher = driver.kv.watch({ key: bytes('k') });
      const received: WatchBatch[] = [];
      const consumer = (async () => {
        for await (const batch of watcher) {
          received.push(batch);
          if (received.length === 2) break;
        }
      })();
      driver.put('k', '1');
      await new Promise((resolve) => setImmediate(resolve));
      driver.put('k', '2');
      driver.put('k', '3');
      await consumer;
      assert.deepEqual(describeBatches(received), ['2:PUT k=1', '3:PUT k=2']);
      assert.ok(watcher.isCanceled, 'leaving the loop cancels the watcher');
      assert.equal(await watcher.next(), undefined);
      const other = driver.kv.watch({ key: bytes('k') });
      const pending = other.next();
      other.cancel();
      assert.equal(await pending, undefined);
    }),
  );
}
