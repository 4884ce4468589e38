/** Errors a caller of the core can expect and handle (a failed call, not a fatal node error). */

/** Stable error codes. */
export type RaftErrorCode =
  | 'NOT_LEADER'
  | 'PROPOSAL_DROPPED'
  | 'TRANSFER_IN_PROGRESS'
  | 'CONF_CHANGE_IN_PROGRESS'
  | 'LEARNER_NOT_READY'
  | 'INVALID_CONF_CHANGE'
  | 'INVALID_OPTIONS'
  | 'INVALID_TRANSFER_TARGET'
  | 'NODE_ID_REUSED'
  | 'COMPACTED'
  | 'UNAVAILABLE'
  | 'SNAPSHOT_OUT_OF_DATE';

/** A failed call into the core or its storage, with a stable `code`. */
export class RaftError extends Error {
  override readonly name = 'RaftError';
  /** The known leader when `code` is `NOT_LEADER`, else 0. */
  readonly leaderHint: number;

  constructor(
    readonly code: RaftErrorCode,
    message: string,
    leaderHint = 0,
  ) {
    super(message);
    this.leaderHint = leaderHint;
  }
}

/** Whether `error` is a {@link RaftError}, optionally with the given code. */
export function isRaftError(error: unknown, code?: RaftErrorCode): error is RaftError {
  return error instanceof RaftError && (code === undefined || error.code === code);
}
