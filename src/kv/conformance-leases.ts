/** Conformance tests: leases and client sessions. */

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { bytes, describeBatches, drain, text, type WithDriver } from './conformance-harness.js';
import type { KvCommand } from './types.js';

/** Lease grant, attach, time to live, checkpoint, revoke. */
export function registerLeaseTests(withDriver: WithDriver): void {
  test(
    'grant validates ids and TTLs and does not change the revision',
    withDriver((driver) => {
      assert.deepEqual(driver.ok({ type: 'leaseGrant', id: 7, ttlSeconds: 10, nowMs: 1000 }), {
        type: 'leaseGrant',
        revision: 1,
        id: 7,
        ttlSeconds: 10,
      });
      driver.fail({ type: 'leaseGrant', id: 7, ttlSeconds: 5, nowMs: 1000 }, 'LEASE_EXISTS');
      driver.fail({ type: 'leaseGrant', id: 0, ttlSeconds: 5, nowMs: 1000 }, 'INVALID_ARGUMENT');
      driver.fail({ type: 'leaseGrant', id: 8, ttlSeconds: 9_000_000_001, nowMs: 0 }, 'LEASE_TTL_TOO_LARGE');
      assert.deepEqual(driver.kv.leaseList(), [
        { id: 7, ttlSeconds: 10, remainingTtlSeconds: 10, anchorMs: 1000 },
      ]);
      assert.equal(driver.kv.revision, 1);
    }),
  );

  test(
    'time to live follows the caller clock and checkpoints',
    withDriver((driver) => {
      driver.ok({ type: 'leaseGrant', id: 7, ttlSeconds: 10, nowMs: 1000 });
      driver.put('k2', 'v', { lease: 7 });
      driver.put('k1', 'v', { lease: 7 });
      driver.put('k3', 'v', { lease: 7 });
      driver.put('k3', 'w');
      const ttl = driver.kv.leaseTimeToLive(7, 4500, true);
      assert.deepEqual(
        { ...ttl, keys: ttl.keys.map(text) },
        { id: 7, ttlSeconds: 6, grantedTtlSeconds: 10, keys: ['k1', 'k2'] },
      );
      assert.deepEqual(driver.kv.leaseTimeToLive(7, 4500).keys, []);
      assert.equal(driver.kv.leaseTimeToLive(7, 60_000).ttlSeconds, 0, 'never below zero');
      assert.equal(driver.kv.leaseTimeToLive(99, 0).ttlSeconds, -1, 'unknown lease: -1 like etcd');
      driver.ok({ type: 'leaseCheckpoint', id: 7, remainingTtlSeconds: 3, nowMs: 20_000 });
      assert.equal(driver.kv.leaseTimeToLive(7, 21_000).ttlSeconds, 2);
      assert.deepEqual(driver.kv.leaseList(), [
        { id: 7, ttlSeconds: 10, remainingTtlSeconds: 3, anchorMs: 20_000 },
      ]);
      driver.fail({ type: 'leaseCheckpoint', id: 8, remainingTtlSeconds: 3, nowMs: 0 }, 'LEASE_NOT_FOUND');
    }),
  );

  registerLeaseRevokeTests(withDriver);
}

