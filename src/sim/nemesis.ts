/**
 * The nemesis: the fault schedule of the safety phase. The seed picks one strategy — mixed faults,
 * leader churn, an isolated leader, or membership upheaval — and every fault it injects: crashes
 * and power failures, pauses, partitions (symmetric and not), clock skew against leases, and,
 * through {@link MembershipChanges}, membership changes and leadership transfers. It acts on the
 * world only (nodes, links, clocks), never on what the nodes run.
 */
import type { NodeId } from '../raft/index.js';
import { type JointTrap, MembershipChanges } from './nemesis-membership.js';
import { skewedTickMs } from './sim-clock.js';
import type { SimContext } from './sim-context.js';
import type { SimNode } from './sim-node.js';
import type { SimWorld } from './sim-world.js';

/** Injects the faults of the safety phase, one `nemesis` event at a time. */
export class Nemesis {
  private readonly membership: MembershipChanges;
  /** A partition armed to fire when a leader commits a bulk voter replacement. */
  private jointTrap: JointTrap | undefined;

  constructor(
    private readonly ctx: SimContext,
    private readonly world: SimWorld,
  ) {
    this.membership = new MembershipChanges(ctx, world);
  }

  /** Schedules the first fault. */
  start(): void {
    this.ctx.queue.push(this.ctx.params.nemesisIntervalMs, { kind: 'nemesis' });
  }

  /** Injects the next fault of the seed's strategy and schedules the one after. */
  onNemesis(): void {
    const { ctx } = this;
    if (ctx.phase !== 'safety') return;
    if (ctx.params.nemesis === 'leader-churn') {
      this.churnLeader();
      ctx.after(ctx.prng.range(5, 60), { kind: 'nemesis' });
      return;
    }
    if (ctx.params.nemesis === 'isolated-leader') {
      this.isolateLeaderFromPeers();
      return;
    }
    if (ctx.params.nemesis === 'membership') {
      this.membershipNemesis();
      return;
    }
    this.mixedFaults();
  }

  /** Faults of every kind: sometimes an administrative change, then a process or network fault. */
  private mixedFaults(): void {
    const { ctx } = this;
    const p = ctx.params;
    const admin = ctx.prng.float();
    if (admin < p.membershipRate) this.membership.changeMembership();
    else if (admin < p.membershipRate + p.transferRate) this.membership.transferLeadership();
    const roll = ctx.prng.float();
    if (roll < 0.22) this.crashSomeone();
    else if (roll < 0.27) this.powerFailure();
    else if (roll < 0.4) this.pauseSomeone();
    else if (roll < 0.52) this.partitionRandom();
    else if (roll < 0.6) this.isolateOne(false);
    else if (roll < 0.68) this.isolateOne(true);
    else if (roll < 0.8) this.world.network.heal();
    ctx.after(ctx.prng.range(1, p.nemesisIntervalMs), { kind: 'nemesis' });
  }

  private crashSomeone(): void {
    const { prng } = this.ctx;
    const live = [...this.world.nodes.values()].filter((n) => n.alive);
    if (live.length === 0) return;
    // Leaders are crashed more often: that is where the interesting bugs hide (Figure 8).
    const leaders = live.filter((n) => n.raw.raft.role === 'leader');
    const victim = leaders.length > 0 && prng.chance(0.5) ? prng.pick(leaders) : prng.pick(live);
    this.world.crash(victim);
  }

  /** Every node loses power at once (FAULTS 14, 21). */
  private powerFailure(): void {
    for (const node of this.world.nodes.values()) if (node.alive) this.world.crash(node);
  }

  /** Stops a process, leader preferred, as SIGSTOP would (FAULTS 23). */
  private pauseSomeone(): void {
    const { prng } = this.ctx;
    const live = [...this.world.nodes.values()].filter((n) => n.alive && !n.paused);
    if (live.length === 0) return;
    const leaders = live.filter((n) => n.raw.raft.role === 'leader');
    const victim = leaders.length > 0 && prng.chance(0.6) ? prng.pick(leaders) : prng.pick(live);
    this.world.pause(victim);
  }

  /** Crashes or cuts off the leader, keeping a majority of nodes running (MIT Figure8). */
  private churnLeader(): void {
    const live = [...this.world.nodes.values()].filter((n) => n.alive);
    const leader = live.find((n) => n.raw.raft.role === 'leader');
    if (leader === undefined || live.length <= Math.floor(this.ctx.params.nodes / 2) + 1) return;
    if (this.ctx.prng.chance(0.5)) {
      this.world.crash(leader);
      return;
    }
    this.world.network.heal();
    this.world.network.cutOff(leader.id, this.ids());
    this.ctx.stats.partitions++;
    this.ctx.say(`leader ${leader.id} is cut off from everyone`);
  }

