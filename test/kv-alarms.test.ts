/**
 * The replicated NOSPACE alarm in the KV state machine (src/kv/alarms.ts): while raised it
 * refuses what could grow the store and nothing else, the same way on both backends; it is
 * kept by a reopen of the LMDB store, carried by snapshots and covered by the state hash.
 */
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { bytes, KvDriver } from '../src/kv/conformance-harness.js';
import type { KvBackend } from '../src/kv/index.js';
import { LmdbKvBackend } from '../src/kv/lmdb-backend.js';
import { MemoryKvBackend } from '../src/kv/memory-backend.js';

const root = await mkdtemp(join(tmpdir(), 'flotilla-kv-alarms-'));
after(() => rm(root, { recursive: true, force: true }));

const raise = { type: 'alarm', action: 'activate', memberId: 7, alarm: 'NOSPACE' } as const;
const clear = { ...raise, action: 'deactivate' } as const;
const put = (key: string) => ({ type: 'put', key: bytes(key), value: bytes('v') }) as const;

/** Raises the alarm on `driver` and checks what it refuses and what it lets through. */
function checkCapped(driver: KvDriver): void {
  driver.put('a', '1');
  assert.deepEqual(driver.ok(raise).alarms, [{ memberId: 7, alarm: 'NOSPACE' }]);
  assert.deepEqual(driver.ok(raise).alarms, [], 'raising a raised alarm changes nothing');
  const revision = driver.kv.revision;
  assert.equal(driver.fail(put('b'), 'NO_SPACE').message, 'etcdserver: mvcc: database space exceeded');
  driver.fail({ type: 'leaseGrant', id: 5, ttlSeconds: 10, nowMs: 0 }, 'NO_SPACE');
  driver.fail({ type: 'txn', compare: [], success: [], failure: [put('b')] }, 'NO_SPACE');
  assert.equal(driver.kv.revision, revision, 'refused commands wrote nothing');
  assert.equal(driver.get('b'), undefined);
  driver.ok({ type: 'txn', compare: [], success: [{ type: 'range', key: bytes('a') }], failure: [] });
  driver.ok({ type: 'compact', revision });
  assert.equal(driver.del('a'), 1);
  assert.deepEqual(driver.kv.alarmList(), [{ memberId: 7, alarm: 'NOSPACE' }]);
}

test('NOSPACE refuses puts, txns with puts and lease grants only, on both backends', async () => {
  const backends: KvBackend[] = [new MemoryKvBackend(), LmdbKvBackend.open(join(root, 'capped'))];
  const hashes: string[] = [];
  for (const kv of backends) {
    const driver = new KvDriver(kv);
    checkCapped(driver);
    hashes.push(kv.hash());
    assert.deepEqual(driver.ok(clear).alarms, [{ memberId: 7, alarm: 'NOSPACE' }]);
    driver.put('b', '2');
    await kv.close();
  }
  assert.equal(hashes[0], hashes[1], 'both backends reach the same state');
});

test('the alarm survives a reopen, travels in snapshots and changes the hash', async () => {
  const path = join(root, 'kept');
  const driver = new KvDriver(LmdbKvBackend.open(path));
  driver.put('a', '1');
  const before = driver.kv.hash();
  driver.ok(raise);
  assert.notEqual(driver.kv.hash(), before);
  await driver.kv.sync();
  await driver.kv.close();
  driver.kv = LmdbKvBackend.open(path);
  assert.deepEqual(driver.kv.alarmList(), [{ memberId: 7, alarm: 'NOSPACE' }]);
  driver.fail(put('b'), 'NO_SPACE');

  const copy = new MemoryKvBackend();
  await copy.restore(driver.kv.snapshot());
  assert.deepEqual(copy.alarmList(), [{ memberId: 7, alarm: 'NOSPACE' }]);
  assert.equal(copy.hash(), driver.kv.hash());
  const cleared = new KvDriver(copy);
  cleared.ok(clear);
  assert.equal(copy.hash(), before, 'a cleared alarm leaves no trace in the hash');
  await driver.kv.close();
  await copy.close();
});
