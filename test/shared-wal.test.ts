/**
 * The shared WAL with real files: group commit across groups, rollover with checkpoints,
 * segment deletion and pinning, dropped groups, torn tails, corruption and a failed fsync.
 */
import assert from 'node:assert/strict';
import { cp, mkdtemp, readdir, readFile, rm, stat, truncate, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { MemoryStorage, type StorageUpdate } from '../src/raft/storage.js';
import type { Entry } from '../src/raft/types.js';
import { EMPTY_CONF_STATE } from '../src/raft/types.js';
import { assertSameState, restartedState } from '../src/storage/conformance.js';
import { isStorageError, systemErrorCode } from '../src/storage/errors.js';
import { FaultyFileSystem } from '../src/storage/faulty-file-system.js';
import { type FileSystem, nodeFileSystem, type StorageFile } from '../src/storage/file-system.js';
import { SHARED_WAL_FRAME_TYPES, scanSegment } from '../src/storage/segment-scan.js';
import { type GroupStorage, SharedWal, type SharedWalOptions } from '../src/storage/shared-wal.js';

const root = await mkdtemp(join(tmpdir(), 'flotilla-shared-wal-'));
after(() => rm(root, { recursive: true, force: true }));
let directories = 0;

function entries(first: number, last: number, term = 1, bytes = 100): Entry[] {
  const result: Entry[] = [];
  for (let index = first; index <= last; index++)
    result.push({ index, term, type: 'normal', data: new Uint8Array(bytes).fill(index & 0xff) });
  return result;
}

/** A shared log in a new directory with `count` groups (ids 1..count) open, each with its model. */
async function openGroups(
  count: number,
  options: Partial<SharedWalOptions> = {},
  directory = join(root, `d${directories++}`),
): Promise<{ wal: SharedWal; groups: GroupStorage[]; models: MemoryStorage[]; directory: string }> {
  const wal = await SharedWal.open(join(directory, 'wal'), options);
  const groups: GroupStorage[] = [];
  for (let id = 1; id <= count; id++) groups.push(await wal.openGroup(id, join(directory, `snap-${id}`)));
  const models = groups.map(() => new MemoryStorage());
  return { wal, groups, models, directory };
}

async function saveBoth(storage: GroupStorage, model: MemoryStorage, update: StorageUpdate): Promise<void> {
  await storage.save(update);
  model.saveSync(update);
}

/** Appends `count` entries to every group, all groups at once. */
async function appendAll(groups: GroupStorage[], models: MemoryStorage[], count: number): Promise<void> {
  await Promise.all(
    groups.map((storage, i) => {
      const first = storage.lastIndex() + 1;
      const hardState = { term: 1, vote: i + 1, commit: first - 1 };
      return saveBoth(storage, models[i]!, { entries: entries(first, first + count - 1), hardState });
    }),
  );
}

/** Snapshots and compacts `storage` (and its model) at its last index. */
async function snapshotAndCompact(storage: GroupStorage, model: MemoryStorage): Promise<void> {
  const index = storage.lastIndex();
  const data = new Uint8Array([index & 0xff, 1, 2]);
  await storage.createSnapshot(index, EMPTY_CONF_STATE, data);
  model.createSnapshotSync(index, EMPTY_CONF_STATE, data);
  await storage.compact(index);
  model.compactSync(index);
}

/** The real file system, but every segment `fdatasync` waits until the test opens the gate. */
class GatedFileSystem {
  private gate: { promise: Promise<void>; open: () => void } | undefined;
  /** Segment fdatasyncs started. */
  datasyncs = 0;

  shut(): void {
    let open = (): void => undefined;
    const promise = new Promise<void>((resolve) => {
      open = resolve;
    });
    this.gate = { promise, open };
  }

  release(): void {
    this.gate?.open();
    this.gate = undefined;
  }

  async openFile(path: string, mode: Parameters<FileSystem['open']>[1]): Promise<StorageFile> {
    const file = await nodeFileSystem.open(path, mode);
    const datasync = async (): Promise<void> => {
      this.datasyncs++;
      await this.gate?.promise;
      await file.datasync();
    };
    return Object.assign(Object.create(file) as StorageFile, { datasync });
  }
}

function gatedFileSystem(gated: GatedFileSystem): FileSystem {
  return { ...nodeFileSystem, open: (path, mode) => gated.openFile(path, mode) };
}

/** Lets pending I/O callbacks and microtasks run. */
function settle(): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, 20));
}

