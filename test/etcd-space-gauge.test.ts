/**
 * The quota check's size gauge: it measures the store at most every
 * SPACE_GAUGE_MAX_AGE_MS while requests fit, counts what it admitted in between, and never
 * refuses on a stale measurement.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { SPACE_GAUGE_MAX_AGE_MS, SpaceGauge } from '../src/etcd/space-gauge.js';

function gaugeOver(sizes: number[]): { gauge: SpaceGauge; measured: () => number } {
  let calls = 0;
  const gauge = new SpaceGauge(() => {
    calls++;
    return sizes[Math.min(calls - 1, sizes.length - 1)]!;
  });
  return { gauge, measured: () => calls };
}

test('requests that fit are admitted without measuring each one', () => {
  const { gauge, measured } = gaugeOver([1000]);
  for (let i = 0; i < 50; i++) assert.equal(gauge.admit(10, 10_000, i), true);
  assert.equal(measured(), 1);
  assert.equal(gauge.admit(10, 10_000, SPACE_GAUGE_MAX_AGE_MS + 1), true);
  assert.equal(measured(), 2, 'measured again once the measurement is too old');
});

test('admitted costs count until the next measurement: the estimate never lags own writes', () => {
  // The store does not grow (the writes are still in flight), but the gauge counts them.
  const { gauge, measured } = gaugeOver([1000, 1000]);
  for (let i = 0; i < 8; i++) assert.equal(gauge.admit(100, 2000, 0), true);
  // 1000 + 800 + 100 = 1900 < 2000 fits; the next one would reach 2000: measured again.
  assert.equal(gauge.admit(100, 2000, 0), true);
  assert.equal(measured(), 1);
  assert.equal(gauge.admit(100, 2000, 0), true, 'after measuring again, 1000 + 100 fits');
  assert.equal(measured(), 2);
});

test('a refusal is decided on a measurement taken for it, so freed space is seen at once', () => {
  const { gauge, measured } = gaugeOver([1950, 500]);
  assert.equal(gauge.admit(10, 2000, 0), true); // 1950 + 10 < 2000
  assert.equal(measured(), 1);
  // 1950 + 10 + 100 >= 2000 on the old figure; the store shrank meanwhile (compaction).
  assert.equal(gauge.admit(100, 2000, 5), true);
  assert.equal(measured(), 2);
  assert.equal(gauge.usedBytes, 500);
});

test('a request that does not fit on a fresh measurement is refused (strictly below the quota)', () => {
  const { gauge, measured } = gaugeOver([1900, 1999]);
  assert.equal(gauge.admit(100, 2000, 0), false, '1900 + 100 is not strictly below 2000');
  assert.equal(measured(), 1, 'a fresh measurement is not taken twice');
  assert.equal(gauge.admit(99, 2000, 1), true);
  // The 99 bytes landed: measured again, 1999 + 1 does not fit.
  assert.equal(gauge.admit(1, 2000, 2), false);
  assert.equal(measured(), 2);
});
