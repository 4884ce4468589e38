/**
 * The data directory's identity file (`member.json`): which member and cluster the directory
 * belongs to, so a restart with different flags is refused instead of joining the wrong
 * cluster. (Its owner lock is data-dir-lock.ts.)
 */
import { open, readFile, rename } from 'node:fs/promises';
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
