/**
 * The crash test's worker process:
 * `node crash-worker.js <dir> <seed> <segmentSizeBytes> <none|ack-before-write> [groups]`.
 * Opens the storage (recovering it), then saves forever: appends, overwrites of the tail,
 * snapshots with compaction, hard-state changes. With `groups` above 1 the storage is a
 * SharedWal in `<dir>/wal` and groups 1..N (snapshots in `<dir>/snap-<id>`) each run that
 * loop concurrently, their messages tagged with the group. Before each operation it prints a `begin`
 * line and after the operation's promise resolved (its fsync completed) an `ack` line, both
 * with synchronous writes so nothing is acknowledged early and nothing acknowledged is lost
 * in a buffer. The parent kills it with SIGKILL at random moments.
 *
 * The `ack-before-write` mutation acknowledges each operation before performing it: a
 * deliberate bug the parent's checker must catch, proving that the check can fail.
 */
import { writeSync } from 'node:fs';
import { join } from 'node:path';
import type { Entry, HardState } from '../raft/types.js';
import {
  type CrashOperation,
  entryData,
  seededRandom,
  snapshotData,
  type WorkerMessage,
} from './crash-data.js';
import { FileStorage } from './file-storage.js';
import type { ReplicaStorage } from './replica-storage.js';
import { SharedWal } from './shared-wal.js';

function send(message: WorkerMessage): void {
  writeSync(1, `${JSON.stringify(message)}\n`);
}

/** Picks the next operation from the storage's current state. */
function nextOperation(storage: ReplicaStorage, random: () => number, commit: number): CrashOperation {
  const last = storage.lastIndex();
  const snapshotIndex = storage.snapshot().meta.index;
  const term = storage.initialState().hardState.term;
  const roll = random();
  if (roll < 0.05 && last > snapshotIndex) {
    const index = snapshotIndex + 1 + Math.floor(random() * (last - snapshotIndex));
    return { kind: 'snapshot', index, term: storage.term(index) };
  }
  if (roll < 0.08) return { kind: 'hard-state', hardState: { term: term + 1, vote: 1, commit } };
  const count = batchSize(random());
  // Overwrite a few entries of the tail sometimes, never at or below the snapshot.
  const back = roll < 0.15 ? Math.min(Math.floor(random() * 5), last - snapshotIndex) : 0;
  const first = last + 1 - back;
  const entryTerm = back > 0 ? term + 1 : Math.max(term, 1);
  return {
    kind: 'append',
    first,
    last: first + count - 1,
    term: entryTerm,
    hardState: { term: entryTerm, vote: 1, commit },
  };
}

/** Mostly small batches, some large ones (which also outgrow a segment). */
function batchSize(roll: number): number {
  if (roll < 0.1) return 1 + Math.floor(roll * 4_000);
  return 1 + Math.floor(roll * 20);
}

async function perform(storage: ReplicaStorage, operation: CrashOperation): Promise<void> {
  switch (operation.kind) {
    case 'append': {
      const entries: Entry[] = [];
      for (let index = operation.first; index <= operation.last; index++) {
        entries.push({ index, term: operation.term, type: 'normal', data: entryData(index, operation.term) });
      }
      return storage.save({ entries, hardState: operation.hardState });
    }
    case 'snapshot': {
      const data = snapshotData(operation.index, operation.term);
      await storage.createSnapshot(
        operation.index,
        { voters: [1], votersOutgoing: [], learners: [], learnersNext: [], autoLeave: false },
        data,
      );
      return storage.compact(operation.index);
    }
    case 'hard-state':
      return storage.save({ entries: [], hardState: operation.hardState });
  }
}

/** Runs operations on `storage` forever, announcing each and acknowledging it once durable. */
async function saveForever(
  storage: ReplicaStorage,
  random: () => number,
  mutation: string | undefined,
  group: number | undefined,
): Promise<never> {
  const tag = group === undefined ? {} : { group };
  let commit: HardState['commit'] = storage.initialState().hardState.commit;
  for (;;) {
    commit++;
    const operation = nextOperation(storage, random, commit);
    send({ type: 'begin', operation, ...tag });
    if (mutation === 'ack-before-write') send({ type: 'ack', ...tag });
    await perform(storage, operation);
    if (mutation !== 'ack-before-write') send({ type: 'ack', ...tag });
  }
}

/** `groups` raft groups in one SharedWal, saving concurrently. */
async function runGroups(
  directory: string,
  seed: number,
  segmentSizeBytes: number,
  mutation: string | undefined,
  groups: number,
): Promise<void> {
  const wal = await SharedWal.open(join(directory, 'wal'), { segmentSizeBytes });
  const storages: ReplicaStorage[] = [];
  for (let group = 1; group <= groups; group++)
    storages.push(await wal.openGroup(group, join(directory, `snap-${group}`)));
  const lastIndex = storages.reduce((sum, storage) => sum + storage.lastIndex(), 0);
  send({ type: 'ready', lastIndex, snapshotIndex: 0 });
  await Promise.all(
    storages.map((storage, i) => saveForever(storage, seededRandom(seed + 7919 * (i + 1)), mutation, i + 1)),
  );
}

async function main(): Promise<void> {
  const [directory, seedText, segmentText, mutation, groupsText] = process.argv.slice(2);
  if (directory === undefined) throw new Error('usage: crash-worker <dir> <seed> <segmentSizeBytes>');
  const seed = Number(seedText ?? 1);
  const segmentSizeBytes = Number(segmentText ?? 256 * 1024);
  const groups = Number(groupsText ?? 1);
  if (groups > 1) return runGroups(directory, seed, segmentSizeBytes, mutation, groups);
  const storage = await FileStorage.open(directory, { segmentSizeBytes });
  send({ type: 'ready', lastIndex: storage.lastIndex(), snapshotIndex: storage.snapshot().meta.index });
  await saveForever(storage, seededRandom(seed), mutation, undefined);
}

main().catch((error: unknown) => {
  process.stderr.write(`crash worker failed: ${error instanceof Error ? error.stack : String(error)}\n`);
  process.exit(1);
});