/** Lease revocation and restarts. */
function registerLeaseRevokeTests(withDriver: WithDriver): void {
  test(
    'revoke deletes every attached key in one revision',
    withDriver((driver) => {
      driver.ok({ type: 'leaseGrant', id: 7, ttlSeconds: 10, nowMs: 0 });
      driver.ok({ type: 'leaseGrant', id: 8, ttlSeconds: 10, nowMs: 0 });
      driver.put('b', '1', { lease: 7 });
      driver.put('a', '1', { lease: 7 });
      driver.put('c', '1', { lease: 8 });
      driver.put('d', '1', { lease: 7 });
      driver.put('d', '2', { lease: 8 });
      const watcher = driver.kv.watch({ key: bytes('a'), rangeEnd: bytes('z') });
      assert.deepEqual(driver.ok({ type: 'leaseRevoke', id: 7 }), { type: 'leaseRevoke', revision: 7 });
      assert.deepEqual(describeBatches(drain(watcher)), ['7:DELETE a=', '7:DELETE b=']);
      assert.deepEqual(driver.keys({ key: bytes('a'), rangeEnd: bytes('z') }), ['c', 'd']);
      assert.deepEqual(
        driver.kv.leaseList().map((lease) => lease.id),
        [8],
      );
      driver.fail({ type: 'leaseRevoke', id: 7 }, 'LEASE_NOT_FOUND');
      driver.fail({ type: 'put', key: bytes('e'), value: bytes('1'), lease: 7 }, 'LEASE_NOT_FOUND');
      driver.ok({ type: 'leaseGrant', id: 9, ttlSeconds: 10, nowMs: 0 });
      driver.ok({ type: 'leaseRevoke', id: 9 });
      assert.equal(driver.kv.revision, 7, 'revoking a lease without keys writes nothing');
    }),
  );

  test(
    'leases and their keys survive a restart',
    withDriver(async (driver, factory) => {
      driver.ok({ type: 'leaseGrant', id: 5, ttlSeconds: 30, nowMs: 100 });
      driver.put('x', '1', { lease: 5 });
      driver.put('y', '1', { lease: 5 });
      driver.kv = await factory.reopen(driver.kv);
      assert.deepEqual(driver.kv.leaseList(), [
        { id: 5, ttlSeconds: 30, remainingTtlSeconds: 30, anchorMs: 100 },
      ]);
      assert.deepEqual(driver.kv.leaseTimeToLive(5, 100, true).keys.map(text), ['x', 'y']);
      driver.ok({ type: 'leaseRevoke', id: 5 });
      assert.equal(driver.kv.range({ key: bytes('x'), rangeEnd: bytes('z') }).count, 0);
    }),
  );
}

/** Exactly-once commands through client sessions. */
export function registerSessionTests(withDriver: WithDriver): void {
  const put = (value: string, clientId: number, seq: number, lease = 0): KvCommand => ({
    type: 'put',
    key: bytes('k'),
    value: bytes(value),
    lease,
    session: { clientId, seq },
  });

  test(
    'a retried command is not applied again and returns the first outcome',
    withDriver((driver) => {
      const first = driver.apply(put('a', 1, 1));
      assert.deepEqual(driver.apply(put('b', 1, 1)), first, 'the retry returns the cached response');
      assert.deepEqual([driver.value('k'), driver.kv.revision], ['a', 2]);
      driver.ok(put('c', 1, 2));
      driver.fail(put('d', 1, 1), 'STALE_SEQUENCE');
      assert.deepEqual([driver.value('k'), driver.kv.revision], ['c', 3]);
      driver.ok(put('e', 2, 1));
      assert.equal(driver.value('k'), 'e', 'sessions are per client');
    }),
  );

  test(
    'an error is an outcome too: its retry returns it even once it would succeed',
    withDriver((driver) => {
      driver.fail(put('a', 1, 1, 7), 'LEASE_NOT_FOUND');
      driver.ok({ type: 'leaseGrant', id: 7, ttlSeconds: 5, nowMs: 0 });
      driver.fail(put('a', 1, 1, 7), 'LEASE_NOT_FOUND');
      assert.equal(driver.get('k'), undefined);
      const range: KvCommand = { type: 'range', key: bytes('k'), session: { clientId: 1, seq: 1 } };
      assert.equal(driver.ok(range).count, 0, 'reads are served, never deduplicated');
      driver.ok(put('a', 1, 2, 7));
      assert.equal(driver.ok(range).count, 1);
    }),
  );

  test(
    'the least recently used session is evicted beyond sessionsMax',
    withDriver(
      (driver) => {
        driver.ok(put('1', 1, 1));
        driver.ok(put('2', 2, 1));
        driver.ok(put('3', 1, 2));
        driver.ok(put('4', 3, 1));
        // Client 2 was touched longest ago and was evicted: its retry is applied again
        // (which in turn evicts client 1); client 3's retry is still recognised.
        driver.ok(put('5', 2, 1));
        assert.equal(driver.value('k'), '5');
        driver.ok(put('6', 3, 1));
        assert.equal(driver.value('k'), '5');
        assert.equal(driver.kv.revision, 6);
      },
      { sessionsMax: 2 },
    ),
  );

  test(
    'sessions survive a restart',
    withDriver(async (driver, factory) => {
      const first = driver.apply(put('a', 4, 10));
      driver.kv = await factory.reopen(driver.kv);
      assert.deepEqual(driver.apply(put('b', 4, 10)), first);
      assert.equal(driver.value('k'), 'a');
    }),
  );
}
