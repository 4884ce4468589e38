/**
 * The TCP peer transport: carries raft messages between the nodes of a cluster.
 *
 * Each node dials one outbound connection per peer and sends everything for that peer on it
 * ({@link PeerLink}); it accepts the peers' outbound connections and receives on them
 * ({@link InboundConnection}). Two connections per pair keeps each one's byte order equal to its
 * sender's send order and avoids deciding which of two simultaneous dials wins.
 *
 * Callbacks (`onUnreachable`, `onSnapshotStatus`, `onError`) are never called from inside
 * `send()` or another method of the transport: they run in a later microtask, so a runtime
 * that reports to raft from them never re-enters its own Ready loop. None is called after
 * `stop()`.
 */
import { createServer, type Server } from 'node:net';
import { assert } from '../raft/assert.js';
import type { Message, NodeId, SnapshotRequest } from '../raft/types.js';
import { TransportError } from './errors.js';
import { FRAME_HEADER_BYTES, hostFrame, messageFrame, SNAPSHOT_PREFIX_BYTES } from './frames.js';
import { InboundConnection, type InboundContext } from './inbound.js';
import {
  DEFAULT_TRANSPORT_LIMITS,
  emptyPeerStats,
  type MessageSender,
  type PeerAddress,
  type PeerStats,
  type TcpTransportOptions,
  type TransportLimits,
  type TransportLogger,
  type TransportStats,
} from './options.js';
import { type LinkContext, PeerLink } from './peer-link.js';
import type { SnapshotPayload } from './snapshot-stream.js';

/** Lifecycle of a transport: it can be started once and stopped once. */
type TransportState = 'new' | 'started' | 'stopped';

/** Raft's peer transport over TCP. See docs/transport.md. */
export class TcpTransport implements MessageSender {
  /** This node's id. */
  readonly nodeId: NodeId;
  /** The effective limits (defaults merged with the options). */
  readonly limits: TransportLimits;
  private readonly options: TcpTransportOptions;
  private readonly logger: TransportLogger;
  private readonly links = new Map<NodeId, PeerLink>();
  private readonly peerStats = new Map<NodeId, PeerStats>();
  private readonly inbound = new Set<InboundConnection>();
  private readonly inboundByPeer = new Map<NodeId, InboundConnection>();
  private readonly server: Server;
  private readonly linkContext: LinkContext;
  private readonly inboundContext: InboundContext;
  private state: TransportState = 'new';
  private droppedUnknownPeer = 0;
  private listeningPort = 0;

  constructor(options: TcpTransportOptions) {
    this.options = options;
    this.nodeId = options.nodeId;
    this.limits = Object.freeze({ ...DEFAULT_TRANSPORT_LIMITS, ...definedLimits(options) });
    validate(options, this.limits);
    this.logger = options.logger ?? {};
    this.linkContext = {
      nodeId: options.nodeId,
      clusterId: options.clusterId,
      limits: this.limits,
      random: options.random ?? Math.random,
      logger: this.logger,
      unreachable: (peer) => this.defer(() => this.options.onUnreachable?.(peer)),
      snapshotStatus: (peer, ok, groupId) =>
        this.defer(() => this.options.onSnapshotStatus?.(peer, ok, groupId)),
      error: (error) => this.defer(() => this.options.onError?.(error)),
    };
    this.inboundContext = {
      nodeId: options.nodeId,
      clusterId: options.clusterId,
      limits: this.limits,
      logger: this.logger,
      peerStats: (id) => this.peerStats.get(id),
      accepted: (connection) => this.onAccepted(connection),
      closed: (connection) => this.onInboundClosed(connection),
      deliver: (message) => this.options.onMessage(message),
      ...(options.onHostMessage === undefined ? {} : { deliverHost: options.onHostMessage }),
      error: (error) => this.defer(() => this.options.onError?.(error)),
      ...(options.clusterInfo === undefined ? {} : { clusterInfo: options.clusterInfo }),
      ...(options.openSnapshotSink === undefined ? {} : { openSnapshotSink: options.openSnapshotSink }),
    };
    this.server = createServer({ noDelay: true }, (socket) => {
      if (this.state !== 'started') {
        socket.destroy();
        return;
      }
      this.inbound.add(new InboundConnection(socket, this.inboundContext));
    });
    for (const [id, address] of options.peers) this.addPeer(id, address);
  }

  /** The port the transport listens on (the actual one when `listen.port` was 0), once started. */
  get port(): number {
    return this.listeningPort;
  }

