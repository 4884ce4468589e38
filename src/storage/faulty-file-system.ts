/**
 * A fault-injecting {@link FileSystem} for unit tests: it passes every call to a real file
 * system until an armed fault matches, then fails the call the way the kernel would (an
 * `EIO` or `ENOSPC` system error) or writes only part of the buffer (a short write).
 */
import type { FileSystem, OpenMode, StorageFile } from './file-system.js';
import { nodeFileSystem } from './file-system.js';

/** The operations a fault can target. */
export type FileOperation =
  | 'open'
  | 'write'
  | 'read'
  | 'datasync'
  | 'sync'
  | 'truncate'
  | 'readFile'
  | 'rename'
  | 'unlink'
  | 'syncDirectory';

/** What happens to a call a fault matches. `short-write` applies to `write` only. */
export type FaultKind = 'EIO' | 'ENOSPC' | 'short-write';

/** One armed fault. */
export interface Fault {
  readonly operation: FileOperation;
  readonly kind: FaultKind;
  /** Only calls on paths containing this string match (default: every path). */
  readonly pathIncludes?: string;
  /** Matching calls let through before the fault fires (default 0). */
  readonly skip?: number;
  /** Matching calls that fail once it fires (default 1; `Infinity` for every later call). */
  readonly times?: number;
}

interface ArmedFault {
  readonly fault: Fault;
  skip: number;
  times: number;
}

const ERRNO: Readonly<Record<'EIO' | 'ENOSPC', number>> = Object.freeze({ EIO: -5, ENOSPC: -28 });

/** An error shaped like Node's system errors (`code`, `errno`, `syscall`, `path`). */
export function systemError(code: 'EIO' | 'ENOSPC', syscall: string, path: string): Error {
  const text = code === 'EIO' ? 'i/o error' : 'no space left on device';
  return Object.assign(new Error(`${code}: ${text}, ${syscall} '${path}' (injected)`), {
    code,
    errno: ERRNO[code],
    syscall,
    path,
  });
}

/** A {@link FileSystem} that fails calls on demand; see {@link FaultyFileSystem.inject}. */
export class FaultyFileSystem implements FileSystem {
  private readonly armed: ArmedFault[] = [];
  /** Faults that have fired so far, in order. */
  readonly fired: { operation: FileOperation; kind: FaultKind; path: string }[] = [];

  constructor(private readonly inner: FileSystem = nodeFileSystem) {}

  /** Arms a fault; faults are checked in the order they were armed. */
  inject(fault: Fault): void {
    this.armed.push({ fault, skip: fault.skip ?? 0, times: fault.times ?? 1 });
  }

  /** Disarms every fault (the disk is healthy again). */
  clear(): void {
    this.armed.length = 0;
  }

  /** The fault kind to apply to this call, consuming it, or undefined to pass the call through. */
  take(operation: FileOperation, path: string): FaultKind | undefined {
    for (const armed of this.armed) {
      const { fault } = armed;
      if (fault.operation !== operation || armed.times <= 0) continue;
      if (fault.pathIncludes !== undefined && !path.includes(fault.pathIncludes)) continue;
      if (armed.skip > 0) {
        armed.skip--;
        continue;
      }
      armed.times--;
      this.fired.push({ operation, kind: fault.kind, path });
      return fault.kind;
    }
    return undefined;
  }

  /** Throws the injected error for `operation` on `path` if a fault matches. */
  check(operation: FileOperation, path: string): void {
    const kind = this.take(operation, path);
    if (kind === 'EIO' || kind === 'ENOSPC') throw systemError(kind, operation, path);
  }

  async open(path: string, mode: OpenMode): Promise<StorageFile> {
    this.check('open', path);
    return new FaultyFile(this, path, await this.inner.open(path, mode));
  }

  async readFile(path: string): Promise<Uint8Array> {
    this.check('readFile', path);
    return this.inner.readFile(path);
  }

  async rename(from: string, to: string): Promise<void> {
    this.check('rename', to);
    return this.inner.rename(from, to);
  }

  async unlink(path: string): Promise<void> {
    this.check('unlink', path);
    return this.inner.unlink(path);
  }

  list(directory: string): Promise<string[]> {
    return this.inner.list(directory);
  }

  mkdir(directory: string): Promise<void> {
    return this.inner.mkdir(directory);
  }

  async syncDirectory(directory: string): Promise<void> {
    this.check('syncDirectory', directory);
    return this.inner.syncDirectory(directory);
  }

  removeTree(directory: string): Promise<void> {
    return this.inner.removeTree(directory);
  }
}

class FaultyFile implements StorageFile {
  constructor(
    private readonly faults: FaultyFileSystem,
    private readonly path: string,
    private readonly inner: StorageFile,
  ) {}

  async write(buffer: Uint8Array, offset: number, length: number, position: number): Promise<number> {
    const kind = this.faults.take('write', this.path);
    if (kind === 'EIO' || kind === 'ENOSPC') throw systemError(kind, 'write', this.path);
    // A short write stores a real prefix, as the kernel does when the disk fills mid-write.
    const allowed = kind === 'short-write' ? Math.max(1, Math.floor(length / 2)) : length;
    return this.inner.write(buffer, offset, allowed, position);
  }

  async read(buffer: Uint8Array, offset: number, length: number, position: number): Promise<number> {
    this.faults.check('read', this.path);
    return this.inner.read(buffer, offset, length, position);
  }

  async datasync(): Promise<void> {
    this.faults.check('datasync', this.path);
    return this.inner.datasync();
  }

  async sync(): Promise<void> {
    this.faults.check('sync', this.path);
    return this.inner.sync();
  }

  async truncate(lengthBytes: number): Promise<void> {
    this.faults.check('truncate', this.path);
    return this.inner.truncate(lengthBytes);
  }

  size(): Promise<number> {
    return this.inner.size();
  }

  close(): Promise<void> {
    return this.inner.close();
  }
}
