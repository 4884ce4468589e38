/**
 * The deterministic simulator. One seed decides everything: cluster size, fault rates,
 * workload, every delay and every fault. Nodes run the real core over a simulated disk
 * (what is not yet persisted is lost on crash) and a simulated network (drop, duplicate,
 * delay, reorder, symmetric and asymmetric partitions). Each node runs the seed's state
 * machine (the KV store, or the user-level counter) through the public state machine interface
 * only. Clients run put/get/cas (or add/read) with retries and exactly-once sessions.
 *
 * A run has a safety phase under faults, then a liveness phase with every fault healed in
 * which a leader must be elected and every client operation must complete. Checkers run
 * after every event; the client history is checked for linearizability at the end.
 *
 * This module owns the run: wiring, the event loop, the two phases and the final checks. The
 * parts live beside it: what the seed decides (`sim-params.ts`, `profiles.ts`); the world —
 * nodes and their lifecycle (`sim-world.ts`), each node's Raft runtime (`sim-node.ts`), network
 * (`sim-network.ts`), disk (`sim-disk.ts`) and clocks (`sim-clock.ts`); the fault schedule
 * (`nemesis.ts`, `nemesis-membership.ts`); the service on each node (`service-server.ts`, with
 * the KV store of `kv-service.ts` or the counter of `counter-service.ts`) and its clients
 * (`workload.ts`); and the result (`report.ts`). A run's raft group is a `GroupRun`
 * (`group-run.ts`); the multi-group profile runs several on the same processes
 * (`multi-group.ts`, with the processes' shared log in `sim-wal.ts`).
 */

import type { MutationName } from '../raft/index.js';
import { mutationsFor, NO_MUTATIONS, Prng } from '../raft/index.js';
import { GroupRun } from './group-run.js';
import type { CheckResult } from './linearizability.js';
import { MultiGroupSimulation } from './multi-group.js';
import { Nemesis } from './nemesis.js';
import { drawParams } from './profiles.js';
import type { SimResult } from './report.js';
import { SERVICES } from './services.js';
import { SimContext } from './sim-context.js';
import type { SimEvent } from './sim-events.js';
import { handleRunEvent, type RunPlan, type RunTiming, runPhases } from './sim-loop.js';
import type { SimParams } from './sim-params.js';

export { emptySimStats, type SimResult, type SimStats } from './report.js';
export type { SimParams } from './sim-params.js';

/** What one run is asked to do. */
export interface SimOptions {
  readonly seed: number;
  /** Cluster size; by default chosen by the seed among 3, 5 and 7. */
  readonly nodes?: number | undefined;
  readonly mutation?: MutationName | undefined;
  /** Virtual milliseconds of the safety phase (default 6000). */
  readonly safetyMs?: number | undefined;
  /** Virtual milliseconds the liveness phase may take (default 8000). */
  readonly livenessMs?: number | undefined;
  /** Fixes some of the seed's parameters (targeted runs; the rest still come from the seed). */
  readonly overrides?: Partial<SimParams> | undefined;
  /** Receives a line for each notable event (elections, faults, completed operations). */
  readonly narrate?: ((line: string) => void) | undefined;
}

/**
 * Runs one seed to completion. Asynchronous only because a state machine's `restore` is; a
 * seed's run is still one fixed sequence of events.
 */
export function runSimulation(options: SimOptions): Promise<SimResult> {
  const prng = new Prng(options.seed);
  const params = { ...drawParams(prng, options.nodes), ...options.overrides };
  const mutations = options.mutation === undefined ? NO_MUTATIONS : mutationsFor(options.mutation);
  const ctx = new SimContext(prng, params, mutations, options.narrate);
  const timing = { safetyMs: options.safetyMs ?? 10_000, livenessMs: options.livenessMs ?? 8000 };
  const plan = params.groups > 1 ? new MultiGroupSimulation(ctx, timing) : new Simulation(ctx, timing);
  return runPhases(options.seed, ctx, timing, plan);
}

/**
 * One run of one raft group: the world and the nemesis, the service on every node and its
 * clients, driven event by event through the safety phase and then the liveness phase.
 */
class Simulation implements RunPlan {
  private readonly group: GroupRun;
  private readonly nemesis: Nemesis;

  constructor(
    private readonly ctx: SimContext,
    private readonly timing: RunTiming,
  ) {
    const service = SERVICES[ctx.params.service](ctx, '');
    this.group = new GroupRun(ctx, service, (node) => this.nemesis.checkJointTrap(node));
    this.nemesis = new Nemesis(ctx, this.group.world);
  }

  setup(seed: number): void {
    const { ctx } = this;
    const p = ctx.params;
    ctx.say(
      `seed ${seed}: ${p.nodes} nodes, ${p.clients} clients on ${p.keys} keys, ` +
        `drop ${p.dropRate * 100}%, duplicate ${p.duplicateRate * 100}%, nemesis ${p.nemesis} every <=${p.nemesisIntervalMs} ms, ` +
        `profile ${p.profile} (${p.service}), reads ${p.readOnly}`,
    );
    this.group.world.bootstrap(p.nodes);
    this.group.workload.start();
    this.nemesis.start();
  }

  livenessDone(): boolean {
    return this.group.livenessDone();
  }

  checkEnd(): void {
    this.group.checkEnd(this.timing.livenessMs);
  }

  checkHistories(): CheckResult {
    return this.group.checkHistory();
  }

  handle(event: SimEvent): void {
    if (this.group.handle(event) || handleRunEvent(this.ctx, event, this.nemesis, this.group.world)) return;
    throw new Error(`a run of one group has no ${event.kind} event`);
  }
}
