import assert from 'node:assert/strict';
import { mkdtemp, open, readdir, readFile, rm, unlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { MemoryStorage } from '../src/raft/storage.js';
import type { Entry } from '../src/raft/types.js';
import { assertSameState, restartedState } from '../src/storage/conformance.js';
import { isStorageError, type StorageErrorCode } from '../src/storage/errors.js';
import { FileStorage, type FileStorageOptions } from '../src/storage/file-storage.js';
import { segmentFileName } from '../src/storage/segment-files.js';
import { scanSegment } from '../src/storage/segment-scan.js';

const root = await mkdtemp(join(tmpdir(), 'flotilla-wal-recovery-'));
after(() => rm(root, { recursive: true, force: true }));
let directories = 0;
const small: Partial<FileStorageOptions> = { segmentSizeBytes: 1024 };

function newDirectory(): string {
  return join(root, `d${directories++}`);
}

function entries(first: number, last: number, term: number): Entry[] {
  const result: Entry[] = [];
  for (let index = first; index <= last; index++) {
    result.push({
      index,
      term,
      type: 'normal',
      data: new TextEncoder().encode(`entry ${index} of term ${term}`),
    });
  }
  return result;
}

/** Saves entries `[1, last]` in batches of `batch` to both. */
async function fill(storage: FileStorage, model: MemoryStorage, last: number, batch = 3): Promise<void> {
  for (let first = storage.lastIndex() + 1; first <= last; first += batch) {
    const update = {
      entries: entries(first, Math.min(last, first + batch - 1), 1),
      hardState: { term: 1, vote: 1, commit: first },
    };
    await storage.save(update);
    model.saveSync(update);
  }
}

/** A closed storage with `last` entries over several segments, and its model. */
async function closedStorage(
  last = 60,
  options = small,
): Promise<{ directory: string; model: MemoryStorage; segments: string[] }> {
  const directory = newDirectory();
  const storage = await FileStorage.open(directory, options);
  const model = new MemoryStorage();
  await fill(storage, model, last);
  const segments = storage.segmentPaths;
  await storage.close();
  return { directory, model, segments };
}

async function frames(path: string): Promise<{ offset: number; end: number }[]> {
  return scanSegment(await readFile(path)).frames.map(({ offset, end }) => ({ offset, end }));
}

async function patch(path: string, offset: number, bytes: Uint8Array): Promise<void> {
  const handle = await open(path, 'r+');
  await handle.write(bytes, 0, bytes.length, offset);
  await handle.close();
}

async function flipByte(path: string, offset: number): Promise<void> {
  const bytes = await readFile(path);
  await patch(path, offset, Uint8Array.of(bytes[offset]! ^ 0x5a));
}

async function assertRefused(
  directory: string,
  code: StorageErrorCode,
  file: string,
  offset?: number,
): Promise<void> {
  await assert.rejects(FileStorage.open(directory, small), (error) => {
    assert.ok(isStorageError(error, code), `expected ${code}, got ${String(error)}`);
    assert.equal(error.file, file);
    assert.ok(error.message.includes(file));
    if (offset !== undefined) {
      assert.equal(error.offset, offset);
      assert.ok(error.message.includes(`byte offset ${offset}`));
    }
    return true;
  });
}

describe('WAL recovery', () => {
  test('recovers across many segments', async () => {
    const { directory, model, segments } = await closedStorage(200);
    assert.ok(segments.length > 5, `only ${segments.length} segments`);
    const storage = await FileStorage.open(directory, small);
    assert.equal(storage.recovery.segments, segments.length);
    assert.equal(storage.recovery.tornTail, undefined);
    assertSameState(storage, restartedState(model));
    await storage.close();
  });

  test('compaction deletes only the segments wholly below the index', async () => {
    const directory = newDirectory();
    const storage = await FileStorage.open(directory, small);
    const model = new MemoryStorage();
    await fill(storage, model, 200);
    const before = storage.segmentPaths;
    await storage.createSnapshot(
      150,
      { ...model.initialState().confState, voters: [1] },
      Uint8Array.of(1, 2, 3),
    );
    model.createSnapshotSync(150, { ...model.initialState().confState, voters: [1] }, Uint8Array.of(1, 2, 3));
    await storage.compact(150);
    model.compactSync(150);
    const remaining = storage.segmentPaths;
    assert.ok(remaining.length < before.length);
    const onDisk = (await readdir(join(directory, 'wal'))).filter((name) => name.endsWith('.wal'));
    assert.deepEqual(
      onDisk,
      remaining.map((path) => path.slice(path.lastIndexOf('/') + 1)),
    );
    const reopened = await FileStorage.open(directory, small);
    await storage.close().catch(() => undefined);
    assertSameState(reopened, restartedState(model));
    await reopened.close();
  });

  test('an overwrite reaching back into later-deleted segments recovers', async () => {
    const directory = newDirectory();
    let storage = await FileStorage.open(directory, small);
    const model = new MemoryStorage();
    await fill(storage, model, 30);
    // Save single entries until one save rolls over: the new segment carries lastIndex - 1.
    const segmentCount = storage.segmentPaths.length;
    while (storage.segmentPaths.length === segmentCount)
      await fill(storage, model, storage.lastIndex() + 1, 1);
    const last = storage.lastIndex();
    const overwrite = { entries: entries(last - 2, last + 1, 2) };
    await storage.save(overwrite);
    model.saveSync(overwrite);
    const confState = model.initialState().confState;
    await storage.createSnapshot(last, confState, Uint8Array.of(9));
    model.createSnapshotSync(last, confState, Uint8Array.of(9));
    await storage.compact(last);
    model.compactSync(last);
    await storage.close();
    storage = await FileStorage.open(directory, small);
    assertSameState(storage, restartedState(model));
    await storage.close();
  });

  test('cuts a torn tail in the preallocated last segment', async () => {
    const { directory, model, segments } = await closedStorage();
    const last = segments.at(-1)!;
    const lastFrames = await frames(last);
    const end = lastFrames.at(-1)!.end;
    // The first half of a frame, as if the write stopped half way.
    const bytes = await readFile(last);
    const template = lastFrames.at(-1)!;
    await patch(
      last,
      end,
      bytes.subarray(template.offset, template.offset + (template.end - template.offset) / 2),
    );
    const storage = await FileStorage.open(directory, small);
    assert.equal(storage.recovery.tornTail?.file, last);
    assert.equal(storage.recovery.tornTail?.offset, end);
    assertSameState(storage, restartedState(model));
    await storage.save({ entries: entries(61, 61, 1) });
    await storage.close();
    const again = await FileStorage.open(directory, small);
    assert.equal(again.recovery.tornTail, undefined);
    assert.equal(again.lastIndex(), 61);
    await again.close();
  });

  test('cuts a last frame cut short at the end of the file', async () => {
    const { directory, segments } = await closedStorage(60, { ...small, preallocate: false });
    const last = segments.at(-1)!;
    const lastFrame = (await frames(last)).at(-1)!;
    const handle = await open(last, 'r+');
    await handle.truncate(lastFrame.end - 5);
    await handle.close();
    const storage = await FileStorage.open(directory, { ...small, preallocate: false });
    assert.equal(storage.recovery.tornTail?.offset, lastFrame.offset);
    assert.equal(storage.lastIndex(), 57);
    assert.equal(storage.recovery.entries, 57);
    await storage.close();
  });

  test('refuses damage followed by valid frames in the last segment', async () => {
    const { directory, segments } = await closedStorage();
    const last = segments.at(-1)!;
    const target = (await frames(last))[1]!;
    await flipByte(last, target.offset + 12);
    await assertRefused(directory, 'CORRUPT', last, target.offset);
  });

  test('refuses damage in an earlier segment', async () => {
    const { directory, segments } = await closedStorage();
    const target = (await frames(segments[1]!)).at(-1)!;
    await flipByte(segments[1]!, target.end - 1);
    await assertRefused(directory, 'CORRUPT', segments[1]!);
  });

  test('refuses frames lost at the end of an earlier segment', async () => {
    const { directory, segments } = await closedStorage();
    const lastFrame = (await frames(segments[1]!)).at(-1)!;
    await patch(segments[1]!, lastFrame.offset, new Uint8Array(lastFrame.end - lastFrame.offset));
    await assertRefused(directory, 'CORRUPT', segments[1]!, lastFrame.offset);
  });

  test('tolerates garbage in the unused space of an earlier segment', async () => {
    const { directory, model, segments } = await closedStorage();
    const lastFrame = (await frames(segments[1]!)).at(-1)!;
    const size = (await readFile(segments[1]!)).length;
    assert.ok(size > lastFrame.end + 2, 'no unused space');
    await patch(segments[1]!, size - 1, Uint8Array.of(7));
    const storage = await FileStorage.open(directory, small);
    assertSameState(storage, restartedState(model));
    await storage.close();
  });

  test('refuses a missing segment in the middle', async () => {
    const { directory, segments } = await closedStorage();
    await unlink(segments[2]!);
    await assertRefused(directory, 'MISSING_SEGMENT', segments[3]!, 0);
    await assert.rejects(FileStorage.open(directory, small), (error: Error) =>
      error.message.includes(`${segmentFileName(3)}) is missing`),
    );
  });

  test('refuses a missing first segment whose entries are still needed', async () => {
    const { directory, segments } = await closedStorage();
    await unlink(segments[0]!);
    await assertRefused(directory, 'MISSING_SEGMENT', segments[1]!, 0);
  });

  test('refuses a damaged segment header', async () => {
    const { directory, segments } = await closedStorage();
    await flipByte(segments[2]!, 20);
    await assertRefused(directory, 'CORRUPT', segments[2]!, 0);
  });

  test('refuses a segment renamed to the wrong number', async () => {
    const { directory, segments } = await closedStorage();
    const bytes = await readFile(segments.at(-1)!);
    await writeFile(join(directory, 'wal', segmentFileName(segments.length + 1)), bytes);
    await assertRefused(
      directory,
      'CORRUPT',
      join(directory, 'wal', segmentFileName(segments.length + 1)),
      0,
    );
  });
});

describe('snapshot recovery', () => {
  async function withSnapshots(count: number): Promise<{ directory: string; model: MemoryStorage }> {
    const directory = newDirectory();
    const storage = await FileStorage.open(directory, small);
    const model = new MemoryStorage();
    await fill(storage, model, 100);
    for (let i = 1; i <= count; i++) {
      const data = new Uint8Array(5000 + i).fill(i);
      await storage.createSnapshot(i * 20, model.initialState().confState, data);
      model.createSnapshotSync(i * 20, model.initialState().confState, data);
    }
    await storage.close();
    return { directory, model };
  }

  const snapshotFiles = async (directory: string) => (await readdir(join(directory, 'snap'))).sort();

  test('keeps the newest two snapshot files and recovers the newest', async () => {
    const { directory, model } = await withSnapshots(4);
    assert.deepEqual(await snapshotFiles(directory), [
      '00000000000003c-0000000000000001.snap'.replace('3c', '03c'),
      '0000000000000050-0000000000000001.snap',
    ]);
    const storage = await FileStorage.open(directory, small);
    assertSameState(storage, restartedState(model));
    await storage.close();
  });

  test('refuses a missing snapshot file', async () => {
    const { directory } = await withSnapshots(1);
    const [name] = await snapshotFiles(directory);
    await unlink(join(directory, 'snap', name!));
    await assertRefused(directory, 'MISSING_SNAPSHOT', join(directory, 'snap', name!));
  });

  test('refuses a damaged snapshot file', async () => {
    const { directory } = await withSnapshots(1);
    const path = join(directory, 'snap', (await snapshotFiles(directory))[0]!);
    await flipByte(path, 100);
    const size = (await readFile(path)).length;
    await assertRefused(directory, 'CORRUPT', path, size - 4);
  });

  test('removes unrecorded snapshot files and temporary files', async () => {
    const { directory, model } = await withSnapshots(1);
    const files = await snapshotFiles(directory);
    const orphan = join(directory, 'snap', '0000000000000063-0000000000000001.snap');
    await writeFile(orphan, await readFile(join(directory, 'snap', files[0]!)));
    const temporary = [
      join(directory, 'snap', 'x.snap.tmp'),
      join(directory, 'wal', `${segmentFileName(99)}.tmp`),
    ];
    for (const path of temporary) await writeFile(path, 'partial');
    const storage = await FileStorage.open(directory, small);
    assert.deepEqual([...storage.recovery.removedFiles].sort(), [orphan, ...temporary].sort());
    assert.deepEqual(await snapshotFiles(directory), files);
    assertSameState(storage, restartedState(model));
    await storage.close();
  });

  test('refuses snapshot files without any WAL segment', async () => {
    const { directory } = await withSnapshots(1);
    for (const name of await readdir(join(directory, 'wal'))) await unlink(join(directory, 'wal', name));
    await assert.rejects(FileStorage.open(directory, small), (error) =>
      isStorageError(error, 'MISSING_SEGMENT'),
    );
  });
});
