import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { MutationName, Snapshot } from '../src/raft/index.js';
import {
  KvMachine,
  runSimulation,
  SafetyChecker,
  SafetyViolation,
  SimMachineDriver,
} from '../src/sim/index.js';

/** A driver over a KV machine that has applied `keys` puts (one client). */
function filled(keys: number): SimMachineDriver {
  const driver = new SimMachineDriver(new KvMachine() as never);
  driver.apply(
    Array.from({ length: keys }, (_, i) => ({
      index: i + 1,
      command: { client: 1, seq: i + 1, op: 'put', key: `k${i}`, value: `v${i}` },
    })),
  );
  return driver;
}

function keysHeld(driver: SimMachineDriver, keys: number): number {
  let held = 0;
  for (let i = 0; i < keys; i++) if (driver.query(`k${i}`) === `v${i}`) held++;
  return held;
}

test('an image cut anywhere restores to part of the state: only the stream can say it was whole', async () => {
  const keys = 13;
  const image = filled(keys).snapshot();
  let previous = 0;
  for (let cut = 0; cut < image.length; cut++) {
    const copy = new SimMachineDriver(new KvMachine() as never);
    await copy.restore(keys, image.subarray(0, cut));
    const held = keysHeld(copy, keys);
    assert.ok(held >= previous, `a longer prefix holds no fewer keys (cut at ${cut})`);
    previous = held;
    // Where every key is there, the session table is cut off: an old retry is applied again.
    const retry = copy.apply([
      { index: keys + 1, command: { client: 1, seq: 1, op: 'put', key: 'k0', value: 'x' } },
    ]);
    assert.ok(held < keys || retry[0] !== null, `cut at ${cut} lost nothing`);
  }
  assert.ok(previous < keys, 'the last chunk is missing from every prefix');
  const whole = new SimMachineDriver(new KvMachine() as never);
  await whole.restore(keys, image);
  assert.equal(keysHeld(whole, keys), keys);
});

function snapshotAt(index: number, data: Uint8Array): Snapshot {
  return {
    meta: {
      index,
      term: 1,
      confState: { voters: [1, 2, 3], votersOutgoing: [], learners: [], learnersNext: [], autoLeave: false },
    },
    data,
  };
}

test('the checker refuses an image no node took at its index, and takes any image one did', () => {
  const checker = new SafetyChecker();
  const a = filled(5).snapshot();
  const b = filled(7).snapshot();
  checker.onSnapshotTaken(snapshotAt(10, a));
  checker.onSnapshotTaken(snapshotAt(10, b));
  checker.onSnapshotRestored(2, snapshotAt(10, a));
  checker.onSnapshotRestored(3, snapshotAt(10, b));
  assert.throws(
    () => checker.onSnapshotRestored(2, snapshotAt(10, a.subarray(0, a.length - 1))),
    (error: unknown) => error instanceof SafetyViolation && error.property === 'state-machine-safety',
  );
  assert.throws(() => checker.onSnapshotRestored(2, snapshotAt(10, b.subarray(0, 20))), SafetyViolation);
});

test('a state machine asked to skip entries, or apply some again, is a state-machine-safety violation', () => {
  const driver = filled(3);
  for (const index of [2, 3, 5]) {
    assert.throws(
      () => driver.apply([{ index, command: null }]),
      (error: unknown) => error instanceof SafetyViolation && error.property === 'state-machine-safety',
    );
  }
  assert.deepEqual(driver.apply([{ index: 4, command: null }]), [null]);
});

async function caughtBy(name: MutationName, seedsMax: number): Promise<string[]> {
  const properties: string[] = [];
  for (let seed = 1; seed <= seedsMax && properties.length < 3; seed++) {
    const result = await runSimulation({ seed, mutation: name });
    if (result.status === 'failed') properties.push(result.property ?? '');
  }
  return properties;
}

test('a receiver that takes a cut snapshot stream for a whole one is caught', async () => {
  const properties = await caughtBy('torn-snapshot-stream', 200);
  assert.equal(properties.length, 3, 'caught on three seeds of 200');
  assert.deepEqual(new Set(properties), new Set(['state-machine-safety']));
});

test('a receiver that restores a snapshot stream before its core takes the snapshot is caught', async () => {
  const properties = await caughtBy('stale-snapshot-stream', 200);
  assert.equal(properties.length, 3, 'caught on three seeds of 200');
  assert.deepEqual(new Set(properties), new Set(['state-machine-safety']));
});
