/**
 * Random damage to the shared WAL's segments and the groups' snapshot files — bit flips,
 * truncation, zeroed ranges, garbage — at random offsets (seed: env CORRUPTION_SEED).
 * Recovery must either refuse with a StorageError naming the damaged file, or recover a
 * state of every group that was actually written: the whole log, or (damage reaching the
 * last frame of the last segment) the log up to a frame boundary before the damage. Never
 * invented, mixed or cross-group data, never an exception that is not a StorageError.
 *
 * The oracle: the golden log is built one write (one GROUP_COMMIT frame) at a time, and after
 * each write every group's expected state after a restart is recorded. A recovery must match
 * ONE such point for all groups at once.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdir, mkdtemp, open, readdir, readFile, rm, stat, truncate, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { type LogReader, MemoryStorage, type StorageUpdate } from '../src/raft/storage.js';
import type { ConfState, Entry, HardState, Snapshot } from '../src/raft/types.js';
import { EMPTY_CONF_STATE } from '../src/raft/types.js';
import { restartedState } from '../src/storage/conformance.js';
import { bytesEqual, seededRandom } from '../src/storage/crash-data.js';
import { isStorageError } from '../src/storage/errors.js';
import { type FileSystem, nodeFileSystem, type StorageFile } from '../src/storage/file-system.js';
import type { TornTail } from '../src/storage/recovery.js';
import { SHARED_WAL_FRAME_TYPES, scanSegment } from '../src/storage/segment-scan.js';
import { type GroupStorage, SharedWal } from '../src/storage/shared-wal.js';

const { CORRUPTION_SEED } = process.env;
const SEED = Number(CORRUPTION_SEED ?? 20261207);
const ITERATIONS = 400;
const SEGMENT_SIZE_BYTES = 3072;

/**
 * The real file system without fsyncs: the cases are about what recovery reads, and a
 * thousand recoveries with real fsyncs would take minutes. Files are closed before a copy.
 */
const unsyncedFileSystem: FileSystem = {
  ...nodeFileSystem,
  syncDirectory: async () => undefined,
  open: async (path, mode) => {
    const file = await nodeFileSystem.open(path, mode);
    const skip = async (): Promise<void> => undefined;
    return Object.assign(Object.create(file) as StorageFile, { sync: skip, datasync: skip });
  },
};

const root = await mkdtemp(join(tmpdir(), 'flotilla-corruption-shared-'));
after(() => rm(root, { recursive: true, force: true }));

/** A group's incarnation: id * 10 + n (a dropped id opened again is a new incarnation). */
type Key = number;

function entryBytes(key: Key, index: number, term: number): Uint8Array {
  const data = new Uint8Array(12 + ((index * 7 + key) % 29));
  const view = new DataView(data.buffer);
  view.setUint32(0, key, true);
  view.setUint32(4, index, true);
  view.setUint32(8, term, true);
  for (let i = 12; i < data.length; i++) data[i] = (key * 131 + index * 31 + term * 17 + i) & 0xff;
  return data;
}

function snapshotBytes(key: Key, index: number, term: number): Uint8Array {
  const data = new Uint8Array(300 + (index % 200));
  for (let i = 0; i < data.length; i++) data[i] = (key * 7 + index * 13 + term * 5 + i * 3) & 0xff;
  return data;
}

interface Reader extends LogReader {
  initialState(): { hardState: HardState; confState: ConfState };
  snapshot(): Snapshot;
}

/** A group's whole state, readable, with a digest of every byte (entries and snapshot data). */
function fingerprint(storage: Reader): string {
  const { hardState: hs, confState } = storage.initialState();
  const { meta, data } = storage.snapshot();
  const first = storage.firstIndex();
  const last = storage.lastIndex();
  const hash = createHash('sha256').update(JSON.stringify(confState, Object.keys(confState).sort()));
  hash.update(JSON.stringify(meta.confState, Object.keys(meta.confState).sort())).update(data);
  for (const entry of storage.entries(first, last + 1, Infinity))
    hash.update(`${entry.index}/${entry.term}/${entry.type}/${entry.data.length}`).update(entry.data);
  const digest = hash.digest('hex').slice(0, 12);
  return `hs ${hs.term}/${hs.vote}/${hs.commit} snap ${meta.index}/${meta.term} log ${first}..${last} #${digest}`;
}