describe('shared WAL group commit', () => {
  test('records arriving during a sync wait for the next write, and show only once durable', async () => {
    const gated = new GatedFileSystem();
    const { wal, groups } = await openGroups(4, { fileSystem: gatedFileSystem(gated) });
    gated.shut();
    gated.datasyncs = 0;
    let firstDone = false;
    const first = groups[0]!.save({ entries: entries(1, 2) }).then(() => {
      firstDone = true;
    });
    await settle();
    assert.equal(gated.datasyncs, 1, 'the first save did not start its sync at once');
    const others = groups.slice(1).map((storage) => storage.save({ entries: entries(1, 3) }));
    await settle();
    assert.equal(firstDone, false, 'resolved before its fdatasync completed');
    assert.equal(groups[0]!.lastIndex(), 0, 'the read side shows entries not yet durable');
    assert.equal(gated.datasyncs, 1, 'a second write started while the first was in flight');
    gated.release();
    await first;
    await Promise.all(others);
    assert.deepEqual(
      groups.map((storage) => storage.lastIndex()),
      [2, 3, 3, 3],
    );
    const { writes, syncs, records, maxGroupsPerSync, syncMs } = wal.stats;
    assert.deepEqual(
      { writes, syncs, records, maxGroupsPerSync },
      { writes: 2, syncs: 2, records: 4, maxGroupsPerSync: 3 },
    );
    assert.ok(syncMs > 0, 'the fdatasyncs took no time');
    await wal.close();
  });

  test('concurrent saves of many groups share few fdatasyncs', async (t) => {
    const { wal, groups, models } = await openGroups(16);
    const rounds = 5;
    for (let round = 0; round < rounds; round++) await appendAll(groups, models, 3);
    const saves = rounds * groups.length;
    t.diagnostic(`${saves} saves: ${JSON.stringify(wal.stats)}`);
    assert.equal(wal.stats.records, saves);
    // Per round: the 16 saves are handed over in one turn of the event loop and share one write.
    assert.ok(wal.stats.syncs <= rounds, `${wal.stats.syncs} syncs for ${saves} saves`);
    assert.equal(wal.stats.maxGroupsPerSync, groups.length);
    for (const [i, storage] of groups.entries()) assertSameState(storage, models[i]!);
    await wal.close();
  });

  test('records handed over from separate immediate callbacks (as Ready passes are) share one write', async () => {
    const { wal, groups } = await openGroups(8);
    const before = wal.stats.writes;
    // Each group saves from an immediate callback of its own, microtasks drained in between.
    await Promise.all(
      groups.map(
        (storage) =>
          new Promise<void>((resolve, reject) =>
            setImmediate(() => storage.save({ entries: entries(1, 2) }).then(resolve, reject)),
          ),
      ),
    );
    assert.equal(wal.stats.writes - before, 1, 'the groups of one turn were split across writes');
    assert.equal(wal.stats.maxGroupsPerSync, groups.length);
    await wal.close();
  });

  test('a commit-only hard state change is written without a sync', async () => {
    const { wal, groups } = await openGroups(2);
    await groups[0]!.save({ entries: entries(1, 3), hardState: { term: 1, vote: 1, commit: 1 } });
    const { writes, syncs } = wal.stats;
    await groups[0]!.save({ entries: [], hardState: { term: 1, vote: 1, commit: 3 } });
    await wal.idle();
    assert.equal(wal.stats.writes, writes + 1);
    assert.equal(wal.stats.syncs, syncs, 'the commit-only change was synced');
    assert.equal(groups[0]!.lastSave.syncMs, 0);
    await groups[1]!.save({ entries: [], hardState: { term: 2, vote: 2, commit: 0 } });
    assert.equal(wal.stats.syncs, syncs + 1, 'a vote change was not synced');
    await wal.close();
  });

  test("a segment begun while a group's commit-only record waits restates the logged commit index; recovery accepts it", async () => {
    const { wal, groups, directory } = await openGroups(2, { segmentSizeBytes: 4096 });
    await groups[0]!.save({ entries: entries(1, 3), hardState: { term: 1, vote: 1, commit: 1 } });
    await groups[1]!.save({ entries: entries(1, 1), hardState: { term: 1, vote: 2, commit: 0 } });
    const segments = async () =>
      (await readdir(join(directory, 'wal'))).filter((f) => f.endsWith('.wal')).length;
    const before = await segments();
    // One write: group 2's entry, too large for the rest of the segment (a new segment, its
    // checkpoint first), and group 1's commit-only record, its save resolved and its cache
    // showing commit 3 when the checkpoint is taken.
    const big = groups[1]!.save({
      entries: entries(2, 2, 1, 5000),
      hardState: { term: 1, vote: 2, commit: 1 },
    });
    await groups[0]!.save({ entries: [], hardState: { term: 1, vote: 1, commit: 3 } });
    assert.equal(groups[0]!.initialState().hardState.commit, 3);
    await big;
    await wal.idle();
    assert.equal(await segments(), before + 1, 'the write did not begin a segment');
    const crashed = join(root, `d${directories++}`);
    await cp(directory, crashed, { recursive: true });
    const afterCrash = await openGroups(2, { segmentSizeBytes: 4096 }, crashed);
    assert.equal(afterCrash.groups[0]!.initialState().hardState.commit, 3);
    assert.equal(afterCrash.groups[0]!.lastIndex(), 3);
    assert.equal(afterCrash.groups[1]!.lastIndex(), 2);
    await afterCrash.wal.close();
    await wal.close();
  });

  test("a commit-only save does not wait for another group's fdatasync; the group's later records stay behind it", async () => {
    const gated = new GatedFileSystem();
    const directory = join(root, `d${directories++}`);
    const { wal, groups } = await openGroups(2, { fileSystem: gatedFileSystem(gated) }, directory);
    await groups[0]!.save({ entries: entries(1, 3), hardState: { term: 1, vote: 1, commit: 1 } });
    gated.shut();
    const other = groups[1]!.save({ entries: entries(1, 2), hardState: { term: 1, vote: 1, commit: 0 } });
    await settle();
    // Group 2's write waits in its fdatasync; group 1's commit-only change is done at once,
    // and its next save (entries, which must be durable) queues behind it.
    let commitOnlyDone = false;
    const commitOnly = groups[0]!
      .save({ entries: [], hardState: { term: 1, vote: 1, commit: 3 } })
      .then(() => {
        commitOnlyDone = true;
      });
    await settle();
    assert.equal(commitOnlyDone, true, "the commit-only save waited for another group's fdatasync");
    await commitOnly;
    assert.equal(groups[0]!.initialState().hardState.commit, 3, 'a resolved save is not visible');
    let laterDone = false;
    const later = groups[0]!
      .save({ entries: entries(4, 4), hardState: { term: 1, vote: 1, commit: 3 } })
      .then(() => {
        laterDone = true;
      });
    await settle();
    assert.equal(laterDone, false, 'a record that must be durable was acknowledged before its fdatasync');
    assert.equal(groups[0]!.lastIndex(), 3, 'the read side shows entries not yet durable');
    assert.equal(
      groups[0]!.initialState().hardState.commit,
      3,
      'a resolved commit-only save is not visible to reads',
    );
    gated.release();
    await Promise.all([other, later]);
    assert.equal(groups[0]!.initialState().hardState.commit, 3);
    assert.equal(groups[0]!.lastIndex(), 4);
    await wal.close();
    const reopened = await openGroups(2, {}, directory);
    assert.equal(reopened.groups[0]!.initialState().hardState.commit, 3);
    assert.equal(reopened.groups[0]!.lastIndex(), 4);
    assert.equal(reopened.groups[1]!.lastIndex(), 2);
    await reopened.wal.close();
  });
});

