/**
 * `snapshot save` and `snapshot restore` (backups): save streams a consistent copy of a
 * node's KV state over the HTTP API to a file; restore makes the data directory of a member
 * of a new cluster from such a file.
 */
import { createWriteStream } from 'node:fs';
import { rename, rm } from 'node:fs/promises';
import { resolve } from 'node:path';
import { Readable, Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { Command } from 'commander';
import { isNodeError, parseInitialCluster, restoreDataDir } from '../node/index.js';
import { resolveEndpoints } from './api-client.js';
import { ByteProgress } from './byte-progress.js';
import { withCommon } from './reply-output.js';

interface SaveFlags {
  endpoints?: string;
  json?: boolean;
  progress?: boolean;
}

interface RestoreFlags {
  name: string;
  dataDir: string;
  initialCluster: string;
}

/** Registers `snapshot save` and `snapshot restore` (backups). */
export function registerSnapshotCommands(program: Command): void {
  const snapshot = program.command('snapshot').description('back up and restore the key-value state');
  withCommon(
    snapshot.command('save <file>').description("write a consistent copy of a node's KV state to <file>"),
  )
    .option('--progress', 'print the bytes received to stderr (the default when stderr is a terminal)')
    .action(saveSnapshot);
  snapshot
    .command('restore <file>')
    .description('create the data directory of a member of a NEW cluster from a snapshot file')
    .requiredOption('--name <name>', "the member's name")
    .requiredOption('--data-dir <dir>', 'an empty data directory')
    .requiredOption('--initial-cluster <list>', "the new cluster's members: name=host:port,...")
    .action(restoreSnapshot);
}

/** `snapshot save`: streams `/v1/snapshot` of the first endpoint to `<file>.tmp`, then renames it. */
async function saveSnapshot(file: string, flags: SaveFlags): Promise<void> {
  const endpoint = resolveEndpoints(flags.endpoints)[0]!;
  const res = await fetch(`${endpoint}/v1/snapshot`);
  if (res.status !== 200 || res.body === null) {
    console.error(`error: ${endpoint} answered ${res.status}: ${await res.text()}`);
    process.exitCode = 1;
    return;
  }
  const progress =
    flags.progress === true || process.stderr.isTTY === true ? new ByteProgress(process.stderr) : undefined;
  let bytes = 0;
  const counter = new Transform({
    transform(chunk: Buffer, _encoding, done) {
      bytes += chunk.length;
      progress?.update(bytes);
      done(null, chunk);
    },
  });
  try {
    await pipeline(Readable.fromWeb(res.body), counter, createWriteStream(`${file}.tmp`));
  } catch (error) {
    progress?.finish(bytes, 'failed');
    await rm(`${file}.tmp`, { force: true });
    console.error(`error: receiving the snapshot from ${endpoint}: ${(error as Error).message}`);
    process.exitCode = 1;
    return;
  }
  progress?.finish(bytes, 'done');
  await rename(`${file}.tmp`, file);
  const index = res.headers.get('x-flotilla-applied-index');
  const revision = res.headers.get('x-flotilla-revision');
  const report = { file, bytes, appliedIndex: Number(index), revision: Number(revision) };
  console.log(
    flags.json === true ? JSON.stringify(report) : `saved ${bytes} bytes at revision ${revision} to ${file}`,
  );
}

/** `snapshot restore`: a new member's data directory from a snapshot file (exit 2 on a bad configuration). */
async function restoreSnapshot(file: string, flags: RestoreFlags): Promise<void> {
  try {
    const members = parseInitialCluster(flags.initialCluster);
    const result = await restoreDataDir({
      snapshotFile: file,
      name: flags.name,
      dataDir: resolve(flags.dataDir),
      initialCluster: flags.initialCluster,
      members,
    });
    console.log(`restored ${flags.name} at index ${result.index}, revision ${result.revision}`);
  } catch (error) {
    console.error(`error: ${(error as Error).message}`);
    process.exitCode = isNodeError(error, 'INVALID_CONFIG') ? 2 : 1;
  }
}