type States = ReadonlyMap<number, string>;

function describeStates(states: States): string {
  return [...states].map(([id, state]) => `g${id}: ${state}`).join('; ');
}

function sameStates(a: States, b: States): boolean {
  return a.size === b.size && [...a].every(([id, state]) => b.get(id) === state);
}

interface Golden {
  readonly directory: string;
  readonly preallocate: boolean;
  /** Snapshot directory (under `directory`) of each group's current incarnation. */
  readonly snapshotDirs: ReadonlyMap<number, string>;
  readonly keys: ReadonlyMap<number, Key>;
  /** Per incarnation: every term written at each index, and every snapshot (index/term). */
  readonly termsWritten: ReadonlyMap<Key, ReadonlyMap<number, ReadonlySet<number>>>;
  readonly snapshotsWritten: ReadonlyMap<Key, ReadonlySet<string>>;
  /** `tail[k]`: every group's state once the first k frames after the last segment's header are written. */
  readonly tail: readonly States[];
  readonly lastSegment: string;
  readonly headerEnd: number;
  /** Where each frame after the last segment's header ends. */
  readonly frameEnds: readonly number[];
  readonly lastFrameOffset: number;
  /** Every file (segments and snapshots), by path relative to `directory`; and the directories. */
  readonly files: ReadonlyMap<string, Buffer>;
  readonly subdirectories: readonly string[];
}

interface LiveGroup {
  readonly id: number;
  readonly storage: GroupStorage;
  readonly model: MemoryStorage;
  readonly key: Key;
  term: number;
}

/** Writes the golden log one frame at a time, recording every group's state after each. */
class GoldenWriter {
  readonly groups = new Map<number, LiveGroup>();
  /** States after each write, by the shared log's write count. */
  readonly history = new Map<number, States>([[0, new Map()]]);
  readonly termsWritten = new Map<Key, Map<number, Set<number>>>();
  readonly snapshotsWritten = new Map<Key, Set<string>>();
  readonly snapshotDirs = new Map<number, string>();
  /** Groups with a record in the log (a group opened but never written is not recovered). */
  private readonly inLog = new Set<number>();
  dropWrite = 0;

  constructor(
    readonly directory: string,
    readonly wal: SharedWal,
  ) {}

  async openGroup(id: number, incarnation: number): Promise<void> {
    const name = `snap-${id}-${incarnation}`;
    const storage = await this.wal.openGroup(id, join(this.directory, name));
    this.groups.set(id, { id, storage, model: new MemoryStorage(), key: id * 10 + incarnation, term: 1 });
    this.snapshotDirs.set(id, name);
  }

  /** Runs one operation that must be exactly one write of the log, then records the states. */
  private async step(ids: readonly number[], write: (group: LiveGroup) => Promise<void>): Promise<void> {
    const before = this.wal.stats.writes;
    await Promise.all(ids.map((id) => write(this.groups.get(id)!)));
    // A commit-only save resolves once queued: wait for its write.
    await this.wal.idle();
    for (const id of ids) this.inLog.add(id);
    this.record(before);
  }

  private record(before: number): void {
    const writes = this.wal.stats.writes;
    assert.equal(writes, before + 1, 'an operation of the golden log was not exactly one write');
    const states = new Map<number, string>();
    for (const id of [...this.inLog].sort((a, b) => a - b))
      states.set(id, fingerprint(restartedState(this.groups.get(id)!.model)));
    this.history.set(writes, states);
  }

