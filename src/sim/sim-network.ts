/**
 * The simulated network between nodes: latency, long delays, drops and duplicates drawn from the
 * seed (in the safety phase only), and directed links the nemesis cuts to make partitions,
 * symmetric or not. Messages to a cut link, or to a node that is down, are lost on delivery.
 */
import type { Message, NodeId } from '../raft/index.js';
import type { SimContext } from './sim-context.js';

/** Links, and the delivery of node-to-node messages. */
export class SimNetwork {
  /** Directed links that drop everything: `"from->to"`. */
  private readonly blocked = new Set<string>();

  constructor(private readonly ctx: SimContext) {}

  /** The sender's incarnation when it sent each copy of a snapshot message (its stream's start). */
  private readonly snapshotSenders = new WeakMap<Message, number>();

  /**
   * Sends `m` (from a sender in `senderIncarnation`): lost, delivered once or delivered
   * twice, each copy after its own latency.
   */
  send(m: Message, senderIncarnation = 0): void {
    const { ctx } = this;
    if (this.loses()) {
      ctx.stats.messagesDropped++;
      if (m.type === 'snapshot') ctx.after(1, { kind: 'snapshot-report', message: m, ok: false });
      return;
    }
    const copies = ctx.phase === 'safety' && ctx.prng.chance(ctx.params.duplicateRate) ? 2 : 1;
    for (let i = 0; i < copies; i++) {
      // A snapshot travels as a stream (sim-snapshot-stream.ts), and each copy is its own.
      const message = m.type === 'snapshot' ? { ...m } : m;
      if (message !== m) this.snapshotSenders.set(message, senderIncarnation);
      ctx.after(this.latency(), { kind: 'deliver', message });
    }
  }

  /** The sender's incarnation when it sent this copy of a snapshot message, if known. */
  senderIncarnation(m: Message): number | undefined {
    return this.snapshotSenders.get(m);
  }

  /** Whether the network loses the message being sent: in the safety phase, at the drop rate. */
  loses(): boolean {
    return this.ctx.phase === 'safety' && this.ctx.prng.chance(this.ctx.params.dropRate);
  }

  /** A one-way latency: up to the seed's maximum, sometimes with a long delay on top. */
  latency(): number {
    const { prng, params, phase } = this.ctx;
    const base = prng.range(1, params.latencyMaxMs);
    if (phase === 'safety' && prng.chance(params.longDelayRate)) return base + prng.range(50, 400);
    return base;
  }

  /** Whether the link from `from` to `to` is cut. */
  isCut(from: NodeId, to: NodeId): boolean {
    return this.blocked.has(`${from}->${to}`);
  }

  /** Whether any link is cut. */
  hasCuts(): boolean {
    return this.blocked.size > 0;
  }

  /** Restores every link. */
  heal(): void {
    this.blocked.clear();
  }

  /** Heals, then cuts every link between `side` and the rest of `ids`, both ways. */
  split(side: ReadonlySet<NodeId>, ids: readonly NodeId[]): void {
    this.blocked.clear();
    for (const a of ids) for (const b of ids) if (side.has(a) !== side.has(b)) this.blocked.add(`${a}->${b}`);
  }

  /** Cuts `victim` off from the rest of `ids`; `inboundOnly` cuts only what it receives. */
  cutOff(victim: NodeId, ids: readonly NodeId[], inboundOnly = false): void {
    for (const other of ids) {
      if (other === victim) continue;
      this.blocked.add(`${other}->${victim}`);
      if (!inboundOnly) this.blocked.add(`${victim}->${other}`);
    }
  }
}
