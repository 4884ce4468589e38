/**
 * The property test of the {@link LogStorage} conformance suite: random sequences of
 * appends, hard states, snapshots, compactions, membership changes and reopens leave the
 * storage holding what a {@link MemoryStorage} model holds.
 */
import { test } from 'node:test';
import fc from 'fast-check';
import type { LogStorage, StorageUpdate } from '../raft/storage.js';
import { MemoryStorage } from '../raft/storage.js';
import type { HardState } from '../raft/types.js';
import {
  assertSameState,
  assertSnapshot,
  bytes,
  confStateOf,
  type LogStorageFactory,
  makeEntries,
  makeSnapshot,
  restartedState,
  Session,
} from './conformance-harness.js';

/** An operation of the property test, applied to the storage and to a MemoryStorage model. */
type Operation =
  | { readonly kind: 'append'; readonly back: number; readonly count: number; readonly termStep: number }
  | { readonly kind: 'hard-state'; readonly hardState: HardState }
  | { readonly kind: 'create-snapshot'; readonly fraction: number }
  | { readonly kind: 'compact'; readonly fraction: number }
  | { readonly kind: 'receive-snapshot'; readonly ahead: number }
  | { readonly kind: 'conf-state'; readonly voters: number[] }
  | { readonly kind: 'reopen' };

const operationArbitrary: fc.Arbitrary<Operation> = fc.oneof(
  {
    weight: 6,
    arbitrary: fc.record({
      kind: fc.constant('append' as const),
      back: fc.nat(4),
      count: fc.nat(6),
      termStep: fc.nat(1),
    }),
  },
  {
    weight: 2,
    arbitrary: fc.record({
      kind: fc.constant('hard-state' as const),
      hardState: fc.record({ term: fc.nat(100), vote: fc.nat(5), commit: fc.nat(100) }),
    }),
  },
  {
    weight: 2,
    arbitrary: fc.record({
      kind: fc.constant('create-snapshot' as const),
      fraction: fc.double({ min: 0, max: 1, noNaN: true }),
    }),
  },
  {
    weight: 2,
    arbitrary: fc.record({
      kind: fc.constant('compact' as const),
      fraction: fc.double({ min: 0, max: 1, noNaN: true }),
    }),
  },
  {
    weight: 1,
    arbitrary: fc.record({
      kind: fc.constant('receive-snapshot' as const),
      ahead: fc.integer({ min: -3, max: 5 }),
    }),
  },
  {
    weight: 1,
    arbitrary: fc.record({
      kind: fc.constant('conf-state' as const),
      voters: fc.array(fc.integer({ min: 1, max: 9 }), { maxLength: 4 }),
    }),
  },
  { weight: 2, arbitrary: fc.constant({ kind: 'reopen' as const }) },
);

/** Registers the property test: random operation sequences against the model, across reopens. */
export function registerPropertyTest(factory: LogStorageFactory): void {
  test('random operation sequences match the in-memory model, across reopens', async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(operationArbitrary, { minLength: 1, maxLength: 25 }), async (operations) => {
        const session = new Session(factory, await factory.open());
        let model = new MemoryStorage();
        try {
          for (const operation of operations) {
            model = await applyOperation(session, model, operation);
            assertSameState(session.storage, model);
          }
          assertSameState(await session.reopen(), restartedState(model));
        } finally {
          await session.storage.close();
        }
      }),
      { numRuns: 30 },
    );
  });
}

/** Applies `operation` to both; returns the model (replaced on reopen). */
async function applyOperation(
  session: Session,
  model: MemoryStorage,
  operation: Operation,
): Promise<MemoryStorage> {
  const storage = session.storage;
  switch (operation.kind) {
    case 'append': {
      // Never overwrite entries a snapshot covers: they are committed, which raft never
      // replaces (and a restart keeps only the snapshot of them, so no storage can honour it).
      const kept = Math.max(model.firstIndex(), model.snapshot().meta.index + 1);
      const first = Math.max(kept, model.lastIndex() + 1 - operation.back);
      const term = model.term(first - 1) + operation.termStep + 1;
      const update = { entries: makeEntries(first, first + operation.count - 1, term) };
      return saveBoth(storage, model, update);
    }
    case 'hard-state':
      // A plain copy: fast-check builds records without a prototype, which deepEqual tells apart.
      return saveBoth(storage, model, { entries: [], hardState: { ...operation.hardState } });
    case 'create-snapshot': {
      const low = model.snapshot().meta.index + 1;
      if (low > model.lastIndex()) return model;
      const index = low + Math.floor(operation.fraction * (model.lastIndex() - low));
      const data = bytes(`snapshot ${index}`);
      assertSnapshot(
        await storage.createSnapshot(index, confStateOf([index % 7]), data),
        model.createSnapshotSync(index, confStateOf([index % 7]), data),
      );
      return model;
    }
    case 'compact': {
      const index = Math.floor(operation.fraction * model.snapshot().meta.index);
      await storage.compact(index);
      model.compactSync(index);
      return model;
    }
    case 'receive-snapshot': {
      const index = Math.max(model.snapshot().meta.index + 1, model.lastIndex() + operation.ahead);
      const term = model.lastIndex() >= index ? model.term(index) : model.term(model.lastIndex()) + 1;
      return saveBoth(storage, model, { entries: [], snapshot: makeSnapshot(index, term, [index % 5]) });
    }
    case 'conf-state': {
      const confState = confStateOf(operation.voters);
      await storage.saveConfState(confState);
      model.setConfState(confState);
      return model;
    }
    case 'reopen':
      await session.reopen();
      return restartedState(model);
  }
}

async function saveBoth(
  storage: LogStorage,
  model: MemoryStorage,
  update: StorageUpdate,
): Promise<MemoryStorage> {
  await storage.save(update);
  model.saveSync(update);
  return model;
}