  private async save(group: LiveGroup, update: StorageUpdate): Promise<void> {
    await group.storage.save(update);
    group.model.saveSync(update);
    const terms = this.termsWritten.get(group.key) ?? new Map<number, Set<number>>();
    this.termsWritten.set(group.key, terms);
    for (const { index, term } of update.entries) terms.set(index, (terms.get(index) ?? new Set()).add(term));
    if (update.snapshot !== undefined) this.snapshotWritten(group.key, update.snapshot);
  }

  private snapshotWritten(key: Key, snapshot: Snapshot): void {
    const written = this.snapshotsWritten.get(key) ?? new Set<string>();
    this.snapshotsWritten.set(key, written.add(`${snapshot.meta.index}/${snapshot.meta.term}`));
  }

  private entries(group: LiveGroup, first: number, count: number): Entry[] {
    const result: Entry[] = [];
    for (let index = first; index < first + count; index++)
      result.push({
        index,
        term: group.term,
        type: 'normal',
        data: entryBytes(group.key, index, group.term),
      });
    return result;
  }

  private hardState(group: LiveGroup, commit: number): HardState {
    return { term: group.term, vote: group.id, commit };
  }

  /** Appends `count` entries to each of `ids`, all in one write. */
  append(ids: readonly number[], count: number): Promise<void> {
    return this.step(ids, (group) => {
      const first = group.model.lastIndex() + 1;
      const commit = Math.max(group.model.initialState().hardState.commit, first - 1);
      return this.save(group, {
        entries: this.entries(group, first, count),
        hardState: this.hardState(group, commit),
      });
    });
  }

  /** Replaces a group's uncommitted tail with entries of a new term (a TRUNCATE record first). */
  overwrite(id: number): Promise<void> {
    const group = this.groups.get(id)!;
    const { commit } = group.model.initialState().hardState;
    const first = Math.max(commit + 1, group.model.firstIndex(), group.model.lastIndex() - 1);
    group.term++;
    return this.step([id], (g) =>
      this.save(g, { entries: this.entries(g, first, 2), hardState: this.hardState(g, commit) }),
    );
  }

  /** A commit-only hard state change: written without a sync. */
  commitAll(id: number): Promise<void> {
    const group = this.groups.get(id)!;
    const commit = group.model.lastIndex();
    if (commit === group.model.initialState().hardState.commit) return this.append([id], 1);
    return this.step([id], (g) => this.save(g, { entries: [], hardState: this.hardState(g, commit) }));
  }

  conf(id: number, tag: number): Promise<void> {
    const confState = { ...EMPTY_CONF_STATE, voters: [id, 100 + tag] };
    return this.step([id], async (group) => {
      await group.storage.saveConfState(confState);
      group.model.setConfState(confState);
    });
  }

  /** createSnapshot at the last index, then compact (which may delete segments). */
  snapshot(id: number): Promise<void> {
    return this.step([id], async (group) => {
      const index = group.model.lastIndex();
      const confState = { ...EMPTY_CONF_STATE, voters: [id] };
      const data = snapshotBytes(group.key, index, group.model.term(index));
      const snapshot = await group.storage.createSnapshot(index, confState, data);
      group.model.createSnapshotSync(index, confState, data);
      this.snapshotWritten(group.key, snapshot);
      await group.storage.compact(index);
      group.model.compactSync(index);
    });
  }

  /** A snapshot received from the leader, beyond the group's log. */
  receive(id: number): Promise<void> {
    const group = this.groups.get(id)!;
    group.term++;
    const index = group.model.lastIndex() + 5;
    const meta = { index, term: group.term, confState: { ...EMPTY_CONF_STATE, voters: [id, 7] } };
    const snapshot = { meta, data: snapshotBytes(group.key, index, group.term) };
    return this.step([id], (g) =>
      this.save(g, { entries: [], snapshot, hardState: this.hardState(g, index) }),
    );
  }

