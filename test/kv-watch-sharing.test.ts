/**
 * What a consumer of many watchers relies on beyond routing (kv-watch-routing.test.ts): the
 * hub hands watchers that want the same events of a revision one shared batch object (the
 * etcd Watch service encodes each batch once for all of them), and a watcher's listener hears
 * of every batch it takes and of its cancellation, so the consumer can poll without a
 * promise per batch.
 */

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { bytes, text } from '../src/kv/conformance-harness.js';
import { MemoryStore } from '../src/kv/memory-backend.js';
import { DEFAULT_KV_OPTIONS, KvStateMachine } from '../src/kv/state-machine.js';
import type { KvCommand, WatchBatch, WatchRequest } from '../src/kv/types.js';

function machine(): { machine: KvStateMachine; apply: (command: KvCommand) => void } {
  const m = new KvStateMachine(new MemoryStore(), DEFAULT_KV_OPTIONS);
  let index = 0;
  return {
    machine: m,
    apply: (command) => {
      m.applyEntry({ index: ++index, command });
      m.publishWatchEvents();
    },
  };
}

const put = (key: string, value: string): KvCommand => ({
  type: 'put',
  key: bytes(key),
  value: bytes(value),
});

test('watchers wanting the same events of a revision share one batch; others get their own shape', () => {
  const { machine: m, apply } = machine();
  apply(put('a', 'v1'));
  const watch = (request: Partial<WatchRequest>) => m.watch({ key: bytes('a'), ...request });
  const plain = [watch({}), watch({}), watch({ rangeEnd: bytes('b') })];
  const withPrev = [watch({ prevKv: true }), watch({ prevKv: true })];
  const noPut = watch({ noPut: true });
  apply(put('a', 'v2'));
  const batches = (watchers: typeof plain) => watchers.map((w) => w.poll());
  const [p0, p1, p2] = batches(plain) as WatchBatch[];
  const [q0, q1] = batches(withPrev) as WatchBatch[];
  assert.equal(noPut.poll(), undefined, 'a noPut watcher takes no PUT');
  assert.ok(p0 !== undefined && q0 !== undefined);
  assert.equal(p0, p1, 'plain watchers of one key share the batch');
  assert.equal(p0, p2, 'a range watcher with the same events shares it too');
  assert.equal(q0, q1, 'prevKv watchers share theirs');
  assert.notEqual(p0, q0, 'with and without prevKv are two batches');
  assert.equal(p0.events[0]!.prevKv, undefined, 'prevKv dropped where unwanted');
  assert.equal(text(q0.events[0]!.prevKv!.value), 'v1', 'and kept where wanted');
  assert.equal(text(p0.events[0]!.kv.value), 'v2');

  // A transaction of two keys: a watcher of both shares the published batch, one of a key does not.
  const both = watch({ rangeEnd: bytes('c') });
  const onlyB = m.watch({ key: bytes('b') });
  const other = watch({ rangeEnd: bytes('c') });
  apply({
    type: 'txn',
    compare: [],
    success: [
      { type: 'put', key: bytes('a'), value: bytes('v3') },
      { type: 'put', key: bytes('b'), value: bytes('v3') },
    ],
    failure: [],
  });
  const b1 = both.poll();
  assert.equal(b1?.events.length, 2);
  assert.equal(b1, other.poll(), 'watchers of every event share the batch');
  assert.deepEqual(
    onlyB.poll()?.events.map((e) => text(e.kv.key)),
    ['b'],
  );
});

test("a watcher's listener hears of each batch it takes and of its cancel, and polling gets them", () => {
  const { machine: m, apply } = machine();
  const watcher = m.watch({ key: bytes('k') });
  let heard = 0;
  watcher.listen(() => heard++);
  apply(put('k', '1'));
  apply(put('other', '1'));
  apply(put('k', '2'));
  assert.equal(heard, 2, 'one call per batch taken, none for other keys');
  const values: string[] = [];
  for (let batch = watcher.poll(); batch !== undefined; batch = watcher.poll()) {
    for (const event of batch.events) values.push(text(event.kv.value));
  }
  assert.deepEqual(values, ['1', '2']);
  watcher.cancel();
  assert.equal(heard, 3, 'and one for the cancel');
  assert.equal(watcher.poll(), undefined);
  assert.equal(watcher.isCanceled, true);
});
