/**
 * Equivalence of two backends under random command sequences: same outcomes, same hashes,
 * same watch streams, and snapshots that restore across them. The commands cover every
 * operation, invalid ones included, over a small key space so they collide often.
 */

import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import type { KvBackend } from './backend.js';
import { decodeCommand, encodeCommand } from './codec.js';
import {
  bytes,
  closeQuietly,
  comparable,
  describeBatches,
  drain,
  FROM_KEY,
  type KvBackendFactory,
} from './conformance-harness.js';
import type { Compare, KvCommand, RangeRequest, RequestOp } from './types.js';

const keyArbitrary = fc.constantFrom('a', 'b', 'c', 'd', 'e');
const valueArbitrary = fc.constantFrom('', 'x', 'y', 'zz');

/** A key range: single key, [key, end) (end may sort first), from key, or everything. */
const rangeArbitrary = fc
  .tuple(keyArbitrary, fc.constantFrom('single', 'end', 'from', 'all'), keyArbitrary)
  .map(([key, kind, end]): { key: Uint8Array; rangeEnd?: Uint8Array } => {
    if (kind === 'single') return { key: bytes(key) };
    if (kind === 'from') return { key: bytes(key), rangeEnd: FROM_KEY };
    if (kind === 'all') return { key: FROM_KEY, rangeEnd: FROM_KEY };
    return { key: bytes(key), rangeEnd: bytes(end) };
  });

const putArbitrary = fc
  .record({
    key: keyArbitrary,
    value: valueArbitrary,
    lease: fc.constantFrom(0, 0, 0, 0, 0, 1, 2),
    prevKv: fc.boolean(),
    ignore: fc.constantFrom(...Array<'none'>(8).fill('none'), 'value', 'lease'),
  })
  .map(({ key, value, lease, prevKv, ignore }): RequestOp & { type: 'put' } => {
    const base = { type: 'put' as const, key: bytes(key), prevKv };
    if (ignore === 'value') return { ...base, value: new Uint8Array(0), lease, ignoreValue: true };
    if (ignore === 'lease') return { ...base, value: bytes(value), ignoreLease: true };
    return { ...base, value: bytes(value), lease };
  });

const rangeRequestArbitrary: fc.Arbitrary<RangeRequest> = fc
  .record({
    range: rangeArbitrary,
    limit: fc.constantFrom(0, 0, 1, 2),
    revision: fc.constantFrom(0, 0, 0, 0, 2, 3, 5),
    sortTarget: fc.constantFrom('KEY', 'VERSION', 'CREATE', 'MOD', 'VALUE'),
    sortOrder: fc.constantFrom('NONE', 'ASCEND', 'DESCEND'),
    flags: fc.constantFrom('none', 'keysOnly', 'countOnly'),
    minModRevision: fc.constantFrom(0, 0, 3),
    maxCreateRevision: fc.constantFrom(0, 0, 5),
  })
  .map(({ range, flags, ...rest }) => ({
    ...range,
    ...rest,
    ...(flags === 'keysOnly' ? { keysOnly: true } : flags === 'countOnly' ? { countOnly: true } : {}),
  }));

const deleteArbitrary = fc
  .tuple(rangeArbitrary, fc.boolean())
  .map(([range, prevKv]): RequestOp => ({ type: 'deleteRange', ...range, prevKv }));

const compareArbitrary: fc.Arbitrary<Compare> = fc
  .tuple(
    rangeArbitrary,
    fc.constantFrom('VERSION', 'CREATE', 'MOD', 'LEASE', 'VALUE'),
    fc.nat(4),
    valueArbitrary,
  )
  .chain(([range, target, number, value]) =>
    fc.constantFrom('EQUAL', 'GREATER', 'LESS', 'NOT_EQUAL').map((result): Compare => {
      if (target === 'VALUE') return { ...range, target, result, value: bytes(value) };
      return { ...range, target, result, value: number };
    }),
  );

const simpleOpArbitrary: fc.Arbitrary<RequestOp> = fc.oneof(
  { arbitrary: putArbitrary, weight: 3 },
  { arbitrary: deleteArbitrary, weight: 1 },
  {
    arbitrary: rangeRequestArbitrary.map((request): RequestOp => ({ type: 'range', ...request })),
    weight: 1,
  },
);

const txnArbitrary = (ops: fc.Arbitrary<RequestOp>): fc.Arbitrary<RequestOp & { type: 'txn' }> =>
  fc.record({
    type: fc.constant('txn' as const),
    compare: fc.array(compareArbitrary, { maxLength: 2 }),
    success: fc.array(ops, { maxLength: 3 }),
    failure: fc.array(ops, { maxLength: 2 }),
  });

const nestedTxnArbitrary = txnArbitrary(
  fc.oneof(
    { arbitrary: simpleOpArbitrary, weight: 4 },
    { arbitrary: txnArbitrary(simpleOpArbitrary), weight: 1 },
  ),
);

