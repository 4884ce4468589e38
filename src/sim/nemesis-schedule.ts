/**
 * The fault schedule every nemesis shares: when faults happen, which strategy the seed picked,
 * and the mix of faults under the `mixed` strategy. What a fault does is the nemesis's own: to
 * a node of a single-group run (`nemesis.ts`), or to a process hosting many groups
 * (`nemesis-processes.ts`).
 */
import type { NodeId } from '../raft/index.js';
import type { SimContext } from './sim-context.js';
import type { SimNetwork } from './sim-network.js';
import type { SimParams } from './sim-params.js';

/** The schedule of the safety phase's faults, one `nemesis` event at a time. */
export abstract class FaultSchedule {
  constructor(protected readonly ctx: SimContext) {}

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
    if (this.runStrategy(ctx.params.nemesis)) return;
    this.mixedFaults();
  }

  /** Splits the cluster into `side` and everyone else. */
  partition(side: ReadonlySet<NodeId>): void {
    this.network.split(side, this.ids());
    this.ctx.stats.partitions++;
    this.ctx.say(`partition: [${[...side]}] | everyone else`);
  }

  /**
   * Runs `strategy` if this nemesis has a way of its own for it (and schedules the next
   * fault); reports whether it did. Otherwise the faults are mixed.
   */
  protected runStrategy(_strategy: SimParams['nemesis']): boolean {
    return false;
  }

  /** Faults of every kind: sometimes an administrative change, then a process or network fault. */
  private mixedFaults(): void {
    const { ctx } = this;
    const p = ctx.params;
    const admin = ctx.prng.float();
    if (admin < p.membershipRate) this.changeMembership();
    else if (admin < p.membershipRate + p.transferRate) this.transferLeadership();
    const roll = ctx.prng.float();
    if (roll < 0.22) this.crashSomeone();
    else if (roll < 0.27) this.powerFailure();
    else if (roll < 0.4) this.pauseSomeone();
    else if (roll < 0.52) this.partitionRandom();
    else if (roll < 0.6) this.isolateOne(false);
    else if (roll < 0.68) this.isolateOne(true);
    else if (roll < 0.8) this.network.heal();
    ctx.after(ctx.prng.range(1, p.nemesisIntervalMs), { kind: 'nemesis' });
  }

  protected partitionRandom(): void {
    const ids = this.ids();
    const side = new Set(ids.filter(() => this.ctx.prng.chance(0.5)));
    this.network.split(side, ids);
    this.ctx.stats.partitions++;
    this.ctx.say(`partition: [${[...side].join(',')}] | [${ids.filter((i) => !side.has(i)).join(',')}]`);
  }

  /** Cuts one node off, a leader half the time; `asymmetric` cuts only what it receives (it can still send). */
  private isolateOne(asymmetric: boolean): void {
    const { prng } = this.ctx;
    const ids = this.ids();
    const leader = this.someLeader();
    const victim = leader !== undefined && prng.chance(0.5) ? leader : prng.pick(ids);
    this.network.cutOff(victim, ids, asymmetric);
    this.ctx.stats.partitions++;
    this.ctx.say(`node ${victim} is cut off${asymmetric ? ' (it can still send)' : ''}`);
  }

  /** The links the faults cut. */
  protected abstract get network(): SimNetwork;
  /** Every node (process) that exists, in creation order. */
  protected abstract ids(): NodeId[];
  /** A node that leads, if any (for faults aimed at leaders). */
  protected abstract someLeader(): NodeId | undefined;
  /** Crashes or cuts off a leader soon after it won (Figure 8). */
  protected abstract churnLeader(): void;
  /** Asks a leader for a membership change. */
  protected abstract changeMembership(): void;
  /** Asks a leader to hand leadership to another voter. */
  protected abstract transferLeadership(): void;
  /** Crashes one node, leaders more often. */
  protected abstract crashSomeone(): void;
  /** Every node loses power at once (FAULTS 14, 21). */
  protected abstract powerFailure(): void;
  /** Stops a node, leader preferred, as SIGSTOP would (FAULTS 23). */
  protected abstract pauseSomeone(): void;
}
