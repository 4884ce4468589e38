/** A short run of the real-process torture test on the shared WAL: several groups in one log. */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { runCrashTest } from '../src/storage/crash-test.js';

describe('crash torture test of the shared WAL', () => {
  test('no acknowledged entry of any of 6 groups is lost over 15 SIGKILL cycles', async (t) => {
    // Small segments: rollovers, checkpoints and segment deletion happen in most cycles.
    const result = await runCrashTest({ cycles: 15, seed: 5151, groups: 6, segmentSizeBytes: 64 * 1024 });
    t.diagnostic(JSON.stringify(result));
    assert.equal(result.lost, 0);
    assert.ok(result.acknowledged > 0, 'the worker acknowledged nothing');
    assert.ok(result.recoveries >= 15);
  });

  test('the per-group check catches a worker that acknowledges before writing', async (t) => {
    let lost = 0;
    for (let batch = 0; batch < 6 && lost === 0; batch++) {
      const options = { cycles: 4, seed: 91 + batch, groups: 4, mutation: 'ack-before-write' as const };
      lost = (await runCrashTest(options)).lost;
    }
    t.diagnostic(`lost with the mutation: ${lost}`);
    assert.ok(lost > 0, 'acknowledging before the write went unnoticed');
  });
});
