/**
 * An in-process cluster with in-memory storage and an instant, fully controllable network,
 * for scripted scenario tests and the core benchmark. Nothing here uses time: tests move the
 * cluster forward explicitly (`tick`, `deliver`, `stabilize`) and assert exact states.
 */
import type { Message, NodeId, RaftOptions, Ready, Snapshot } from '../raft/index.js';
import { assert, MemoryStorage, Prng, RawNode } from '../raft/index.js';

/** What the harness applied on one node. */
export interface AppliedEntry {
  readonly index: number;
  readonly term: number;
  readonly data: Uint8Array;
}

/** One member of the harness cluster. */
export interface HarnessNode {
  readonly id: NodeId;
  raw: RawNode;
  storage: MemoryStorage;
  /** Entries applied, in order (normal entries only, including empty no-ops). */
  applied: AppliedEntry[];
  /** The snapshot last restored into this node's state machine, if any. */
  restoredSnapshot: Snapshot | undefined;
  /** Read states released to this node. */
  readStates: { index: number; context: Uint8Array }[];
  /** Whether the node is down (crashed): it neither sends nor receives. */
  down: boolean;
}

/** A message filter: return false to drop the message. */
export type MessageFilter = (m: Message) => boolean;

/** Options of the harness cluster. */
export interface HarnessOptions {
  readonly size: number;
  readonly seed: number;
  readonly raft: Partial<Omit<RaftOptions, 'id' | 'random'>>;
}

/** A deterministic in-process cluster. */
export class Harness {
  readonly nodes = new Map<NodeId, HarnessNode>();
  /** Messages sent and not yet delivered, in send order. */
  queue: Message[] = [];
  /** Links that drop everything: `"from->to"`. */
  readonly cut = new Set<string>();
  /** Drops messages for which it returns false (applied at delivery). */
  filter: MessageFilter = () => true;
  private readonly prng: Prng;
  private readonly raftOptions: Partial<Omit<RaftOptions, 'id' | 'random'>>;

  constructor(options: Partial<HarnessOptions> = {}) {
    const size = options.size ?? 3;
    this.prng = new Prng(options.seed ?? 1);
    this.raftOptions = options.raft ?? {};
    const voters = Array.from({ length: size }, (_, i) => i + 1);
    for (const id of voters) {
      const storage = new MemoryStorage();
      storage.setConfState({ voters, votersOutgoing: [], learners: [], learnersNext: [], autoLeave: false });
      this.nodes.set(id, this.makeNode(id, storage));
    }
  }

  private makeNode(id: NodeId, storage: MemoryStorage): HarnessNode {
    const applied = storage.snapshot().meta.index;
    const raw = new RawNode(storage, { ...this.raftOptions, id, random: this.prng.fork(), applied });
    return { id, raw, storage, applied: [], restoredSnapshot: undefined, readStates: [], down: false };
  }

  /** The node with `id`. */
  node(id: NodeId): HarnessNode {
    const n = this.nodes.get(id);
    assert(n !== undefined, `no node ${id}`);
    return n;
  }

  /** The ids of the nodes that are currently leader (of any term). */
  leaders(): NodeId[] {
    return [...this.nodes.values()].filter((n) => !n.down && n.raw.raft.role === 'leader').map((n) => n.id);
  }

  /** Processes every node's Ready once (persist, queue messages, apply, advance). */
  processReadies(): boolean {
    let any = false;
    for (const n of this.nodes.values()) {
      if (n.down || !n.raw.hasReady()) continue;
      any = true;
      this.handleReady(n, n.raw.ready());
    }
    return any;
  }

  private handleReady(n: HarnessNode, rd: Ready): void {
    n.storage.saveSync({ hardState: rd.hardState, entries: rd.entries, snapshot: rd.snapshot });
    for (const m of rd.messages) this.queue.push(m);
    if (rd.snapshot !== undefined) {
      n.restoredSnapshot = rd.snapshot;
      n.applied = [];
    }
    for (const e of rd.committedEntries) n.applied.push({ index: e.index, term: e.term, data: e.data });
    for (const rs of rd.readStates) n.readStates.push(rs);
    n.raw.advance(rd);
    n.raw.checkInvariants();
  }

  /** Delivers every queued message once (new messages are queued behind). Returns how many. */
  deliverAll(): number {
    const batch = this.queue;
    this.queue = [];
    let delivered = 0;
    for (const m of batch) if (this.deliver(m)) delivered++;
    return delivered;
  }

  /** Delivers one message unless its link is cut, a node is down, or the filter drops it. */
  deliver(m: Message): boolean {
    const to = this.nodes.get(m.to);
    const from = this.nodes.get(m.from);
    if (to === undefined || to.down || from?.down === true) return false;
    if (this.cut.has(`${m.from}->${m.to}`) || !this.filter(m)) return false;
    to.raw.step(m);
    to.raw.checkInvariants();
    return true;
  }

  /** Runs Readies and deliveries until nothing moves (bounded). */
  stabilize(rounds = 1000): void {
    for (let i = 0; i < rounds; i++) {
      const ready = this.processReadies();
      const delivered = this.deliverAll();
      if (!ready && delivered === 0 && this.queue.length === 0) return;
    }
    assert(false, `cluster did not stabilize within ${rounds} rounds`);
  }

  /** Ticks every live node `n` times, stabilizing after each tick. */
  tick(n = 1): void {
    for (let i = 0; i < n; i++) {
      for (const node of this.nodes.values()) if (!node.down) node.raw.tick();
      this.stabilize();
    }
  }

  /** Ticks until some node is leader (bounded); returns its id. */
  electLeader(ticksMax = 1000): NodeId {
    for (let i = 0; i < ticksMax; i++) {
      const leaders = this.leaders();
      if (leaders.length === 1) return leaders[0]!;
      this.tick();
    }
    assert(false, `no leader within ${ticksMax} ticks`);
  }

  /** Makes `id` campaign now and stabilizes. */
  campaign(id: NodeId): void {
    this.node(id).raw.campaign();
    this.stabilize();
  }

  /** Cuts both directions between `a` and every node of `others`. */
  isolate(a: NodeId, others: readonly NodeId[] = [...this.nodes.keys()]): void {
    for (const b of others) {
      if (a === b) continue;
      this.cut.add(`${a}->${b}`);
      this.cut.add(`${b}->${a}`);
    }
  }

  /** Removes every cut link. */
  heal(): void {
    this.cut.clear();
  }

  /** Crashes a node: it stops; only what it persisted survives. */
  crash(id: NodeId): void {
    this.node(id).down = true;
  }

  /** Restarts a crashed node from its persisted storage. */
  restart(id: NodeId): void {
    const old = this.node(id);
    assert(old.down, `node ${id} is not down`);
    const fresh = this.makeNode(id, old.storage);
    this.nodes.set(id, fresh);
  }

  /** Proposes `data` on `id` and stabilizes. */
  propose(id: NodeId, data: string | Uint8Array): void {
    this.node(id).raw.propose(typeof data === 'string' ? new TextEncoder().encode(data) : data);
    this.stabilize();
  }

  /** The applied non-empty payloads of node `id`, decoded as text. */
  appliedText(id: NodeId): string[] {
    return this.node(id)
      .applied.filter((e) => e.data.length > 0)
      .map((e) => new TextDecoder().decode(e.data));
  }
}
