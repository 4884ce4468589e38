/**
 * Compaction on the LMDB backend: the key index is compacted as the entry applies, and the
 * records it dropped are deleted afterwards in bounded transactions. Meanwhile nothing
 * shows them (reads, HashKV, the state hash, snapshots); a deletion cut short, as by a
 * crash between two transactions, is finished on the next open without bringing back a
 * deleted key. A memory backend given the same commands is the reference.
 */
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { bytes } from '../src/kv/conformance-harness.js';
import type { KvBackend, KvCommand } from '../src/kv/index.js';
import { LmdbKvBackend, type LmdbKvTestHooks } from '../src/kv/lmdb-backend.js';
import { MemoryKvBackend } from '../src/kv/memory-backend.js';

const root = await mkdtemp(join(tmpdir(), 'flotilla-kv-compaction-'));
after(() => rm(root, { recursive: true, force: true }));
let directories = 0;
const freshPath = () => join(root, `kv-${directories++}`);

const KEYS = 40;
/** Small, so that one compaction takes many transactions and they split keys' histories. */
const DELETES_PER_COMMIT = 7;

/**
 * History in which every key is written three times; every third key is then deleted, and
 * half of those are written again after the compacted revision.
 */
function history(): KvCommand[] {
  const commands: KvCommand[] = [];
  for (let round = 0; round < 3; round++) {
    for (let k = 0; k < KEYS; k++)
      commands.push({ type: 'put', key: bytes(`k${k}`), value: bytes(`v${round}`) });
  }
  for (let k = 0; k < KEYS; k += 3) commands.push({ type: 'deleteRange', key: bytes(`k${k}`) });
  return commands;
}

function apply(backends: readonly KvBackend[], commands: readonly KvCommand[]): void {
  for (const backend of backends) {
    let index = backend.appliedIndex;
    backend.applyBatch(commands.map((command) => ({ index: ++index, command })));
  }
}

function sameState(lmdb: KvBackend, reference: KvBackend, when: string): void {
  assert.equal(lmdb.hash(), reference.hash(), `state hash ${when}`);
  assert.deepEqual(lmdb.hashKv(), reference.hashKv(), `HashKV ${when}`);
  const all = { key: bytes('k'), rangeEnd: bytes('l') };
  assert.deepEqual(lmdb.range(all), reference.range(all), `every key ${when}`);
}

/** Applies the history and a compaction at its last revision to both backends. */
function compactBoth(lmdb: KvBackend, reference: KvBackend): void {
  apply([lmdb, reference], history());
  apply([lmdb, reference], [{ type: 'compact', revision: reference.revision }]);
  const again: KvCommand[] = [];
  for (let k = 0; k < KEYS; k += 6) again.push({ type: 'put', key: bytes(`k${k}`), value: bytes('again') });
  apply([lmdb, reference], again);
}

/** A gate the deletions wait at, counting the transactions it let through. */
function gate(stopAfter = Number.POSITIVE_INFINITY): {
  hooks: LmdbKvTestHooks;
  open(): void;
  readonly passed: number;
} {
  let release: (() => void) | undefined;
  let opened = false;
  let passed = 0;
  return {
    hooks: {
      beforeCompactedDelete: async () => {
        if (!opened) await new Promise<void>((resolve) => (release = resolve));
        if (passed >= stopAfter) return false;
        passed++;
        return true;
      },
    },
    open() {
      opened = true;
      release?.();
    },
    get passed() {
      return passed;
    },
  };
}

test('compacted records are deleted after the apply, in bounded transactions, and never seen meanwhile', async () => {
  const held = gate();
  const lmdb = LmdbKvBackend.open(freshPath(), { compactDeletesPerCommit: DELETES_PER_COMMIT }, held.hooks);
  const reference = new MemoryKvBackend();
  compactBoth(lmdb, reference);
  await lmdb.sync();
  // Nothing deleted yet: the records are still in LMDB, and hidden.
  assert.equal(held.passed, 0);
  sameState(lmdb, reference, 'before any deletion');
  assert.deepEqual(await lmdb.hashKvAsync(), reference.hashKv(), 'HashKV over a pinned view');
  // A snapshot taken now restores to the same state.
  const copy = LmdbKvBackend.open(freshPath());
  const snapshot = lmdb.snapshot();
  await copy.restore(snapshot);
  snapshot.release();
  sameState(copy, reference, 'restored from a snapshot taken before the deletions');
  await copy.close();
  held.open();
  await lmdb.compactionDeleted();
  // Per key kept alive, its two older puts; per deleted key, its three puts and the tombstone,
  // except the last one deleted, whose tombstone is at the compacted revision and stays.
  const deletedKeys = Math.ceil(KEYS / 3);
  const dropped = 2 * (KEYS - deletedKeys) + 4 * deletedKeys - 1;
  assert.equal(held.passed, Math.ceil(dropped / DELETES_PER_COMMIT), 'one transaction per bounded chunk');
  sameState(lmdb, reference, 'after the deletions');
  await lmdb.close();
});

for (const stopAfter of [1, 3, 6]) {
  test(`deletions cut short after ${stopAfter} transaction(s) are finished on reopen; no deleted key comes back`, async () => {
    const path = freshPath();
    const cut = gate(stopAfter);
    cut.open();
    const lmdb = LmdbKvBackend.open(path, { compactDeletesPerCommit: DELETES_PER_COMMIT }, cut.hooks);
    const reference = new MemoryKvBackend();
    compactBoth(lmdb, reference);
    await lmdb.compactionDeleted();
    assert.equal(cut.passed, stopAfter);
    sameState(lmdb, reference, 'with the deletions stopped');
    await lmdb.close();
    const counted = gate();
    counted.open();
    const reopened = LmdbKvBackend.open(path, { compactDeletesPerCommit: DELETES_PER_COMMIT }, counted.hooks);
    sameState(reopened, reference, 'reopened');
    await reopened.compactionDeleted();
    assert.ok(counted.passed > 0, 'the reopened store deleted what was left');
    sameState(reopened, reference, 'after the reopened store finished');
    await reopened.close();
  });
}
