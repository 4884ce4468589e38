/**
 * Crash torture of a member's restore (src/kv/lmdb-restore.ts): a child process restores a
 * streamed snapshot into an LMDB store that holds another state, in transactions of 4 KiB,
 * and is killed with SIGKILL at moments swept across the restore. Reopened, the store must
 * hold exactly one of the two states, never a mix: the old one (with the transactions the
 * restore had committed discarded), or, from the moment its generation flipped, the new one,
 * which it must hold whenever the child said `restore` had returned.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { cp, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { after, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { LmdbKvBackend } from '../src/kv/lmdb-backend.js';
import { MemoryKvBackend } from '../src/kv/memory-backend.js';
import { frameChunks } from '../src/node/envelope.js';
import { batchAt } from './support/kv-crash-commands.js';

const WORKER = fileURLToPath(new URL('./support/lmdb-restore-crash-worker.js', import.meta.url));
const root = await mkdtemp(join(tmpdir(), 'flotilla-restore-crash-'));
after(() => rm(root, { recursive: true, force: true }));

/** Kills swept from the start of the restore to past its end. */
const CYCLES = 14;

/** Runs the child on `path`; kills it `killAfterMs` after it opened the store (never if undefined). */
async function restoreInChild(
  path: string,
  chunksFile: string,
  killAfterMs: number | undefined,
): Promise<{ restored: boolean; ms: number }> {
  const child = spawn(process.execPath, [WORKER, path, chunksFile], { stdio: ['ignore', 'pipe', 'inherit'] });
  let restored = false;
  let openedAt = 0;
  let ms = 0;
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  for await (const line of createInterface({ input: child.stdout })) {
    if (line.startsWith('open ')) {
      openedAt = performance.now();
      if (killAfterMs !== undefined) setTimeout(() => child.kill('SIGKILL'), killAfterMs);
    } else if (line.startsWith('restored ')) {
      restored = true;
      ms = performance.now() - openedAt;
    }
  }
  await exited;
  return { restored, ms };
}

test('a restore killed at any moment leaves the old state or the new one, never a mix', async () => {
  const source = new MemoryKvBackend({ snapshotChunkBytesMax: 4096 });
  while (source.appliedIndex < 60_000) source.applyBatch(batchAt(source.appliedIndex + 1));
  const chunks = [...source.snapshot()];
  assert.ok(chunks.length > 20, `${chunks.length} chunks`);
  const chunksFile = join(root, 'snapshot.frames');
  await writeFile(chunksFile, frameChunks(chunks));
  const newer = { hash: source.hash(), applied: source.appliedIndex };

  const base = join(root, 'base');
  const store = LmdbKvBackend.open(base);
  while (store.appliedIndex < 20_000) store.applyBatch(batchAt(store.appliedIndex + 1));
  const older = { hash: store.hash(), applied: store.appliedIndex };
  await store.close();
  assert.notEqual(older.hash, newer.hash);

  const reopen = async (path: string) => {
    const backend = LmdbKvBackend.open(path);
    const state = { hash: backend.hash(), applied: backend.appliedIndex };
    await backend.close();
    return state;
  };

  // Once to the end, for how long a restore takes here.
  await cp(base, join(root, 'whole'), { recursive: true });
  const whole = await restoreInChild(join(root, 'whole'), chunksFile, undefined);
  assert.ok(whole.restored);
  assert.deepEqual(await reopen(join(root, 'whole')), newer);

  const outcomes = { older: 0, newer: 0 };
  for (let cycle = 0; cycle < CYCLES; cycle++) {
    const path = join(root, `cycle-${cycle}`);
    await cp(base, path, { recursive: true });
    const killAfterMs = Math.round((cycle / (CYCLES - 1)) * 1.5 * whole.ms);
    const { restored } = await restoreInChild(path, chunksFile, killAfterMs);
    const state = await reopen(path);
    if (state.hash === older.hash) {
      assert.equal(state.applied, older.applied);
      assert.ok(!restored, `cycle ${cycle}: the restore had returned, but the old state is back`);
      outcomes.older++;
    } else {
      assert.deepEqual(state, newer, `cycle ${cycle} (killed after ${killAfterMs} ms): a mixed state`);
      outcomes.newer++;
    }
    await rm(path, { recursive: true, force: true });
  }
  assert.ok(outcomes.older > 0 && outcomes.newer > 0, JSON.stringify(outcomes));
});
