/**
 * A simulated node (one process) and the runtime that drives its Raft core: ticks, message
 * delivery, and the Ready loop (persist with disk latency, send, apply, snapshot), with the
 * safety checkers watching every step. What the node runs on top of Raft (the run's service and
 * its state machine) is a {@link NodeApplication}; the runtime knows nothing of it beyond that
 * interface.
 */
import type {
  Entry,
  MemoryStorage,
  Message,
  NodeId,
  RawNode,
  Ready,
  Snapshot,
  SnapshotRequest,
} from '../raft/index.js';
import { decodeConfChange, PROPOSE_HOPS_MAX } from '../raft/index.js';
import type { SimContext } from './sim-context.js';
import { snapshotIfDue } from './sim-disk.js';
import type { SimEvent } from './sim-events.js';
import type { SimNetwork } from './sim-network.js';
import { SnapshotStreams } from './sim-snapshot-stream.js';

/** One simulated process: its disk, its Raft core and its process state. */
export interface SimNode {
  readonly id: NodeId;
  /**
   * Survives crashes: the simulated disk. A process that keeps every group in one shared log
   * gets a disk rebuilt from that log when it restarts.
   */
  storage: MemoryStorage;
  incarnation: number;
  alive: boolean;
  /** A paused process (SIGSTOP): its events wait in `deferred` until it resumes. */
  paused: boolean;
  deferred: SimEvent[];
  /** A tick fell due while paused; on resume the missed ticks are delivered first. */
  tickDeferred: boolean;
  pausedAt: number;
  /** This node's tick interval: its clock may drift from the others' (and change rate). */
  tickMs: number;
  raw: RawNode;
  /** The Ready being persisted, if any. */
  inflight: Ready | undefined;
  /** Messages of `inflight` still to send once it is durable. */
  held: Message[];
}

/**
 * What a node runs on top of Raft: the runtime hands it the node's snapshots and committed
 * entries, and asks it for the image of a snapshot to take.
 */
export interface NodeApplication {
  /**
   * The node booted from its disk; `image` is the state machine image of its latest snapshot,
   * taken at `index`. Settles once the state machine is restored.
   */
  start(id: NodeId, index: number, image: Uint8Array): Promise<void>;
  /** The node installed a snapshot (sent by the leader) at `index` in place of its state. */
  restore(id: NodeId, index: number, image: Uint8Array): Promise<void>;
  /** Committed entries in log order, every one of them (configuration changes too). */
  applyEntries(node: SimNode, entries: readonly Entry[]): void;
  /** Everything `rd` carried has been applied; its read states are still to be handled. */
  afterApply(node: SimNode, rd: Ready): void;
  /** The state machine image for a snapshot the node takes now. */
  snapshot(id: NodeId): Uint8Array;
}

/** Drives every node's core: the events a node handles and its Ready loop. */
export class NodeRuntime {
  /** Conf-change entries applied somewhere, by index (each counted once). */
  private readonly confChangesApplied = new Set<number>();
  private app: NodeApplication | undefined;
  private onStep: (node: SimNode) => void = () => {};
  private readonly streams: SnapshotStreams;

  /**
   * `persistDelay` says how long node `id`'s next write takes to become durable (by default
   * a latency drawn from the seed; processes sharing one log commit their groups' writes
   * together).
   */
  constructor(
    private readonly ctx: SimContext,
    private readonly network: SimNetwork,
    private readonly nodes: ReadonlyMap<NodeId, SimNode>,
    private readonly persistDelay: ((id: NodeId) => number) | undefined = undefined,
  ) {
    this.streams = new SnapshotStreams(ctx, network, nodes, {
      step: (to, message) => this.stepDelivered(to, message),
      restoreThenStep: (to, message) => this.restoreThenStep(to, message),
    });
  }

  /**
   * Installs what the nodes run, and a hook called after each step of a node before the
   * checkers see it (the nemesis springs its traps there). Done once, before any node starts.
   */
  attach(app: NodeApplication, onStep: (node: SimNode) => void): void {
    this.app = app;
    this.onStep = onStep;
  }

  /** What the nodes run on top of Raft. */
  get application(): NodeApplication {
    if (this.app === undefined) throw new Error('no application attached to the simulated nodes');
    return this.app;
  }

  /** A tick of the node's clock, unless it crashed since the tick was scheduled. */
  onTick(id: NodeId, incarnation: number): void {
    const node = this.nodes.get(id)!;
    if (!node.alive || node.incarnation !== incarnation) return;
    node.raw.tick();
    this.drive(node);
    this.ctx.after(node.tickMs, { kind: 'tick', node: id, incarnation });
  }

  /**
   * A message arrives: lost if its link is cut or its receiver is down. A snapshot arrives
   * piece by piece, as a stream (sim-snapshot-stream.ts).
   */
  onDeliver(message: Message): void {
    const { ctx } = this;
    if (message.type === 'snapshot') {
      this.streams.onPiece(message);
      return;
    }
    const to = this.nodes.get(message.to)!;
    if (!to.alive || this.network.isCut(message.from, message.to)) {
      ctx.stats.messagesDropped++;
      return;
    }
    ctx.stats.messagesDelivered++;
    if (message.type === 'propose' && message.hops === PROPOSE_HOPS_MAX) ctx.stats.proposalsHandedOn++;
    to.raw.step(message);
    this.drive(to);
  }

  private stepDelivered(to: SimNode, message: Message): void {
    to.raw.step(message);
    this.drive(to);
  }

