/**
 * Commit-only HardState updates are written without `fdatasync` (etcd's MustSync), and the
 * core restarts correctly when the state machine applied beyond the persisted commit.
 */
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { Prng } from '../src/raft/prng.js';
import { RawNode } from '../src/raft/raw-node.js';
import { MemoryStorage } from '../src/raft/storage.js';
import type { Entry } from '../src/raft/types.js';
import { FaultyFileSystem } from '../src/storage/faulty-file-system.js';
import { FileStorage } from '../src/storage/file-storage.js';

const root = await mkdtemp(join(tmpdir(), 'flotilla-lazy-commit-'));
after(() => rm(root, { recursive: true, force: true }));

function entries(first: number, last: number, term = 1): Entry[] {
  const out: Entry[] = [];
  for (let index = first; index <= last; index++)
    out.push({ index, term, type: 'normal', data: new Uint8Array(64).fill(index & 0xff) });
  return out;
}

test('a commit-only update is not synced; entries, term and vote changes are', async () => {
  const faults = new FaultyFileSystem();
  const directory = join(root, 'sync');
  const storage = await FileStorage.open(directory, { segmentSizeBytes: 4096, fileSystem: faults });
  await storage.save({ entries: entries(1, 5), hardState: { term: 1, vote: 1, commit: 2 } });
  // Every fdatasync fails from now on: only writes that do not sync can succeed.
  faults.inject({ operation: 'datasync', kind: 'EIO' });
  await storage.save({ entries: [], hardState: { term: 1, vote: 1, commit: 5 } });
  assert.deepEqual(storage.initialState().hardState, { term: 1, vote: 1, commit: 5 });
  await assert.rejects(storage.save({ entries: [], hardState: { term: 2, vote: 0, commit: 5 } }));
});

test('unsynced commit frames are sealed before a segment roll-over; reopening reads them', async () => {
  const directory = join(root, 'roll');
  const storage = await FileStorage.open(directory, { segmentSizeBytes: 4096 });
  let last = 0;
  // Many segments' worth of entries, each followed by a commit-only update.
  for (let i = 0; i < 120; i++) {
    await storage.save({
      entries: entries(last + 1, last + 1),
      hardState: { term: 1, vote: 1, commit: last },
    });
    last++;
    await storage.save({ entries: [], hardState: { term: 1, vote: 1, commit: last } });
  }
  await storage.close();
  const reopened = await FileStorage.open(directory, { segmentSizeBytes: 4096 });
  assert.equal(reopened.lastIndex(), last);
  assert.deepEqual(reopened.initialState().hardState, { term: 1, vote: 1, commit: last });
  await reopened.close();
});

test('the core restarts with a state machine applied beyond the persisted commit', () => {
  // Entries 1..6 durable, the commit index persisted at 2 (later commit-only updates were
  // lost in a crash), the state machine applied through 5.
  const storage = MemoryStorage.from({
    hardState: { term: 1, vote: 1, commit: 2 },
    entries: entries(1, 6),
    confState: { voters: [1, 2, 3], learners: [], votersOutgoing: [], learnersNext: [], autoLeave: false },
  });
  const node = new RawNode(storage, { id: 1, random: new Prng(1), applied: 5 });
  assert.equal(node.status().commit, 5);
  // Nothing at or below the applied index is handed out again.
  assert.equal(node.hasReady() ? node.ready().committedEntries.length : 0, 0);
  // An applied index beyond the log is corruption, refused.
  assert.throws(
    () => new RawNode(storage, { id: 1, random: new Prng(1), applied: 7 }),
    /beyond the last log index/,
  );
});
