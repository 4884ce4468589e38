/**
 * Errors a client of the key-value state machine can expect and handle. Every one is a
 * deterministic outcome of a command: all replicas produce the same error for the same
 * command, and a command that fails changes nothing but the applied index (and, when it
 * carries a client session, the session's cached outcome).
 *
 * Messages are etcd's own error strings where etcd has one, so the gRPC layer can pass
 * `message` through unchanged and etcd clients recognise it.
 */

/** Stable error codes. */
export type KvErrorCode =
  | 'INVALID_ARGUMENT'
  | 'REQUEST_TOO_LARGE'
  | 'TOO_MANY_OPS'
  | 'DUPLICATE_KEY'
  | 'COMPACTED'
  | 'FUTURE_REV'
  | 'KEY_NOT_FOUND'
  | 'LEASE_NOT_FOUND'
  | 'LEASE_EXISTS'
  | 'LEASE_TTL_TOO_LARGE'
  | 'NO_SPACE'
  | 'STALE_SEQUENCE'
  | 'CORRUPT'
  | 'CLOSED';

/** etcd's message for each code that etcd has (the gRPC status message). */
export const ETCD_MESSAGES: Readonly<Partial<Record<KvErrorCode, string>>> = Object.freeze({
  REQUEST_TOO_LARGE: 'etcdserver: request is too large',
  TOO_MANY_OPS: 'etcdserver: too many operations in txn request',
  DUPLICATE_KEY: 'etcdserver: duplicate key given in txn request',
  COMPACTED: 'etcdserver: mvcc: required revision has been compacted',
  FUTURE_REV: 'etcdserver: mvcc: required revision is a future revision',
  KEY_NOT_FOUND: 'etcdserver: key not found',
  LEASE_NOT_FOUND: 'etcdserver: requested lease not found',
  LEASE_EXISTS: 'etcdserver: lease already exists',
  LEASE_TTL_TOO_LARGE: 'etcdserver: too large lease TTL',
  NO_SPACE: 'etcdserver: mvcc: database space exceeded',
});

/** A failed key-value call or command, with a stable `code`. */
export class KvError extends Error {
  override readonly name = 'KvError';
  /** The compacted revision when `code` is `COMPACTED` (etcd reports it to watchers), else 0. */
  readonly compactRevision: number;

  constructor(
    readonly code: KvErrorCode,
    message: string = ETCD_MESSAGES[code] ?? code,
    compactRevision = 0,
  ) {
    super(message);
    this.compactRevision = compactRevision;
  }
}

/** Whether `error` is a {@link KvError}, optionally with the given code. */
export function isKvError(error: unknown, code?: KvErrorCode): error is KvError {
  return error instanceof KvError && (code === undefined || error.code === code);
}

/** An `INVALID_ARGUMENT` error whose message says what was wrong. */
export function invalidArgument(message: string): KvError {
  return new KvError('INVALID_ARGUMENT', `etcdserver: ${message}`);
}