  /**
   * The deliberate bug `stale-snapshot-stream`: the state machine restored from a stream as
   * it ends, before the core has said whether it takes the snapshot; then the message is
   * stepped. Where the core refuses it, the state machine holds a state the node's log does not.
   */
  private restoreThenStep(to: SimNode, message: SnapshotRequest): void {
    const incarnation = to.incarnation;
    const restored = this.restoreMachine(to, message.snapshot).then(() => {
      if (to.alive && to.incarnation === incarnation) this.stepDelivered(to, message);
    });
    this.ctx.waitFor(restored);
  }

  /** Restores the node's state machine from `snapshot`, the checkers watching. */
  private restoreMachine(node: SimNode, snapshot: Snapshot): Promise<void> {
    this.ctx.checker.onRestoring(node.id, snapshot, node.raw.raft.log.applied);
    return this.application.restore(node.id, snapshot.meta.index, snapshot.data);
  }

  /** The transport tells the leader how a snapshot send ended, as a real one would. */
  reportSnapshot(from: SimNode, message: Message, ok: boolean): void {
    if (!from.alive || from.raw.raft.term !== message.term) return;
    from.raw.reportSnapshot(message.to, ok);
    this.drive(from);
  }

  /** Takes the node's next Ready, if any, and starts persisting it. */
  drive(node: SimNode): void {
    const { ctx } = this;
    this.afterStep(node);
    if (!node.alive || node.inflight !== undefined || !node.raw.hasReady()) return;
    const rd = node.raw.ready();
    node.inflight = rd;
    if (rd.softState !== undefined) {
      ctx.checker.onSoftState(node.id, node.raw, rd.softState);
      if (rd.softState.role === 'leader') ctx.say(`node ${node.id} is leader of term ${node.raw.raft.term}`);
    }
    this.sendOrHold(node, rd);
    const latency = this.persistDelay?.(node.id) ?? ctx.prng.range(0, ctx.params.diskLatencyMaxMs);
    ctx.after(latency, { kind: 'persisted', node: node.id, incarnation: node.incarnation });
  }

  /** Sends the Ready's messages that need no durability first; holds the rest until it is durable. */
  private sendOrHold(node: SimNode, rd: Ready): void {
    if (this.ctx.mutations.ackBeforePersist) {
      // Deliberate bug: acknowledge before the disk has the data.
      node.held = [];
      for (const m of rd.messages) this.network.send(m, node.incarnation);
    } else if (this.ctx.params.leaderEarlySend) {
      // A leader's appends and heartbeats need no local durability (thesis §10.2.1).
      node.held = [];
      for (const m of rd.messages) {
        if (m.type === 'append' || m.type === 'heartbeat') this.network.send(m, node.incarnation);
        else node.held.push(m);
      }
    } else {
      node.held = [...rd.messages];
    }
  }

  /** The node's Ready is on disk: send what it held, apply, advance, and take the next one. */
  onPersisted(id: NodeId, incarnation: number): void {
    const node = this.nodes.get(id)!;
    // A crash in between lost this write: the Ready was never durable.
    if (!node.alive || node.incarnation !== incarnation || node.inflight === undefined) return;
    const rd = node.inflight;
    this.ctx.checker.onPersist(id, node.storage, rd);
    node.storage.saveSync({ hardState: rd.hardState, entries: rd.entries, snapshot: rd.snapshot });
    for (const m of node.held) this.network.send(m, node.incarnation);
    node.held = [];
    const snapshot = rd.snapshot;
    if (snapshot === undefined) {
      this.finishReady(node, rd);
      return;
    }
    // The state machine restores asynchronously (the interface's `restore`); the rest of this
    // Ready waits for it, and the event loop lets nothing else happen in between.
    const { ctx } = this;
    const restored = this.restoreMachine(node, snapshot).then(() => {
      ctx.stats.snapshotsInstalled++;
      ctx.say(`node ${node.id} installed a snapshot at index ${snapshot.meta.index}`);
      ctx.checker.onSnapshotRestored(node.id, snapshot);
      this.finishReady(node, rd);
    });
    ctx.waitFor(restored);
  }

  /** Applies the persisted Ready's committed entries, advances, and takes the next Ready. */
  private finishReady(node: SimNode, rd: Ready): void {
    this.apply(node, rd);
    node.inflight = undefined;
    node.raw.advance(rd);
    this.maybeSnapshot(node);
    this.drive(node);
  }

  private apply(node: SimNode, rd: Ready): void {
    const { ctx } = this;
    for (const entry of rd.committedEntries) {
      ctx.checker.onApply(node.id, entry);
      if (entry.type === 'conf-change') this.applyConfChange(node, entry);
    }
    this.application.applyEntries(node, rd.committedEntries);
    this.application.afterApply(node, rd);
  }

  private applyConfChange(node: SimNode, entry: Entry): void {
    const cc = decodeConfChange(entry.data);
    const confState = node.raw.applyConfChange(cc);
    this.ctx.say(
      `node ${node.id} applies conf change at ${entry.index}: voters [${confState.voters}], outgoing [${confState.votersOutgoing}], learners [${confState.learners}]`,
    );
    this.confChangesApplied.add(entry.index);
    this.ctx.stats.confChanges = this.confChangesApplied.size;
  }

  private maybeSnapshot(node: SimNode): void {
    const app = this.application;
    if (snapshotIfDue(node.storage, node.raw, () => app.snapshot(node.id), this.ctx.params)) {
      this.ctx.stats.snapshotsTaken++;
      this.ctx.checker.onSnapshotTaken(node.storage.snapshot());
    }
  }

  private afterStep(node: SimNode): void {
    if (!node.alive) return;
    const { ctx } = this;
    this.onStep(node);
    node.raw.checkInvariants();
    ctx.checker.onStep(node.id, node.raw);
    ctx.stats.maxTerm = Math.max(ctx.stats.maxTerm, node.raw.raft.term);
    ctx.stats.elections = ctx.checker.elections;
  }
}
