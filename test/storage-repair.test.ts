import assert from 'node:assert/strict';
import { mkdtemp, open, readFile, rm, unlink } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import type { Entry } from '../src/raft/types.js';
import { isStorageError } from '../src/storage/errors.js';
import { FileStorage } from '../src/storage/file-storage.js';
import { repairWal } from '../src/storage/repair.js';
import { scanSegment } from '../src/storage/segment-scan.js';

const root = await mkdtemp(join(tmpdir(), 'flotilla-repair-'));
after(() => rm(root, { recursive: true, force: true }));
let directories = 0;
const options = { segmentSizeBytes: 1024 };

function entries(first: number, last: number): Entry[] {
  const result: Entry[] = [];
  for (let index = first; index <= last; index++)
    result.push({ index, term: 1, type: 'normal', data: new Uint8Array(20) });
  return result;
}

/** A closed storage with entries 1..60 saved two at a time; returns its directory and segments. */
async function damagedLater(): Promise<{ directory: string; segments: string[] }> {
  const directory = join(root, `d${directories++}`);
  const storage = await FileStorage.open(directory, options);
  for (let index = 1; index <= 60; index += 2) await storage.save({ entries: entries(index, index + 1) });
  const segments = storage.segmentPaths;
  await storage.close();
  return { directory, segments };
}

async function flip(path: string, offset: number): Promise<void> {
  const handle = await open(path, 'r+');
  const byte = new Uint8Array(1);
  await handle.read(byte, 0, 1, offset);
  byte[0]! ^= 0xff;
  await handle.write(byte, 0, 1, offset);
  await handle.close();
}

describe('repairWal', () => {
  test('reports nothing for a healthy WAL', async () => {
    const { directory } = await damagedLater();
    const report = await repairWal(directory, { consent: true });
    assert.deepEqual(report, {
      problem: null,
      cutAt: null,
      droppedEntries: 0,
      removedSegments: [],
      applied: false,
      unrepairable: false,
    });
  });

  test('without consent only reports what it would cut', async () => {
    const { directory, segments } = await damagedLater();
    const frames = scanSegment(await readFile(segments[1]!)).frames;
    const target = frames[2]!;
    await flip(segments[1]!, target.offset + 10);
    const before = await readFile(segments[1]!);
    const report = await repairWal(directory, { consent: false });
    assert.equal(report.applied, false);
    assert.deepEqual(report.cutAt, { file: segments[1]!, offset: target.offset });
    assert.deepEqual(report.removedSegments, segments.slice(2));
    assert.ok(report.problem?.includes(segments[1]!));
    assert.deepEqual(await readFile(segments[1]!), before);
    await assert.rejects(FileStorage.open(directory, options), (error) => isStorageError(error, 'CORRUPT'));
  });

  test('with consent cuts at the damage and counts the dropped entries', async () => {
    const { directory, segments } = await damagedLater();
    const frames = scanSegment(await readFile(segments[1]!)).frames;
    const target = frames[2]!;
    await flip(segments[1]!, target.offset + 10);
    const report = await repairWal(directory, { consent: true });
    assert.equal(report.applied, true);
    const storage = await FileStorage.open(directory, options);
    const kept = storage.lastIndex();
    // The damaged frame held two entries; every later readable one is counted.
    assert.equal(report.droppedEntries, 60 - kept - 2);
    assert.equal(storage.segmentPaths.length, 2);
    await storage.save({ entries: entries(kept + 1, kept + 1) });
    await storage.close();
  });

  test('cuts before a missing segment', async () => {
    const { directory, segments } = await damagedLater();
    await unlink(segments[2]!);
    const report = await repairWal(directory, { consent: true });
    assert.deepEqual(report.cutAt, { file: segments[3]!, offset: 0 });
    assert.deepEqual(report.removedSegments, segments.slice(3));
    const storage = await FileStorage.open(directory, options);
    assert.equal(storage.segmentPaths.length, 2);
    await storage.close();
  });

  test('cannot repair a lost first segment', async () => {
    const { directory, segments } = await damagedLater();
    await unlink(segments[0]!);
    const report = await repairWal(directory, { consent: true });
    assert.equal(report.unrepairable, true);
    assert.equal(report.applied, false);
    assert.ok(report.problem?.includes('missing'));
  });

  test('cannot repair a damaged snapshot', async () => {
    const directory = join(root, `d${directories++}`);
    const storage = await FileStorage.open(directory, options);
    await storage.save({ entries: entries(1, 10) });
    await storage.createSnapshot(
      8,
      { voters: [1], votersOutgoing: [], learners: [], learnersNext: [], autoLeave: false },
      new Uint8Array(100),
    );
    await storage.close();
    await flip(join(directory, 'snap', '0000000000000008-0000000000000001.snap'), 40);
    const report = await repairWal(directory, { consent: true });
    assert.equal(report.unrepairable, true);
    assert.ok(report.problem?.includes('.snap'));
  });
});
