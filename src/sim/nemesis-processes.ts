/**
 * The nemesis of a multi-group run: the faults of `nemesis.ts`, aimed at processes that host
 * every group. A crash, a power failure or a pause takes every group of a process down at once;
 * partitions (symmetric and not) cut the links all groups share; leadership transfers happen
 * inside one group. The seed picks mixed faults or leader churn (a process leading some group
 * crashed or cut off soon after it won). Membership stays fixed.
 */
import type { NodeId } from '../raft/index.js';
import type { GroupRun } from './group-run.js';
import { MembershipChanges } from './nemesis-membership.js';
import type { SimContext } from './sim-context.js';
import type { SimProcesses } from './sim-processes.js';

/** Injects the faults of the safety phase on processes, one `nemesis` event at a time. */
export class ProcessNemesis {
  /** Leadership transfers, per group. */
  private readonly transfers: MembershipChanges[];

  constructor(
    private readonly ctx: SimContext,
    private readonly processes: SimProcesses,
    private readonly groups: readonly GroupRun[],
  ) {
    this.transfers = groups.map((g) => new MembershipChanges(g.ctx, g.world));
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
    this.mixedFaults();
    ctx.after(ctx.prng.range(1, ctx.params.nemesisIntervalMs), { kind: 'nemesis' });
  }

  /** Splits the processes into `side` and everyone else. */
  partition(side: ReadonlySet<NodeId>): void {
    this.processes.network.split(side, this.processes.ids());
    this.ctx.stats.partitions++;
    this.ctx.say(`partition: [${[...side]}] | everyone else`);
  }

  /** Sometimes a leadership transfer in one group, then a process or network fault. */
  private mixedFaults(): void {
    const { prng, params } = this.ctx;
    if (prng.float() < params.transferRate) prng.pick(this.transfers).transferLeadership();
    const roll = prng.float();
    if (roll < 0.22) this.crash(this.victim(0.5));
    else if (roll < 0.27) this.powerFailure();
    else if (roll < 0.4) this.pause();
    else if (roll < 0.52) this.partitionRandom();
    else if (roll < 0.6) this.isolate(false);
    else if (roll < 0.68) this.isolate(true);
    else if (roll < 0.8) this.processes.network.heal();
  }

  /** A running process; one leading some group with probability `leaderBias` when there is one. */
  private victim(leaderBias: number): NodeId | undefined {
    const { prng } = this.ctx;
    const live = this.processes.ids().filter((id) => this.processes.alive(id));
    if (live.length === 0) return undefined;
    const leaders = live.filter((id) => this.processes.leads(id));
    return leaders.length > 0 && prng.chance(leaderBias) ? prng.pick(leaders) : prng.pick(live);
  }

  private crash(id: NodeId | undefined): void {
    if (id !== undefined) this.processes.crash(id);
  }

  /** Every process loses power at once. */
  private powerFailure(): void {
    for (const id of this.processes.ids()) this.processes.crash(id);
  }

  /** Stops a running process, one leading some group preferred. */
  private pause(): void {
    const { prng } = this.ctx;
    const running = this.processes
      .ids()
      .filter((id) => this.processes.alive(id) && !this.processes.paused(id));
    if (running.length === 0) return;
    const leaders = running.filter((id) => this.processes.leads(id));
    this.processes.pause(leaders.length > 0 && prng.chance(0.6) ? prng.pick(leaders) : prng.pick(running));
  }

  private partitionRandom(): void {
    const ids = this.processes.ids();
    this.partition(new Set(ids.filter(() => this.ctx.prng.chance(0.5))));
  }

  /** Cuts one process off; `asymmetric` cuts only what it receives (it can still send). */
  private isolate(asymmetric: boolean): void {
    const victim = this.victim(0.5);
    if (victim === undefined) return;
    this.processes.network.cutOff(victim, this.processes.ids(), asymmetric);
    this.ctx.stats.partitions++;
    this.ctx.say(`process ${victim} is cut off${asymmetric ? ' (it can still send)' : ''}`);
  }

  /**
   * Crashes or cuts off the process leading a group picked at random, keeping a majority of
   * processes running: each group's leaders churn as often as a single group's do.
   */
  private churnLeader(): void {
    const { prng } = this.ctx;
    const ids = this.processes.ids();
    const live = ids.filter((id) => this.processes.alive(id));
    const leader = prng.pick(this.groups).world.liveLeader()?.id;
    if (leader === undefined || live.length <= Math.floor(ids.length / 2) + 1) return;
    if (prng.chance(0.5)) {
      this.processes.crash(leader);
      return;
    }
    this.processes.network.heal();
    this.processes.network.cutOff(leader, ids);
    this.ctx.stats.partitions++;
    this.ctx.say(`process ${leader} (a leader) is cut off from everyone`);
  }
}
