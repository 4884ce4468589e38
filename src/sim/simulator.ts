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
 * (`workload.ts`); and the result (`report.ts`).
 */

import type { MutationName } from '../raft/index.js';
import { mutationsFor, NO_MUTATIONS, Prng } from '../raft/index.js';
import { SafetyViolation } from './checkers.js';
import { CounterService } from './counter-service.js';
import { KvService } from './kv-service.js';
import { checkLinearizable } from './linearizability.js';
import { Nemesis } from './nemesis.js';
import { drawParams } from './profiles.js';
import { failureResult, historyResult, type SimResult } from './report.js';
import { ServiceServer } from './service-server.js';
import { SimContext } from './sim-context.js';
import type { SimEvent } from './sim-events.js';
import type { SimParams } from './sim-params.js';
import type { ServiceName, SimService } from './sim-service.js';
import { SimWorld } from './sim-world.js';
import { Workload } from './workload.js';

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
  return new Simulation(options).run();
}

const SERVICES: Record<ServiceName, (ctx: SimContext) => SimService> = {
  kv: (ctx) => new KvService(ctx),
  counter: (ctx) => new CounterService(ctx),
};

/**
 * One run: the world and the nemesis, the service on every node and its clients, driven
 * event by event through the safety phase and then the liveness phase.
 */
class Simulation {
  private readonly ctx: SimContext;
  private readonly world: SimWorld;
  private readonly server: ServiceServer;
  private readonly workload: Workload;
  private readonly nemesis: Nemesis;
  private readonly safetyMs: number;
  private readonly livenessMs: number;

  constructor(private readonly options: SimOptions) {
    const prng = new Prng(options.seed);
    const params = { ...drawParams(prng, options.nodes), ...options.overrides };
    const mutations = options.mutation === undefined ? NO_MUTATIONS : mutationsFor(options.mutation);
    this.safetyMs = options.safetyMs ?? 10_000;
    this.livenessMs = options.livenessMs ?? 8000;
    this.ctx = new SimContext(prng, params, mutations, options.narrate);
    this.world = new SimWorld(this.ctx);
    const service = SERVICES[params.service](this.ctx);
    this.server = new ServiceServer(this.ctx, this.world, service);
    this.workload = new Workload(this.ctx, this.world, service);
    this.nemesis = new Nemesis(this.ctx, this.world);
    this.world.runtime.attach(this.server, (node) => this.nemesis.checkJointTrap(node));
  }

  async run(): Promise<SimResult> {
    try {
      this.setup();
      await this.ctx.settle();
      await this.loop();
      this.checkLiveness();
      this.ctx.checker.checkLogMatching(this.world.liveRaws());
    } catch (error) {
      return failureResult(this.options.seed, this.ctx.params.profile, error, this.ctx.stats);
    }
    return this.checkHistory();
  }

  private checkHistory(): SimResult {
    const history = this.workload.history;
    const verdict = checkLinearizable(history);
    this.ctx.say(
      `checks: election safety, vote-once, log matching, leader completeness, state machine safety, ` +
        `liveness ok; linearizability of ${history.length} operations: ${verdict.result}`,
    );
    return historyResult(this.options.seed, this.ctx.params.profile, verdict, this.ctx.stats);
  }

  private setup(): void {
    const p = this.ctx.params;
    this.ctx.say(
      `seed ${this.options.seed}: ${p.nodes} nodes, ${p.clients} clients on ${p.keys} keys, ` +
        `drop ${p.dropRate * 100}%, duplicate ${p.duplicateRate * 100}%, nemesis ${p.nemesis} every <=${p.nemesisIntervalMs} ms, ` +
        `profile ${p.profile} (${p.service}), reads ${p.readOnly}`,
    );
    this.world.bootstrap(p.nodes);
    this.workload.start();
    this.nemesis.start();
    this.ctx.queue.push(this.safetyMs, { kind: 'heal' });
  }

  private async loop(): Promise<void> {
    const { ctx } = this;
    const end = this.safetyMs + this.livenessMs;
    for (;;) {
      const next = ctx.queue.pop();
      if (next === undefined || next.time > end) return;
      ctx.now = next.time;
      this.handle(next.item);
      // Awaited only when the event started a restore: most events finish synchronously.
      const settling = ctx.settle();
      if (settling !== undefined) await settling;
      if (ctx.phase === 'liveness' && this.livenessDone()) return;
    }
  }

  private handle(event: SimEvent): void {
    if (this.world.deferIfPaused(event)) return;
    const { world } = this;
    switch (event.kind) {
      case 'tick':
        world.runtime.onTick(event.node, event.incarnation);
        return;
      case 'deliver':
        world.runtime.onDeliver(event.message);
        return;
      case 'snapshot-report':
        world.runtime.reportSnapshot(world.nodes.get(event.message.from)!, event.message, event.ok);
        return;
      case 'partition':
        this.nemesis.partition(new Set(event.side));
        return;
      case 'resume':
        world.onResume(event.node);
        return;
      case 'persisted':
        world.runtime.onPersisted(event.node, event.incarnation);
        return;
      case 'restart':
        world.onRestart(event.node);
        return;
      case 'nemesis':
        this.nemesis.onNemesis();
        return;
      case 'heal':
        this.onHeal();
        return;
      case 'client-request':
        this.server.onClientRequest(event.node, event.request);
        return;
      case 'client-reply':
        this.workload.onClientReply(event.reply);
        return;
      case 'client-next':
        this.workload.onClientNext(event.client);
        return;
      case 'client-timeout':
        this.workload.onClientTimeout(event.client, event.seq, event.attempt);
        return;
    }
  }

  private onHeal(): void {
    this.ctx.say('safety phase over: every fault healed; liveness phase begins');
    this.ctx.phase = 'liveness';
    this.world.heal();
  }

  // ------------------------------------------------------------------ liveness

  private livenessDone(): boolean {
    return this.workload.idle() && this.world.liveRaws().some((r) => r.raft.role === 'leader');
  }

  private checkLiveness(): void {
    const pending = this.workload.recordPending();
    if (!this.world.liveRaws().some((r) => r.raft.role === 'leader')) {
      throw new SafetyViolation(
        'liveness',
        `no leader ${this.livenessMs} ms after every fault was healed (at ${this.ctx.now} ms); ${this.world.describeNodes()}`,
      );
    }
    if (pending > 0) {
      throw new SafetyViolation(
        'liveness',
        `${pending} client operations still pending ${this.livenessMs} ms after healing; ${this.world.describeNodes()}`,
      );
    }
  }
}
