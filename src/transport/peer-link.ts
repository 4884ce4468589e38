/**
 * The outbound half of the transport for one peer: a single TCP connection that carries every
 * message this node sends to that peer, with its send queue, handshake, reconnect backoff and
 * snapshot stream. (The peer's messages to us arrive on its own outbound connection.)
 *
 * States:
 *
 *     idle ──start──▶ connecting ──accept──▶ open
 *                        ▲   │ fail/reject     │ close
 *                        │   ▼                 ▼
 *                        └─ down ◀─────────────┘        (any) ──close()──▶ closed
 *
 * While `idle` or `connecting`, messages wait in the bounded queue; while `down` (the last
 * attempt failed, a redial is scheduled) they are dropped at once and reported unreachable,
 * because delivering stale heartbeats and appends seconds later helps nobody.
 */
import { connect, type Socket } from 'node:net';
import type { NodeId, SnapshotRequest } from '../raft/types.js';
import { TransportError } from './errors.js';
import { FrameReader } from './frame-reader.js';
import {
  decodeAccept,
  decodeReject,
  decodeSnapshotAck,
  FRAME_KIND,
  helloFrame,
  PROTOCOL_VERSION,
} from './frames.js';
import {
  backoffDelayMs,
  type PeerAddress,
  type PeerStats,
  rejectedDelayMs,
  type TransportLimits,
  type TransportLogger,
} from './options.js';
import { OutgoingSnapshot } from './snapshot-send.js';
import { bytesPayload, type SnapshotPayload } from './snapshot-stream.js';

/** What a link needs from its transport. Callbacks are deferred by the transport. */
export interface LinkContext {
  readonly nodeId: NodeId;
  readonly clusterId: number;
  readonly limits: TransportLimits;
  readonly random: () => number;
  readonly logger: TransportLogger;
  unreachable(peer: NodeId): void;
  snapshotStatus(peer: NodeId, ok: boolean, groupId: number): void;
  error(error: TransportError): void;
}

/** The state of a link (see the module comment). */
export type LinkState = 'idle' | 'connecting' | 'open' | 'down' | 'closed';

/** TCP keep-alive probe delay: detects a peer host that vanished without closing the socket. */
const KEEP_ALIVE_DELAY_MS = 5000;

/** Outbound connection to one peer. */
export class PeerLink {
  private linkState: LinkState = 'idle';
  private socket: Socket | undefined;
  private queue: Buffer[] = [];
  private queueBytes = 0;
  private snapshot: OutgoingSnapshot | undefined;
  private nextStreamId = 1;
  /** Consecutive failed attempts; sets the backoff bound. */
  private failures = 0;
  private rejected = false;
  private openedAt = 0;
  private retryTimer: NodeJS.Timeout | undefined;
  private handshakeTimer: NodeJS.Timeout | undefined;
  private flushScheduled = false;
  /** Set once unreachability was reported; cleared by a successful write, so reports are not repeated per message. */
  private unreachableReported = false;

  constructor(
    readonly peer: NodeId,
    private address: PeerAddress,
    private readonly context: LinkContext,
    /** This peer's counters, shared with the transport's `stats()`. */
    readonly stats: PeerStats,
  ) {}

  /** The link's state. */
  get state(): LinkState {
    return this.linkState;
  }

  /** Starts dialing (from `idle`). */
  start(): void {
    if (this.linkState === 'idle') this.dial();
  }

  /**
   * Queues a sealed MESSAGE (or HOST) frame. Returns false (and counts the drop) when the peer
   * is down or the queue is full; a drop is reported unreachable unless `report` is false.
   */
  enqueue(frame: Buffer, report = true): boolean {
    const limits = this.context.limits;
    const full =
      this.queue.length >= limits.sendQueueMessagesMax ||
      this.queueBytes + frame.length > limits.sendQueueBytesMax;
    if (this.linkState === 'down' || this.linkState === 'closed' || full) {
      if (report) this.drop(1);
      else this.stats.messagesDropped++;
      return false;
    }
    this.queue.push(frame);
    this.queueBytes += frame.length;
    this.stats.queuedMessages = this.queue.length;
    this.scheduleFlush();
    return true;
  }

