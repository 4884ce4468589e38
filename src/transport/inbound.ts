/**
 * The accepting half of the transport: one connection a peer dialed to us. It checks the
 * handshake, then decodes the peer's messages and reassembles its snapshot streams.
 *
 * Everything read here comes from the network and may be garbage or hostile: until the
 * handshake is accepted, frames are limited to `handshakeFrameBytesMax`, and any error closes
 * just this connection — the process never crashes on bad input.
 */
import type { Socket } from 'node:net';
import type { Message, NodeId, SnapshotRequest } from '../raft/types.js';
import { type RejectReason, TransportError } from './errors.js';
import { FrameReader } from './frame-reader.js';
import {
  acceptFrame,
  clusterInfoFrame,
  decodeClusterQuery,
  decodeHello,
  decodeHostBody,
  decodeMessageBody,
  decodeSnapshotBegin,
  decodeSnapshotChunk,
  decodeSnapshotEnd,
  FRAME_KIND,
  type Hello,
  PROTOCOL_VERSION,
  rejectFrame,
  snapshotAckFrame,
} from './frames.js';
import type { PeerStats, TransportLimits, TransportLogger } from './options.js';
import { IncomingSnapshot } from './snapshot-receive.js';
import type { SnapshotSink } from './snapshot-stream.js';

/** What an inbound connection needs from its transport. */
export interface InboundContext {
  readonly nodeId: NodeId;
  readonly clusterId: number;
  readonly limits: TransportLimits;
  readonly logger: TransportLogger;
  /** The counters of a configured peer, or undefined if `id` is not one. */
  peerStats(id: NodeId): PeerStats | undefined;
  /** The handshake of `connection` was accepted (the transport closes an older one from the same peer). */
  accepted(connection: InboundConnection): void;
  closed(connection: InboundConnection): void;
  deliver(message: Message): void;
  /** A HOST frame's value from the peer `from` (see frames.ts); undefined drops them. */
  deliverHost?(from: NodeId, value: unknown): void;
  error(error: TransportError): void;
  /** The answer to a CLUSTER_QUERY (see frames.ts); undefined: queries are not answered. */
  clusterInfo?(): string;
  /** The sink of a `stream`-mode snapshot (see snapshot-stream.ts); undefined refuses it. */
  openSnapshotSink?(from: NodeId, message: SnapshotRequest): SnapshotSink | undefined;
}

/** Carries an exception thrown by `onMessage` past the handler that turns bad input into errors. */
class CallbackFailure {
  constructor(readonly error: unknown) {}
}

/** TCP keep-alive probe delay, as on the dialing side. */
const KEEP_ALIVE_DELAY_MS = 5000;

/** How long a rejected dialer gets to read the rejection before the socket is destroyed. */
const REJECT_LINGER_MS = 1000;

/** One accepted connection. */
export class InboundConnection {
  /** The peer, once its handshake was accepted. */
  peer: NodeId | undefined;
  private stats: PeerStats | undefined;
  private readonly reader: FrameReader;
  private readonly remoteAddress: string;
  private snapshot: IncomingSnapshot | undefined;
  /** Work a frame started (a sink's write) that must finish before the next frame is read. */
  private waiting = false;
  private readonly handshakeTimer: NodeJS.Timeout;

  constructor(
    readonly socket: Socket,
    private readonly context: InboundContext,
  ) {
    this.remoteAddress = `${socket.remoteAddress}:${socket.remotePort}`;
    this.reader = new FrameReader(context.limits.handshakeFrameBytesMax);
    socket.setNoDelay(true);
    // Frees the connection of a peer host that vanished without a FIN (power loss, partition).
    socket.setKeepAlive(true, KEEP_ALIVE_DELAY_MS);
    const ms = context.limits.handshakeTimeoutMs;
    this.handshakeTimer = setTimeout(() => {
      this.fail(
        new TransportError('HANDSHAKE_FAILED', `no handshake from ${this.remoteAddress} within ${ms} ms`, {
          remoteAddress: this.remoteAddress,
        }),
      );
    }, ms);
    socket.on('data', (chunk: Buffer) => this.onData(chunk));
    // Resets and the like are followed by 'close'; a vanished peer is not an error to report.
    socket.on('error', () => {});
    socket.on('close', () => {
      clearTimeout(this.handshakeTimer);
      this.snapshot?.abort();
      this.snapshot = undefined;
      context.closed(this);
    });
  }

  /** Closes the connection (a newer one from the same peer replaced it, or the peer was removed). */
  close(): void {
    this.socket.destroy();
  }

  private describe(): string {
    return this.peer === undefined ? this.remoteAddress : `node ${this.peer} (${this.remoteAddress})`;
  }

  private onData(chunk: Buffer): void {
    if (this.socket.destroyed) return;
    this.reader.push(chunk);
    this.pump();
  }

