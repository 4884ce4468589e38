/**
 * The simulated world: the processes (nodes) and their lifecycle — boot from disk, crash,
 * restart, pause and resume — on the simulated network, disks and clocks. It knows nothing of
 * what the nodes run on top of Raft, nor of who injects the faults.
 */
import type { NodeId } from '../raft/index.js';
import { confStateFromConfig, MemoryStorage, RawNode } from '../raft/index.js';
import { drawTickMs, ELECTION_TICKS, HEARTBEAT_TICKS, leaseDriftTicks, missedTicks } from './sim-clock.js';
import type { SimContext } from './sim-context.js';
import { bootstrapStorage } from './sim-disk.js';
import type { SimEvent } from './sim-events.js';
import { SimNetwork } from './sim-network.js';
import { NodeRuntime, type SimNode } from './sim-node.js';

/**
 * How a world fits into a run whose processes host several raft groups (one world per group):
 * the network the groups share, each process's clock, and each process's disk. By default a
 * world has a network of its own, draws each node's clock, and gives each node a disk of its own.
 */
export interface SimWorldOptions {
  readonly network?: SimNetwork;
  /** The tick interval of process `id`. */
  readonly tickMs?: (id: NodeId) => number;
  /** An empty disk for the replica on process `id`. */
  readonly newStorage?: (id: NodeId) => MemoryStorage;
  /** How long the next write of the replica on process `id` takes to become durable. */
  readonly persistDelay?: (id: NodeId) => number;
}

/** The nodes, the network between them, and the runtime that drives them. */
export class SimWorld {
  /** Every node that exists, by id, in creation order; removed nodes stay (ids are never reused). */
  readonly nodes = new Map<NodeId, SimNode>();
  /** The links between the nodes. */
  readonly network: SimNetwork;
  /** What drives each node's core. */
  readonly runtime: NodeRuntime;
  /** The next id for a node added by a membership change (ids are never reused). */
  private nextId = 0;

  constructor(
    private readonly ctx: SimContext,
    private readonly options: SimWorldOptions = {},
  ) {
    this.network = options.network ?? new SimNetwork(ctx);
    this.runtime = new NodeRuntime(ctx, this.network, this.nodes, options.persistDelay);
  }

  /** Creates and boots the initial members, `1..count`, all voters. */
  bootstrap(count: number): void {
    const voters = Array.from({ length: count }, (_, i) => i + 1);
    for (const id of voters) this.addNode(id, bootstrapStorage(voters, this.options.newStorage?.(id)));
    this.nextId = count + 1;
  }

  /** The id the next node added by a membership change will get. */
  get nextNodeId(): NodeId {
    return this.nextId;
  }

  /** Creates and boots a node with an empty disk, under the next unused id. */
  addNewNode(): SimNode {
    const id = this.nextId++;
    return this.addNode(id, this.options.newStorage?.(id) ?? new MemoryStorage());
  }

  private addNode(id: NodeId, storage: MemoryStorage): SimNode {
    const node: SimNode = {
      id,
      storage,
      incarnation: 0,
      alive: false,
      paused: false,
      deferred: [],
      tickDeferred: false,
      pausedAt: 0,
      tickMs: this.options.tickMs?.(id) ?? drawTickMs(this.ctx.prng, this.ctx.params),
      raw: undefined as unknown as RawNode,
      inflight: undefined,
      held: [],
    };
    this.nodes.set(id, node);
    this.start(node);
    return node;
  }

  /** Boots a node from its disk: a fresh core and a state machine restored from the snapshot. */
  private start(node: SimNode): void {
    const { ctx } = this;
    if (ctx.mutations.forgetVoteOnRestart && node.incarnation > 0) {
      node.storage.setHardState({ ...node.storage.initialState().hardState, vote: 0 });
    }
    const snapshot = node.storage.snapshot();
    node.incarnation++;
    node.alive = true;
    // The state machine is restored before the next event (see `SimContext.waitFor`).
    ctx.waitFor(this.runtime.application.start(node.id, snapshot.meta.index, snapshot.data));
    node.inflight = undefined;
    node.held = [];
    node.raw = new RawNode(node.storage, {
      id: node.id,
      groupId: ctx.group ?? 1,
      random: ctx.prng.fork(),
      electionTicks: ELECTION_TICKS,
      heartbeatTicks: HEARTBEAT_TICKS,
      applied: snapshot.meta.index,
      appendBytesMax: ctx.params.appendBytesMax,
      inflightMessagesMax: ctx.params.inflightMessagesMax,
      readOnly: ctx.params.readOnly,
      checkQuorum: ctx.params.checkQuorum,
      preVote: ctx.params.preVote,
      leaseDriftTicks: leaseDriftTicks(ctx.params.driftRate),
      mutations: ctx.mutations,
    });
    ctx.checker.onRestart(node.id, node.raw);
    ctx.after(ctx.prng.range(1, node.tickMs), { kind: 'tick', node: node.id, incarnation: node.incarnation });
  }

