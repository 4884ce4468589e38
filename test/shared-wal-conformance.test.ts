/**
 * The LogStorage conformance suite against one group of a SharedWal, where a reopen closes
 * and reopens the whole shared log; then again with a second group of the same log saving
 * random updates concurrently all along, whose state must survive every reopen exactly
 * (the groups' records interleave in the same segments and writes).
 */
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import type { LogStorage, MemoryStorage, StorageUpdate } from '../src/raft/storage.js';
import type { ConfState, Entry, HardState, Snapshot } from '../src/raft/types.js';
import { assertSameState, restartedState, runLogStorageConformance } from '../src/storage/conformance.js';
import { seededRandom } from '../src/storage/crash-data.js';
import { type GroupStorage, SharedWal } from '../src/storage/shared-wal.js';

const root = await mkdtemp(join(tmpdir(), 'flotilla-shared-conformance-'));
after(() => rm(root, { recursive: true, force: true }));
let directories = 0;

// Small segments so the suite also exercises rollover, checkpoints and segment deletion.
const options = { segmentSizeBytes: 2048 };
const GROUP = 7;
const NOISE_GROUP = 3;

/** A second group saving random updates until stopped; checks its state across reopens. */
class Noise {
  private running = true;
  /** Calls that completed. */
  saves = 0;
  private readonly done: Promise<void>;
  private readonly random: () => number;

  constructor(
    private readonly storage: GroupStorage,
    seed: number,
  ) {
    this.random = seededRandom(seed);
    this.done = this.run();
  }

  /** Stops the loop; returns the state the group must have after a restart. */
  async stop(): Promise<MemoryStorage> {
    this.running = false;
    await this.done;
    return restartedState(this.storage);
  }

  private async run(): Promise<void> {
    let commit = this.storage.initialState().hardState.commit;
    while (this.running) {
      const last = this.storage.lastIndex();
      const roll = this.random();
      if (roll < 0.1 && last > this.storage.snapshot().meta.index + 2) {
        await this.storage.createSnapshot(last - 1, { ...confOf(NOISE_GROUP) }, new Uint8Array([last]));
        await this.storage.compact(last - 1);
      } else {
        const back = roll < 0.3 ? Math.min(2, last - this.storage.firstIndex() + 1) : 0;
        const first = last + 1 - back;
        const term = Math.max(1, this.storage.term(first - 1)) + (back > 0 ? 1 : 0);
        const entries = makeNoiseEntries(first, first + Math.floor(this.random() * 4), term);
        commit = Math.max(commit, first - 1);
        await this.storage.save({ entries, hardState: { term, vote: NOISE_GROUP, commit } });
      }
      this.saves++;
    }
  }
}

function confOf(voter: number): ConfState {
  return { voters: [voter], votersOutgoing: [], learners: [], learnersNext: [], autoLeave: false };
}

function makeNoiseEntries(first: number, last: number, term: number): Entry[] {
  const entries: Entry[] = [];
  for (let index = first; index <= last; index++)
    entries.push({ index, term, type: 'normal', data: new Uint8Array(40).fill(index & 0xff) });
  return entries;
}

/** The group under test, plus the log it lives in and the noise group beside it. */
class Handle implements LogStorage {
  constructor(
    readonly directory: string,
    readonly wal: SharedWal,
    readonly storage: GroupStorage,
    readonly noise: Noise | undefined,
  ) {}

  initialState(): { hardState: HardState; confState: ConfState } {
    return this.storage.initialState();
  }
  entries(lo: number, hi: number, maxBytes: number): Entry[] {
    return this.storage.entries(lo, hi, maxBytes);
  }
  term(index: number): number {
    return this.storage.term(index);
  }
  firstIndex(): number {
    return this.storage.firstIndex();
  }
  lastIndex(): number {
    return this.storage.lastIndex();
  }
  snapshot(): Snapshot {
    return this.storage.snapshot();
  }
  save(update: StorageUpdate): Promise<void> {
    return this.storage.save(update);
  }
  saveConfState(confState: ConfState): Promise<void> {
    return this.storage.saveConfState(confState);
  }
  createSnapshot(index: number, confState: ConfState, data: Uint8Array): Promise<Snapshot> {
    return this.storage.createSnapshot(index, confState, data);
  }
  compact(index: number): Promise<void> {
    return this.storage.compact(index);
  }
  async close(): Promise<void> {
    await this.closeAll();
  }
  /** Stops the noise and closes the whole shared log; returns the noise group's expected state. */
  async closeAll(): Promise<MemoryStorage | undefined> {
    const expected = await this.noise?.stop();
    if (this.noise !== undefined) {
      shared.noiseSaves += this.noise.saves;
    }
    await this.wal.close();
    return expected;
  }
}

let seeds = 1;
/** Over every shared log closed with noise: the noise group's completed calls. */
const shared = { noiseSaves: 0 };

async function openHandle(
  directory: string,
  withNoise: boolean,
  noiseExpected?: MemoryStorage,
): Promise<Handle> {
  const wal = await SharedWal.open(join(directory, 'wal'), options);
  const storage = await wal.openGroup(GROUP, join(directory, 'snap-7'));
  let noise: Noise | undefined;
  if (withNoise) {
    const noiseStorage = await wal.openGroup(NOISE_GROUP, join(directory, 'snap-3'));
    if (noiseExpected !== undefined) assertSameState(noiseStorage, noiseExpected);
    noise = new Noise(noiseStorage, seeds++);
  }
  return new Handle(directory, wal, storage, noise);
}

function factory(withNoise: boolean) {
  return {
    open: () => openHandle(join(root, `storage-${directories++}`), withNoise),
    reopen: async (storage: LogStorage) => {
      const handle = storage as Handle;
      const noiseExpected = await handle.closeAll();
      const reopened = await openHandle(handle.directory, withNoise, noiseExpected);
      if (withNoise) assert.ok(reopened.wal.groups().includes(NOISE_GROUP), 'the noise group was recovered');
      return reopened;
    },
  };
}

runLogStorageConformance('SharedWal group', factory(false));
runLogStorageConformance('SharedWal group beside a concurrently writing group', factory(true));

test('the second group wrote throughout the second run', (t) => {
  t.diagnostic(JSON.stringify(shared));
  assert.ok(shared.noiseSaves > 100, `the noise group completed only ${shared.noiseSaves} calls`);
});
