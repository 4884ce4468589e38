/**
 * Options, limits and observable counters of the TCP transport.
 */
import type { Message, NodeId, SnapshotRequest } from '../raft/types.js';
import type { TransportError } from './errors.js';
import type { SnapshotSink } from './snapshot-stream.js';

/** Where a node listens for its peers. */
export interface PeerAddress {
  readonly host: string;
  readonly port: number;
}

/** Anything that sends raft messages: the TCP transport, or a wrapper around it. */
export interface MessageSender {
  /**
   * Queues `messages` for delivery, each to its `to` node. Never blocks and never throws for
   * an unreachable peer: raft tolerates loss, so undeliverable messages are dropped and counted.
   */
  send(messages: readonly Message[]): void;
}

/** Where the transport writes its diagnostics; every method is optional. */
export interface TransportLogger {
  info?(message: string): void;
  warn?(message: string): void;
  error?(message: string): void;
}

/** Tunable limits; every one has a default in {@link DEFAULT_TRANSPORT_LIMITS}. */
export interface TransportLimits {
  /** Largest frame payload sent or accepted, in bytes. Must exceed `snapshotChunkBytes` plus 64. */
  readonly frameBytesMax: number;
  /** Largest frame accepted before the handshake completed (hello, accept, reject, ack). */
  readonly handshakeFrameBytesMax: number;
  /** Messages queued per peer awaiting a write; beyond it new messages are dropped. */
  readonly sendQueueMessagesMax: number;
  /** Encoded bytes queued per peer awaiting a write; beyond it new messages are dropped. */
  readonly sendQueueBytesMax: number;
  /**
   * Bytes the socket may hold unsent before the transport stops writing to it (back-pressure
   * from a slow peer then fills the bounded queue instead of memory).
   */
  readonly socketBufferBytesMax: number;
  /** Snapshot data bytes per chunk frame; bounds how long a chunk delays other messages. */
  readonly snapshotChunkBytes: number;
  /** Largest snapshot sent or accepted, in bytes (the receiver holds it in memory). */
  readonly snapshotBytesMax: number;
  /** Time allowed from dialing to the acceptor's answer, and for an acceptor to get a hello. */
  readonly handshakeTimeoutMs: number;
  /** Time allowed, once the last chunk was written, for the receiver's snapshot acknowledgement. */
  readonly snapshotAckTimeoutMs: number;
  /** First reconnect delay bound; the bound doubles per failed attempt (full jitter). */
  readonly backoffInitialMs: number;
  /** Cap of the reconnect delay bound. */
  readonly backoffMaxMs: number;
  /**
   * Delay before redialing a peer that rejected the handshake: a rejection is a
   * misconfiguration that will not heal in milliseconds. Jittered within `[1/2, 1]` of it.
   */
  readonly rejectedRetryMs: number;
}

/** The default limits. */
export const DEFAULT_TRANSPORT_LIMITS: TransportLimits = Object.freeze({
  frameBytesMax: 16 * 1024 * 1024,
  handshakeFrameBytesMax: 4 * 1024,
  sendQueueMessagesMax: 4096,
  sendQueueBytesMax: 64 * 1024 * 1024,
  socketBufferBytesMax: 8 * 1024 * 1024,
  snapshotChunkBytes: 1024 * 1024,
  snapshotBytesMax: 4 * 1024 * 1024 * 1024,
  handshakeTimeoutMs: 5000,
  snapshotAckTimeoutMs: 30_000,
  backoffInitialMs: 50,
  backoffMaxMs: 2000,
  rejectedRetryMs: 10_000,
});

