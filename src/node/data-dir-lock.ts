/**
 * The data directory's owner lock. Storage has no lock of its own, and two processes writing
 * one WAL would corrupt it, so one process at a time owns a data directory.
 *
 * The lock must die with its process, whatever kills it (etcd flocks its WAL files for that
 * reason): a pid file alone refuses a restart right after a `kill -9` while the dead process
 * is not yet reaped (a zombie still answers `kill(pid, 0)`), and after a reboot whenever the
 * recorded pid was reused. Node has no `flock`, so on Linux the lock is a listening socket
 * in the abstract namespace, named after the directory's real path: the kernel frees the
 * name when the process exits, however it exits, and a second `listen` on it fails with
 * `EADDRINUSE` while the owner lives. The `LOCK` file then only names the owner for the error
 * message. (Abstract names are per network namespace: two processes in different network
 * namespaces sharing one directory are not kept apart, which is no deployment to support.)
 * Elsewhere the `LOCK` file is the lock, taken over when its pid no longer exists.
 */
import { createHash } from 'node:crypto';
import { open, readFile, realpath, unlink } from 'node:fs/promises';
import { createServer, type Server } from 'node:net';
import { join } from 'node:path';
import { NodeError } from './errors.js';

/** A held data directory lock. */
export interface DataDirLock {
  readonly released: boolean;
  release(): Promise<void>;
}

/** Locks held by this process (a second owner in the same process is refused too). */
const heldLocks = new Set<string>();

/** Takes the directory's lock; throws `INVALID_CONFIG` if a live process (this one included) holds it. */
export async function acquireLock(dir: string): Promise<DataDirLock> {
  const path = join(dir, 'LOCK');
  if (heldLocks.has(path)) throw inUse(dir, process.pid);
  const socket = process.platform === 'linux' ? await listenAbstract(dir) : undefined;
  if (socket === 'in-use') throw inUse(dir, await recordedOwner(path));
  if (socket === undefined) await takePidFile(dir, path);
  else await writePidFile(path);
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
      if (socket !== undefined) await new Promise<void>((resolve) => socket.close(() => resolve()));
    },
  };
}

function inUse(dir: string, pid: number | undefined): NodeError {
  const by = pid === undefined ? 'another process' : `process ${pid}`;
  return new NodeError('INVALID_CONFIG', `data directory ${dir} is in use by ${by}`);
}

/** Listens on the directory's abstract socket name: the server, or `in-use` when another process has it. */
async function listenAbstract(dir: string): Promise<Server | 'in-use'> {
  const name = `\0flotilla-data-dir-${createHash('sha256')
    .update(await realpath(dir))
    .digest('hex')}`;
  const server = createServer((connection) => connection.destroy());
  try {
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(name, () => {
        server.off('error', reject);
        resolve();
      });
    });
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'EADDRINUSE') return 'in-use';
    throw error;
  }
  // The lock must not keep the process alive by itself.
  server.unref();
  return server;
}

async function recordedOwner(path: string): Promise<number | undefined> {
  const pid = Number.parseInt(await readFile(path, 'utf8').catch(() => ''), 10);
  return Number.isInteger(pid) ? pid : undefined;
}

/** Records this process as the owner (the kernel lock is already held). */
async function writePidFile(path: string): Promise<void> {
  const handle = await open(path, 'w');
  try {
    await handle.writeFile(`${process.pid}\n`);
  } finally {
    await handle.close();
  }
}

/** The pid file as the lock (no kernel lock here): created exclusively, taken over from a dead pid. */
async function takePidFile(dir: string, path: string): Promise<void> {
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      const handle = await open(path, 'wx');
      await handle.writeFile(`${process.pid}\n`);
      await handle.close();
      return;
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
      const owner = await recordedOwner(path);
      if (owner !== undefined && owner !== process.pid && processAlive(owner)) throw inUse(dir, owner);
      await unlink(path).catch(() => {});
    }
  }
  throw new NodeError('INVALID_CONFIG', `could not lock data directory ${dir}`);
}

function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}