  async drop(id: number): Promise<void> {
    const before = this.wal.stats.writes;
    await this.wal.dropGroup(id);
    this.inLog.delete(id);
    this.groups.delete(id);
    await rm(join(this.directory, this.snapshotDirs.get(id)!), { recursive: true });
    this.snapshotDirs.delete(id);
    this.record(before);
    this.dropWrite = before + 1;
  }
}

function canSnapshot(group: LiveGroup): boolean {
  return group.model.lastIndex() > group.model.snapshot().meta.index;
}

/**
 * The main part: interleaved groups, overwrites, snapshots, a dropped and reused id. Group 4
 * stops compacting after round 100, so it pins the segments from there on.
 */
async function writeBody(writer: GoldenWriter, random: () => number): Promise<void> {
  for (let round = 0; round < 300; round++) {
    if (round === 170) {
      await writer.drop(3);
      await writer.openGroup(3, 2);
    }
    const ids = [...writer.groups.keys()];
    const id = ids[Math.floor(random() * ids.length)]!;
    const dice = random();
    if (dice < 0.3) await writer.append(ids, 1 + Math.floor(random() * 2));
    else if (dice < 0.5) await writer.append([id], 1 + Math.floor(random() * 4));
    else if (dice < 0.62 && writer.groups.get(id)!.model.lastIndex() > 0) await writer.overwrite(id);
    else if (dice < 0.72) await writer.commitAll(id);
    else if (dice < 0.8) await writer.conf(id, round);
    else if (dice < 0.83 && round % 2 === 0 && (id !== 4 || round < 100)) await writer.receive(id);
    else if (canSnapshot(writer.groups.get(id)!) && (id !== 4 || round < 100)) await writer.snapshot(id);
    else await writer.append([id], 1);
  }
}

/**
 * The last segment: every kind of write, at most one snapshot per group (so a cut falls back
 * to a snapshot whose file is retained), and group 5's first records.
 */
async function writeLastSegment(writer: GoldenWriter): Promise<void> {
  await writer.append([1, 2, 3, 4], 1);
  await writer.overwrite(2);
  await writer.conf(4, 1000);
  await writer.snapshot(1);
  await writer.commitAll(3);
  await writer.openGroup(5, 1);
  await writer.append([5], 2);
  await writer.receive(3);
  await writer.append([3], 2);
  await writer.append([1, 2, 3, 4, 5], 1);
  await writer.overwrite(1);
  await writer.commitAll(2);
}

async function buildGolden(preallocate: boolean): Promise<Golden> {
  const directory = join(root, `golden-${preallocate}`);
  const wal = await SharedWal.open(join(directory, 'wal'), {
    segmentSizeBytes: SEGMENT_SIZE_BYTES,
    preallocate,
  });
  const writer = new GoldenWriter(directory, wal);
  for (let id = 1; id <= 4; id++) await writer.openGroup(id, 1);
  await writer.append([1, 2, 3, 4], 3);
  await writer.snapshot(2);
  await writer.conf(3, 0);
  await writeBody(writer, seededRandom(preallocate ? 7 : 8));
  const rolled = wal.segmentPaths.at(-1);
  while (wal.segmentPaths.at(-1) === rolled) await writer.append([1], 1);
  const lastSegment = wal.segmentPaths.at(-1)!;
  await writeLastSegment(writer);
  assert.equal(wal.segmentPaths.at(-1), lastSegment, 'the last segment rolled over');
  const segments = wal.segmentPaths;
  const writes = wal.stats.writes;
  await wal.close();
  assert.ok(segments.length >= 8, `only ${segments.length} segments`);
  assert.ok(!segments[0]!.endsWith('0000000000000001.wal'), 'no segment was ever deleted');
  const frames = scanSegment(await readFile(lastSegment), SHARED_WAL_FRAME_TYPES).frames;
  const count = frames.length - 1;
  assert.ok(writer.dropWrite <= writes - count, 'the drop is in the last segment');
  const tail: States[] = [];
  for (let k = 0; k <= count; k++) tail.push(writer.history.get(writes - count + k)!);
  return {
    directory,
    preallocate,
    snapshotDirs: writer.snapshotDirs,
    keys: new Map([...writer.groups].map(([id, group]) => [id, group.key])),
    termsWritten: writer.termsWritten,
    snapshotsWritten: writer.snapshotsWritten,
    tail,
    lastSegment,
    headerEnd: frames[0]!.end,
    frameEnds: frames.slice(1).map((frame) => frame.end),
    lastFrameOffset: frames.at(-1)!.offset,
    ...(await readTree(directory)),
  };
}

