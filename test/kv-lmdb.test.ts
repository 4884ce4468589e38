/** LMDB-specific behaviour: atomic batches with the applied index, restarts, restore safety. */

import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { bytes, KvDriver } from '../src/kv/conformance-harness.js';
import { isKvError } from '../src/kv/errors.js';
import { LmdbKvBackend } from '../src/kv/lmdb-backend.js';
import { MemoryKvBackend } from '../src/kv/memory-backend.js';

const root = await mkdtemp(join(tmpdir(), 'flotilla-kv-lmdb-'));
after(() => rm(root, { recursive: true, force: true }));
let directories = 0;
const freshPath = () => join(root, `kv-${directories++}`);

test('a batch that fails midway stores nothing; a reopen resumes at the stored applied index', async () => {
  const path = freshPath();
  const driver = new KvDriver(LmdbKvBackend.open(path));
  driver.put('a', '1');
  const put = (key: string) => ({ type: 'put', key: bytes(key), value: bytes('v') }) as const;
  // Entry 4 does not follow entry 2: the batch aborts after entry 2 was applied in memory.
  assert.throws(() =>
    driver.kv.applyBatch([
      { index: 2, command: put('b') },
      { index: 4, command: put('c') },
    ]),
  );
  assert.throws(() => driver.kv.range({ key: bytes('a') }), 'a failed backend refuses calls');
  await driver.kv.close();
  driver.kv = LmdbKvBackend.open(path);
  assert.deepEqual([driver.kv.appliedIndex, driver.kv.revision], [1, 2]);
  assert.equal(driver.get('b'), undefined, 'nothing of the failed batch was stored');
  driver.kv.applyBatch([{ index: 2, command: put('b') }]);
  assert.equal(driver.value('b'), 'v');
  await driver.kv.close();
});

test('every batch commits with its applied index, also without fsync', async () => {
  for (const noSync of [false, true]) {
    const path = freshPath();
    let backend = LmdbKvBackend.open(path, { noSync });
    const driver = new KvDriver(backend);
    for (let i = 0; i < 20; i++)
      driver.applyAll([{ type: 'put', key: bytes(`k${i % 3}`), value: bytes(`${i}`) }, null]);
    const hash = backend.hash();
    await backend.sync();
    await backend.close();
    backend = LmdbKvBackend.open(path, { noSync });
    assert.deepEqual([backend.appliedIndex, backend.revision, backend.hash()], [40, 21, hash]);
    await backend.close();
  }
});

test('a restore survives a reopen, and a failed restore leaves the previous state', async () => {
  const source = new KvDriver(new MemoryKvBackend());
  for (let i = 0; i < 5; i++) source.put(`s${i}`, 'x');
  const path = freshPath();
  const driver = new KvDriver(LmdbKvBackend.open(path));
  driver.put('mine', '1');
  await driver.kv.restore(source.kv.snapshot());
  await driver.kv.close();
  driver.kv = LmdbKvBackend.open(path);
  assert.equal(driver.kv.hash(), source.kv.hash());
  assert.equal(driver.kv.appliedIndex, 5);
  const other = new KvDriver(new MemoryKvBackend());
  other.put('other', '1');
  const chunks = [...other.kv.snapshot()];
  await assert.rejects(driver.kv.restore(chunks.slice(0, -1)), (error) => isKvError(error, 'CORRUPT'));
  await driver.kv.close();
  driver.kv = LmdbKvBackend.open(path);
  assert.equal(driver.kv.hash(), source.kv.hash(), 'the half-written restore was discarded');
  await driver.kv.restore(chunks);
  assert.equal(driver.kv.hash(), other.kv.hash());
  await driver.kv.close();
});

test('hashKvAsync hashes the state at the call in slices while applies go on', async () => {
  const kv = LmdbKvBackend.open(freshPath(), { noSync: true });
  const put = (i: number) =>
    ({ type: 'put', key: bytes(`key${i % 5000}`), value: bytes(`value${i}`) }) as const;
  let index = 0;
  const apply = (n: number) => {
    const entries = Array.from({ length: n }, () => ({ index: ++index, command: put(index) }));
    kv.applyBatch(entries);
  };
  apply(20_000);
  const expected = kv.hashKv();
  let turns = 0;
  const ticking = setInterval(() => turns++, 0);
  const hashing = kv.hashKvAsync();
  // Applies while the hash is in progress change nothing in its result.
  for (let i = 0; i < 20; i++) {
    await new Promise((resolve) => setImmediate(resolve));
    apply(10);
  }
  const result = await hashing;
  clearInterval(ticking);
  assert.deepEqual(result, expected);
  assert.notEqual(kv.hashKv().hash, expected.hash, 'the store moved on meanwhile');
  assert.ok(turns > 0, 'the event loop ran timers during the hash');
  // The memory backend (no pinned view) answers the same.
  const memory = new MemoryKvBackend();
  memory.applyBatch(Array.from({ length: 50 }, (_, i) => ({ index: i + 1, command: put(i + 1) })));
  assert.deepEqual(await memory.hashKvAsync(), memory.hashKv());
  await kv.close();
});
