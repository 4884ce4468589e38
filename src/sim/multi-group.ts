/**
 * A run of the multi-group profile: every simulated process hosts one replica of each of
 * several raft groups (2 to 4, drawn from the seed), as the multi-raft host will. Each group has
 * its own cores, its own state machine (the KV store or the counter, drawn per group), its own
 * clients and its own checkers: every safety property is checked per group, and each group's
 * history is checked for linearizability on its own. What the groups share is the process:
 * its links (messages carry their group id; the network delivers to the process, which routes
 * by group), its clock, its crashes, pauses and partitions (`sim-processes.ts`, with the faults
 * of `nemesis-processes.ts`), and one log for every group's records (`sim-wal.ts`), which
 * commits the groups' writes together.
 */
import type { GroupId, Message } from '../raft/index.js';
import { AssertionError } from '../raft/index.js';
import { SafetyViolation } from './checkers.js';
import { GroupRun } from './group-run.js';
import type { CheckResult } from './linearizability.js';
import { ProcessNemesis } from './nemesis-processes.js';
import { SERVICES } from './services.js';
import type { SimContext } from './sim-context.js';
import type { SimEvent } from './sim-events.js';
import { handleRunEvent, type RunPlan, type RunTiming } from './sim-loop.js';
import { SimNetwork } from './sim-network.js';
import type { SimParams } from './sim-params.js';
import { SimProcesses } from './sim-processes.js';

/** Share of incoming messages the deliberate bug `misroute-group-message` hands to the wrong group. */
const MISROUTE_RATE = 0.05;

/** One run with several groups on the same processes. */
export class MultiGroupSimulation implements RunPlan {
  private readonly groups: GroupRun[] = [];
  private readonly processes: SimProcesses;
  private readonly nemesis: ProcessNemesis;

  constructor(
    private readonly ctx: SimContext,
    private readonly timing: RunTiming,
  ) {
    this.processes = new SimProcesses(ctx, new SimNetwork(ctx));
    for (let group = 1; group <= ctx.params.groups; group++) {
      const view = ctx.forGroup(group, this.groupParams());
      const service = SERVICES[view.params.service](view, `g${group}/`);
      this.groups.push(new GroupRun(view, service, () => {}, this.processes.worldOptions(group)));
    }
    this.processes.host(this.groups);
    this.nemesis = new ProcessNemesis(ctx, this.processes, this.groups);
  }

  /** A group's own draws: its state machine and its clients. */
  private groupParams(): SimParams {
    const { prng, params } = this.ctx;
    return {
      ...params,
      service: prng.pick(['kv', 'kv', 'counter'] as const),
      clients: prng.range(1, 3),
      keys: prng.range(1, 3),
    };
  }

  setup(seed: number): void {
    const { ctx } = this;
    const p = ctx.params;
    ctx.say(
      `seed ${seed}: ${p.nodes} processes hosting ${p.groups} groups ` +
        `(${this.groups.map((g) => `${g.ctx.params.service} with ${g.ctx.params.clients} clients`).join(', ')}), ` +
        `drop ${p.dropRate * 100}%, duplicate ${p.duplicateRate * 100}%, nemesis ${p.nemesis} every <=${p.nemesisIntervalMs} ms, ` +
        `reads ${p.readOnly}`,
    );
    for (const group of this.groups) group.world.bootstrap(p.nodes);
    for (const group of this.groups) group.workload.start();
    this.nemesis.start();
  }

  livenessDone(): boolean {
    return this.groups.every((g) => g.livenessDone());
  }

  checkEnd(): void {
    for (const group of this.groups) withGroupNamed(group, () => group.checkEnd(this.timing.livenessMs));
  }

  /** Each group's history on its own; the first that is not linearizable (or unknown) decides. */
  checkHistories(): CheckResult {
    let unknown: CheckResult | undefined;
    for (const group of this.groups) {
      const verdict = group.checkHistory();
      const where = `group ${group.ctx.group}`;
      if (verdict.result === 'illegal') return { ...verdict, detail: `${where}: ${verdict.detail}` };
      if (verdict.result === 'unknown') unknown ??= { ...verdict, reason: `${where}: ${verdict.reason}` };
    }
    return unknown ?? { result: 'ok' };
  }

  handle(event: SimEvent): void {
    switch (event.kind) {
      case 'in-group':
        this.inGroup(event.group, event.event);
        return;
      case 'deliver':
        this.route(event.message);
        return;
      case 'snapshot-report':
        this.inGroup(event.message.groupId, event);
        return;
      default:
        if (handleRunEvent(this.ctx, event, this.nemesis, this.processes)) return;
        throw new Error(`a multi-group run has no ${event.kind} event outside a group`);
    }
  }

  /** A message reached its process, which hands it to the group it names. */
  private route(message: Message): void {
    const { mutations, prng, params } = this.ctx;
    if (mutations.misrouteGroupMessage && prng.chance(MISROUTE_RATE)) {
      // Deliberate bug: the wrong group gets the message, re-tagged as its own.
      const groupId = (message.groupId % params.groups) + 1;
      this.inGroup(groupId, { kind: 'deliver', message: { ...message, groupId } });
      return;
    }
    this.inGroup(message.groupId, { kind: 'deliver', message });
  }

  private inGroup(group: GroupId, event: SimEvent): void {
    const run = this.groups[group - 1];
    if (run === undefined || !withGroupNamed(run, () => run.handle(event))) {
      throw new Error(`no group ${group} for a ${event.kind} event`);
    }
  }
}

/** Runs `work` of `group`; a violation or failed assertion it throws names the group. */
function withGroupNamed<T>(group: GroupRun, work: () => T): T {
  try {
    return work();
  } catch (error) {
    if (error instanceof SafetyViolation || error instanceof AssertionError) {
      error.message = `group ${group.ctx.group}: ${error.message}`;
    }
    throw error;
  }
}
