/**
 * An in-process cluster with in-memory storage and an instant, fully controllable network,
 * for scripted scenario tests and the core benchmark. Nothing here uses time: tests move the
 * cluster forward explicitly (`tick`, `deliver`, `stabilize`) and assert exact states.
 */
import type { ConfState, Message, NodeId, RaftOptions, Ready, Snapshot } from '../raft/index.js';
import { assert, decodeConfChange, EMPTY_CONF_STATE, MemoryStorage, Prng, RawNode } from '../raft/index.js';

/** What the harness applied on one node. */
export interface AppliedEntry {
  readonly index: number;
  readonly term: number;
  readonly data: Uint8Array;
}

/** A conf-change entry the harness applied on one node, and the membership it produced. */
export interface AppliedConfChange extends AppliedEntry {
  readonly confState: ConfState;
}

/** Raft options a node may override (per node, at creation or restart). */
export type HarnessRaftOptions = Partial<Omit<RaftOptions, 'id' | 'random'>>;

/** One member of the harness cluster. */
export interface HarnessNode {
  readonly id: NodeId;
  raw: RawNode;
  storage: MemoryStorage;
  /** Entries applied, in order (normal entries only, including empty no-ops). */
  applied: AppliedEntry[];
  /** Conf-change entries applied, in order, each with the membership after it. */
  confChanges: AppliedConfChange[];
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
  readonly raft: HarnessRaftOptions;
  /**
   * Start every node from a snapshot at index 1 (term 1) that carries the initial membership,
   * as the simulator does, instead of keeping the membership in storage only. Needed before
   * {@link Harness.addNode}: a node with empty storage learns the membership its log's
   * conf changes apply to only from a snapshot. Default false.
   */
  readonly bootstrapSnapshot: boolean;
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
  private readonly raftOptions: HarnessRaftOptions;

  constructor(options: Partial<HarnessOptions> = {}) {
    const size = options.size ?? 3;
    this.prng = new Prng(options.seed ?? 1);
    this.raftOptions = options.raft ?? {};
    const voters = Array.from({ length: size }, (_, i) => i + 1);
    const confState: ConfState = { ...EMPTY_CONF_STATE, voters };
    for (const id of voters) {
      const storage = new MemoryStorage();
      if (options.bootstrapSnapshot === true) {
        storage.applySnapshot({ meta: { index: 1, term: 1, confState }, data: new Uint8Array() });
        storage.setHardState({ term: 1, vote: 0, commit: 1 });
      } else {
        storage.setConfState(confState);
      }
      this.nodes.set(id, this.makeNode(id, storage, {}));
    }
  }

  private makeNode(id: NodeId, storage: MemoryStorage, overrides: HarnessRaftOptions): HarnessNode {
    const applied = storage.snapshot().meta.index;
    const options = { ...this.raftOptions, ...overrides, id, random: this.prng.fork(), applied };
    const raw = new RawNode(storage, options);
    return {
      id,
      raw,
      storage,
      applied: [],
      confChanges: [],
      restoredSnapshot: undefined,
      readStates: [],
      down: false,
    };
  }

  /**
   * Starts a brand-new node `id` with empty storage (no membership, no log), as a process
   * joining the cluster does; the leader brings it in once a conf change adds it. Its first
   * state comes from InstallSnapshot, so the cluster should run with `bootstrapSnapshot` (or
   * have compacted its log): replaying conf changes from index 1 onto an empty membership is
   * refused by the core. `overrides` change this node's raft options.
   */
  addNode(id: NodeId, overrides: HarnessRaftOptions = {}): HarnessNode {
    assert(!this.nodes.has(id), `node ${id} already exists`);
    const node = this.makeNode(id, new MemoryStorage(), overrides);
    this.nodes.set(id, node);
    return node;
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
    for (const e of rd.committedEntries) {
      const applied = { index: e.index, term: e.term, data: e.data };
      if (e.type === 'normal') {
        n.applied.push(applied);
        continue;
      }
      // Conf changes take effect when applied, in log order, as the application must do.
      const confState = n.raw.applyConfChange(decodeConfChange(e.data));
      n.confChanges.push({ ...applied, confState });
    }
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

  /** Restarts a crashed node from its persisted storage; `overrides` change its raft options. */
  restart(id: NodeId, overrides: HarnessRaftOptions = {}): void {
    const old = this.node(id);
    assert(old.down, `node ${id} is not down`);
    const fresh = this.makeNode(id, old.storage, overrides);
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