  /**
   * Listens for peers and starts dialing them. Resolves with the actual port (useful with
   * port 0); rejects with a `LISTEN` error if the address is unavailable. Messages sent
   * before `start()` wait in the (bounded) send queues.
   */
  async start(): Promise<{ port: number }> {
    if (this.state !== 'new')
      throw new TransportError('CLOSED', `transport of node ${this.nodeId} was already started`);
    const { host, port } = this.options.listen;
    await new Promise<void>((resolve, reject) => {
      const onError = (cause: Error): void => {
        reject(
          new TransportError(
            'LISTEN',
            `node ${this.nodeId} cannot listen on ${host}:${port}: ${cause.message}`,
            { cause },
          ),
        );
      };
      this.server.once('error', onError);
      this.server.listen({ host, port }, () => {
        this.server.off('error', onError);
        resolve();
      });
    });
    this.server.on('error', (cause) => this.logger.error?.(`node ${this.nodeId} listener: ${cause.message}`));
    const address = this.server.address();
    assert(address !== null && typeof address === 'object', 'a TCP server has an address object');
    this.listeningPort = address.port;
    this.state = 'started';
    for (const link of this.links.values()) link.start();
    return { port: this.listeningPort };
  }

  /**
   * Queues each message for its `to` peer; they are written together in the next event-loop
   * turn. A message that cannot be delivered — unknown peer, peer down, queue full, encoded
   * larger than `frameBytesMax` — is dropped, counted and reported via `onUnreachable`.
   * `snapshot` messages are streamed in chunks; their outcome comes via `onSnapshotStatus`.
   * The caller must not modify a message's buffers (entry data, snapshot data) after sending.
   */
  /**
   * Streams a snapshot whose state follows the message as `payload` (`stream` mode, see
   * snapshot-stream.ts): the message goes with its data, the payload is read as fast as the
   * peer takes it and written to the peer's sink. The outcome comes via `onSnapshotStatus`;
   * the payload is closed either way.
   */
  sendSnapshot(message: SnapshotRequest, payload: SnapshotPayload): void {
    const link = this.state === 'stopped' ? undefined : this.links.get(message.to);
    if (link === undefined) {
      payload.close();
      if (this.state === 'stopped') return;
      this.droppedUnknownPeer++;
      this.linkContext.unreachable(message.to);
      this.linkContext.snapshotStatus(message.to, false, message.groupId);
      return;
    }
    link.sendSnapshot(message, payload);
  }

  send(messages: readonly Message[]): void {
    if (this.state === 'stopped') return;
    for (const m of messages) {
      const link = this.links.get(m.to);
      if (link === undefined) {
        this.droppedUnknownPeer++;
        this.linkContext.unreachable(m.to);
        if (m.type === 'snapshot') this.linkContext.snapshotStatus(m.to, false, m.groupId);
        continue;
      }
      if (m.type === 'snapshot') {
        link.sendSnapshot(m);
        continue;
      }
      const frame = messageFrame(m);
      if (frame.length - 4 > this.limits.frameBytesMax) {
        this.tooLarge(link, m, frame.length - 4);
        continue;
      }
      link.enqueue(frame);
    }
  }

  /**
   * Queues a HOST frame carrying `value` for `peer` (see frames.ts), behind the messages
   * already queued for it. Returns false when it was dropped: an unknown peer, a peer down or
   * its queue full (counted, not reported as unreachable: a host's heartbeat is itself how
   * its peers judge reachability).
   */
  sendHost(peer: NodeId, value: unknown): boolean {
    const link = this.state === 'stopped' ? undefined : this.links.get(peer);
    if (link === undefined) return false;
    return link.enqueue(hostFrame(value), false);
  }

  private tooLarge(link: PeerLink, m: Message, bytes: number): void {
    link.stats.messagesDropped++;
    const message = `node ${this.nodeId} dropped a ${m.type} message of ${bytes} bytes to node ${m.to}: exceeds frameBytesMax ${this.limits.frameBytesMax}`;
    this.logger.error?.(message);
    this.linkContext.error(new TransportError('FRAME_TOO_LARGE', message, { peer: m.to }));
    this.linkContext.unreachable(m.to);
  }

  /** Adds a peer (dialed at once if started). Throws if `id` is this node or already a peer. */
  addPeer(id: NodeId, address: PeerAddress): void {
    assert(Number.isSafeInteger(id) && id > 0, `peer id ${id} must be a positive integer`);
    assert(id !== this.nodeId, `node ${id} cannot be its own peer`);
    assert(!this.links.has(id), `node ${id} is already a peer of node ${this.nodeId}`);
    if (this.state === 'stopped') return;
    const stats = emptyPeerStats();
    const link = new PeerLink(id, address, this.linkContext, stats);
    this.links.set(id, link);
    this.peerStats.set(id, stats);
    if (this.state === 'started') link.start();
  }

