/** A short run of the real-process torture test (`npm run crash-test` runs the long one). */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { runCrashTest } from '../src/storage/crash-test.js';

describe('crash torture test', () => {
  test('no acknowledged entry is lost over 20 SIGKILL cycles', async (t) => {
    const result = await runCrashTest({ cycles: 20, seed: 4242 });
    t.diagnostic(JSON.stringify(result));
    assert.equal(result.lost, 0);
    assert.ok(result.acknowledged > 0, 'the worker acknowledged nothing');
    assert.ok(result.recoveries >= 20);
  });

  test('the check catches a worker that acknowledges before writing', async (t) => {
    // Each batch of cycles may by chance kill only outside the window the bug opens; a few
    // batches make missing it vanishingly unlikely.
    let lost = 0;
    for (let batch = 0; batch < 6 && lost === 0; batch++) {
      lost = (await runCrashTest({ cycles: 5, seed: 77 + batch, mutation: 'ack-before-write' })).lost;
    }
    t.diagnostic(`lost with the mutation: ${lost}`);
    assert.ok(lost > 0, 'acknowledging before the write went unnoticed');
  });
});
