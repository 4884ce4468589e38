/**
 * Errors of the durable storage. Every storage error is fatal to the node that sees it: the
 * node must stop and never acknowledge anything afterwards (see docs/storage.md).
 */

/**
 * Stable error codes:
 * - `CORRUPT`: a checksum, a record or a file structure is invalid where the log cannot have
 *   been torn by a crash; recovery refuses to continue.
 * - `MISSING_SEGMENT`: a WAL segment (or the entries it held) is missing.
 * - `MISSING_SNAPSHOT`: the snapshot the WAL points to has no file.
 * - `IO`: a read, write, fsync, rename or unlink failed (EIO, ENOSPC, …).
 * - `CLOSED`: the storage was used after `close()`.
 */
export type StorageErrorCode = 'CORRUPT' | 'MISSING_SEGMENT' | 'MISSING_SNAPSHOT' | 'IO' | 'CLOSED';

/** Where in which file a storage error was detected. */
export interface StorageErrorLocation {
  readonly file?: string | undefined;
  readonly offset?: number | undefined;
  readonly cause?: unknown;
}

/**
 * A fatal storage error with a stable `code`. When known, `file` and the byte `offset` are
 * set and also appear in the message, so an operator can find the damage.
 */
export class StorageError extends Error {
  override readonly name = 'StorageError';
  /** The file the error concerns, if any. */
  readonly file: string | undefined;
  /** The byte offset in `file` where the problem starts, if any. */
  readonly offset: number | undefined;

  constructor(
    readonly code: StorageErrorCode,
    message: string,
    location: StorageErrorLocation = {},
  ) {
    super(describe(message, location), location.cause === undefined ? undefined : { cause: location.cause });
    this.file = location.file;
    this.offset = location.offset;
  }
}

function describe(message: string, location: StorageErrorLocation): string {
  if (location.file === undefined) return message;
  if (location.offset === undefined) return `${message} (file ${location.file})`;
  return `${message} (file ${location.file}, byte offset ${location.offset})`;
}

/** Whether `error` is a {@link StorageError}, optionally with the given code. */
export function isStorageError(error: unknown, code?: StorageErrorCode): error is StorageError {
  return error instanceof StorageError && (code === undefined || error.code === code);
}

/**
 * Wraps an error from the file system as an `IO` {@link StorageError} naming the operation
 * and file; a {@link StorageError} passes through unchanged so the first cause is kept.
 */
export function ioError(operation: string, file: string, cause: unknown, offset?: number): StorageError {
  if (cause instanceof StorageError) return cause;
  const code = systemErrorCode(cause);
  const detail = code === undefined ? String(cause) : code;
  return new StorageError('IO', `${operation} failed: ${detail}`, { file, offset, cause });
}

/** The `code` of a Node system error (`EIO`, `ENOSPC`, …), if `error` is one. */
export function systemErrorCode(error: unknown): string | undefined {
  if (typeof error !== 'object' || error === null || !('code' in error)) return undefined;
  const code = (error as { code: unknown }).code;
  return typeof code === 'string' ? code : undefined;
}