  /**
   * Starts streaming a snapshot: in `data` mode (no `payload`) the message's data is the
   * payload; in `stream` mode the message goes with its data and `payload` follows it. At
   * most one snapshot per peer is in flight: another one, or one to a peer that is down, fails
   * at once through `snapshotStatus(peer, false)` (and its payload is closed).
   */
  sendSnapshot(message: SnapshotRequest, payload?: SnapshotPayload): void {
    const bytes = payload === undefined ? message.snapshot.data.length : 0;
    const tooLarge = bytes > this.context.limits.snapshotBytesMax;
    if (tooLarge) {
      this.context.error(
        new TransportError(
          'SNAPSHOT_TOO_LARGE',
          `snapshot of ${bytes} bytes to node ${this.peer} exceeds snapshotBytesMax ${this.context.limits.snapshotBytesMax}`,
          { peer: this.peer },
        ),
      );
    }
    if (tooLarge || this.snapshot !== undefined || !this.canQueue()) {
      payload?.close();
      this.drop(1);
      this.stats.snapshotsFailed++;
      this.context.snapshotStatus(this.peer, false, message.groupId);
      return;
    }
    const mode = payload === undefined ? 'data' : 'stream';
    const source = payload ?? bytesPayload(message.snapshot.data);
    const s: OutgoingSnapshot = new OutgoingSnapshot(message, mode, source, this.nextStreamId, {
      readable: () => this.scheduleFlush(),
      failed: (error) => this.abandonSnapshot(s, error),
      wroteFrame: (bytes) => this.countFrame(bytes),
    });
    this.snapshot = s;
    this.nextStreamId = (this.nextStreamId + 1) >>> 0 || 1;
    this.scheduleFlush();
  }

  /** Points the link at a new address: the current connection is dropped and redialed at once. */
  setAddress(address: PeerAddress): void {
    if (address.host === this.address.host && address.port === this.address.port) return;
    this.address = address;
    if (this.linkState === 'idle' || this.linkState === 'closed') return;
    this.detachSocket();
    this.failSnapshot();
    this.failures = 0;
    this.rejected = false;
    this.dial();
  }

  /** Closes the link for good: drops the queue and fails a snapshot in flight. */
  close(): Promise<void> {
    this.linkState = 'closed';
    clearTimeout(this.retryTimer);
    const socket = this.socket;
    this.detachSocket();
    this.dropQueue();
    this.failSnapshot();
    if (socket === undefined || socket.closed) return Promise.resolve();
    return new Promise((resolve) => socket.once('close', () => resolve()));
  }

  private canQueue(): boolean {
    return this.linkState !== 'down' && this.linkState !== 'closed';
  }

  private describePeer(): string {
    return `node ${this.peer} (${this.address.host}:${this.address.port})`;
  }

  /**
   * Dials now if the link is down and waiting out its backoff: the peer just connected to us,
   * so it is up and knows this node (a rejection meanwhile would have been because it had
   * not yet applied this node's membership).
   */
  redialIfDown(): void {
    if (this.linkState !== 'down') return;
    clearTimeout(this.retryTimer);
    this.rejected = false;
    this.dial();
  }

  private dial(): void {
    this.linkState = 'connecting';
    this.stats.dials++;
    const socket = connect({ host: this.address.host, port: this.address.port, noDelay: true });
    this.socket = socket;
    socket.setKeepAlive(true, KEEP_ALIVE_DELAY_MS);
    const reader = new FrameReader(this.context.limits.handshakeFrameBytesMax);
    this.handshakeTimer = setTimeout(() => {
      const ms = this.context.limits.handshakeTimeoutMs;
      this.fail(
        socket,
        new TransportError(
          'HANDSHAKE_FAILED',
          `${this.describePeer()} did not answer the handshake within ${ms} ms`,
          { peer: this.peer },
        ),
      );
    }, this.context.limits.handshakeTimeoutMs);
    const hello = {
      protocolVersion: PROTOCOL_VERSION,
      clusterId: this.context.clusterId,
      fromNodeId: this.context.nodeId,
      toNodeId: this.peer,
    };
    socket.on('connect', () => socket.write(helloFrame(hello)));
    socket.on('data', (chunk: Buffer) => this.onData(socket, reader, chunk));
    socket.on('drain', () => this.scheduleFlush());
    socket.on('error', (error) => this.onSocketError(socket, error));
    socket.on('close', () => this.onClose(socket));
  }