  /** Everything not yet persisted is lost; pending events of the process die with it. */
  crash(node: SimNode): void {
    const { ctx } = this;
    ctx.say(`node ${node.id} crashes (unpersisted writes are lost)`);
    this.kill(node);
    ctx.stats.crashes++;
    ctx.after(ctx.prng.range(1, ctx.params.restartDelayMaxMs), { kind: 'restart', node: node.id });
  }

  /** The node stops where it is: the part of a crash that happens to every group of a process. */
  kill(node: SimNode): void {
    node.alive = false;
    node.paused = false;
    node.deferred = [];
    node.tickDeferred = false;
  }

  /**
   * A crashed node boots again from its disk (`storage`, when its disk was rebuilt from the
   * process's shared log, replaces the one it had).
   */
  onRestart(id: NodeId, storage?: MemoryStorage): void {
    const node = this.nodes.get(id)!;
    if (node.alive) return;
    if (storage !== undefined) node.storage = storage;
    this.start(node);
    this.ctx.say(
      `node ${id} restarts from disk (term ${node.raw.raft.term}, commit ${node.raw.raft.log.committed})`,
    );
  }

  /** Stops a process, as SIGSTOP would, for a while drawn from the seed. */
  pause(victim: SimNode): void {
    const { ctx } = this;
    this.stop(victim);
    ctx.say(`node ${victim.id} is paused (SIGSTOP)`);
    ctx.stats.pauses++;
    ctx.after(ctx.prng.range(50, ctx.params.pauseMaxMs), { kind: 'resume', node: victim.id });
  }

  /** The node stops handling events until {@link onResume}: the part of a pause every group shares. */
  stop(victim: SimNode): void {
    victim.paused = true;
    victim.pausedAt = this.ctx.now;
  }

  /** A paused process continues: missed ticks first, then what queued up while it was stopped. */
  onResume(id: NodeId): void {
    const node = this.nodes.get(id)!;
    if (!node.alive || !node.paused) return;
    node.paused = false;
    this.ctx.say(`node ${id} resumes with ${node.deferred.length} queued events`);
    // The runtime catches up on the ticks it missed (by a monotonic clock) before any other
    // input: a resumed leader must see that its lease has run out before it serves a read.
    const missed = missedTicks(this.ctx.now, node.pausedAt, node.tickMs);
    for (let i = 0; i < missed; i++) node.raw.tick();
    this.runtime.drive(node);
    // What queued up while stopped is handled now, in arrival order.
    for (const event of node.deferred) this.ctx.after(0, event);
    node.deferred = [];
    if (node.tickDeferred) {
      this.ctx.after(node.tickMs, { kind: 'tick', node: id, incarnation: node.incarnation });
    }
    node.tickDeferred = false;
  }

  /** Heals every fault: every link restored, every crashed node restarted, every paused one resumed. */
  heal(): void {
    this.network.heal();
    for (const node of this.nodes.values()) {
      if (!node.alive) this.start(node);
      else if (node.paused) this.onResume(node.id);
    }
  }

  /**
   * Holds `event` if it happens on a paused node, to be handled when the node resumes (a tick
   * is only remembered); reports whether it did.
   */
  deferIfPaused(event: SimEvent): boolean {
    const node = this.target(event);
    if (node?.paused !== true) return false;
    if (event.kind === 'tick') node.tickDeferred = true;
    else node.deferred.push(event);
    return true;
  }

  /** The node an event happens on, for pausing. */
  private target(event: SimEvent): SimNode | undefined {
    switch (event.kind) {
      case 'tick':
      case 'persisted':
      case 'client-request':
        return this.nodes.get(event.node);
      case 'deliver':
        return this.nodes.get(event.message.to);
      case 'snapshot-report':
        return this.nodes.get(event.message.from);
      default:
        return undefined;
    }
  }

  /** A node id picked uniformly from every node that exists. */
  anyNodeId(): NodeId {
    return this.ctx.prng.pick([...this.nodes.keys()]);
  }

  /** The leader, if one is running and not paused. */
  liveLeader(): SimNode | undefined {
    return [...this.nodes.values()].find((n) => n.alive && !n.paused && n.raw.raft.role === 'leader');
  }

  /** The cores of the nodes that are up. */
  liveRaws(): RawNode[] {
    return [...this.nodes.values()].filter((n) => n.alive).map((n) => n.raw);
  }

  /** One line per node for failure reports. */
  describeNodes(): string {
    return [...this.nodes.values()]
      .map((n) => {
        const st = n.raw.status();
        const cs = confStateFromConfig(n.raw.raft.tracker.config);
        const members = `voters [${cs.voters}]${cs.votersOutgoing.length > 0 ? ` outgoing [${cs.votersOutgoing}]` : ''} learners [${cs.learners}]`;
        return `node ${n.id}${n.alive ? '' : ' (down)'}: ${st.role} term ${st.term} leader ${st.leader} commit ${st.commit} applied ${st.applied} last ${st.lastIndex} ${members}`;
      })
      .join('; ');
  }
}
