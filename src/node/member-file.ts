/**
 * The data directory's identity file (`member.json`) and its owner lock (`LOCK`).
 *
 * `member.json` records which member and cluster the directory belongs to, so a restart
 * with different flags is refused instead of joining the wrong cluster. `LOCK` holds the
 * owning process id: storage has no lock of its own and two processes writing one WAL would
 * corrupt it. A lock left by a killed process (its pid no longer exists) is taken over.
 */
import { open, readFile, rename, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import { NodeError } from './errors.js';

/** What `member.json` holds. */
export interface MemberFile {
  readonly name: string;
  readonly id: number;
  readonly clusterId: number;
  readonly initialCluster: string;
}

/** The owner lock of a data directory. */
export interface DataDirLock {
  readonly released: boolean;
  release(): Promise<void>;
}

/** Reads `member.json`; undefined when the directory has none (fresh). */
export async function readMemberFile(dir: string): Promise<MemberFile | undefined> {
  let text: string;
  try {
    text = await readFile(join(dir, 'member.json'), 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw error;
  }
  const value = JSON.parse(text) as Partial<MemberFile>;
  if (
    typeof value.name !== 'string' ||
    typeof value.id !== 'number' ||
    typeof value.clusterId !== 'number' ||
    typeof value.initialCluster !== 'string'
  ) {
    throw new NodeError('INVALID_CONFIG', `${join(dir, 'member.json')} is malformed`);
  }
  return value as MemberFile;
}

/** Writes `member.json` durably (temp file, fsync, rename, directory fsync). */
export async function writeMemberFile(dir: string, member: MemberFile): Promise<void> {
  const path = join(dir, 'member.json');
  await writeDurably(path, `${JSON.stringify(member, null, 2)}\n`);
  await fsyncDirectory(dir);
}

/** Writes `name` in `dir` durably (temp file, fsync, rename, directory fsync). */
export async function writeJsonDurably(dir: string, name: string, text: string): Promise<void> {
  await writeDurably(join(dir, name), text);
  await fsyncDirectory(dir);
}

async function writeDurably(path: string, text: string): Promise<void> {
  const tmp = `${path}.tmp`;
  const handle = await open(tmp, 'w');
  try {
    await handle.writeFile(text);
    await handle.sync();
  } finally {
    await handle.close();
  }
  await rename(tmp, path);
}

async function fsyncDirectory(dir: string): Promise<void> {
  const handle = await open(dir, 'r');
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}

function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** Lock files held by this process (a second owner in the same process is refused too). */
const heldLocks = new Set<string>();

/** Takes the directory's lock; throws `INVALID_CONFIG` if a live process (this one included) holds it. */
export async function acquireLock(dir: string): Promise<DataDirLock> {
  const path = join(dir, 'LOCK');
  if (heldLocks.has(path))
    throw new NodeError('INVALID_CONFIG', `data directory ${dir} is in use by process ${process.pid}`);
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      const handle = await open(path, 'wx');
      await handle.writeFile(`${process.pid}\n`);
      await handle.close();
      heldLocks.add(path);
      let released = false;
      return {
        get released() {
          return released;
        },
        async release() {
          if (released) return;
          released = true;
          heldLocks.delete(path);
          await unlink(path).catch(() => {});
        },
      };
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
      const owner = Number.parseInt(await readFile(path, 'utf8').catch(() => ''), 10);
      if (Number.isInteger(owner) && processAlive(owner) && owner !== process.pid) {
        throw new NodeError('INVALID_CONFIG', `data directory ${dir} is in use by process ${owner}`);
      }
      await unlink(path).catch(() => {});
    }
  }
  throw new NodeError('INVALID_CONFIG', `could not lock data directory ${dir}`);
}