describe('shared WAL segments', () => {
  test('segments left by a crash between a compaction and their deletion are deleted on open', async () => {
    const { wal, groups, models, directory } = await openGroups(2, { segmentSizeBytes: 4096 });
    for (let round = 0; round < 10; round++) await appendAll(groups, models, 4);
    const old = wal.segmentPaths;
    assert.ok(old.length > 3, `only ${old.length} segments`);
    const copies = await Promise.all(old.map((path) => readFile(path)));
    for (const [i, storage] of groups.entries()) await snapshotAndCompact(storage, models[i]!);
    assert.equal(wal.segmentPaths.length, 1);
    const expected = models.map((model) => restartedState(model));
    await wal.close();
    // Put back the deleted segments, as if the process died before deleting them.
    for (const [i, path] of old.slice(0, -1).entries()) await writeFile(path, copies[i]!);
    const reopened = await SharedWal.open(join(directory, 'wal'), { segmentSizeBytes: 4096 });
    assert.equal(reopened.recovery.segments, old.length, 'the old segments were not there to recover');
    assert.equal(reopened.segmentPaths.length, 1, 'segments no group needs were kept');
    for (const [i, model] of expected.entries())
      assertSameState(await reopened.openGroup(i + 1, join(directory, `snap-${i + 1}`)), model);
    await reopened.close();
  });

  test('compaction of every group deletes old segments; a lagging group pins them until dropped', async () => {
    const { wal, groups, models, directory } = await openGroups(3, { segmentSizeBytes: 4096 });
    for (let round = 0; round < 10; round++) await appendAll(groups, models, 4);
    assert.ok(wal.segmentPaths.length > 3, `only ${wal.segmentPaths.length} segments`);
    for (const [i, storage] of groups.entries()) await snapshotAndCompact(storage, models[i]!);
    assert.equal(wal.segmentPaths.length, 1, 'compacting every group left old segments');
    assert.deepEqual(wal.pinningGroups(), []);

    for (let round = 0; round < 10; round++) await appendAll(groups, models, 4);
    await snapshotAndCompact(groups[0]!, models[0]!);
    await snapshotAndCompact(groups[1]!, models[1]!);
    const pinned = wal.segmentPaths.length;
    assert.ok(pinned > 2, `group 3 pins only ${pinned} segments`);
    assert.deepEqual(wal.pinningGroups(), [3]);
    for (const path of wal.segmentPaths) await stat(path);

    await wal.dropGroup(3);
    assert.equal(wal.segmentPaths.length, 1, 'the dropped group still pins segments');
    assert.deepEqual(wal.pinningGroups(), []);
    assert.deepEqual(wal.groups(), [1, 2]);
    await assert.rejects(groups[2]!.save({ entries: entries(100, 100) }), (error) =>
      isStorageError(error, 'CLOSED'),
    );
    await appendAll(groups.slice(0, 2), models, 2);
    const expected = models.map((model) => restartedState(model));
    const segments = wal.segmentPaths.length;
    await wal.close();

    const reopened = await SharedWal.open(join(directory, 'wal'), { segmentSizeBytes: 4096 });
    assert.deepEqual(reopened.groups(), [1, 2]);
    assert.equal(reopened.recovery.segments, segments);
    for (const id of [1, 2])
      assertSameState(await reopened.openGroup(id, join(directory, `snap-${id}`)), expected[id - 1]!);
    const dropped = await reopened.openGroup(3, join(directory, 'snap-3'));
    assert.equal(dropped.lastIndex(), 0, 'the dropped group came back');
    await reopened.close();
  });

  test('a dropped id opened again starts empty, and recovery voids only the old records', async () => {
    const { wal, groups, models, directory } = await openGroups(2);
    await appendAll(groups, models, 5);
    await assert.rejects(wal.openGroup(1, join(directory, 'snap-1')), /already open/);
    await wal.dropGroup(2);
    const again = await wal.openGroup(2, join(directory, 'snap-2'));
    assert.equal(again.lastIndex(), 0);
    const fresh = new MemoryStorage();
    await saveBoth(again, fresh, { entries: entries(1, 2, 4), hardState: { term: 4, vote: 2, commit: 1 } });
    const expected = [restartedState(models[0]!), restartedState(fresh)];
    await wal.close();
    const reopened = await SharedWal.open(join(directory, 'wal'));
    assert.deepEqual(reopened.groups(), [1, 2]);
    for (const id of [1, 2])
      assertSameState(await reopened.openGroup(id, join(directory, `snap-${id}`)), expected[id - 1]!);
    await reopened.close();
  });

  test('recovery across many segments restores every group exactly', async () => {
    const { wal, groups, models, directory } = await openGroups(4, { segmentSizeBytes: 2048 });
    for (let round = 0; round < 12; round++) {
      await appendAll(groups, models, 1 + (round % 3));
      if (round % 4 === 3) await snapshotAndCompact(groups[round % 4]!, models[round % 4]!);
      // Overwrite the tail of one group with a newer term.
      const storage = groups[round % 4]!;
      const first = storage.lastIndex();
      if (first > storage.firstIndex())
        await saveBoth(storage, models[round % 4]!, { entries: entries(first, first + 1, 2 + round) });
      await groups[1]!.saveConfState({ ...EMPTY_CONF_STATE, voters: [round] });
      models[1]!.setConfState({ ...EMPTY_CONF_STATE, voters: [round] });
    }
    const expected = models.map((model) => restartedState(model));
    await wal.close();
    const reopened = await openGroups(0, { segmentSizeBytes: 2048 }, directory);
    assert.ok(reopened.wal.recovery.segments > 3);
    assert.equal(reopened.wal.recovery.groups, 4);
    for (let id = 1; id <= 4; id++)
      assertSameState(await reopened.wal.openGroup(id, join(directory, `snap-${id}`)), expected[id - 1]!);
    await reopened.wal.close();
  });
});

