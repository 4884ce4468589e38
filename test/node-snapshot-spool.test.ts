/**
 * An on-disk state machine's raft snapshot is metadata only; the state a follower receives
 * from the leader is written to its spool (snapshot-spool.ts) before the raft snapshot is
 * saved. These tests build the data directory a crash leaves between the two — a raft
 * snapshot at index N, the KV store behind it — with real files, and start a member on it:
 * it restores from the spool, refuses a spool file that is corrupt, and says what to do when
 * the state is missing.
 */
import assert from 'node:assert/strict';
import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { freePort } from '../src/cli/cluster-command.js';
import { KvNode, type KvNodeInit } from '../src/db/index.js';
import { LmdbKvBackend } from '../src/kv/index.js';
import { frameChunks } from '../src/node/envelope.js';
import { clusterIdFrom, parseInitialCluster, restoreDataDir } from '../src/node/index.js';
import { SnapshotSpool } from '../src/node/snapshot-spool.js';
import type { SnapshotRequest } from '../src/raft/index.js';

const dirs: string[] = [];
after(async () => {
  await Promise.all(dirs.map((d) => rm(d, { recursive: true, force: true })));
});
const bytes = (s: string): Uint8Array => new TextEncoder().encode(s);
const KEYS = 50;

/** A KV store with KEYS keys, as framed snapshot chunks (what the leader streams). */
async function kvState(root: string): Promise<{ framed: Uint8Array; index: number }> {
  const kv = LmdbKvBackend.open(join(root, 'source'), { noSync: true });
  const entries = Array.from({ length: KEYS }, (_, i) => ({
    index: i + 1,
    command: { type: 'put' as const, key: bytes(`key${i}`), value: bytes(`value${i}`.repeat(50)) },
  }));
  kv.applyBatch(entries);
  const snapshot = kv.snapshot();
  const framed = frameChunks(snapshot);
  const index = kv.appliedIndex;
  await kv.close();
  return { framed, index };
}

/**
 * A one-member data directory whose raft snapshot is at `index` while its KV store is empty,
 * with `spooled` (if given) received for that index.
 */
async function crashedMember(spooled?: (framed: Uint8Array) => Uint8Array): Promise<KvNodeInit> {
  const root = await mkdtemp(join(tmpdir(), 'flotilla-spool-'));
  dirs.push(root);
  const { framed, index } = await kvState(root);
  await writeFile(join(root, 'backup.snap'), framed);
  const initialCluster = `solo=127.0.0.1:${await freePort()}`;
  const members = parseInitialCluster(initialCluster);
  const dataDir = join(root, 'solo');
  const restored = await restoreDataDir({
    snapshotFile: join(root, 'backup.snap'),
    name: 'solo',
    dataDir,
    initialCluster,
    members,
  });
  assert.equal(restored.index, index);
  // The raft snapshot is metadata only: no copy of the store in it.
  const snapFiles = await readdir(join(dataDir, 'raft', 'snap'));
  for (const name of snapFiles) {
    const size = (await readFile(join(dataDir, 'raft', 'snap', name))).length;
    assert.ok(size < 1024, `raft snapshot ${name} holds ${size} bytes`);
  }
  // The crash: the KV store lost everything after the raft snapshot was saved.
  await rm(join(dataDir, 'kv'), { recursive: true });
  if (spooled !== undefined) {
    const meta = {
      index,
      term: 1,
      confState: { voters: [1], votersOutgoing: [], learners: [], learnersNext: [], autoLeave: false },
    };
    const message = {
      type: 'snapshot',
      groupId: 1,
      from: 2,
      to: 1,
      term: 1,
      snapshot: { meta, data: new Uint8Array(0) },
    } as SnapshotRequest;
    const sink = new SnapshotSpool(dataDir).sink(message);
    await sink.write(spooled(framed));
    await sink.finish();
  }
  const member = members[0]!;
  return {
    name: 'solo',
    id: member.id,
    clusterId: clusterIdFrom(members),
    initialCluster,
    members: new Map([[member.id, { name: 'solo', host: member.host, port: member.port }]]),
    dataDir,
    listenPeer: { host: member.host, port: member.port },
    tickMs: 20,
    kvNoSync: true,
  };
}

test('a member whose store is behind its raft snapshot restores the state from its spool', async () => {
  const init = await crashedMember((framed) => framed);
  const node = await KvNode.start(init);
  try {
    const all = await node.read({ key: bytes('key'), rangeEnd: bytes('kez') }, 'serializable');
    assert.equal(all.count, KEYS);
    assert.deepEqual(await readdir(join(init.dataDir, 'snap-received')), [], 'the spool is emptied');
  } finally {
    await node.stop();
  }
});

test('a corrupt spool file is never trusted: the member refuses to start and its store stays empty', async () => {
  const init = await crashedMember((framed) => framed);
  // One bit flipped on disk after the file was sealed.
  const spoolDir = join(init.dataDir, 'snap-received');
  const [name] = await readdir(spoolDir);
  const file = await readFile(join(spoolDir, name!));
  file[100]! ^= 0x01;
  await writeFile(join(spoolDir, name!), file);
  await assert.rejects(KvNode.start(init), /corrupt: checksum mismatch/);
  const kv = LmdbKvBackend.open(join(init.dataDir, 'kv'), { noSync: true });
  assert.equal(kv.appliedIndex, 0);
  await kv.close();
});

test('a member whose received state is missing says so instead of starting with a hole', async () => {
  const init = await crashedMember();
  await assert.rejects(KvNode.start(init), /state received with that snapshot is missing/);
});

test('a file sealed by this process is read back after a trailer check; a file whose trailer disagrees is refused', async () => {
  const root = await mkdtemp(join(tmpdir(), 'flotilla-spool-'));
  dirs.push(root);
  const message = { snapshot: { meta: { index: 7 } } } as SnapshotRequest;
  const chunks = [bytes('first chunk'), bytes('second')];
  const receive = async (spool: SnapshotSpool): Promise<void> => {
    const sink = spool.sink(message);
    await sink.write(frameChunks(chunks));
    await sink.finish();
  };
  const readBack = async (spool: SnapshotSpool): Promise<string[]> => {
    const read: string[] = [];
    for await (const chunk of (await spool.chunks(7))!) read.push(new TextDecoder().decode(chunk));
    return read;
  };
  const spool = new SnapshotSpool(root);
  await receive(spool);
  assert.deepEqual(await readBack(spool), ['first chunk', 'second']);
  // The trailer's CRC-32C altered on disk: refused by the process that sealed it, and after a restart.
  const [name] = await readdir(spool.directory);
  const path = join(spool.directory, name!);
  const file = await readFile(path);
  file[file.length - 5]! ^= 0x01;
  await writeFile(path, file);
  await assert.rejects(spool.chunks(7), /corrupt: checksum mismatch/);
  await assert.rejects(new SnapshotSpool(root).chunks(7), /corrupt: checksum mismatch/);
  // A payload bit flipped on disk is found by the whole-file check of a process that did not seal it.
  await spool.clear();
  await receive(spool);
  const sealed = await readFile(path);
  sealed[3]! ^= 0x01;
  await writeFile(path, sealed);
  await assert.rejects(new SnapshotSpool(root).chunks(7), /corrupt: checksum mismatch/);
});
