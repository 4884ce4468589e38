/**
 * Snapshot messages travel as streams, as the runtime's transport sends them
 * (src/transport/snapshot-stream.ts, src/node/snapshots.ts): the image in pieces, one after
 * another, each after a network latency. The sender's end begins when it sends the message,
 * the receiver's when the first piece arrives; the stream ends with the last piece: the
 * receiver then steps the message and the sender hears that it went through. It is cut when,
 * as a piece arrives, the receiver or the sender has crashed (or restarted) since its end
 * began, or the link from the sender to the receiver is down: the
 * receiver drops what it has and the sender hears of the failure, so a follower that crashes
 * mid-stream, a leader deposed or partitioned mid-stream, and a stream overtaken by the log
 * (it ends after the node has applied past it, or in a term gone by, and the core refuses it)
 * all happen here. A paused sender's stream waits for it.
 *
 * The two deliberate bugs of the receiving side: `torn-snapshot-stream` takes a cut stream as
 * ended and steps the snapshot with the bytes that arrived (its image decodes, to part of the
 * state: the checkers see an image no node ever took); `stale-snapshot-stream` restores the
 * state machine as soon as a stream ends, before the core has said whether it takes the
 * snapshot.
 */
import type { Message, NodeId, SnapshotRequest } from '../raft/index.js';
import type { SimContext } from './sim-context.js';
import type { SimNetwork } from './sim-network.js';
import type { SimNode } from './sim-node.js';

/** Pieces a snapshot's image travels in (an empty image: one). */
export const SNAPSHOT_STREAM_PIECES = 4;

/** A stream under way: the bytes the receiver has, and who was at either end when it began. */
interface Stream {
  received: number;
  readonly fromIncarnation: number;
  readonly toIncarnation: number;
}

/** What the streams need of the node runtime. */
export interface StreamEnds {
  /** The receiver steps a snapshot message (a stream that ended, or a torn one). */
  step(to: SimNode, message: SnapshotRequest): void;
  /**
   * `stale-snapshot-stream`: the receiver restores its state machine from the stream that
   * ended, then steps the message.
   */
  restoreThenStep(to: SimNode, message: SnapshotRequest): void;
}

/** The snapshot streams of one group's nodes. */
export class SnapshotStreams {
  /** By message: each copy a network delivers is its own object, so its own stream. */
  private readonly streams = new WeakMap<Message, Stream>();

  constructor(
    private readonly ctx: SimContext,
    private readonly network: SimNetwork,
    private readonly nodes: ReadonlyMap<NodeId, SimNode>,
    private readonly ends: StreamEnds,
  ) {}

  /** A piece of `message`'s stream arrives (the first one begins it). */
  onPiece(message: SnapshotRequest): void {
    const { ctx } = this;
    const to = this.nodes.get(message.to)!;
    const from = this.nodes.get(message.from);
    let stream = this.streams.get(message);
    if (stream === undefined) {
      // The sender's end began when it sent the message: a restart since then cut it.
      const fromIncarnation = this.network.senderIncarnation(message) ?? from?.incarnation ?? -1;
      stream = { received: 0, fromIncarnation, toIncarnation: to.incarnation };
      this.streams.set(message, stream);
    }
    if (from?.paused === true) {
      ctx.after(this.network.latency(), { kind: 'deliver', message });
      return;
    }
    if (this.isCut(stream, message, from, to)) {
      this.cut(stream, message, from, to);
      return;
    }
    const total = message.snapshot.data.length;
    stream.received = Math.min(
      total,
      stream.received + Math.max(1, Math.ceil(total / SNAPSHOT_STREAM_PIECES)),
    );
    if (stream.received < total) {
      ctx.after(this.network.latency(), { kind: 'deliver', message });
      return;
    }
    this.streams.delete(message);
    ctx.stats.snapshotStreamsEnded++;
    if (from !== undefined) ctx.after(0, { kind: 'snapshot-report', message, ok: true });
    const raft = to.raw.raft;
    if (message.term < raft.term || message.snapshot.meta.index <= raft.log.committed) {
      ctx.stats.snapshotStreamsOvertaken++;
    }
    ctx.stats.messagesDelivered++;
    if (ctx.mutations.staleSnapshotStream) this.ends.restoreThenStep(to, message);
    else this.ends.step(to, message);
  }

  private isCut(stream: Stream, message: Message, from: SimNode | undefined, to: SimNode): boolean {
    return (
      !to.alive ||
      to.incarnation !== stream.toIncarnation ||
      from === undefined ||
      !from.alive ||
      from.incarnation !== stream.fromIncarnation ||
      this.network.isCut(message.from, message.to)
    );
  }

  /** The stream is cut: the receiver drops its pieces, the sender hears of the failure. */
  private cut(stream: Stream, message: SnapshotRequest, from: SimNode | undefined, to: SimNode): void {
    const { ctx } = this;
    this.streams.delete(message);
    ctx.stats.messagesDropped++;
    if (stream.received > 0) ctx.stats.snapshotStreamsCut++;
    if (from !== undefined) ctx.after(1, { kind: 'snapshot-report', message, ok: false });
    const receiverLives = to.alive && to.incarnation === stream.toIncarnation;
    if (ctx.mutations.tornSnapshotStream && receiverLives && stream.received > 0) {
      // Deliberate bug: the end of the connection taken for the end of the stream.
      const data = message.snapshot.data.subarray(0, stream.received);
      this.ends.step(to, { ...message, snapshot: { ...message.snapshot, data } });
    }
  }
}
