/**
 * Errors of the peer transport. None of them is fatal to the node: a transport error closes
 * (at most) one connection, and raft tolerates the messages lost with it. They are reported
 * through `onError` so an operator sees misconfigurations (a wrong cluster id, an unknown
 * node) and misbehaving peers (garbage, oversized frames) by name.
 */
import type { NodeId } from '../raft/types.js';

/**
 * Stable error codes:
 * - `HANDSHAKE_REJECTED`: the acceptor refused a handshake (cluster id, node id or protocol
 *   version mismatch, unknown node). Raised on both sides; `reason` says which check failed.
 * - `HANDSHAKE_FAILED`: the handshake did not complete in time, or its frame was invalid.
 * - `FRAME_TOO_LARGE`: a frame declared (or would have) more bytes than `frameBytesMax`.
 * - `SNAPSHOT_TOO_LARGE`: a snapshot exceeds `snapshotBytesMax`.
 * - `MALFORMED`: bytes that do not decode to a valid frame or message.
 * - `PROTOCOL`: a well-formed frame that is not allowed here (wrong order, wrong recipient).
 * - `LISTEN`: the listening socket could not be opened.
 * - `CLOSED`: the transport was used after `stop()`.
 */
export type TransportErrorCode =
  | 'HANDSHAKE_REJECTED'
  | 'HANDSHAKE_FAILED'
  | 'FRAME_TOO_LARGE'
  | 'SNAPSHOT_TOO_LARGE'
  | 'MALFORMED'
  | 'PROTOCOL'
  | 'LISTEN'
  | 'CLOSED';

/** Why an acceptor refused a handshake; sent to the dialer in the rejection frame. */
export type RejectReason =
  | 'cluster-id-mismatch'
  | 'node-id-mismatch'
  | 'unknown-node'
  | 'protocol-version-mismatch';

/** What a transport error is about, when known. */
export interface TransportErrorDetails {
  /** The peer node the connection belongs to (known after the handshake frame). */
  readonly peer?: NodeId | undefined;
  /** `host:port` of the remote end of the connection. */
  readonly remoteAddress?: string | undefined;
  /** For `HANDSHAKE_REJECTED`: which check failed. */
  readonly reason?: RejectReason | undefined;
  readonly cause?: unknown;
}

/** A transport error with a stable `code`; `message` names the nodes and sizes involved. */
export class TransportError extends Error {
  override readonly name = 'TransportError';
  /** The peer node concerned, if known. */
  readonly peer: NodeId | undefined;
  /** `host:port` of the remote end, if a connection is concerned. */
  readonly remoteAddress: string | undefined;
  /** For `HANDSHAKE_REJECTED`: which check failed. */
  readonly reason: RejectReason | undefined;

  constructor(
    readonly code: TransportErrorCode,
    message: string,
    details: TransportErrorDetails = {},
  ) {
    super(message, details.cause === undefined ? undefined : { cause: details.cause });
    this.peer = details.peer;
    this.remoteAddress = details.remoteAddress;
    this.reason = details.reason;
  }
}

/** Whether `error` is a {@link TransportError}, optionally with the given code. */
export function isTransportError(error: unknown, code?: TransportErrorCode): error is TransportError {
  return error instanceof TransportError && (code === undefined || error.code === code);
}