describe('shared WAL checkpoints', () => {
  test('a checkpoint larger than a segment still leaves room for a write after it', async () => {
    const { wal, groups, models, directory } = await openGroups(30, { segmentSizeBytes: 1024 });
    for (let round = 0; round < 3; round++) await appendAll(groups, models, 2);
    const segments = wal.segmentPaths.length;
    assert.ok(segments > 1 && segments <= 8, `${segments} segments for 6 writes`);
    const expected = models.map((model) => restartedState(model));
    await wal.close();
    const reopened = await SharedWal.open(join(directory, 'wal'), { segmentSizeBytes: 1024 });
    for (let id = 1; id <= 30; id++)
      assertSameState(await reopened.openGroup(id, join(directory, `snap-${id}`)), expected[id - 1]!);
    await reopened.close();
  });

  test('a write lost at the end of an older segment is refused: the next checkpoint differs', async () => {
    const { wal, groups, models, directory } = await openGroups(2, {
      segmentSizeBytes: 2048,
      preallocate: false,
    });
    for (let round = 0; round < 8; round++) await appendAll(groups, models, 2);
    const [first] = wal.segmentPaths;
    assert.ok(wal.segmentPaths.length > 1);
    await wal.close();
    const bytes = await readFile(first!);
    const frames = scanSegment(bytes, SHARED_WAL_FRAME_TYPES).frames;
    await truncate(first!, frames.at(-1)!.offset);
    await assert.rejects(SharedWal.open(join(directory, 'wal')), (error) => {
      assert.ok(isStorageError(error, 'CORRUPT'), String(error));
      assert.equal(error.file, first);
      assert.match(error.message, /was lost/);
      return true;
    });
  });
});

