import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import type { Entry } from '../src/raft/types.js';
import { EMPTY_CONF_STATE } from '../src/raft/types.js';
import { isStorageError, systemErrorCode } from '../src/storage/errors.js';
import { type Fault, FaultyFileSystem } from '../src/storage/faulty-file-system.js';
import { FileStorage } from '../src/storage/file-storage.js';

const root = await mkdtemp(join(tmpdir(), 'flotilla-wal-faults-'));
after(() => rm(root, { recursive: true, force: true }));
let directories = 0;

function entries(first: number, last: number): Entry[] {
  const result: Entry[] = [];
  for (let index = first; index <= last; index++) {
    result.push({ index, term: 1, type: 'normal', data: new Uint8Array(100).fill(index & 0xff) });
  }
  return result;
}

/** A storage on a faulty file system with entries 1..10 saved, before any fault is armed. */
async function faultyStorage(): Promise<{
  storage: FileStorage;
  faults: FaultyFileSystem;
  directory: string;
}> {
  const directory = join(root, `d${directories++}`);
  const faults = new FaultyFileSystem();
  const storage = await FileStorage.open(directory, { segmentSizeBytes: 4096, fileSystem: faults });
  await storage.save({ entries: entries(1, 10), hardState: { term: 1, vote: 1, commit: 10 } });
  return { storage, faults, directory };
}

/** Asserts `promise` rejects with an IO StorageError caused by `code`; returns it. */
async function rejectsWithIo(promise: Promise<unknown>, code: string): Promise<unknown> {
  let caught: unknown;
  await assert.rejects(promise, (error) => {
    caught = error;
    assert.ok(isStorageError(error, 'IO'), String(error));
    assert.equal(systemErrorCode(error.cause), code);
    return true;
  });
  return caught;
}

/** After a failure every call rejects with the same error; reopening on a healthy disk keeps the acknowledged entries. */
async function assertFailedForGood(storage: FileStorage, first: unknown, directory: string): Promise<void> {
  assert.equal(storage.failedWith, first);
  await assert.rejects(storage.save({ entries: entries(11, 11) }), (error) => error === first);
  await assert.rejects(
    storage.createSnapshot(5, EMPTY_CONF_STATE, new Uint8Array(1)),
    (error) => error === first,
  );
  await assert.rejects(storage.compact(0), (error) => error === first);
  await assert.rejects(storage.saveConfState(EMPTY_CONF_STATE), (error) => error === first);
  assert.equal(storage.lastIndex(), 10, 'the read side shows only acknowledged entries');
  await storage.close();
  const reopened = await FileStorage.open(directory, { segmentSizeBytes: 4096 });
  assert.ok(reopened.lastIndex() >= 10);
  assert.deepEqual(
    reopened.entries(1, 11, Infinity).map((entry) => entry.data[0]),
    entries(1, 10).map((entry) => entry.data[0]),
  );
  await reopened.close();
}

