/**
 * The nemesis: the fault schedule of the safety phase. The seed picks one strategy — mixed faults,
 * leader churn, an isolated leader, or membership upheaval — and every fault it injects: crashes
 * and power failures, pauses, partitions (symmetric and not), clock skew against leases, and,
 * through {@link MembershipChanges}, membership changes and leadership transfers. It acts on the
 * world only (nodes, links, clocks), never on what the nodes run.
 */
import type { NodeId } from '../raft/index.js';
import { type JointTrap, MembershipChanges } from './nemesis-membership.js';
import { FaultSchedule } from './nemesis-schedule.js';
import { skewedTickMs } from './sim-clock.js';
import type { SimContext } from './sim-context.js';
import type { SimNetwork } from './sim-network.js';
import type { SimNode } from './sim-node.js';
import type { SimParams } from './sim-params.js';
import type { SimWorld } from './sim-world.js';

/** Injects the faults of the safety phase on the nodes of a single-group run. */
export class Nemesis extends FaultSchedule {
  private readonly membership: MembershipChanges;
  /** A partition armed to fire when a leader commits a bulk voter replacement. */
  private jointTrap: JointTrap | undefined;

  constructor(
    ctx: SimContext,
    private readonly world: SimWorld,
  ) {
    super(ctx);
    this.membership = new MembershipChanges(ctx, world);
  }

  protected override runStrategy(strategy: SimParams['nemesis']): boolean {
    if (strategy === 'isolated-leader') {
      this.isolateLeaderFromPeers();
      return true;
    }
    if (strategy === 'membership') {
      this.membershipNemesis();
      return true;
    }
    return false;
  }

  protected get network(): SimNetwork {
    return this.world.network;
  }

  protected ids(): NodeId[] {
    return [...this.world.nodes.keys()];
  }

  protected someLeader(): NodeId | undefined {
    return this.ids().find((id) => this.world.nodes.get(id)!.raw.raft.role === 'leader');
  }

  protected changeMembership(): void {
    this.membership.changeMembership();
  }

  protected transferLeadership(): void {
    this.membership.transferLeadership();
  }

  protected crashSomeone(): void {
    const { prng } = this.ctx;
    const live = [...this.world.nodes.values()].filter((n) => n.alive);
    if (live.length === 0) return;
    // Leaders are crashed more often: that is where the interesting bugs hide (Figure 8).
    const leaders = live.filter((n) => n.raw.raft.role === 'leader');
    const victim = leaders.length > 0 && prng.chance(0.5) ? prng.pick(leaders) : prng.pick(live);
    this.world.crash(victim);
  }

  protected powerFailure(): void {
    for (const node of this.world.nodes.values()) if (node.alive) this.world.crash(node);
  }

  protected pauseSomeone(): void {
    const { prng } = this.ctx;
    const live = [...this.world.nodes.values()].filter((n) => n.alive && !n.paused);
    if (live.length === 0) return;
    const leaders = live.filter((n) => n.raw.raft.role === 'leader');
    const victim = leaders.length > 0 && prng.chance(0.6) ? prng.pick(leaders) : prng.pick(live);
    this.world.pause(victim);
  }

  /** Crashes or cuts off the leader, keeping a majority of nodes running (MIT Figure8). */
  protected churnLeader(): void {
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
    if (trap === undefined) return;
    if (this.ctx.phase !== 'safety') {
      // Every fault was healed when the safety phase ended: a trap still armed stays unsprung.
      this.jointTrap = undefined;
      return;
    }
    if (trap.leader !== node.id) return;
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
}