describe('shared WAL damage', () => {
  test('a torn last write is cut and reported; the groups keep everything before it', async () => {
    const { wal, groups, models, directory } = await openGroups(3, { preallocate: false });
    await appendAll(groups, models, 5);
    const expected = models.map((model) => restartedState(model));
    await groups[1]!.save({ entries: entries(6, 9) });
    const [segment] = wal.segmentPaths;
    await wal.close();
    const size = (await stat(segment!)).size;
    await truncate(segment!, size - 30);

    const reopened = await SharedWal.open(join(directory, 'wal'));
    const torn = reopened.recovery.tornTail;
    assert.ok(torn !== undefined, 'no torn tail reported');
    assert.equal(torn.file, segment);
    assert.ok(torn.offset < size - 30);
    for (let id = 1; id <= 3; id++)
      assertSameState(await reopened.openGroup(id, join(directory, `snap-${id}`)), expected[id - 1]!);
    await reopened.close();
  });

  test('a damaged frame before the end is refused, naming the file', async () => {
    const { wal, groups, models, directory } = await openGroups(2, { preallocate: false });
    for (let round = 0; round < 4; round++) await appendAll(groups, models, 2);
    const [segment] = wal.segmentPaths;
    await wal.close();
    const bytes = await readFile(segment!);
    const frames = scanSegment(bytes, SHARED_WAL_FRAME_TYPES).frames;
    assert.ok(frames.length >= 4);
    const victim = frames[2]!;
    bytes[victim.offset + 20] = bytes[victim.offset + 20]! ^ 0x40;
    await writeFile(segment!, bytes);
    await assert.rejects(SharedWal.open(join(directory, 'wal')), (error) => {
      assert.ok(isStorageError(error, 'CORRUPT'), String(error));
      assert.equal(error.file, segment);
      assert.equal(error.offset, victim.offset);
      return true;
    });
  });

  test('a failed fsync fails every group with that first error', async () => {
    const faults = new FaultyFileSystem();
    const { wal, groups, models } = await openGroups(3, { fileSystem: faults });
    await appendAll(groups, models, 2);
    faults.inject({ operation: 'datasync', kind: 'EIO' });
    const saves = groups.slice(0, 2).map((storage) => storage.save({ entries: entries(3, 3) }));
    const results = await Promise.allSettled(saves);
    const first = wal.failedWith;
    assert.ok(isStorageError(first, 'IO'), String(first));
    assert.equal(systemErrorCode(first.cause), 'EIO');
    for (const result of results) {
      assert.equal(result.status, 'rejected');
      assert.equal((result as PromiseRejectedResult).reason, first);
    }
    faults.clear();
    for (const [i, storage] of groups.entries()) {
      assert.equal(storage.failedWith, first, `group ${i + 1}`);
      await assert.rejects(storage.save({ entries: entries(3, 3) }), (error) => error === first);
      await assert.rejects(storage.saveConfState(EMPTY_CONF_STATE), (error) => error === first);
      assertSameState(storage, models[i]!);
    }
    await assert.rejects(wal.openGroup(9, join(root, 'never')), (error) => error === first);
    await wal.close();
  });
});