  /** Whether `id` is a peer. */
  hasPeer(id: NodeId): boolean {
    return this.links.has(id);
  }

  /**
   * Removes a peer: closes both connections with it, drops its queue, fails its snapshot in
   * flight, and rejects its future handshakes. Unknown ids are ignored.
   */
  removePeer(id: NodeId): void {
    const link = this.links.get(id);
    if (link === undefined) return;
    this.links.delete(id);
    this.peerStats.delete(id);
    void link.close();
    this.inboundByPeer.get(id)?.close();
  }

  /** Changes a peer's address; its outbound connection is redialed at the new one. */
  updatePeer(id: NodeId, address: PeerAddress): void {
    const link = this.links.get(id);
    assert(link !== undefined, `node ${id} is not a peer of node ${this.nodeId}`);
    link.setAddress(address);
  }

  /** The configured peer ids. */
  peers(): NodeId[] {
    return [...this.links.keys()];
  }

  /** A copy of the counters. */
  stats(): TransportStats {
    const peers = new Map<NodeId, Readonly<PeerStats>>();
    for (const [id, stats] of this.peerStats) peers.set(id, { ...stats });
    return { peers, droppedUnknownPeer: this.droppedUnknownPeer };
  }

  /**
   * Closes the listener and every connection, drops queued messages and resolves once all
   * sockets are closed. No callback runs afterwards. A stopped transport cannot be restarted:
   * create a new one (it may listen on the same port).
   */
  async stop(): Promise<void> {
    if (this.state === 'stopped') return;
    const wasStarted = this.state === 'started';
    this.state = 'stopped';
    const closing: Promise<void>[] = [...this.links.values()].map((link) => link.close());
    for (const connection of this.inbound) {
      closing.push(new Promise((resolve) => connection.socket.once('close', () => resolve())));
      connection.close();
    }
    if (wasStarted) closing.push(new Promise((resolve) => this.server.close(() => resolve())));
    await Promise.all(closing);
  }

  private onAccepted(connection: InboundConnection): void {
    const peer = connection.peer!;
    const previous = this.inboundByPeer.get(peer);
    // A new connection from the same peer means it restarted or redialed: the old one is dead
    // or about to be, and keeping both would let two streams of the same sender interleave.
    if (previous !== undefined && previous !== connection) previous.close();
    this.inboundByPeer.set(peer, connection);
    // The peer knows us now (it may have rejected us until it learned of our membership):
    // a link to it waiting out a backoff redials at once.
    this.links.get(peer)?.redialIfDown();
  }

  private onInboundClosed(connection: InboundConnection): void {
    this.inbound.delete(connection);
    if (connection.peer !== undefined && this.inboundByPeer.get(connection.peer) === connection) {
      this.inboundByPeer.delete(connection.peer);
    }
  }

  private defer(callback: () => void): void {
    queueMicrotask(() => {
      if (this.state !== 'stopped') callback();
    });
  }
}

/** The limits set in `options`, without the keys left undefined (exactOptionalPropertyTypes). */
function definedLimits(options: TcpTransportOptions): Partial<TransportLimits> {
  const out: Record<string, number> = {};
  for (const key of Object.keys(DEFAULT_TRANSPORT_LIMITS) as (keyof TransportLimits)[]) {
    const value = options[key];
    if (value !== undefined) out[key] = value;
  }
  return out as Partial<TransportLimits>;
}

function validate(options: TcpTransportOptions, limits: TransportLimits): void {
  assert(
    Number.isSafeInteger(options.nodeId) && options.nodeId > 0,
    `nodeId ${options.nodeId} must be a positive integer`,
  );
  assert(
    Number.isSafeInteger(options.clusterId) && options.clusterId >= 0,
    `clusterId ${options.clusterId} must be a non-negative integer`,
  );
  for (const [key, value] of Object.entries(limits)) {
    assert(Number.isSafeInteger(value) && value > 0, `${key} ${value} must be a positive integer`);
  }
  const chunkFrameBytes = 1 + SNAPSHOT_PREFIX_BYTES + limits.snapshotChunkBytes;
  assert(
    chunkFrameBytes <= limits.frameBytesMax,
    `snapshotChunkBytes ${limits.snapshotChunkBytes} does not fit in frameBytesMax ${limits.frameBytesMax}`,
  );
  assert(
    limits.handshakeFrameBytesMax >= 64 + FRAME_HEADER_BYTES,
    `handshakeFrameBytesMax ${limits.handshakeFrameBytesMax} is too small for a handshake`,
  );
  assert(
    limits.frameBytesMax <= 0xffff_ffff,
    `frameBytesMax ${limits.frameBytesMax} does not fit the u32 length prefix`,
  );
}
