/**
 * Errors of the node runtime: one base class, {@link FlotillaError}, with a stable literal
 * `code`, and a subclass per failure a caller reacts to differently — the request went to the
 * wrong member ({@link NotLeaderError}), its outcome is unknown ({@link TimeoutError}), the
 * node is gone ({@link StoppedError}, {@link RemovedError}, {@link FatalError}), or it was
 * turned away ({@link TooManyRequestsError}, {@link ProposalDroppedError},
 * {@link RefusedError}). A failed call is one of these; a fatal node error is
 * {@link FatalError} (openraft's split between the two).
 */
import type { RaftErrorCode } from '../raft/index.js';

/** Stable error codes of the runtime, one per {@link FlotillaError} subclass (plus `INVALID_CONFIG`). */
export type FlotillaErrorCode =
  /** This node cannot serve the request; the leader is named when known ({@link NotLeaderError}). */
  | 'NOT_LEADER'
  /** No leader was known within the wait: an election is in progress; nothing was written. Retryable. */
  | 'NO_LEADER'
  /** Back-pressure: the proposal queue is full or the apply lag is too large. Retryable. */
  | 'TOO_MANY_REQUESTS'
  /** The request did not complete in time; a write may or may not have been applied. */
  | 'TIMEOUT'
  /** The leader refused or lost the proposal (transfer in progress, uncommitted bytes limit). */
  | 'PROPOSAL_DROPPED'
  /** The node is stopping or has stopped. */
  | 'STOPPED'
  /** This member was removed from the group; it has stopped and never serves again. */
  | 'REMOVED'
  /** The leader refused a membership change or a leadership transfer; `reason` says why. */
  | 'REFUSED'
  /** A storage failure (or a throwing `apply`) stopped the node; nothing is acknowledged after it. */
  | 'FATAL'
  /** A bad configuration (options, data directory contents). */
  | 'INVALID_CONFIG'
  /** The command's client session is not open (never opened, or evicted): open a new one. */
  | 'SESSION_EXPIRED'
  /** The command was applied already in its session and its result is not kept (see sessions.ts). */
  | 'DUPLICATE';

/** The former name of {@link FlotillaErrorCode}. */
export type NodeErrorCode = FlotillaErrorCode;

/** Options of a {@link FlotillaError}'s constructor. */
export interface FlotillaErrorOptions {
  /** The leader's node id when one is known, else 0 (the default). */
  readonly leaderHint?: number;
  readonly cause?: unknown;
}

/**
 * A failed runtime call, with a stable literal `code`. Subclasses carry what the caller needs;
 * those that add nothing are made with their one code (`new TimeoutError('TIMEOUT', message)`).
 */
export class FlotillaError<Code extends FlotillaErrorCode = FlotillaErrorCode> extends Error {
  /** The class's name: `FlotillaError`, `TimeoutError`, ... */
  override readonly name: string;
  /**
   * The leader's node id when one was known as the error arose (0 when unknown); set on
   * `NOT_LEADER`, and on `NO_LEADER` and `TIMEOUT` when a leader appeared meanwhile.
   */
  readonly leaderHint: number;

  constructor(
    /** Stable: switch on it, or use `instanceof` with the subclasses. */
    readonly code: Code,
    message: string,
    options: FlotillaErrorOptions = {},
  ) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = new.target.name;
    this.leaderHint = options.leaderHint ?? 0;
  }

  /** Whether the same request, retried later, may succeed (nothing was written by this one). */
  get retryable(): boolean {
    return this.code === 'NO_LEADER' || this.code === 'TOO_MANY_REQUESTS' || this.code === 'NOT_LEADER';
  }
}

/**
 * This node cannot serve the request. `NOT_LEADER`: only the leader can (membership changes);
 * ask {@link NotLeaderError.leaderId} at {@link NotLeaderError.leaderAddress}. `NO_LEADER`: no
 * leader was known within the wait (an election), so nothing was written. Retryable.
 */
export class NotLeaderError extends FlotillaError<'NOT_LEADER' | 'NO_LEADER'> {
  /** The leader's peer address `host:port`, when the leader and its address are known. */
  readonly leaderAddress: string | undefined;

  constructor(
    code: 'NOT_LEADER' | 'NO_LEADER',
    message: string,
    options: FlotillaErrorOptions & { readonly leaderAddress?: string } = {},
  ) {
    super(code, message, options);
    this.leaderAddress = options.leaderAddress;
  }

  /** The leader's node id, 0 when unknown (the same as `leaderHint`). */
  get leaderId(): number {
    return this.leaderHint;
  }
}

/** The request did not complete in time: a write may or may not have been applied (outcome unknown). */
export class TimeoutError extends FlotillaError<'TIMEOUT'> {}

/** The node is stopping or has stopped (`close`). Waiting requests fail with it. */
export class StoppedError extends FlotillaError<'STOPPED'> {}

/** This member was removed from the group: it stopped, and its data directory is of no further use. */
export class RemovedError extends FlotillaError<'REMOVED'> {}

/** Back-pressure: too many requests wait, or apply lags commit. Nothing was written; retry later. */
export class TooManyRequestsError extends FlotillaError<'TOO_MANY_REQUESTS'> {}

/** The leader refused or lost the proposal (a leadership transfer, the uncommitted bytes limit). */
export class ProposalDroppedError extends FlotillaError<'PROPOSAL_DROPPED'> {}

/** A storage failure or a throwing `apply` stopped the node; nothing is acknowledged after it. */
export class FatalError extends FlotillaError<'FATAL'> {}

/** The command's client session is not open (never opened, or evicted): open a new session. */
export class SessionExpiredError extends FlotillaError<'SESSION_EXPIRED'> {}

/**
 * The command was applied already in its session and its result is not kept: a lower
 * sequence number than the session's last, or one applied before a restart beyond the last
 * snapshot of an on-disk state machine (see docs/library.md, "Exactly once").
 */
export class DuplicateError extends FlotillaError<'DUPLICATE'> {}

/** Refusals of a membership change or transfer that may succeed later. */
const RETRYABLE_REFUSALS: ReadonlySet<RaftErrorCode> = new Set([
  'CONF_CHANGE_IN_PROGRESS',
  'LEARNER_NOT_READY',
  'TRANSFER_IN_PROGRESS',
]);

/**
 * The leader refused a membership change or a leadership transfer: `reason` is the raft
 * core's code — `CONF_CHANGE_IN_PROGRESS`, `LEARNER_NOT_READY` (a learner promoted before it
 * caught up), `TRANSFER_IN_PROGRESS` (retryable), `INVALID_CONF_CHANGE`, `NODE_ID_REUSED` (a
 * removed id), `INVALID_TRANSFER_TARGET`.
 */
export class RefusedError extends FlotillaError<'REFUSED'> {
  constructor(
    readonly reason: RaftErrorCode,
    message: string,
    options: FlotillaErrorOptions = {},
  ) {
    super('REFUSED', message, options);
  }

  override get retryable(): boolean {
    return RETRYABLE_REFUSALS.has(this.reason);
  }
}

/** The former name of {@link FlotillaError} (the etcd and HTTP servers switch on its `code`). */
export const NodeError = FlotillaError;
/** The former name of {@link FlotillaError}. */
export type NodeError = FlotillaError;

/** Whether `error` is a {@link FlotillaError}, optionally with the given code. */
export function isFlotillaError<Code extends FlotillaErrorCode>(
  error: unknown,
  code?: Code,
): error is FlotillaError<Code> {
  return error instanceof FlotillaError && (code === undefined || error.code === code);
}

/** The former name of {@link isFlotillaError}. */
export const isNodeError = isFlotillaError;