async function readTree(directory: string): Promise<Pick<Golden, 'files' | 'subdirectories'>> {
  const files = new Map<string, Buffer>();
  const subdirectories = (await readdir(directory)).sort();
  for (const sub of subdirectories)
    for (const name of (await readdir(join(directory, sub))).sort())
      files.set(join(sub, name), await readFile(join(directory, sub, name)));
  return { files, subdirectories };
}

/**
 * A working copy of `golden` in `root/name`: the files a previous case damaged or recovery
 * changed are rewritten, extra ones deleted (creating ~30 files per case is slow).
 */
async function workingCopy(golden: Golden, name: string): Promise<Golden> {
  const directory = join(root, name);
  await mkdir(directory, { recursive: true });
  for (const sub of await readdir(directory))
    if (!golden.subdirectories.includes(sub)) await rm(join(directory, sub), { recursive: true });
  for (const sub of golden.subdirectories) {
    await mkdir(join(directory, sub), { recursive: true });
    for (const file of await readdir(join(directory, sub)))
      if (!golden.files.has(join(sub, file))) await rm(join(directory, sub, file));
  }
  for (const [path, bytes] of golden.files) {
    const current = await readFile(join(directory, path)).catch(() => undefined);
    if (current === undefined || !bytesEqual(current, bytes)) await writeFile(join(directory, path), bytes);
  }
  return { ...golden, directory, lastSegment: golden.lastSegment.replace(golden.directory, directory) };
}

interface Recovered {
  readonly states: Map<number, string>;
  readonly tornTail: TornTail | undefined;
}

function openLog(golden: Golden): Promise<SharedWal> {
  return SharedWal.open(join(golden.directory, 'wal'), {
    segmentSizeBytes: SEGMENT_SIZE_BYTES,
    preallocate: golden.preallocate,
    fileSystem: unsyncedFileSystem,
  });
}

/** Entries intact and of a term written at their index; the snapshot one that was written. */
function checkGroupData(golden: Golden, id: number, storage: GroupStorage, what: string): void {
  const key = golden.keys.get(id);
  assert.ok(key !== undefined, `${what}: recovered group ${id}, which the log does not hold`);
  const { meta, data } = storage.snapshot();
  if (meta.index > 0) {
    assert.ok(
      golden.snapshotsWritten.get(key)?.has(`${meta.index}/${meta.term}`),
      `${what}: g${id} snapshot`,
    );
    assert.ok(bytesEqual(data, snapshotBytes(key, meta.index, meta.term)), `${what}: g${id} snapshot data`);
  }
  for (const entry of storage.entries(storage.firstIndex(), storage.lastIndex() + 1, Infinity)) {
    const at = `${what}: g${id} entry ${entry.index} of term ${entry.term}`;
    assert.ok(golden.termsWritten.get(key)?.get(entry.index)?.has(entry.term), `${at} was never written`);
    assert.ok(bytesEqual(entry.data, entryBytes(key, entry.index, entry.term)), `${at}: data`);
  }
}

/**
 * Opens the log and every group in `golden`'s directory. Then, so that a cut is shown to
 * leave a log that can be written, appends one entry to the lowest group and checks a reopen
 * shows exactly that.
 */
