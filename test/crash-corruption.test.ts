/**
 * Random damage to segment and snapshot files — bit flips, truncation, zeroed ranges,
 * garbage — at random offsets: recovery must either cut a torn tail of the last segment or
 * refuse with an error naming the file, and must never serve data that was not written.
 */
import assert from 'node:assert/strict';
import { cp, mkdtemp, open, readdir, readFile, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import type { Entry } from '../src/raft/types.js';
import { EMPTY_CONF_STATE } from '../src/raft/types.js';
import { bytesEqual, entryData, seededRandom, snapshotData } from '../src/storage/crash-data.js';
import { isStorageError } from '../src/storage/errors.js';
import { FileStorage } from '../src/storage/file-storage.js';
import { scanSegment } from '../src/storage/segment-scan.js';

const { CORRUPTION_SEED } = process.env;
const SEED = Number(CORRUPTION_SEED ?? 20240607);
const ITERATIONS = 400;

interface Golden {
  readonly directory: string;
  readonly preallocate: boolean;
  /** Every term ever written at each index: a recovered older state is fine, invented data is not. */
  readonly termsWritten: Map<number, Set<number>>;
  readonly lastIndex: number;
  readonly snapshotIndex: number;
  readonly lastSegment: string;
  /** Where the last frame of the last segment starts: damage before it must be refused. */
  readonly lastFrameOffset: number;
}

const root = await mkdtemp(join(tmpdir(), 'flotilla-corruption-'));
after(() => rm(root, { recursive: true, force: true }));

function smallEntries(first: number, last: number, term: number): Entry[] {
  const entries: Entry[] = [];
  // entryData makes every 40th entry 1 MiB; keep these small so many segments exist.
  for (let index = first; index <= last; index++) {
    entries.push({ index, term, type: 'normal', data: entryData(index, term).subarray(0, 40) });
  }
  return entries;
}

function intact(entry: Entry): boolean {
  return bytesEqual(entry.data, entryData(entry.index, entry.term).subarray(0, 40));
}

/** Builds a storage with overwrites, a snapshot, compaction and many small segments. */
async function buildGolden(preallocate: boolean): Promise<Golden> {
  const directory = join(root, `golden-${preallocate}`);
  const storage = await FileStorage.open(directory, { segmentSizeBytes: 2048, preallocate });
  const termsWritten = new Map<number, Set<number>>();
  const save = async (first: number, last: number, term: number) => {
    await storage.save({
      entries: smallEntries(first, last, term),
      hardState: { term, vote: 1, commit: first },
    });
    for (let index = first; index <= last; index++)
      termsWritten.set(index, (termsWritten.get(index) ?? new Set()).add(term));
  };
  let term = 1;
  for (let first = 1; first <= 300; first += 4) {
    if (first % 40 === 1) term++;
    await save(first, first + 3, term);
    if (first % 28 === 1) await save(first + 2, first + 4, ++term);
  }
  await storage.createSnapshot(
    120,
    { ...EMPTY_CONF_STATE, voters: [1] },
    snapshotData(120, storage.term(120)),
  );
  await storage.compact(120);
  await save(storage.lastIndex() + 1, storage.lastIndex() + 10, term);
  // Several frames in the last segment, so damage there can be followed by intact frames.
  while (scanSegment(await readFile(storage.segmentPaths.at(-1)!)).frames.length < 8) {
    await save(storage.lastIndex() + 1, storage.lastIndex() + 1, term);
  }
  const lastIndex = storage.lastIndex();
  const lastSegment = storage.segmentPaths.at(-1)!;
  await storage.close();
  const lastFrameOffset = scanSegment(await readFile(lastSegment)).frames.at(-1)!.offset;
  return {
    directory,
    preallocate,
    termsWritten,
    lastIndex,
    snapshotIndex: 120,
    lastSegment,
    lastFrameOffset,
  };
}

type Damage = 'bit-flip' | 'truncate' | 'zero-range' | 'garbage-range';

interface Damaged {
  readonly file: string;
  readonly kind: Damage;
  readonly end: number;
}

/** Damages `path` at a random offset; returns the damaged byte range `[offset, end)`. */
async function damage(
  path: string,
  kind: Damage,
  random: () => number,
): Promise<{ offset: number; end: number }> {
  const size = (await stat(path)).size;
  const offset = Math.floor(random() * size);
  const handle = await open(path, 'r+');
  try {
    if (kind === 'truncate') {
      await handle.truncate(offset);
      return { offset, end: size };
    }
    const length = kind === 'bit-flip' ? 1 : Math.min(size - offset, 1 + Math.floor(random() * 600));
    const bytes = new Uint8Array(length);
    await handle.read(bytes, 0, length, offset);
    for (let i = 0; i < length; i++) {
      if (kind === 'bit-flip') bytes[i]! ^= 1 << Math.floor(random() * 8);
      else bytes[i] = kind === 'zero-range' ? 0 : Math.floor(random() * 256);
    }
    await handle.write(bytes, 0, length, offset);
    return { offset, end: offset + length };
  } finally {
    await handle.close();
  }
}

async function dataFiles(directory: string): Promise<string[]> {
  const files: string[] = [];
  for (const sub of ['wal', 'snap']) {
    for (const name of await readdir(join(directory, sub)))
      if (!name.endsWith('.tmp')) files.push(join(directory, sub, name));
  }
  return files.sort();
}

/** Checks a storage recovered from damaged files; returns whether it lost anything. */
function checkRecovered(storage: FileStorage, golden: Golden, damaged: Damaged, what: string): boolean {
  const snapshot = storage.snapshot();
  assert.equal(snapshot.meta.index, golden.snapshotIndex, what);
  assert.ok(
    bytesEqual(snapshot.data, snapshotData(snapshot.meta.index, snapshot.meta.term)),
    `${what}: snapshot data`,
  );
  assert.ok(storage.lastIndex() <= golden.lastIndex, what);
  for (const entry of storage.entries(storage.firstIndex(), storage.lastIndex() + 1, Infinity)) {
    assert.ok(
      golden.termsWritten.get(entry.index)?.has(entry.term),
      `${what}: entry ${entry.index} has term ${entry.term}`,
    );
    assert.ok(intact(entry), `${what}: entry ${entry.index} data`);
  }
  const lost = storage.lastIndex() < golden.lastIndex || storage.recovery.tornTail !== undefined;
  // Losing data is only allowed as a cut at the end of the last segment: the damage must
  // reach its last frame (or be a truncation), else an intact frame followed the damage.
  if (lost) {
    assert.equal(damaged.file, golden.lastSegment, `${what}: data lost by damage outside the last segment`);
    assert.ok(
      damaged.kind === 'truncate' || damaged.end > golden.lastFrameOffset,
      `${what}: cut mid-log damage`,
    );
  }
  if (storage.recovery.tornTail !== undefined)
    assert.equal(storage.recovery.tornTail.file, golden.lastSegment, what);
  return lost;
}

describe('recovery from random damage', () => {
  const goldens: Golden[] = [];
  before(async () => {
    goldens.push(await buildGolden(true), await buildGolden(false));
  });

  test(`${ITERATIONS} random damages either cut a torn tail or are refused (seed ${SEED})`, async (t) => {
    const random = seededRandom(SEED);
    const outcomes = { refused: 0, cut: 0, unaffected: 0 };
    const kinds: Damage[] = ['bit-flip', 'truncate', 'zero-range', 'garbage-range'];
    for (let iteration = 0; iteration < ITERATIONS; iteration++) {
      const golden = goldens[iteration % goldens.length]!;
      const directory = join(root, `case-${iteration}`);
      await cp(golden.directory, directory, { recursive: true });
      const files = await dataFiles(directory);
      const file = files[Math.floor(random() * files.length)]!;
      const kind = kinds[Math.floor(random() * kinds.length)]!;
      const { offset, end } = await damage(file, kind, random);
      const what = `iteration ${iteration} (seed ${SEED}): ${kind} at ${offset} of ${file}`;
      const relocated = { ...golden, lastSegment: golden.lastSegment.replace(golden.directory, directory) };
      try {
        const storage = await FileStorage.open(directory, {
          segmentSizeBytes: 2048,
          preallocate: golden.preallocate,
        });
        const lost = checkRecovered(storage, relocated, { file, kind, end }, what);
        outcomes[lost ? 'cut' : 'unaffected']++;
        await storage.close();
      } catch (error) {
        if (error instanceof assert.AssertionError) throw error;
        assert.ok(isStorageError(error) && error.code !== 'IO', `${what}: unexpected ${String(error)}`);
        assert.ok(
          error.file !== undefined && error.message.includes(error.file),
          `${what}: error names no file`,
        );
        if (error.code === 'CORRUPT') assert.ok(error.message.includes('byte offset'), `${what}: no offset`);
        outcomes.refused++;
      }
      await rm(directory, { recursive: true, force: true });
    }
    t.diagnostic(JSON.stringify(outcomes));
    // Each outcome must actually occur, or the test is not exercising what it claims.
    assert.ok(outcomes.refused > 0 && outcomes.cut > 0 && outcomes.unaffected > 0, JSON.stringify(outcomes));
  });
});