describe('storage under injected faults', () => {
  const failures: [string, Fault, string][] = [
    ['EIO on fdatasync', { operation: 'datasync', kind: 'EIO', pathIncludes: '.wal' }, 'EIO'],
    ['ENOSPC on write', { operation: 'write', kind: 'ENOSPC', pathIncludes: '.wal' }, 'ENOSPC'],
    ['EIO on write', { operation: 'write', kind: 'EIO', pathIncludes: '.wal' }, 'EIO'],
  ];
  for (const [name, fault, code] of failures) {
    test(`${name} fails the save and the storage for good`, async () => {
      const { storage, faults, directory } = await faultyStorage();
      faults.inject(fault);
      const first = await rejectsWithIo(storage.save({ entries: entries(11, 12) }), code);
      await assertFailedForGood(storage, first, directory);
    });
  }

  test('a failed fsync is not retried even when the disk recovers', async () => {
    const { storage, faults, directory } = await faultyStorage();
    faults.inject({ operation: 'datasync', kind: 'EIO' });
    const first = await rejectsWithIo(storage.save({ entries: entries(11, 11) }), 'EIO');
    faults.clear();
    await assertFailedForGood(storage, first, directory);
  });

  test('queued saves behind a failing one reject with its error', async () => {
    const { storage, faults, directory } = await faultyStorage();
    faults.inject({ operation: 'datasync', kind: 'EIO' });
    const results = await Promise.allSettled([
      storage.save({ entries: entries(11, 11) }),
      storage.save({ entries: entries(12, 12) }),
      storage.save({ entries: entries(13, 13) }),
    ]);
    const reasons = results.map((result) => (result.status === 'rejected' ? result.reason : undefined));
    assert.ok(reasons[0] !== undefined && reasons.every((reason) => reason === reasons[0]));
    await assertFailedForGood(storage, reasons[0], directory);
  });

  test('short writes are completed and the data is intact', async () => {
    const { storage, faults, directory } = await faultyStorage();
    faults.inject({ operation: 'write', kind: 'short-write', pathIncludes: '.wal', times: Infinity });
    for (let index = 11; index <= 40; index += 3) await storage.save({ entries: entries(index, index + 2) });
    assert.ok(faults.fired.length > 10);
    await storage.close();
    const reopened = await FileStorage.open(directory, { segmentSizeBytes: 4096 });
    assert.equal(reopened.lastIndex(), 40);
    assert.deepEqual(
      reopened.entries(1, 41, Infinity).map((entry) => [...entry.data]),
      entries(1, 40).map((entry) => [...entry.data]),
    );
    await reopened.close();
  });

  test('EIO while syncing a snapshot file fails createSnapshot', async () => {
    const { storage, faults, directory } = await faultyStorage();
    faults.inject({ operation: 'sync', kind: 'EIO', pathIncludes: '.snap' });
    const first = await rejectsWithIo(storage.createSnapshot(5, EMPTY_CONF_STATE, new Uint8Array(10)), 'EIO');
    assert.equal(storage.snapshot().meta.index, 0);
    await assertFailedForGood(storage, first, directory);
  });

  test('EIO while renaming a new segment into place fails the save', async () => {
    const { storage, faults, directory } = await faultyStorage();
    faults.inject({ operation: 'rename', kind: 'EIO', pathIncludes: '.wal' });
    let first: unknown;
    for (let index = 11; first === undefined && index < 200; index++) {
      first = await storage.save({ entries: entries(index, index) }).then(
        () => undefined,
        (error: unknown) => error,
      );
    }
    assert.ok(isStorageError(first, 'IO'));
    await storage.close();
    const reopened = await FileStorage.open(directory, { segmentSizeBytes: 4096 });
    assert.ok(reopened.lastIndex() >= 10);
    await reopened.close();
  });

  test('EIO while deleting compacted segments fails compact', async () => {
    const { storage, faults } = await faultyStorage();
    for (let index = 11; storage.segmentPaths.length < 3; index++)
      await storage.save({ entries: entries(index, index) });
    await storage.createSnapshot(storage.lastIndex(), EMPTY_CONF_STATE, new Uint8Array(1));
    faults.inject({ operation: 'unlink', kind: 'EIO', pathIncludes: '.wal' });
    await rejectsWithIo(storage.compact(storage.lastIndex()), 'EIO');
    await storage.close();
  });

  test('EIO at open is reported as an IO error', async () => {
    const faults = new FaultyFileSystem();
    faults.inject({ operation: 'syncDirectory', kind: 'EIO' });
    await rejectsWithIo(FileStorage.open(join(root, `d${directories++}`), { fileSystem: faults }), 'EIO');
  });

  test('a closed storage rejects calls with CLOSED', async () => {
    const { storage } = await faultyStorage();
    await storage.close();
    await assert.rejects(storage.save({ entries: entries(11, 11) }), (error) =>
      isStorageError(error, 'CLOSED'),
    );
  });
});