/** Options of {@link TcpTransport}. Limits not given take {@link DEFAULT_TRANSPORT_LIMITS}. */
export interface TcpTransportOptions extends Partial<TransportLimits> {
  /** This node's id (positive). */
  readonly nodeId: NodeId;
  /** Identifies the cluster; a peer presenting another one is rejected. Non-negative integer. */
  readonly clusterId: number;
  /** Address to listen on; port 0 picks an ephemeral port (see `start()`). */
  readonly listen: PeerAddress;
  /** The other nodes and where they listen. This node's own id must not be among them. */
  readonly peers: ReadonlyMap<NodeId, PeerAddress>;
  /** Called for every message received, in order per peer. Exceptions propagate (a bug). */
  readonly onMessage: (message: Message) => void;
  /**
   * Called for every HOST frame received (see frames.ts), with its sender and decoded value,
   * in order with the peer's messages; without it HOST frames are dropped. A `TransportError`
   * it throws marks the value malformed: the connection is dropped, as for a bad message.
   */
  readonly onHostMessage?: (from: NodeId, value: unknown) => void;
  /** A message to `peer` was dropped or its connection failed (report it to raft). */
  readonly onUnreachable?: (peer: NodeId) => void;
  /**
   * A snapshot send to `peer` finished: `ok` when the peer acknowledged receiving it.
   * `groupId` is the snapshot message's (a multi-raft host reports it to that group).
   */
  readonly onSnapshotStatus?: (peer: NodeId, ok: boolean, groupId: number) => void;
  /** A connection-level error: rejected handshakes, garbage, oversized frames. */
  readonly onError?: (error: TransportError) => void;
  readonly logger?: TransportLogger;
  /** Uniform random numbers in `[0, 1)` for backoff jitter; default `Math.random`. */
  readonly random?: () => number;
  /**
   * The answer to a joining node's cluster query (see frames.ts: CLUSTER_QUERY), read at each
   * query; without it queries are not answered.
   */
  readonly clusterInfo?: () => string;
  /**
   * Where a `stream`-mode snapshot's payload goes (see snapshot-stream.ts): called when a
   * peer begins one; undefined refuses it (the connection is dropped). Without this option
   * every `stream`-mode snapshot is refused.
   */
  readonly openSnapshotSink?: (from: NodeId, message: SnapshotRequest) => SnapshotSink | undefined;
}

/** Counters of one peer. Bytes include frame headers. */
export interface PeerStats {
  /** Messages written to the peer's socket (a snapshot counts once, when its stream starts). */
  messagesSent: number;
  /** Messages received from the peer and delivered to `onMessage`. */
  messagesReceived: number;
  /** Messages to the peer dropped: queue full, peer down, frame too large, peer removed. */
  messagesDropped: number;
  bytesSent: number;
  bytesReceived: number;
  /** Frames written to the socket. */
  framesSent: number;
  /** `socket.write` batches (one per flush); `framesSent / writes` shows the coalescing. */
  writes: number;
  /** Connection attempts to the peer. */
  dials: number;
  /** Handshakes the peer accepted. */
  connects: number;
  snapshotsSent: number;
  snapshotsFailed: number;
  snapshotsReceived: number;
  /** Whether the outbound connection is established. */
  connected: boolean;
  /** Messages waiting in the send queue. */
  queuedMessages: number;
}

/** A snapshot of the transport's counters. */
export interface TransportStats {
  readonly peers: ReadonlyMap<NodeId, Readonly<PeerStats>>;
  /** Messages addressed to a node that is not a configured peer. */
  readonly droppedUnknownPeer: number;
}

/** Fresh zeroed peer counters. */
export function emptyPeerStats(): PeerStats {
  return {
    messagesSent: 0,
    messagesReceived: 0,
    messagesDropped: 0,
    bytesSent: 0,
    bytesReceived: 0,
    framesSent: 0,
    writes: 0,
    dials: 0,
    connects: 0,
    snapshotsSent: 0,
    snapshotsFailed: 0,
    snapshotsReceived: 0,
    connected: false,
    queuedMessages: 0,
  };
}

/**
 * The reconnect delay after `failures` consecutive failed attempts: uniform in
 * `[0, min(backoffMaxMs, backoffInitialMs * 2^failures))` ("full jitter"), so peers that lost
 * a node at the same moment do not redial it in lockstep.
 */
export function backoffDelayMs(failures: number, random: () => number, limits: TransportLimits): number {
  const bound = Math.min(limits.backoffMaxMs, limits.backoffInitialMs * 2 ** Math.min(failures, 30));
  return Math.floor(random() * bound);
}

/** The delay before redialing a peer that rejected us: uniform in `[rejectedRetryMs/2, rejectedRetryMs)`. */
export function rejectedDelayMs(random: () => number, limits: TransportLimits): number {
  return Math.floor((limits.rejectedRetryMs / 2) * (1 + random()));
}