  private onData(socket: Socket, reader: FrameReader, chunk: Buffer): void {
    if (socket !== this.socket) return;
    reader.push(chunk);
    try {
      for (let payload = reader.next(); payload !== undefined; payload = reader.next()) {
        this.onFrame(socket, payload[0]!, payload.subarray(1));
        if (socket !== this.socket) return;
      }
    } catch (error) {
      const e =
        error instanceof TransportError
          ? error
          : new TransportError('MALFORMED', String(error), { cause: error });
      this.fail(
        socket,
        new TransportError(e.code, `from ${this.describePeer()}: ${e.message}`, {
          peer: this.peer,
          cause: e,
        }),
      );
    }
  }

  private onFrame(socket: Socket, kind: number, body: Buffer): void {
    if (this.linkState === 'connecting' && kind === FRAME_KIND.ACCEPT) {
      const accept = decodeAccept(body);
      if (accept.nodeId !== this.peer) {
        throw new TransportError('PROTOCOL', `dialed node ${this.peer} but node ${accept.nodeId} answered`);
      }
      this.onOpen();
    } else if (this.linkState === 'connecting' && kind === FRAME_KIND.REJECT) {
      const reject = decodeReject(body);
      const message = `${this.describePeer()} rejected the handshake from node ${this.context.nodeId}: ${reject.message}`;
      this.rejected = true;
      this.fail(
        socket,
        new TransportError('HANDSHAKE_REJECTED', message, { peer: this.peer, reason: reject.reason }),
      );
    } else if (this.linkState === 'open' && kind === FRAME_KIND.SNAPSHOT_ACK) {
      this.onSnapshotAck(decodeSnapshotAck(body));
    } else {
      throw new TransportError('PROTOCOL', `unexpected frame kind ${kind} while ${this.linkState}`);
    }
  }

  private onOpen(): void {
    clearTimeout(this.handshakeTimer);
    this.linkState = 'open';
    this.openedAt = performance.now();
    this.rejected = false;
    this.unreachableReported = false;
    this.stats.connects++;
    this.stats.connected = true;
    this.context.logger.info?.(`node ${this.context.nodeId} connected to ${this.describePeer()}`);
    this.scheduleFlush();
  }

  private onSocketError(socket: Socket, error: Error): void {
    // The 'close' event follows and does the bookkeeping; only the first failure of a streak is
    // logged, so a peer that stays down does not flood the log every backoff period.
    if (socket === this.socket && this.failures === 0) {
      this.context.logger.warn?.(
        `node ${this.context.nodeId} cannot reach ${this.describePeer()}: ${error.message}`,
      );
    }
  }

  /** Reports `error` and closes the connection; the 'close' event schedules the redial. */
  private fail(socket: Socket, error: TransportError): void {
    if (socket !== this.socket) return;
    this.context.logger.error?.(error.message);
    this.context.error(error);
    socket.destroy();
  }

  private onClose(socket: Socket): void {
    if (socket !== this.socket) return;
    const wasOpen = this.linkState === 'open';
    this.detachSocket();
    if (wasOpen) {
      this.context.logger.warn?.(`node ${this.context.nodeId} lost its connection to ${this.describePeer()}`);
      // A connection that lived a while resets the backoff; one that dies at once (a peer
      // that accepts then closes) keeps backing off, so it cannot cause a tight redial loop.
      if (performance.now() - this.openedAt >= this.context.limits.backoffMaxMs) this.failures = 0;
    }
    this.linkState = 'down';
    this.dropQueue();
    this.failSnapshot();
    this.reportUnreachable();
    const random = this.context.random;
    const delayMs = this.rejected
      ? rejectedDelayMs(random, this.context.limits)
      : backoffDelayMs(this.failures, random, this.context.limits);
    this.failures++;
    this.retryTimer = setTimeout(() => {
      if (this.linkState === 'down') this.dial();
    }, delayMs);
  }

  /** Forgets the current socket (its late events are ignored) and destroys it. */
  private detachSocket(): void {
    clearTimeout(this.handshakeTimer);
    const socket = this.socket;
    this.socket = undefined;
    this.stats.connected = false;
    socket?.destroy();
  }

  private scheduleFlush(): void {
    if (this.flushScheduled || this.linkState !== 'open') return;
    this.flushScheduled = true;
    // setImmediate rather than a microtask: every send() of this event-loop turn (all the
    // Readies of all groups) is then coalesced into one write.
    setImmediate(() => this.flush());
  }

