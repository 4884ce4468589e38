/**
 * The conformance suite of the {@link KvBackend} port: every backend must pass it. Call
 * {@link runKvConformance} from a `node:test` file; it registers the tests. Call
 * {@link runKvEquivalence} with two backends to check that they agree command for command
 * (random command sequences) and that their snapshots restore into each other.
 *
 * The suite pins etcd's semantics where the etcd v3 API exposes them: revisions, versions,
 * range options, txn compares, compaction, leases, watches; plus this project's sessions,
 * size limits, atomicity of failed commands, snapshots and restarts.
 */

import { describe } from 'node:test';
import { closeQuietly, type KvBackendFactory, KvDriver, type WithDriver } from './conformance-harness.js';
import { registerBasicTests, registerRangeTests } from './conformance-kv.js';
import { registerLeaseTests, registerSessionTests } from './conformance-leases.js';
import { registerEquivalenceTests } from './conformance-random.js';
import { registerReopenTests, registerSnapshotTests } from './conformance-snapshots.js';
import { registerCompactionTests, registerTxnTests, registerValidationTests } from './conformance-txn.js';
import { registerWatchTests } from './conformance-watch.js';

export { closeQuietly, type KvBackendFactory, type WithDriver } from './conformance-harness.js';

/** Registers the conformance tests for the backends `factory` opens, under `name`. */
export function runKvConformance(name: string, factory: KvBackendFactory): void {
  const withDriver: WithDriver = (body, options) => async () => {
    const driver = new KvDriver(await factory.open(options));
    try {
      await body(driver, factory);
    } finally {
      await closeQuietly(driver.kv);
    }
  };
  describe(`KvBackend conformance: ${name}`, () => {
    describe('revisions and ranges', () => {
      registerBasicTests(withDriver);
      registerRangeTests(withDriver);
    });
    describe('transactions, compaction, validation', () => {
      registerTxnTests(withDriver);
      registerCompactionTests(withDriver);
      registerValidationTests(withDriver);
    });
    describe('leases and sessions', () => {
      registerLeaseTests(withDriver);
      registerSessionTests(withDriver);
    });
    describe('watches', () => registerWatchTests(withDriver));
    describe('snapshots and restarts', () => {
      registerSnapshotTests(withDriver);
      registerReopenTests(withDriver);
    });
  });
}

/**
 * Registers tests that two backends agree: the same random command sequences give the same
 * outcomes and hashes, and each restores the other's snapshots.
 */
export function runKvEquivalence(
  nameA: string,
  factoryA: KvBackendFactory,
  nameB: string,
  factoryB: KvBackendFactory,
  runs = 100,
): void {
  describe(`KvBackend equivalence: ${nameA} vs ${nameB}`, () => {
    registerEquivalenceTests(factoryA, factoryB, runs);
  });
}
