import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtemp, open, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import type { Entry } from '../src/raft/types.js';
import { isStorageError } from '../src/storage/errors.js';
import { FileStorage } from '../src/storage/file-storage.js';
import { scanSegment } from '../src/storage/segment-scan.js';

const cli = fileURLToPath(new URL('../src/cli/main.js', import.meta.url));
const root = await mkdtemp(join(tmpdir(), 'flotilla-cli-repair-'));
after(() => rm(root, { recursive: true, force: true }));
const options = { segmentSizeBytes: 1024 };

function flotilla(...args: string[]): { status: number | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, [cli, ...args], { encoding: 'utf8', timeout: 60_000 });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

/** A node's data directory whose WAL has a flipped byte in the middle of its second segment. */
async function corruptDataDir(name: string): Promise<{ directory: string; segment: string }> {
  const directory = join(root, name);
  const storage = await FileStorage.open(directory, options);
  for (let index = 1; index <= 60; index += 2) {
    const entries: Entry[] = [index, index + 1].map((i) => ({
      index: i,
      term: 1,
      type: 'normal',
      data: new Uint8Array(20),
    }));
    await storage.save({ entries });
  }
  const segment = storage.segmentPaths[1]!;
  await storage.close();
  const frame = scanSegment(await readFile(segment)).frames[2]!;
  const handle = await open(segment, 'r+');
  const byte = new Uint8Array(1);
  await handle.read(byte, 0, 1, frame.offset + 10);
  byte[0]! ^= 0xff;
  await handle.write(byte, 0, 1, frame.offset + 10);
  await handle.close();
  return { directory, segment };
}

test('flotilla repair without --yes names the damage, changes nothing and fails', async () => {
  const { directory, segment } = await corruptDataDir('no-consent');
  const before = await readFile(segment);
  const r = flotilla('repair', '--data-dir', directory);
  assert.equal(r.status, 1, r.stderr);
  assert.match(r.stdout, /problem: .*/);
  assert.match(
    r.stdout,
    new RegExp(`would cut ${segment.replaceAll('/', '\\/')} at byte \\d+, dropping \\d+ entries`),
  );
  assert.match(r.stdout, /nothing was changed; run again with --yes to cut/);
  assert.deepEqual(await readFile(segment), before);
  await assert.rejects(FileStorage.open(directory, options), (error) => isStorageError(error, 'CORRUPT'));
});

test('flotilla repair --yes cuts the log so the node opens again, and says how much it dropped', async () => {
  const { directory } = await corruptDataDir('consent');
  const r = flotilla('repair', '--data-dir', directory, '--yes', '--json');
  assert.equal(r.status, 0, r.stderr);
  const report = JSON.parse(r.stdout) as { applied: boolean; droppedEntries: number };
  assert.equal(report.applied, true);
  assert.ok(report.droppedEntries > 0);
  const storage = await FileStorage.open(directory, options);
  assert.ok(storage.lastIndex() < 60);
  assert.equal(storage.lastIndex() + report.droppedEntries <= 60, true);
  await storage.close();
  const again = flotilla('repair', '--data-dir', directory);
  assert.equal(again.status, 0);
  assert.match(again.stdout, /intact: nothing to repair/);
});

test('flotilla repair refuses a missing data directory or a missing flag with a clear error', () => {
  const missing = flotilla('repair', '--data-dir', join(root, 'nope'));
  assert.equal(missing.status, 2);
  assert.match(missing.stderr, /data directory .* does not exist/);
  const noFlag = flotilla('repair');
  assert.notEqual(noFlag.status, 0);
  assert.match(noFlag.stderr, /required option '--data-dir <dir>' not specified/);
});