  /** Writes the whole queue as one buffer, then the next snapshot chunk if the socket has room. */
  private flush(): void {
    this.flushScheduled = false;
    const socket = this.socket;
    if (this.linkState !== 'open' || socket === undefined) return;
    // Back-pressure: a socket holding this much unsent data emits 'drain', which reschedules.
    if (socket.writableLength >= this.context.limits.socketBufferBytesMax) return;
    socket.cork();
    let wrote = false;
    if (this.queue.length > 0) {
      const frames = this.queue.length;
      const buffer = frames === 1 ? this.queue[0]! : Buffer.concat(this.queue, this.queueBytes);
      socket.write(buffer);
      this.stats.messagesSent += frames;
      this.stats.framesSent += frames;
      this.stats.bytesSent += buffer.length;
      this.queue = [];
      this.queueBytes = 0;
      this.stats.queuedMessages = 0;
      wrote = true;
    }
    wrote = this.writeSnapshotStep(socket) || wrote;
    socket.uncork();
    if (wrote) {
      this.stats.writes++;
      this.unreachableReported = false;
    }
    const s = this.snapshot;
    if (s !== undefined && !s.ended && !s.reading && !socket.writableNeedDrain) this.scheduleFlush();
  }

  /**
   * Writes the begin frame, one chunk of the payload, or the end frame of the snapshot in
   * flight (see snapshot-send.ts). One chunk per flush, and only once the previous one
   * drained: other messages are written between chunks, so a heartbeat waits behind at most
   * one chunk rather than the whole snapshot, and the source is read no faster than the peer
   * takes it.
   */
  private writeSnapshotStep(socket: Socket): boolean {
    const s = this.snapshot;
    if (s === undefined || s.ended || s.reading) return false;
    const wasBegun = s.begun;
    const { wrote, ended } = s.step(socket, this.context.limits.snapshotChunkBytes);
    if (!wasBegun && s.begun) this.stats.messagesSent++;
    if (ended) this.awaitSnapshotAck(s);
    return wrote;
  }

  /** The source of a snapshot failed: report it, fail the snapshot, and drop the connection (the stream is cut). */
  private abandonSnapshot(s: OutgoingSnapshot, error: unknown): void {
    if (this.snapshot !== s) return;
    const socket = this.socket;
    const message = `snapshot stream ${s.streamId} to ${this.describePeer()} failed: ${String(error)}`;
    this.failSnapshot();
    if (socket !== undefined) this.fail(socket, new TransportError('PROTOCOL', message, { peer: this.peer }));
  }

  /** Waits for the peer's acknowledgement of a stream whose end frame was written. */
  private awaitSnapshotAck(s: OutgoingSnapshot): void {
    const ms = this.context.limits.snapshotAckTimeoutMs;
    s.ackTimer = setTimeout(() => {
      const socket = this.socket;
      if (socket === undefined || this.snapshot !== s) return;
      this.fail(
        socket,
        new TransportError(
          'PROTOCOL',
          `${this.describePeer()} did not acknowledge snapshot stream ${s.streamId} within ${ms} ms`,
          { peer: this.peer },
        ),
      );
    }, ms);
  }

  private countFrame(bytes: number): void {
    this.stats.framesSent++;
    this.stats.bytesSent += bytes;
  }

  private onSnapshotAck(streamId: number): void {
    const s = this.snapshot;
    if (s === undefined || s.streamId !== streamId || s.ackTimer === undefined) {
      throw new TransportError('PROTOCOL', `acknowledgement of unknown snapshot stream ${streamId}`);
    }
    clearTimeout(s.ackTimer);
    this.snapshot = undefined;
    this.stats.snapshotsSent++;
    this.context.snapshotStatus(this.peer, true, s.message.groupId);
  }

  private failSnapshot(): void {
    const s = this.snapshot;
    if (s === undefined) return;
    clearTimeout(s.ackTimer);
    this.snapshot = undefined;
    s.close();
    this.stats.snapshotsFailed++;
    if (!s.begun) this.stats.messagesDropped++;
    this.context.snapshotStatus(this.peer, false, s.message.groupId);
  }

  private dropQueue(): void {
    if (this.queue.length === 0) return;
    this.drop(this.queue.length);
    this.queue = [];
    this.queueBytes = 0;
    this.stats.queuedMessages = 0;
  }

  private drop(messages: number): void {
    this.stats.messagesDropped += messages;
    this.reportUnreachable();
  }

  private reportUnreachable(): void {
    if (this.unreachableReported || this.linkState === 'closed') return;
    this.unreachableReported = true;
    this.context.unreachable(this.peer);
  }
}
