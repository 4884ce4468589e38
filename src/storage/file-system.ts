/**
 * The file operations storage needs, behind an interface so tests can inject faults (short
 * writes, EIO on fsync, ENOSPC) without touching the real disk's behaviour. The Node
 * implementation maps each call to exactly one `fs.promises` call.
 */
import { writeSync } from 'node:fs';
import { type FileHandle, mkdir, open, readdir, readFile, rename, rm, unlink } from 'node:fs/promises';

/** An open file. Positions and lengths are in bytes. */
export interface StorageFile {
  /** Writes `buffer[offset, offset + length)` at `position`; may write fewer bytes (returns how many). */
  write(buffer: Uint8Array, offset: number, length: number, position: number): Promise<number>;
  /** Reads into `buffer[offset, offset + length)` from `position`; returns the bytes read. */
  read(buffer: Uint8Array, offset: number, length: number, position: number): Promise<number>;
  /** `fdatasync`: the written data (and the size) are durable when it resolves. */
  datasync(): Promise<void>;
  /** `fsync`: data and all metadata are durable when it resolves. */
  sync(): Promise<void>;
  /** Sets the file's size. */
  truncate(lengthBytes: number): Promise<void>;
  /** The file's current size. */
  size(): Promise<number>;
  close(): Promise<void>;
}

/** How {@link FileSystem.open} opens a file. */
export type OpenMode =
  /** read only; the file must exist */
  | 'read'
  /** read and write; the file must exist */
  | 'update'
  /** read and write; created if missing, emptied if present */
  | 'create';

/** The file system operations of storage. Paths are absolute or relative to the process. */
export interface FileSystem {
  open(path: string, mode: OpenMode): Promise<StorageFile>;
  readFile(path: string): Promise<Uint8Array>;
  /** Atomically replaces `to` with `from` (POSIX rename). */
  rename(from: string, to: string): Promise<void>;
  unlink(path: string): Promise<void>;
  /** Names in a directory, sorted; an empty list when it does not exist. */
  list(directory: string): Promise<string[]>;
  /** Creates a directory and its parents if missing. */
  mkdir(directory: string): Promise<void>;
  /** Makes the directory's entries (creations, renames, unlinks) durable: fsync on the directory. */
  syncDirectory(directory: string): Promise<void>;
  /** Removes a directory tree (tests and tools only). */
  removeTree(directory: string): Promise<void>;
}

const OPEN_FLAGS: Readonly<Record<OpenMode, string>> = Object.freeze({
  read: 'r',
  update: 'r+',
  create: 'w+',
});

/**
 * Writes up to this size go straight to the page cache with a synchronous `pwrite` on the
 * calling thread (tens of microseconds) instead of a round trip through libuv's thread pool
 * (about 0.3 ms measured on this machine, paid twice per write on the commit path: leader and
 * follower). The system calls, hence durability, are the same: the data is durable only after
 * the caller's `fdatasync`, which stays asynchronous. Larger writes go through the pool so a
 * big frame never holds the event loop. bench/RESULTS.md, "WAL writes without a thread-pool
 * round trip", has the before and after.
 */
export const SYNC_WRITE_BYTES_MAX = 64 * 1024;

class NodeFile implements StorageFile {
  constructor(private readonly handle: FileHandle) {}

  async write(buffer: Uint8Array, offset: number, length: number, position: number): Promise<number> {
    if (length <= SYNC_WRITE_BYTES_MAX) return writeSync(this.handle.fd, buffer, offset, length, position);
    const { bytesWritten } = await this.handle.write(buffer, offset, length, position);
    return bytesWritten;
  }

  async read(buffer: Uint8Array, offset: number, length: number, position: number): Promise<number> {
    const { bytesRead } = await this.handle.read(buffer, offset, length, position);
    return bytesRead;
  }

  datasync(): Promise<void> {
    return this.handle.datasync();
  }

  sync(): Promise<void> {
    return this.handle.sync();
  }

  truncate(lengthBytes: number): Promise<void> {
    return this.handle.truncate(lengthBytes);
  }

  async size(): Promise<number> {
    return (await this.handle.stat()).size;
  }

  close(): Promise<void> {
    return this.handle.close();
  }
}

/** The real file system through `node:fs/promises`. */
export const nodeFileSystem: FileSystem = Object.freeze({
  async open(path: string, mode: OpenMode): Promise<StorageFile> {
    return new NodeFile(await open(path, OPEN_FLAGS[mode]));
  },
  readFile(path: string): Promise<Uint8Array> {
    return readFile(path);
  },
  rename(from: string, to: string): Promise<void> {
    return rename(from, to);
  },
  unlink(path: string): Promise<void> {
    return unlink(path);
  },
  async list(directory: string): Promise<string[]> {
    try {
      return (await readdir(directory)).sort();
    } catch (error) {
      if ((error as { code?: unknown }).code === 'ENOENT') return [];
      throw error;
    }
  },
  async mkdir(directory: string): Promise<void> {
    await mkdir(directory, { recursive: true });
  },
  async syncDirectory(directory: string): Promise<void> {
    const handle = await open(directory, 'r');
    try {
      await handle.sync();
    } finally {
      await handle.close();
    }
  },
  removeTree(directory: string): Promise<void> {
    return rm(directory, { recursive: true, force: true });
  },
});

/** Writes all of `buffer[offset, offset + length)` at `position`, looping over short writes. */
export async function writeFully(
  file: StorageFile,
  buffer: Uint8Array,
  offset: number,
  length: number,
  position: number,
): Promise<void> {
  let done = 0;
  while (done < length) {
    const written = await file.write(buffer, offset + done, length - done, position + done);
    // A write that makes no progress would loop forever; the disk is not accepting data.
    if (written <= 0) throw Object.assign(new Error('write made no progress'), { code: 'EIO' });
    done += written;
  }
}