async function recover(golden: Golden, what: string): Promise<Recovered> {
  const wal = await openLog(golden);
  const states = new Map<number, string>();
  const storages = new Map<number, GroupStorage>();
  try {
    for (const id of wal.groups()) {
      const dir = golden.snapshotDirs.get(id) ?? `snap-${id}-unknown`;
      const storage = await wal.openGroup(id, join(golden.directory, dir));
      checkGroupData(golden, id, storage, what);
      states.set(id, fingerprint(storage));
      storages.set(id, storage);
    }
    const [id, storage] = [...storages][0]!;
    const index = storage.lastIndex() + 1;
    const { hardState } = storage.initialState();
    const update = {
      entries: [{ index, term: hardState.term, type: 'normal' as const, data: new Uint8Array([1, 2, 3]) }],
    };
    const expected = restartedState(storage);
    expected.saveSync(update);
    await storage.save(update);
    const tornTail = wal.recovery.tornTail;
    await wal.close();
    await checkReopened(golden, new Map([...states, [id, fingerprint(expected)]]), what);
    return { states, tornTail };
  } finally {
    await wal.close();
  }
}

async function checkReopened(golden: Golden, expected: States, what: string): Promise<void> {
  const wal = await openLog(golden);
  try {
    assert.equal(wal.recovery.tornTail, undefined, `${what}: a torn tail after the write following recovery`);
    const states = new Map<number, string>();
    for (const id of wal.groups())
      states.set(
        id,
        fingerprint(await wal.openGroup(id, join(golden.directory, golden.snapshotDirs.get(id)!))),
      );
    assert.ok(
      sameStates(states, expected),
      `${what}: after a write and a reopen: ${describeStates(states)}, expected ${describeStates(expected)}`,
    );
  } finally {
    await wal.close();
  }
}

type DamageKind = 'bit-flip' | 'truncate' | 'zero-range' | 'garbage-range';

interface Damage {
  readonly file: string;
  readonly kind: DamageKind;
  /** The changed byte range `[offset, end)` (a truncation: from `offset` to the old size). */
  readonly offset: number;
  readonly end: number;
}

/**
 * Checks a recovery against the history: the states of ONE written point for all groups, the
 * whole log unless the damage reaches the last frame of the last segment, and then only the
 * frames from the damaged one on cut. Returns whether anything was cut.
 */
function checkRecovered(golden: Golden, damage: Damage, recovered: Recovered, what: string): boolean {
  const count = golden.tail.length - 1;
  const matches = golden.tail.flatMap((states, k) => (sameStates(states, recovered.states) ? [k] : []));
  assert.ok(
    matches.length > 0,
    `${what}: recovered a state that was never written: ${describeStates(recovered.states)}; ` +
      `written last: ${describeStates(golden.tail[count]!)}`,
  );
  const kept = Math.max(...matches);
  const inLast = damage.file === golden.lastSegment;
  if (kept < count) {
    assert.ok(inLast, `${what}: ${count - kept} frames lost to damage outside the last segment`);
    assert.ok(
      damage.kind === 'truncate' || damage.end > golden.lastFrameOffset,
      `${what}: frames cut although an intact frame follows the damage`,
    );
    const untouched = golden.frameEnds.filter((end) => end <= damage.offset).length;
    assert.ok(kept >= untouched, `${what}: kept ${kept} frames but ${untouched} precede the damage`);
  }
  const torn = recovered.tornTail;
  if (torn !== undefined) {
    assert.ok(inLast && torn.file === golden.lastSegment, `${what}: torn tail in ${torn.file}`);
    assert.ok(torn.offset <= damage.offset, `${what}: cut at ${torn.offset}, after the damage`);
    assert.equal(torn.offset, [golden.headerEnd, ...golden.frameEnds][kept], `${what}: cut point`);
  }
  return kept < count || torn !== undefined;
}

/** Damage that nothing intact follows, at the end of the last segment: it must be cut, not refused. */
function isTornTail(golden: Golden, damage: Damage): boolean {
  return (
    damage.file === golden.lastSegment &&
    damage.offset >= golden.headerEnd &&
    (damage.kind === 'truncate' || damage.end > golden.lastFrameOffset)
  );
}