const leaseArbitrary: fc.Arbitrary<KvCommand> = fc.oneof(
  {
    arbitrary: fc
      .record({
        id: fc.constantFrom(1, 2),
        ttlSeconds: fc.integer({ min: 1, max: 90 }),
        nowMs: fc.nat(100_000),
      })
      .map((request) => ({ type: 'leaseGrant' as const, ...request })),
    weight: 3,
  },
  { arbitrary: fc.constantFrom(1, 2, 3).map((id) => ({ type: 'leaseRevoke' as const, id })), weight: 1 },
  {
    arbitrary: fc
      .record({ id: fc.constantFrom(1, 2), remainingTtlSeconds: fc.nat(90), nowMs: fc.nat(100_000) })
      .map((request) => ({ type: 'leaseCheckpoint' as const, ...request })),
    weight: 1,
  },
);

/** Any command (without a session). */
export const operationArbitrary: fc.Arbitrary<KvCommand> = fc.oneof(
  { arbitrary: putArbitrary, weight: 6 },
  { arbitrary: deleteArbitrary, weight: 2 },
  {
    arbitrary: rangeRequestArbitrary.map((request): KvCommand => ({ type: 'range', ...request })),
    weight: 2,
  },
  { arbitrary: nestedTxnArbitrary, weight: 3 },
  {
    arbitrary: fc.integer({ min: 0, max: 8 }).map((revision) => ({ type: 'compact' as const, revision })),
    weight: 1,
  },
  { arbitrary: leaseArbitrary, weight: 2 },
);

/** A command, sometimes in a client session, or an entry without a command. */
export const entryCommandArbitrary: fc.Arbitrary<KvCommand | null> = fc.oneof(
  { arbitrary: operationArbitrary, weight: 10 },
  {
    arbitrary: fc
      .tuple(operationArbitrary, fc.constantFrom(1, 2), fc.integer({ min: 1, max: 4 }))
      .map(([command, clientId, seq]) => ({ ...command, session: { clientId, seq } })),
    weight: 3,
  },
  { arbitrary: fc.constant(null), weight: 1 },
);

/** Commands split into batches. */
export const batchesArbitrary = fc.array(fc.array(entryCommandArbitrary, { minLength: 1, maxLength: 4 }), {
  minLength: 1,
  maxLength: 12,
  size: 'medium',
});

/**
 * Applies `commands` as one batch of consecutive entries; with `viaLog`, each command goes
 * through the log encoding first, so equal outcomes also prove the codec round trip.
 */
function applyBatch(backend: KvBackend, commands: readonly (KvCommand | null)[], viaLog: boolean): unknown[] {
  let index = backend.appliedIndex;
  const entries = commands.map((command) => ({
    index: ++index,
    command: command !== null && viaLog ? decodeCommand(encodeCommand(command)) : command,
  }));
  return backend.applyBatch(entries).map(comparable);
}

/** Registers the random equivalence test and the cross-restore test. */
export function registerEquivalenceTests(
  factoryA: KvBackendFactory,
  factoryB: KvBackendFactory,
  runs: number,
): void {
  test('random command sequences give identical outcomes, hashes and watch streams', async () => {
    await fc.assert(
      fc.asyncProperty(batchesArbitrary, async (batches) => {
        const a = await factoryA.open({ sessionsMax: 2 });
        const b = await factoryB.open({ sessionsMax: 2 });
        try {
          const watchA = a.watch({ key: FROM_KEY, rangeEnd: FROM_KEY, prevKv: true });
          const watchB = b.watch({ key: FROM_KEY, rangeEnd: FROM_KEY, prevKv: true });
          for (const batch of batches) {
            assert.deepEqual(applyBatch(a, batch, false), applyBatch(b, batch, true));
            assert.equal(a.hash(), b.hash());
            assert.deepEqual(describeBatches(drain(watchA)), describeBatches(drain(watchB)));
          }
          await assertSnapshotsCross(a, b, factoryA, factoryB);
        } finally {
          await closeQuietly(a);
          await closeQuietly(b);
        }
      }),
      { numRuns: runs },
    );
  });
}

/** Each backend's snapshot restores into the other kind with the same hash. */
async function assertSnapshotsCross(
  a: KvBackend,
  b: KvBackend,
  factoryA: KvBackendFactory,
  factoryB: KvBackendFactory,
): Promise<void> {
  const intoB = await factoryB.open({ sessionsMax: 2 });
  const intoA = await factoryA.open({ sessionsMax: 2 });
  try {
    await intoB.restore(a.snapshot());
    await intoA.restore(b.snapshot());
    assert.equal(intoB.hash(), a.hash());
    assert.equal(intoA.hash(), b.hash());
    assert.deepEqual([...intoB.snapshot()], [...a.snapshot()], 'snapshots are byte-identical');
  } finally {
    await closeQuietly(intoB);
    await closeQuietly(intoA);
  }
}
