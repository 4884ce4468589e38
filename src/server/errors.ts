/**
 * Errors of the HTTP API: every failure becomes `{"error": {code, message, retryable,
 * leader?}}` with a stable `code` and a fitting status. KV and runtime errors keep their
 * own codes; only the status is chosen here.
 */

import { isNodeError, type NodeErrorCode } from '../index.js';
import { isKvError, type KvErrorCode } from '../kv/index.js';

/** Codes the HTTP layer itself produces (bad requests, routing). */
export type HttpErrorCode =
  | 'INVALID_JSON'
  | 'INVALID_ARGUMENT'
  | 'REQUEST_TOO_LARGE'
  | 'KEY_NOT_FOUND'
  | 'NOT_FOUND'
  | 'METHOD_NOT_ALLOWED'
  | 'UNSUPPORTED_MEDIA_TYPE'
  | 'INTERNAL'
  /** Membership: the member is unknown (404), already a member or the leader (409). */
  | 'MEMBER_NOT_FOUND'
  | 'MEMBER_EXISTS'
  | 'MEMBER_IS_LEADER'
  /** Refusals of the raft core for membership changes and leadership transfer. */
  | 'CONF_CHANGE_IN_PROGRESS'
  | 'TRANSFER_IN_PROGRESS'
  | 'LEARNER_NOT_READY'
  | 'NODE_ID_REUSED'
  | 'INVALID_CONF_CHANGE'
  | 'INVALID_TRANSFER_TARGET'
  /** An exactly-once write whose (client, seq) an earlier request of another kind used (409). */
  | 'SEQUENCE_REUSED';

/** A failed HTTP request with its status and stable code. */
export class HttpError extends Error {
  override readonly name = 'HttpError';

  constructor(
    readonly status: number,
    readonly code: HttpErrorCode | KvErrorCode | NodeErrorCode,
    message: string,
    /** Whether the same request may succeed if retried later. */
    readonly retryable = false,
    /** The leader as far as known, for `NOT_LEADER` and `NO_LEADER`. */
    readonly leader?: { readonly id: number; readonly name: string },
  ) {
    super(message);
  }

  /** The JSON body. */
  toJson(): { error: Record<string, unknown> } {
    const error = { code: this.code, message: this.message, retryable: this.retryable };
    return { error: this.leader === undefined ? error : { ...error, leader: this.leader } };
  }
}

const KV_STATUS: Readonly<Record<KvErrorCode, number>> = {
  INVALID_ARGUMENT: 400,
  REQUEST_TOO_LARGE: 413,
  TOO_MANY_OPS: 400,
  DUPLICATE_KEY: 400,
  COMPACTED: 410,
  FUTURE_REV: 400,
  KEY_NOT_FOUND: 404,
  LEASE_NOT_FOUND: 404,
  LEASE_EXISTS: 409,
  LEASE_TTL_TOO_LARGE: 400,
  NO_SPACE: 507,
  STALE_SEQUENCE: 409,
  CORRUPT: 500,
  CLOSED: 503,
};

const NODE_STATUS: Readonly<Record<NodeErrorCode, number>> = {
  NOT_LEADER: 503,
  NO_LEADER: 503,
  TOO_MANY_REQUESTS: 429,
  TIMEOUT: 504,
  PROPOSAL_DROPPED: 503,
  STOPPED: 503,
  REMOVED: 410,
  REFUSED: 409,
  FATAL: 500,
  INVALID_CONFIG: 500,
  SESSION_EXPIRED: 409,
  DUPLICATE: 409,
};

/** Translates any thrown value into an {@link HttpError}. */
export function toHttpError(
  error: unknown,
  leaderOf: (id: number) => { id: number; name: string } | undefined,
): HttpError {
  if (error instanceof HttpError) return error;
  if (isKvError(error))
    return new HttpError(KV_STATUS[error.code], error.code, error.message, error.code === 'CLOSED');
  if (isNodeError(error)) {
    const leader = error.leaderHint !== 0 ? leaderOf(error.leaderHint) : undefined;
    const retryable = error.retryable || error.code === 'PROPOSAL_DROPPED' || error.code === 'STOPPED';
    return new HttpError(NODE_STATUS[error.code], error.code, error.message, retryable, leader);
  }
  return new HttpError(500, 'INTERNAL', error instanceof Error ? error.message : String(error));
}
