/**
 * Where a multi-raft host keeps each group's files, and how a group's files are deleted.
 *
 *     <dataDir>/LOCK                        the host's data directory lock (one per host)
 *     <dataDir>/wal/                        the host's one log: every group's records
 *                                           (multi-host.ts, src/storage/shared-wal.ts)
 *     <dataDir>/groups/<groupId>/           one group's replica: the layout of a single-group
 *         member.json, members.json         node's data directory but for its log, which is
 *         raft/snap/, snap-received/        in the shared one (raft/ holds only its snapshot
 *                                           files), so startup.ts opens it
 *     <dataDir>/groups/.removing-<groupId>  a group being deleted (gone once deletion finished)
 *
 * A group's directory is deleted in two steps so a crash midway never leaves a half-deleted
 * group that would open as a damaged one: it is renamed out of the way (and the rename made
 * durable), then removed; a host clears leftovers of interrupted deletions when it starts.
 */
import { readdir, rename, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { nodeFileSystem } from '../storage/index.js';

/** The directory under a host's data directory that holds one directory per group. */
export const GROUPS_DIRECTORY = 'groups';

const REMOVING_PREFIX = '.removing-';

/** Largest group id: the wire format carries it as an unsigned 32-bit integer. */
export const GROUP_ID_MAX = 0xffff_ffff;

/** Whether `groupId` can name a group: an integer in [1, GROUP_ID_MAX]. */
export function isGroupId(groupId: number): boolean {
  return Number.isSafeInteger(groupId) && groupId >= 1 && groupId <= GROUP_ID_MAX;
}

/** The directory of group `groupId` under the host's data directory. */
export function groupDirectory(dataDir: string, groupId: number): string {
  return join(dataDir, GROUPS_DIRECTORY, String(groupId));
}

/** The ids of the groups that have a directory under `dataDir`, ascending. */
export async function storedGroups(dataDir: string): Promise<number[]> {
  const names = await listGroupsDirectory(dataDir);
  const ids = names.filter((name) => /^[1-9][0-9]*$/.test(name)).map(Number);
  return ids.filter(isGroupId).sort((a, b) => a - b);
}

/** Whether group `groupId` has a directory under `dataDir`. */
export async function hasGroupDirectory(dataDir: string, groupId: number): Promise<boolean> {
  try {
    return (await stat(groupDirectory(dataDir, groupId))).isDirectory();
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return false;
    throw error;
  }
}

/**
 * Deletes group `groupId`'s directory (nothing to do when it has none): renamed away durably
 * first, then removed, so a crash never leaves a partial group under its id.
 */
export async function removeGroupDirectory(dataDir: string, groupId: number): Promise<void> {
  if (!(await hasGroupDirectory(dataDir, groupId))) return;
  const parent = join(dataDir, GROUPS_DIRECTORY);
  const removing = join(parent, `${REMOVING_PREFIX}${groupId}`);
  await rm(removing, { recursive: true, force: true });
  await rename(groupDirectory(dataDir, groupId), removing);
  await nodeFileSystem.syncDirectory(parent);
  await rm(removing, { recursive: true, force: true });
}

/** Finishes deletions a crash interrupted (see {@link removeGroupDirectory}). */
export async function clearInterruptedRemovals(dataDir: string): Promise<void> {
  const names = await listGroupsDirectory(dataDir);
  const parent = join(dataDir, GROUPS_DIRECTORY);
  for (const name of names) {
    if (name.startsWith(REMOVING_PREFIX)) await rm(join(parent, name), { recursive: true, force: true });
  }
}

async function listGroupsDirectory(dataDir: string): Promise<string[]> {
  try {
    return await readdir(join(dataDir, GROUPS_DIRECTORY));
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw error;
  }
}
