/**
 * The LMDB backend's background commits: a batch is visible to every read while its commit
 * is in flight, reopening gives back every applied batch, a crash at any moment reopens at a
 * committed batch (never torn, never ahead), `sync` waits for the flush, back-pressure
 * bounds the work in flight, and a failed commit is fatal without later batches committing
 * past it.
 */

import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { after, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import type { RootDatabase } from 'lmdb';
import { bytes, describeBatches, drain, KvDriver, text } from '../src/kv/conformance-harness.js';
import { isKvError } from '../src/kv/errors.js';
import { LmdbKvBackend, type LmdbKvTestHooks } from '../src/kv/lmdb-backend.js';
import { MemoryKvBackend } from '../src/kv/memory-backend.js';
import type { KvCommand } from '../src/kv/types.js';
import { batchAt } from './support/kv-crash-commands.js';

const root = await mkdtemp(join(tmpdir(), 'flotilla-kv-commits-'));
after(() => rm(root, { recursive: true, force: true }));
let directories = 0;
const freshPath = () => join(root, `kv-${directories++}`);

/** A promise released by hand. */
function gate(): { promise: Promise<void>; release: () => void } {
  let release!: () => void;
  const promise = new Promise<void>((resolve) => {
    release = resolve;
  });
  return { promise, release };
}

const tick = (ms = 10) => new Promise((resolve) => setTimeout(resolve, ms));

/** Waits until `condition` holds (commits resolve on lmdb-js's write thread). */
async function until(condition: () => boolean, what: string): Promise<void> {
  for (let i = 0; i < 500 && !condition(); i++) await tick(5);
  assert.ok(condition(), `timed out waiting for ${what}`);
}

/** A mixed workload: puts with and without leases, deletes, a txn, a compaction. */
function workload(driver: KvDriver): void {
  driver.ok({ type: 'leaseGrant', id: 7, ttlSeconds: 30, nowMs: 1 });
  for (let i = 0; i < 12; i++) driver.put(`k${i % 5}`, `v${i}`, i % 4 === 0 ? { lease: 7 } : {});
  driver.del('k1');
  driver.ok({
    type: 'txn',
    compare: [{ key: bytes('k2'), target: 'VERSION', result: 'GREATER', value: 0 }],
    success: [{ type: 'put', key: bytes('t'), value: bytes('yes') }],
    failure: [],
    session: { clientId: 9, seq: 1 },
  });
  driver.ok({ type: 'compact', revision: 6 });
  driver.put('after-compact', 'x');
}

/** The same commands applied to a memory backend, entry for entry. */
function mirror(commands: readonly (KvCommand | null)[]): MemoryKvBackend {
  const memory = new MemoryKvBackend();
  let index = 0;
  memory.applyBatch(commands.map((command) => ({ index: ++index, command })));
  return memory;
}

/** A driver that records the commands it applies. */
function recording(driver: KvDriver): (KvCommand | null)[] {
  const commands: (KvCommand | null)[] = [];
  const applyAll = driver.applyAll.bind(driver);
  driver.applyAll = (batch) => {
    commands.push(...batch);
    return applyAll(batch);
  };
  return commands;
}

test('a batch is visible to every read while its commit is held in flight', async () => {
  const held = gate();
  const backend = LmdbKvBackend.open(freshPath(), {}, { beforeCommit: () => held.promise });
  const driver = new KvDriver(backend);
  const commands = recording(driver);
  workload(driver);
  await tick(50);
  assert.equal(backend.committedIndex, 0, 'nothing is committed while the commits are held');
  assert.equal(backend.appliedIndex, commands.length);
  assert.equal(driver.value('k0'), 'v10');
  assert.equal(driver.value('k0', 8), 'v5', 'an older revision is read from the overlay');
  assert.equal(driver.get('k1'), undefined);
  assert.equal(driver.value('t'), 'yes');
  assert.deepEqual(driver.keys({ key: bytes('k'), rangeEnd: bytes('l') }), ['k0', 'k2', 'k3', 'k4']);
  const watcher = backend.watch({ key: bytes('k3'), startRevision: 6 });
  assert.deepEqual(describeBatches(drain(watcher)), ['10:PUT k3=v8']);
  const memory = mirror(commands);
  assert.equal(backend.hash(), memory.hash());
  assert.deepEqual(backend.hashKv(0), memory.hashKv(0));
  assert.deepEqual(backend.hashKv(10), memory.hashKv(10));
  const restored = new MemoryKvBackend();
  await restored.restore(backend.snapshot());
  assert.equal(restored.hash(), memory.hash(), 'a snapshot taken in flight has every applied batch');
  held.release();
  await backend.sync();
  assert.equal(backend.committedIndex, backend.appliedIndex);
  assert.equal(backend.hash(), memory.hash(), 'the same state once committed');
  await backend.close();
});

test('a batch is visible before the event loop turns, before any commit can run', async () => {
  const backend = LmdbKvBackend.open(freshPath());
  const driver = new KvDriver(backend);
  driver.put('a', '1');
  const watcher = backend.watch({ key: bytes('a'), startRevision: 2 });
  driver.put('a', '2');
  assert.ok(backend.committedIndex < backend.appliedIndex, 'the commit is still in flight');
  assert.equal(driver.value('a'), '2');
  assert.equal(driver.value('a', 2), '1');
  assert.deepEqual(describeBatches(drain(watcher)), ['2:PUT a=1', '3:PUT a=2']);
  const late = backend.watch({ key: bytes('a'), startRevision: 2, prevKv: true });
  assert.deepEqual(describeBatches(drain(late)), ['2:PUT a=1', '3:PUT a=2 prev=1']);
  await backend.close();
});

test('a snapshot taken in flight is the state at the call, whatever commits and applies follow', async () => {
  const backend = LmdbKvBackend.open(freshPath());
  const driver = new KvDriver(backend);
  for (let i = 0; i < 30; i++) driver.put(`s${i % 7}`, `${i}`);
  const expected = backend.hash();
  const snapshot = backend.snapshot();
  assert.equal(snapshot.meta.appliedIndex, 30);
  driver.ok({ type: 'compact', revision: 25 });
  for (let i = 0; i < 30; i++) driver.put(`s${i % 7}`, `later ${i}`);
  await backend.sync();
  const restored = new MemoryKvBackend();
  await restored.restore(snapshot);
  assert.equal(restored.hash(), expected);
  await backend.close();
});

test('reopening after close gives back every applied batch', async () => {
  const path = freshPath();
  let backend = LmdbKvBackend.open(path);
  const driver = new KvDriver(backend);
  const commands = recording(driver);
  workload(driver);
  for (let i = 0; i < 200; i++)
    driver.applyAll([{ type: 'put', key: bytes(`r${i % 13}`), value: bytes(`${i}`) }, null]);
  assert.ok(backend.committedIndex < backend.appliedIndex);
  await backend.close();
  backend = LmdbKvBackend.open(path);
  const memory = mirror(commands);
  assert.deepEqual(
    [backend.appliedIndex, backend.revision, backend.compactRevision],
    [memory.appliedIndex, memory.revision, memory.compactRevision],
  );
  assert.equal(backend.hash(), memory.hash());
  assert.equal(text(backend.range({ key: bytes('r0') }).kvs[0]!.value), '195');
  await backend.close();
});

test('sync resolves only after every applied batch is committed and then flushed', async () => {
  const commitGate = gate();
  const flushGate = gate();
  const asked: number[] = [];
  let backend: LmdbKvBackend | undefined;
  const hooks: LmdbKvTestHooks = {
    beforeCommit: () => commitGate.promise,
    flushed: (flushed) => {
      asked.push(backend!.committedIndex);
      return Promise.resolve(flushed).then(() => flushGate.promise);
    },
  };
  backend = LmdbKvBackend.open(freshPath(), {}, hooks);
  const driver = new KvDriver(backend);
  for (let i = 0; i < 5; i++) driver.put(`k${i}`, 'v');
  let synced = false;
  const syncing = backend.sync().then(() => {
    synced = true;
  });
  driver.put('after-sync-call', 'v');
  await tick(50);
  assert.deepEqual(asked, [], 'no flush is awaited before the commits');
  assert.equal(synced, false);
  commitGate.release();
  await until(() => asked.length === 1, 'the flush to be awaited');
  assert.ok(asked[0]! >= 5, 'the flush is awaited once the batches before the call are committed');
  await tick(50);
  assert.equal(synced, false, 'sync waits for the flush');
  flushGate.release();
  await syncing;
  assert.equal(synced, true);
  await backend.close();
});

test('commits are batched by interval, and start at once when something waits for them', async () => {
  const path = freshPath();
  let backend = LmdbKvBackend.open(path, { commitIntervalMs: 60_000 });
  const driver = new KvDriver(backend);
  for (let i = 0; i < 5; i++) driver.put(`k${i}`, `${i}`);
  await tick(100);
  assert.equal(backend.committedIndex, 0, 'no commit before the interval is up');
  await backend.sync();
  assert.equal(backend.committedIndex, 5, 'sync commits at once');
  for (let i = 0; i < 3; i++) driver.put(`k${i}`, 'again');
  await tick(50);
  assert.equal(backend.committedIndex, 5);
  await backend.close();
  backend = LmdbKvBackend.open(path, { commitIntervalMs: 20 });
  assert.equal(backend.appliedIndex, 8, 'close commits what was applied');
  new KvDriver(backend).put('later', 'x');
  await until(() => backend.committedIndex === 9, 'the commit after the interval');
  await backend.close();
});

test('back-pressure holds the apply path while too much is in flight', async () => {
  const held = gate();
  const backend = LmdbKvBackend.open(
    freshPath(),
    { commitBatchesMax: 3 },
    { beforeCommit: () => held.promise },
  );
  const driver = new KvDriver(backend);
  driver.put('a', '1');
  driver.put('b', '2');
  assert.equal(backend.backPressure(), undefined, 'two batches in flight are within the bound');
  driver.put('c', '3');
  const room = backend.backPressure();
  assert.ok(room !== undefined, 'three batches in flight reach the bound');
  let resumed = false;
  void room.then(() => {
    resumed = true;
  });
  await tick(50);
  assert.equal(resumed, false);
  held.release();
  await room;
  assert.ok(backend.committedIndex >= 1);
  await backend.close();
});

test('a failed commit is fatal, and no later batch commits past it', async () => {
  const path = freshPath();
  const held = gate();
  const backend = LmdbKvBackend.open(
    path,
    {},
    { beforeCommit: ({ from }) => (from >= 1 ? held.promise : Promise.resolve()) },
  );
  const failures: unknown[] = [];
  backend.onFailure((error) => failures.push(error));
  const driver = new KvDriver(backend);
  driver.put('a', '1');
  await until(() => backend.committedIndex === 1, 'the first commit');
  driver.put('b', '2');
  driver.put('c', '3');
  // Something else moves the stored applied index meanwhile: batch 2 must not commit on it.
  const lmdb = (backend as unknown as { root: RootDatabase<Uint8Array, Uint8Array> }).root;
  const generation = lmdb.openDB<Uint8Array, Uint8Array>({
    name: 'kv-0',
    keyEncoding: 'binary',
    encoding: 'binary',
  });
  const { encodeMeta, META_KEY } = await import('../src/kv/lmdb-store.js');
  lmdb.transactionSync(() =>
    generation.putSync(META_KEY, encodeMeta({ appliedIndex: 99, revision: 50, compactRevision: 0 })),
  );
  held.release();
  await until(() => failures.length === 1, 'the failure');
  assert.ok(isKvError(failures[0], 'CORRUPT'));
  assert.throws(
    () => driver.put('d', '4'),
    (error) => isKvError(error, 'CORRUPT'),
  );
  await assert.rejects(backend.sync(), (error) => isKvError(error, 'CORRUPT'));
  await backend.close();
  const reopened = LmdbKvBackend.open(path);
  assert.equal(reopened.appliedIndex, 99, 'neither batch 2 nor batch 3 was written');
  await reopened.close();
});

/** Runs the crash worker on `path` and kills it after `killAfterMs`; returns what it printed. */
async function crashOnce(
  path: string,
  killAfterMs: number,
): Promise<{ opened: number; applied: number; committed: number }> {
  const worker = fileURLToPath(new URL('./support/lmdb-crash-worker.js', import.meta.url));
  const child = spawn(process.execPath, [worker, path], { stdio: ['ignore', 'pipe', 'inherit'] });
  const seen = { opened: -1, applied: -1, committed: -1 };
  const exited = new Promise<NodeJS.Signals | null>((resolve) =>
    child.on('exit', (_code, signal) => resolve(signal)),
  );
  const lines = createInterface({ input: child.stdout });
  const closed = new Promise((resolve) => lines.once('close', resolve));
  const opened = new Promise<void>((resolve) => {
    lines.on('line', (line) => {
      const [what, value] = line.split(' ');
      const index = Number(value);
      if (what === 'open') {
        seen.opened = index;
        resolve();
      } else if (what === 'applied') seen.applied = index;
      else if (what === 'committed') seen.committed = index;
    });
  });
  await opened;
  await tick(killAfterMs);
  child.kill('SIGKILL');
  assert.equal(await exited, 'SIGKILL');
  await closed;
  return seen;
}

test('a crash at a random moment reopens at a committed batch, exactly the replay to its index', async () => {
  const path = freshPath();
  const memory = new MemoryKvBackend();
  let reopenedAt = 0;
  for (let cycle = 0; cycle < 6; cycle++) {
    const seen = await crashOnce(path, 30 + Math.floor(Math.random() * 300));
    assert.equal(seen.opened, reopenedAt, 'the worker opened where the last check reopened');
    assert.ok(seen.applied > seen.opened, `cycle ${cycle}: the worker applied batches`);
    const backend = LmdbKvBackend.open(path);
    const index = backend.appliedIndex;
    assert.ok(
      index <= seen.applied,
      `cycle ${cycle}: reopened at ${index}, ahead of applied ${seen.applied}`,
    );
    assert.ok(
      index >= seen.committed,
      `cycle ${cycle}: reopened at ${index}, below committed ${seen.committed}`,
    );
    while (memory.appliedIndex < index) memory.applyBatch(batchAt(memory.appliedIndex + 1));
    assert.equal(memory.appliedIndex, index, `cycle ${cycle}: ${index} is a batch boundary`);
    assert.deepEqual([backend.revision, backend.compactRevision], [memory.revision, memory.compactRevision]);
    assert.equal(backend.hash(), memory.hash(), `cycle ${cycle}: the store at ${index} is the replay to it`);
    await backend.close();
    reopenedAt = index;
  }
});
