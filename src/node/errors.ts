/** Errors of the node runtime: a failed call (retryable or not) or a fatal stop, with a stable `code`. */

/** Stable error codes of the runtime. */
export type NodeErrorCode =
  /** This node cannot serve the request and knows (or not) who can: see `leaderHint`. */
  | 'NOT_LEADER'
  /** No leader was known within the wait: an election is in progress. Retryable. */
  | 'NO_LEADER'
  /** Back-pressure: the proposal queue is full or the apply lag is too large. Retryable. */
  | 'TOO_MANY_REQUESTS'
  /** The request did not complete in time; a write may or may not have been applied. */
  | 'TIMEOUT'
  /** The leader refused or lost the proposal (transfer in progress, uncommitted bytes limit). */
  | 'PROPOSAL_DROPPED'
  /** The node is stopping or has stopped. */
  | 'STOPPED'
  /** A storage failure stopped the node; nothing is acknowledged after it. */
  | 'FATAL'
  /** A bad configuration (flags, data directory contents). */
  | 'INVALID_CONFIG'
  /** The command's client session is not open (never opened, or evicted): open a new one. */
  | 'SESSION_EXPIRED'
  /** The command was applied already in its session and its result is not kept (see sessions.ts). */
  | 'DUPLICATE';

/** A failed runtime call, with a stable `code`. */
export class NodeError extends Error {
  override readonly name = 'NodeError';
  /** The known leader's node id when `code` is `NOT_LEADER` (0 when unknown). */
  readonly leaderHint: number;

  constructor(
    readonly code: NodeErrorCode,
    message: string,
    options: { leaderHint?: number; cause?: unknown } = {},
  ) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.leaderHint = options.leaderHint ?? 0;
  }

  /** Whether retrying the same request later may succeed. */
  get retryable(): boolean {
    return this.code === 'NO_LEADER' || this.code === 'TOO_MANY_REQUESTS' || this.code === 'NOT_LEADER';
  }
}

/** Whether `error` is a {@link NodeError}, optionally with the given code. */
export function isNodeError(error: unknown, code?: NodeErrorCode): error is NodeError {
  return error instanceof NodeError && (code === undefined || error.code === code);
}
