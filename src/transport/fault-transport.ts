/**
 * A fault-injecting wrapper around a transport's send path, for tests: drops, delays and
 * blocked links (partitions). Which messages are dropped and how long each is delayed is
 * decided by a PRNG seeded by the caller, so a given seed and sequence of sends makes the
 * same decisions on every run (delivery times still follow the real clock).
 *
 * Messages from A to B travel on A's outbound connection, so A's wrapper decides A→B faults.
 * A symmetric partition therefore needs every node's wrapper: see {@link partition}.
 */
import { Prng } from '../raft/prng.js';
import type { Message, NodeId } from '../raft/types.js';
import type { MessageSender } from './options.js';

/** Faults of one link (or the default for all links). */
export interface LinkFaults {
  /** Probability in `[0, 1]` that a message is dropped. */
  readonly dropRate: number;
  /** Delay added to every message, in milliseconds. */
  readonly delayMs: number;
  /** Extra delay, uniform in `[0, delayJitterMs]`; order per link is preserved regardless. */
  readonly delayJitterMs: number;
}

/** No faults. */
export const NO_FAULTS: LinkFaults = Object.freeze({ dropRate: 0, delayMs: 0, delayJitterMs: 0 });

/** Options of {@link FaultTransport}. */
export interface FaultTransportOptions {
  /** Seeds every random decision. */
  readonly seed: number;
  /**
   * Told when a snapshot message is dropped (by a blocked link or the drop rate), as a real
   * transport would report a failed stream; without it raft would wait on the snapshot forever.
   */
  readonly onSnapshotStatus?: (peer: NodeId, ok: boolean) => void;
}

/** Counters of injected faults. */
export interface FaultStats {
  /** Dropped by the drop rate. */
  dropped: number;
  /** Dropped because the link was blocked. */
  blocked: number;
  /** Delivered late. */
  delayed: number;
}

/** Messages of one link held back by a delay, in release order. */
interface DelayedLink {
  readonly pending: { readonly releaseAt: number; readonly message: Message }[];
  timer: NodeJS.Timeout | undefined;
}

/** Wraps a {@link MessageSender}, injecting faults on the way out. */
export class FaultTransport implements MessageSender {
  private readonly prng: Prng;
  private defaultFaults: LinkFaults = NO_FAULTS;
  private readonly linkFaults = new Map<NodeId, LinkFaults>();
  private readonly blocked = new Set<NodeId>();
  private readonly delayed = new Map<NodeId, DelayedLink>();
  private readonly counters: FaultStats = { dropped: 0, blocked: 0, delayed: 0 };
  private closed = false;

  constructor(
    private readonly inner: MessageSender,
    private readonly options: FaultTransportOptions,
  ) {
    this.prng = new Prng(options.seed);
  }

  /** Sets the faults of the link to `to`, or the default for links without their own. */
  setFaults(faults: Partial<LinkFaults>, to?: NodeId): void {
    const merged = { ...NO_FAULTS, ...faults };
    if (!(merged.dropRate >= 0 && merged.dropRate <= 1))
      throw new RangeError(`dropRate ${merged.dropRate} is not in [0, 1]`);
    if (to === undefined) this.defaultFaults = merged;
    else this.linkFaults.set(to, merged);
  }

  /** Drops every message to `to` until {@link FaultTransport.unblock} or {@link FaultTransport.heal}. */
  block(to: NodeId): void {
    this.blocked.add(to);
  }

  /** Lets messages to `to` through again. */
  unblock(to: NodeId): void {
    this.blocked.delete(to);
  }

  /** Removes every fault and block (messages already delayed are still delivered late). */
  heal(): void {
    this.blocked.clear();
    this.linkFaults.clear();
    this.defaultFaults = NO_FAULTS;
  }

  /** A copy of the fault counters. */
  stats(): FaultStats {
    return { ...this.counters };
  }

  /** Discards delayed messages and stops forwarding. */
  close(): void {
    this.closed = true;
    for (const link of this.delayed.values()) clearTimeout(link.timer);
    this.delayed.clear();
  }

  /** Forwards `messages` to the inner sender after applying each link's faults. */
  send(messages: readonly Message[]): void {
    if (this.closed) return;
    const now: Message[] = [];
    for (const m of messages) {
      const faults = this.linkFaults.get(m.to) ?? this.defaultFaults;
      if (this.blocked.has(m.to)) {
        this.counters.blocked++;
        this.lost(m);
      } else if (faults.dropRate > 0 && this.prng.int(1_000_000) < faults.dropRate * 1_000_000) {
        this.counters.dropped++;
        this.lost(m);
      } else if (faults.delayMs > 0 || faults.delayJitterMs > 0 || this.delayed.has(m.to)) {
        // A link with messages still held back delays later ones too, keeping its order.
        const jitter = faults.delayJitterMs > 0 ? this.prng.int(faults.delayJitterMs + 1) : 0;
        this.delay(m, faults.delayMs + jitter);
      } else {
        now.push(m);
      }
    }
    if (now.length > 0) this.inner.send(now);
  }

  private lost(m: Message): void {
    const report = this.options.onSnapshotStatus;
    if (m.type === 'snapshot' && report !== undefined) queueMicrotask(() => report(m.to, false));
  }

  private delay(message: Message, delayMs: number): void {
    let link = this.delayed.get(message.to);
    if (link === undefined) {
      link = { pending: [], timer: undefined };
      this.delayed.set(message.to, link);
    }
    const last = link.pending[link.pending.length - 1];
    const releaseAt = Math.max(performance.now() + delayMs, last?.releaseAt ?? 0);
    link.pending.push({ releaseAt, message });
    this.counters.delayed++;
    if (link.timer === undefined) this.arm(message.to, link);
  }

  private arm(to: NodeId, link: DelayedLink): void {
    const head = link.pending[0];
    if (head === undefined) {
      this.delayed.delete(to);
      return;
    }
    link.timer = setTimeout(() => this.release(to, link), Math.max(0, head.releaseAt - performance.now()));
  }

  private release(to: NodeId, link: DelayedLink): void {
    link.timer = undefined;
    if (this.closed) return;
    const due: Message[] = [];
    const now = performance.now();
    while (link.pending.length > 0 && link.pending[0]!.releaseAt <= now)
      due.push(link.pending.shift()!.message);
    if (due.length > 0) this.inner.send(due);
    this.arm(to, link);
  }
}

/**
 * Blocks, on every node's wrapper, the links between nodes of different `groups`; links
 * within a group are unblocked. Nodes in no group are isolated from everyone.
 */
export function partition(
  transports: ReadonlyMap<NodeId, FaultTransport>,
  groups: readonly (readonly NodeId[])[],
): void {
  const groupOf = new Map<NodeId, number>();
  groups.forEach((group, i) => {
    for (const id of group) groupOf.set(id, i);
  });
  for (const [from, transport] of transports) {
    for (const to of transports.keys()) {
      if (to === from) continue;
      const together = groupOf.get(from) !== undefined && groupOf.get(from) === groupOf.get(to);
      if (together) transport.unblock(to);
      else transport.block(to);
    }
  }
}