  /**
   * Handles the frames read so far, in order. A frame whose work is asynchronous (a snapshot
   * sink's write) pauses the socket until it is done, so a slow disk slows the sender (TCP
   * flow control) instead of filling memory.
   */
  private pump(): void {
    if (this.waiting) return;
    try {
      for (let payload = this.reader.next(); payload !== undefined; payload = this.reader.next()) {
        if (this.stats !== undefined) this.stats.bytesReceived += payload.length + 4;
        const pending = this.onFrame(payload[0]!, payload.subarray(1));
        if (this.socket.destroyed || this.socket.writableEnded) return;
        if (pending !== undefined) {
          this.wait(pending);
          return;
        }
      }
    } catch (error) {
      this.onFrameError(error);
    }
  }

  private wait(pending: Promise<void>): void {
    this.waiting = true;
    this.socket.pause();
    pending.then(
      () => {
        this.waiting = false;
        if (this.socket.destroyed) return;
        this.socket.resume();
        this.pump();
      },
      (error: unknown) => {
        this.waiting = false;
        if (!this.socket.destroyed) this.onFrameError(error);
      },
    );
  }

  private onFrameError(error: unknown): void {
    // An exception from onMessage is the runtime's bug, not bad input: let it propagate.
    if (error instanceof CallbackFailure) throw error.error;
    const e =
      error instanceof TransportError
        ? error
        : new TransportError('MALFORMED', String(error), { cause: error });
    const where = this.peer === undefined ? ' (before the handshake)' : '';
    this.fail(
      new TransportError(e.code, `from ${this.describe()}${where}: ${e.message}`, {
        peer: this.peer,
        remoteAddress: this.remoteAddress,
        cause: e,
      }),
    );
  }

  private fail(error: TransportError): void {
    this.context.logger.error?.(`node ${this.context.nodeId}: ${error.message}`);
    this.context.error(error);
    this.socket.destroy();
  }

  /** Handles one frame; a promise when its work goes on asynchronously. */
  private onFrame(kind: number, body: Buffer): Promise<void> | undefined {
    if (this.peer === undefined) {
      if (kind === FRAME_KIND.CLUSTER_QUERY) {
        this.onClusterQuery(body);
        return undefined;
      }
      if (kind !== FRAME_KIND.HELLO)
        throw new TransportError('PROTOCOL', `expected a handshake, got frame kind ${kind}`);
      this.onHello(decodeHello(body));
      return undefined;
    }
    switch (kind) {
      case FRAME_KIND.MESSAGE:
        this.deliver(decodeMessageBody(body));
        return undefined;
      case FRAME_KIND.SNAPSHOT_BEGIN:
        this.onSnapshotBegin(body);
        return undefined;
      case FRAME_KIND.SNAPSHOT_CHUNK:
        return this.onSnapshotChunk(body);
      case FRAME_KIND.SNAPSHOT_END:
        return this.onSnapshotEnd(body);
      case FRAME_KIND.HOST:
        this.deliverHost(decodeHostBody(body));
        return undefined;
      default:
        throw new TransportError('PROTOCOL', `unexpected frame kind ${kind}`);
    }
  }

  /** Answers a joining node's CLUSTER_QUERY and closes the connection (it is no peer link). */
  private onClusterQuery(body: Buffer): void {
    clearTimeout(this.handshakeTimer);
    const version = decodeClusterQuery(body);
    const info = version === PROTOCOL_VERSION ? this.context.clusterInfo?.() : undefined;
    if (info === undefined) {
      this.socket.destroy();
      return;
    }
    this.socket.end(clusterInfoFrame(info));
    setTimeout(() => this.socket.destroy(), REJECT_LINGER_MS).unref();
  }

  private onHello(hello: Hello): void {
    clearTimeout(this.handshakeTimer);
    const refusal = this.checkHello(hello);
    if (refusal !== undefined) {
      const { reason, local, forDialer } = refusal;
      const message = `node ${this.context.nodeId} rejected the handshake from node ${hello.fromNodeId} (${this.remoteAddress}) to node ${hello.toNodeId}: ${local}`;
      this.context.logger.error?.(message);
      this.context.error(
        new TransportError('HANDSHAKE_REJECTED', message, {
          peer: hello.fromNodeId,
          remoteAddress: this.remoteAddress,
          reason,
        }),
      );
      this.socket.end(rejectFrame(reason, forDialer));
      setTimeout(() => this.socket.destroy(), REJECT_LINGER_MS).unref();
      return;
    }
    this.peer = hello.fromNodeId;
    this.stats = this.context.peerStats(hello.fromNodeId);
    this.reader.setFrameBytesMax(this.context.limits.frameBytesMax);
    this.context.accepted(this);
    this.socket.write(acceptFrame(this.context.nodeId));
    this.context.logger.info?.(`node ${this.context.nodeId} accepted a connection from ${this.describe()}`);
  }