function checkRefusal(golden: Golden, damage: Damage, error: unknown, what: string): void {
  if (error instanceof assert.AssertionError) throw error;
  assert.ok(isStorageError(error), `${what}: threw ${String(error)}${(error as Error)?.stack ?? ''}`);
  assert.ok(error.code !== 'IO' && error.code !== 'CLOSED', `${what}: ${error.message}`);
  assert.equal(error.file, damage.file, `${what}: the refusal names another file: ${error.message}`);
  assert.ok(error.message.includes(damage.file), `${what}: the message names no file: ${error.message}`);
  if (error.code === 'CORRUPT') assert.ok(error.message.includes('byte offset'), `${what}: no offset`);
  assert.ok(!isTornTail(golden, damage), `${what}: a torn tail was refused: ${error.message}`);
}

/**
 * Damages `path` at a random offset. The range returned is that of the bytes that actually
 * changed (zeroing bytes that were zero changes nothing); none changed: `[size, size)`.
 */
async function damageFile(path: string, kind: DamageKind, random: () => number): Promise<Damage> {
  const size = (await stat(path)).size;
  const offset = Math.floor(random() * size);
  const handle = await open(path, 'r+');
  try {
    if (kind === 'truncate') {
      await handle.truncate(offset);
      return { file: path, kind, offset, end: size };
    }
    const length = kind === 'bit-flip' ? 1 : Math.min(size - offset, 1 + Math.floor(random() * 600));
    const original = new Uint8Array(length);
    await handle.read(original, 0, length, offset);
    const bytes = original.slice();
    for (let i = 0; i < length; i++) {
      if (kind === 'bit-flip') bytes[i]! ^= 1 << Math.floor(random() * 8);
      else bytes[i] = kind === 'zero-range' ? 0 : Math.floor(random() * 256);
    }
    await handle.write(bytes, 0, length, offset);
    const changed = [...bytes.keys()].filter((i) => bytes[i] !== original[i]);
    if (changed.length === 0) return { file: path, kind, offset: size, end: size };
    return { file: path, kind, offset: offset + changed[0]!, end: offset + changed.at(-1)! + 1 };
  } finally {
    await handle.close();
  }
}

/** One case: a copy of a golden, one damage, recovery checked. */
async function runCase(golden: Golden, iteration: number, random: () => number): Promise<string> {
  const copy = await workingCopy(golden, `work-${golden.preallocate}`);
  const paths = [...golden.files.keys()].map((path) => join(copy.directory, path));
  const segments = paths.filter((path) => path.endsWith('.wal'));
  const snapshots = paths.filter((path) => path.endsWith('.snap'));
  const pick = random();
  const files = pick < 0.15 ? snapshots : pick < 0.45 ? [copy.lastSegment] : segments;
  const file = files[Math.floor(random() * files.length)]!;
  const kinds: DamageKind[] = ['bit-flip', 'truncate', 'zero-range', 'garbage-range'];
  const damage = await damageFile(file, kinds[Math.floor(random() * kinds.length)]!, random);
  const what =
    `seed ${SEED}, iteration ${iteration} (preallocate ${golden.preallocate}): ` +
    `${damage.kind} of [${damage.offset}, ${damage.end}) in ${file}`;
  let outcome: string;
  try {
    const recovered = await recover(copy, what);
    outcome = checkRecovered(copy, damage, recovered, what) ? 'cut' : 'unaffected';
  } catch (error) {
    checkRefusal(copy, damage, error, what);
    outcome = 'refused';
  }
  return outcome;
}

