/**
 * The conformance suite of the {@link LogStorage} port: every implementation must pass it.
 * Call {@link runLogStorageConformance} from a `node:test` file; it registers the tests.
 *
 * Restart semantics checked by "reopen" tests: everything a resolved `save`, `createSnapshot`,
 * `compact` (and `saveConfState`, where implemented) made durable is there after a reopen;
 * the log may then start right after the snapshot (entries the snapshot covers need not
 * survive a restart).
 */
import { describe, type TestContext } from 'node:test';
import { type LogStorageFactory, Session } from './conformance-harness.js';
import { registerLogTests, registerUpdateTests } from './conformance-log.js';
import { registerPropertyTest } from './conformance-random.js';
import { registerReopenTests, registerRestartTests } from './conformance-reopen.js';
import { registerSnapshotTests } from './conformance-snapshots.js';

export { assertSameState, type LogStorageFactory, restartedState } from './conformance-harness.js';

/** Registers the conformance tests for the storage `factory` opens, under `name`. */
export function runLogStorageConformance(name: string, factory: LogStorageFactory): void {
  const withStorage =
    (body: (session: Session, context: TestContext) => Promise<void>) => async (context: TestContext) => {
      const session = new Session(factory, await factory.open());
      try {
        await body(session, context);
      } finally {
        await session.storage.close();
      }
    };
  describe(`LogStorage conformance: ${name}`, () => {
    registerLogTests(withStorage);
    registerUpdateTests(withStorage);
    registerSnapshotTests(withStorage);
    registerReopenTests(withStorage);
    registerRestartTests(withStorage);
    registerPropertyTest(factory);
  });
}
