/**
 * The KV store behind the state machine interface (src/node/kv-state-machine.ts): applying
 * through the interface gives the backend's own results, commands survive the codec, a
 * snapshot restores into another instance with the same state and applied index, and a
 * reopened instance reports its applied index.
 */
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { KV_COMMAND_CODEC, KvOnDiskStateMachine } from '../src/db/index.js';
import { type KvCommand, type KvEntry, LmdbKvBackend, MemoryKvBackend } from '../src/kv/index.js';

const encoder = new TextEncoder();
const bytes = (s: string): Uint8Array => encoder.encode(s);
const dirs: string[] = [];
after(async () => {
  for (const dir of dirs) await rm(dir, { recursive: true, force: true });
});

async function lmdbMachine(): Promise<{ dir: string; machine: KvOnDiskStateMachine<LmdbKvBackend> }> {
  const dir = await mkdtemp(join(tmpdir(), 'flotilla-kvsm-'));
  dirs.push(dir);
  return { dir, machine: new KvOnDiskStateMachine(() => LmdbKvBackend.open(dir, { noSync: true })) };
}

/** A mix of commands: writes, a lease and a key on it, a failing txn compare, deletes, a compaction, no-ops. */
function commands(): (KvCommand | null)[] {
  const out: (KvCommand | null)[] = [null];
  for (let i = 0; i < 40; i++)
    out.push({ type: 'put', key: bytes(`k${i % 13}`), value: bytes(`v${i}`), prevKv: true });
  out.push({ type: 'leaseGrant', id: 7, ttlSeconds: 60, nowMs: 1000 });
  out.push({ type: 'put', key: bytes('leased'), value: bytes('x'), lease: 7 });
  out.push(null);
  out.push({ type: 'deleteRange', key: bytes('k1'), rangeEnd: bytes('k2'), prevKv: true });
  out.push({ type: 'compact', revision: 5 });
  out.push({ type: 'leaseRevoke', id: 7 });
  out.push({ type: 'put', key: bytes('k0'), value: bytes('last') });
  return out;
}

test('KV state machine: apply results equal the backend, through the codec', async () => {
  const { dir, machine } = await lmdbMachine();
  assert.deepEqual(await machine.open(), { appliedIndex: 0 });
  const reference = new MemoryKvBackend();
  const entries: KvEntry[] = commands().map((command, i) => ({
    index: i + 1,
    command: command === null ? null : KV_COMMAND_CODEC.decode(KV_COMMAND_CODEC.encode(command)),
  }));
  // In batches of uneven sizes, as the runtime applies them.
  let results: unknown[] = [];
  for (let start = 0; start < entries.length; start += 7) {
    results = results.concat(await machine.apply(entries.slice(start, start + 7)));
  }
  assert.deepEqual(results, await reference.applyBatch(entries));
  assert.equal(machine.backend.appliedIndex, entries.length);
  assert.equal(machine.backend.hash(), reference.hash());
  const all = { key: bytes('\0'), rangeEnd: bytes('\xff') };
  assert.deepEqual(machine.query(all), reference.range(all));
  await machine.sync();
  await machine.close();
  // Reopened, it reports the applied index (the runtime replays from the next).
  const reopened = new KvOnDiskStateMachine(() => LmdbKvBackend.open(dir, { noSync: true }));
  assert.deepEqual(await reopened.open(), { appliedIndex: entries.length });
  await reopened.close();
});

test('KV state machine: a snapshot restores into another instance at the same index', async () => {
  const source = (await lmdbMachine()).machine;
  await source.open();
  const entries = commands().map((command, i) => ({ index: i + 1, command }));
  await source.apply(entries);
  const view = source.openSnapshot();
  assert.equal(view.index, entries.length);
  // Entries applied after the view was opened do not show in it.
  await source.apply([
    { index: entries.length + 1, command: { type: 'put', key: bytes('later'), value: bytes('1') } },
  ]);
  const target = (await lmdbMachine()).machine;
  await target.open();
  const chunks = view.chunks();
  const restored = await target.restore(
    (async function* () {
      yield* chunks;
    })(),
  );
  view.close();
  assert.deepEqual(restored, { appliedIndex: entries.length });
  assert.equal(target.query({ key: bytes('later') }).count, 0);
  await target.apply([
    { index: entries.length + 1, command: { type: 'put', key: bytes('later'), value: bytes('1') } },
  ]);
  assert.equal(target.backend.hash(), source.backend.hash());
  await source.close();
  await target.close();
});