describe('shared WAL recovery from random damage', () => {
  const goldens: Golden[] = [];
  before(async () => {
    goldens.push(await buildGolden(true), await buildGolden(false));
  });

  test('the oracle: the log cut at each frame boundary of its last segment recovers that point', async () => {
    for (const golden of goldens) {
      const bounds = [golden.headerEnd, ...golden.frameEnds];
      for (const [k, bound] of bounds.entries()) {
        const copy = await workingCopy(golden, `work-${golden.preallocate}`);
        if (k < bounds.length - 1) await truncate(copy.lastSegment, bound);
        const what = `preallocate ${golden.preallocate}, cut after frame ${k}`;
        const recovered = await recover(copy, what);
        assert.ok(
          sameStates(recovered.states, golden.tail[k]!),
          `${what}: ${describeStates(recovered.states)}`,
        );
      }
    }
  });

  test(`${ITERATIONS} random damages are cut as a torn tail or refused (seed ${SEED})`, async (t) => {
    const random = seededRandom(SEED);
    const outcomes: Record<string, number> = { refused: 0, cut: 0, unaffected: 0 };
    for (let iteration = 0; iteration < ITERATIONS; iteration++) {
      const outcome = await runCase(goldens[iteration % goldens.length]!, iteration, random);
      outcomes[outcome]!++;
    }
    t.diagnostic(`seed ${SEED}: ${JSON.stringify(outcomes)}`);
    // Each outcome must occur, or the test is not exercising what it claims.
    assert.ok(
      Object.values(outcomes).every((n) => n > 0),
      JSON.stringify(outcomes),
    );
  });

  test('the checks catch a mixed state, swapped groups and a cut before intact data', async () => {
    const golden = goldens[1]!;
    const count = golden.tail.length - 1;
    // A frame of the last segment removed whole: every frame still checks, but the groups'
    // states together were never written (or the replay refuses it).
    let mixed = 0;
    const bytes = await readFile(golden.lastSegment);
    const bounds = [golden.headerEnd, ...golden.frameEnds];
    for (let k = 0; k < count - 1; k++) {
      const copy = await workingCopy(golden, `work-${golden.preallocate}`);
      const excised = Buffer.concat([bytes.subarray(0, bounds[k]), bytes.subarray(bounds[k + 1])]);
      await writeFile(copy.lastSegment, excised);
      const damage: Damage = {
        file: copy.lastSegment,
        kind: 'truncate',
        offset: bounds[k]!,
        end: bytes.length,
      };
      const recovered = await recover(copy, `frame ${k} excised`).catch((error: unknown) => {
        if (isStorageError(error)) return undefined;
        throw error;
      });
      if (recovered === undefined || sameStates(recovered.states, golden.tail[count]!)) continue;
      assert.throws(() => checkRecovered(copy, damage, recovered, 'excised'), /never written/);
      mixed++;
    }
    assert.ok(mixed > 0, 'no excised frame gave a mixed state');

    const whole = { states: new Map(golden.tail[count]!), tornTail: undefined };
    const noDamage: Damage = { file: golden.lastSegment, kind: 'bit-flip', offset: 0, end: 0 };
    assert.equal(checkRecovered(golden, noDamage, whole, 'intact'), false);
    const swapped = new Map(whole.states).set(1, whole.states.get(2)!).set(2, whole.states.get(1)!);
    assert.throws(
      () => checkRecovered(golden, noDamage, { ...whole, states: swapped }, 'swap'),
      /never written/,
    );
    // The last frame lost, but the damage was elsewhere or an intact frame follows it.
    const cut = { states: new Map(golden.tail[count - 1]!), tornTail: undefined };
    const elsewhere = { ...noDamage, file: join(golden.directory, 'wal', 'other.wal') };
    assert.throws(() => checkRecovered(golden, elsewhere, cut, 'elsewhere'), /outside the last segment/);
    const early = { ...noDamage, offset: golden.headerEnd, end: golden.headerEnd + 1 };
    assert.throws(() => checkRecovered(golden, early, cut, 'early'), /intact frame follows/);
    assert.ok(!isTornTail(golden, early) && isTornTail(golden, { ...early, kind: 'truncate' }));
  });
});
