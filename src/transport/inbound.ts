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
  decodeMessageBody,
  decodeSnapshotBegin,
  decodeSnapshotChunk,
  FRAME_KIND,
  type Hello,
  PROTOCOL_VERSION,
  rejectFrame,
  snapshotAckFrame,
} from './frames.js';
import type { PeerStats, TransportLimits, TransportLogger } from './options.js';

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
  error(error: TransportError): void;
  /** The answer to a CLUSTER_QUERY (see frames.ts); undefined: queries are not answered. */
  clusterInfo?(): string;
}

/** A snapshot stream being reassembled. */
interface IncomingSnapshot {
  readonly streamId: number;
  readonly message: SnapshotRequest;
  readonly data: Buffer;
  received: number;
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
    try {
      for (let payload = this.reader.next(); payload !== undefined; payload = this.reader.next()) {
        if (this.stats !== undefined) this.stats.bytesReceived += payload.length + 4;
        this.onFrame(payload[0]!, payload.subarray(1));
        if (this.socket.destroyed || this.socket.writableEnded) return;
      }
    } catch (error) {
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
  }

  private fail(error: TransportError): void {
    this.context.logger.error?.(`node ${this.context.nodeId}: ${error.message}`);
    this.context.error(error);
    this.socket.destroy();
  }

  private onFrame(kind: number, body: Buffer): void {
    if (this.peer === undefined) {
      if (kind === FRAME_KIND.CLUSTER_QUERY) {
        this.onClusterQuery(body);
        return;
      }
      if (kind !== FRAME_KIND.HELLO)
        throw new TransportError('PROTOCOL', `expected a handshake, got frame kind ${kind}`);
      this.onHello(decodeHello(body));
      return;
    }
    switch (kind) {
      case FRAME_KIND.MESSAGE:
        this.deliver(decodeMessageBody(body));
        return;
      case FRAME_KIND.SNAPSHOT_BEGIN:
        this.onSnapshotBegin(body);
        return;
      case FRAME_KIND.SNAPSHOT_CHUNK:
        this.onSnapshotChunk(body);
        return;
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

  private onSnapshotBegin(body: Buffer): void {
    const { streamId, totalBytes, message } = decodeSnapshotBegin(body);
    if (this.snapshot !== undefined) {
      throw new TransportError(
        'PROTOCOL',
        `snapshot stream ${streamId} began inside stream ${this.snapshot.streamId}`,
      );
    }
    const max = this.context.limits.snapshotBytesMax;
    if (totalBytes > max) {
      throw new TransportError(
        'SNAPSHOT_TOO_LARGE',
        `snapshot of ${totalBytes} bytes exceeds snapshotBytesMax ${max}`,
      );
    }
    // allocUnsafeSlow: the buffer is fully overwritten before delivery (offsets are checked to
    // be contiguous), and it must not share the small-buffer pool with unrelated data.
    this.snapshot = { streamId, message, data: Buffer.allocUnsafeSlow(totalBytes), received: 0 };
    if (totalBytes === 0) this.completeSnapshot();
  }

  private onSnapshotChunk(body: Buffer): void {
    const { streamId, offset, data } = decodeSnapshotChunk(body);
    const s = this.snapshot;
    if (s === undefined || s.streamId !== streamId) {
      throw new TransportError('PROTOCOL', `chunk of snapshot stream ${streamId}, which was not begun`);
    }
    if (offset !== s.received || data.length > s.data.length - s.received) {
      throw new TransportError(
        'PROTOCOL',
        `snapshot stream ${streamId}: chunk [${offset}, ${offset + data.length}) does not continue [0, ${s.received}) of ${s.data.length} bytes`,
      );
    }
    data.copy(s.data, s.received);
    s.received += data.length;
    if (s.received === s.data.length) this.completeSnapshot();
  }

  private completeSnapshot(): void {
    const s = this.snapshot!;
    this.snapshot = undefined;
    const data = new Uint8Array(s.data.buffer, s.data.byteOffset, s.data.length);
    const message: SnapshotRequest = { ...s.message, snapshot: { meta: s.message.snapshot.meta, data } };
    if (this.stats !== undefined) this.stats.snapshotsReceived++;
    this.deliver(message);
    this.socket.write(snapshotAckFrame(s.streamId));
  }
}