  /** Splits the cluster into `side` and everyone else. */
  partition(side: ReadonlySet<NodeId>): void {
    this.world.network.split(side, this.ids());
    this.ctx.stats.partitions++;
    this.ctx.say(`partition: [${[...side]}] | everyone else`);
  }

  private partitionRandom(): void {
    const ids = this.ids();
    const side = new Set(ids.filter(() => this.ctx.prng.chance(0.5)));
    this.world.network.split(side, ids);
    this.ctx.stats.partitions++;
    this.ctx.say(`partition: [${[...side].join(',')}] | [${ids.filter((i) => !side.has(i)).join(',')}]`);
  }

  /** Cuts one node off; `asymmetric` cuts only what it receives (it can still send). */
  private isolateOne(asymmetric: boolean): void {
    const { prng } = this.ctx;
    const ids = this.ids();
    const leader = ids.find((id) => this.world.nodes.get(id)!.raw.raft.role === 'leader');
    const victim = leader !== undefined && prng.chance(0.5) ? leader : prng.pick(ids);
    this.world.network.cutOff(victim, ids, asymmetric);
    this.ctx.stats.partitions++;
    this.ctx.say(`node ${victim} is cut off${asymmetric ? ' (it can still send)' : ''}`);
  }

  /** Cuts the leader off from its peers (clients still reach it), then heals. */
  private isolateLeaderFromPeers(): void {
    const { ctx } = this;
    const leader = this.world.liveLeader();
    if (this.world.network.hasCuts() || leader === undefined) {
      this.world.network.heal();
    } else {
      this.world.network.cutOff(leader.id, this.ids());
      ctx.stats.partitions++;
      ctx.say(`leader ${leader.id} is cut off from its peers; clients still reach it`);
      if (ctx.params.readOnly === 'lease-based') this.skewClocksAgainst(leader);
    }
    ctx.after(ctx.prng.range(100, 500), { kind: 'nemesis' });
  }

  /**
   * Clock nemesis for leases: the leader's clock runs at the slow edge of the declared drift
   * bound and every other clock at the fast edge, the worst case a lease must survive.
   */
  private skewClocksAgainst(leader: SimNode): void {
    const rate = this.ctx.params.driftRate;
    for (const node of this.world.nodes.values()) node.tickMs = skewedTickMs(rate, node === leader);
    this.ctx.say(`clocks skewed: leader ${leader.id} ticks every ${leader.tickMs} ms, the others faster`);
  }

  /** Bulk voter replacement, partitions between old and new members, and crashes. */
  private membershipNemesis(): void {
    const { ctx } = this;
    const roll = ctx.prng.float();
    if (roll < 0.45) this.replaceVoters();
    else if (roll < 0.7) this.partitionOldFromNew();
    else if (roll < 0.8) this.crashSomeone();
    else this.world.network.heal();
    ctx.after(ctx.prng.range(20, 200), { kind: 'nemesis' });
  }

  /** Swaps voters in bulk, arming the joint trap once the swap is proposed. */
  private replaceVoters(): void {
    const trap = this.membership.replaceVoters();
    if (trap !== undefined) this.jointTrap = trap;
  }

  /** Springs the trap set by `replaceVoters` once its leader commits the change. */
  checkJointTrap(node: SimNode): void {
    const trap = this.jointTrap;
    if (trap === undefined || trap.leader !== node.id) return;
    const raft = node.raw.raft;
    if (raft.role !== 'leader') {
      this.jointTrap = undefined;
      return;
    }
    if (raft.log.committed < trap.index) return;
    this.jointTrap = undefined;
    this.partition(new Set(trap.out));
  }

  /** Separates the members of the outgoing configuration from the incoming ones. */
  private partitionOldFromNew(): void {
    const leader = this.world.liveLeader();
    const config = leader?.raw.raft.tracker.config;
    if (config === undefined || config.voters.outgoing.size === 0) {
      this.partitionRandom();
      return;
    }
    this.partition(new Set([...config.voters.outgoing].filter((id) => !config.voters.incoming.has(id))));
  }

  /** Every node that exists, in creation order. */
  private ids(): NodeId[] {
    return [...this.world.nodes.keys()];
  }
}