  /**
   * Why `hello` must be refused, phrased for our log (`local`) and for the dialer's
   * (`forDialer`, naming nodes rather than "local" and "remote"); undefined to accept.
   */
  private checkHello(hello: Hello): { reason: RejectReason; local: string; forDialer: string } | undefined {
    const self = this.context.nodeId;
    const hex = (id: number): string => `0x${id.toString(16)}`;
    if (hello.protocolVersion !== PROTOCOL_VERSION) {
      const local = `protocol version mismatch: local ${PROTOCOL_VERSION} remote ${hello.protocolVersion}`;
      const forDialer = `protocol version mismatch: node ${self} speaks ${PROTOCOL_VERSION}, node ${hello.fromNodeId} ${hello.protocolVersion}`;
      return { reason: 'protocol-version-mismatch', local, forDialer };
    }
    if (hello.clusterId !== this.context.clusterId) {
      const local = `cluster id mismatch: local ${hex(this.context.clusterId)} remote ${hex(hello.clusterId)}`;
      const forDialer = `cluster id mismatch: node ${self} is in cluster ${hex(this.context.clusterId)}, node ${hello.fromNodeId} in ${hex(hello.clusterId)}`;
      return { reason: 'cluster-id-mismatch', local, forDialer };
    }
    if (hello.toNodeId !== self) {
      const text = `node id mismatch: node ${hello.fromNodeId} dialed node ${hello.toNodeId} but reached node ${self}`;
      return { reason: 'node-id-mismatch', local: text, forDialer: text };
    }
    if (this.context.peerStats(hello.fromNodeId) === undefined) {
      const text = `unknown node: node ${hello.fromNodeId} is not a peer of node ${self}`;
      return { reason: 'unknown-node', local: text, forDialer: text };
    }
    return undefined;
  }

  private deliver(message: Message): void {
    if (message.to !== this.context.nodeId) {
      // A routing bug at the peer, not a broken stream: drop the message, keep the connection.
      const text = `from ${this.describe()}: ${message.type} message for node ${message.to} arrived at node ${this.context.nodeId}; dropped`;
      this.context.logger.error?.(text);
      this.context.error(
        new TransportError('PROTOCOL', text, { peer: this.peer, remoteAddress: this.remoteAddress }),
      );
      return;
    }
    if (this.stats !== undefined) this.stats.messagesReceived++;
    try {
      this.context.deliver(message);
    } catch (error) {
      throw new CallbackFailure(error);
    }
  }

  private deliverHost(value: unknown): void {
    if (this.stats !== undefined) this.stats.messagesReceived++;
    try {
      this.context.deliverHost?.(this.peer!, value);
    } catch (error) {
      // The receiver checks the value it is handed: its TransportError means bad input (the
      // connection is dropped); anything else is its bug.
      if (error instanceof TransportError) throw error;
      throw new CallbackFailure(error);
    }
  }

  private onSnapshotBegin(body: Buffer): void {
    const { streamId, mode, message } = decodeSnapshotBegin(body);
    if (this.snapshot !== undefined) {
      throw new TransportError(
        'PROTOCOL',
        `snapshot stream ${streamId} began inside stream ${this.snapshot.streamId}`,
      );
    }
    let sink: SnapshotSink | undefined;
    if (mode === 'stream') {
      sink = this.context.openSnapshotSink?.(this.peer!, message);
      if (sink === undefined) {
        throw new TransportError(
          'PROTOCOL',
          `snapshot stream ${streamId}: this node takes no streamed snapshots`,
        );
      }
    }
    const max = this.context.limits.snapshotBytesMax;
    this.snapshot = new IncomingSnapshot(streamId, mode, message, sink, max);
  }

  private onSnapshotChunk(body: Buffer): Promise<void> | undefined {
    const { streamId, offset, data } = decodeSnapshotChunk(body);
    const s = this.snapshot;
    if (s === undefined || s.streamId !== streamId) {
      throw new TransportError('PROTOCOL', `chunk of snapshot stream ${streamId}, which was not begun`);
    }
    return s.chunk(offset, data);
  }

  /** Checks the stream's end, then delivers the message and acknowledges it. */
  private onSnapshotEnd(body: Buffer): Promise<void> | undefined {
    const { streamId, totalBytes, crc } = decodeSnapshotEnd(body);
    const s = this.snapshot;
    if (s === undefined || s.streamId !== streamId) {
      throw new TransportError('PROTOCOL', `end of snapshot stream ${streamId}, which was not begun`);
    }
    this.snapshot = undefined;
    let ended: ReturnType<IncomingSnapshot['end']>;
    try {
      ended = s.end(totalBytes, crc);
    } catch (error) {
      s.abort();
      throw error;
    }
    if (!(ended instanceof Promise)) {
      this.completeSnapshot(streamId, ended);
      return undefined;
    }
    return ended.then((message) => {
      if (!this.socket.destroyed) this.completeSnapshot(streamId, message);
    });
  }

  private completeSnapshot(streamId: number, message: SnapshotRequest): void {
    if (this.stats !== undefined) this.stats.snapshotsReceived++;
    this.deliver(message);
    this.socket.write(snapshotAckFrame(streamId));
  }
}
