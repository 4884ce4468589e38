/**
 * The nemesis of a multi-group run: the faults of the shared schedule (`nemesis-schedule.ts`),
 * aimed at processes that host every group. A crash, a power failure or a pause takes every
 * group of a process down at once; partitions (symmetric and not) cut the links all groups
 * share; leadership transfers happen inside one group. The seed picks mixed faults or leader
 * churn (the process leading a group crashed or cut off soon after it won); membership stays
 * fixed, and any other strategy runs as mixed faults.
 */
import type { NodeId } from '../raft/index.js';
import type { GroupRun } from './group-run.js';
import { MembershipChanges } from './nemesis-membership.js';
import { FaultSchedule } from './nemesis-schedule.js';
import type { SimContext } from './sim-context.js';
import type { SimNetwork } from './sim-network.js';
import type { SimProcesses } from './sim-processes.js';

/** Injects the faults of the safety phase on the processes of a multi-group run. */
export class ProcessNemesis extends FaultSchedule {
  /** Leadership transfers, per group. */
  private readonly transfers: MembershipChanges[];

  constructor(
    ctx: SimContext,
    private readonly processes: SimProcesses,
    private readonly groups: readonly GroupRun[],
  ) {
    super(ctx);
    this.transfers = groups.map((g) => new MembershipChanges(g.ctx, g.world));
  }

  protected get network(): SimNetwork {
    return this.processes.network;
  }

  protected ids(): NodeId[] {
    return this.processes.ids();
  }

  /** A running process that leads some group, if any. */
  protected someLeader(): NodeId | undefined {
    const leaders = this.ids().filter((id) => this.processes.leads(id));
    return leaders.length > 0 ? this.ctx.prng.pick(leaders) : undefined;
  }

  /** Membership is fixed: a process belongs to every group. */
  protected changeMembership(): void {}

  protected transferLeadership(): void {
    this.ctx.prng.pick(this.transfers).transferLeadership();
  }

  protected crashSomeone(): void {
    const live = this.ids().filter((id) => this.processes.alive(id));
    if (live.length > 0) this.processes.crash(this.preferLeaders(live, 0.5));
  }

  protected powerFailure(): void {
    for (const id of this.ids()) this.processes.crash(id);
  }

  protected pauseSomeone(): void {
    const running = this.ids().filter((id) => this.processes.alive(id) && !this.processes.paused(id));
    if (running.length > 0) this.processes.pause(this.preferLeaders(running, 0.6));
  }

  /** One of `ids`: one leading some group with probability `bias` when there is one. */
  private preferLeaders(ids: NodeId[], bias: number): NodeId {
    const { prng } = this.ctx;
    const leaders = ids.filter((id) => this.processes.leads(id));
    return leaders.length > 0 && prng.chance(bias) ? prng.pick(leaders) : prng.pick(ids);
  }

  /**
   * Crashes or cuts off the process leading a group picked at random, keeping a majority of
   * processes running: each group's leaders churn as often as a single group's do.
   */
  protected churnLeader(): void {
    const { prng } = this.ctx;
    const ids = this.ids();
    const live = ids.filter((id) => this.processes.alive(id));
    const leader = prng.pick(this.groups).world.liveLeader()?.id;
    if (leader === undefined || live.length <= Math.floor(ids.length / 2) + 1) return;
    if (prng.chance(0.5)) {
      this.processes.crash(leader);
      return;
    }
    this.network.heal();
    this.network.cutOff(leader, ids);
    this.ctx.stats.partitions++;
    this.ctx.say(`process ${leader} (a leader) is cut off from everyone`);
  }
}
