/**
 * The course of a run, whatever it hosts: setup, the safety phase under faults until the
 * `heal` event, the liveness phase, the end-of-run checks and the verdict, with events taken
 * in virtual time order throughout.
 */
import type { NodeId } from '../raft/index.js';
import type { CheckResult } from './linearizability.js';
import type { FaultSchedule } from './nemesis-schedule.js';
import { failureResult, historyResult, type SimResult } from './report.js';
import type { SimContext } from './sim-context.js';
import type { SimEvent } from './sim-events.js';

/** How long the two phases of a run last, in virtual milliseconds. */
export interface RunTiming {
  readonly safetyMs: number;
  readonly livenessMs: number;
}

/** What a kind of run does at each step of {@link runPhases}. */
export interface RunPlan {
  /** Boots the nodes, starts the clients and the nemesis (schedules their first events). */
  setup(seed: number): void;
  /** Handles one event. */
  handle(event: SimEvent): void;
  /** In the liveness phase: whether the run may end now. */
  livenessDone(): boolean;
  /** After the last event: the liveness and final safety checks (throws on a violation). */
  checkEnd(): void;
  /** The verdict on the client histories. */
  checkHistories(): CheckResult;
}

/**
 * Runs seed `seed` as `plan` says: setup, the safety phase ending with `heal` at
 * `timing.safetyMs`, the liveness phase, then the checks. A violated property or a failed
 * assertion becomes the seed's failure.
 */
export async function runPhases(
  seed: number,
  ctx: SimContext,
  timing: RunTiming,
  plan: RunPlan,
): Promise<SimResult> {
  try {
    plan.setup(seed);
    ctx.queue.push(timing.safetyMs, { kind: 'heal' });
    await ctx.settle();
    await runEvents(ctx, timing.safetyMs + timing.livenessMs, plan);
    plan.checkEnd();
  } catch (error) {
    return failureResult(seed, ctx.params.profile, error, ctx.stats);
  }
  return historyResult(seed, ctx.params.profile, plan.checkHistories(), ctx.stats);
}

/**
 * Takes events off the queue in time order and hands each to `plan`, until `endMs` or, in the
 * liveness phase, until the plan says the run may end early.
 */
async function runEvents(ctx: SimContext, endMs: number, plan: RunPlan): Promise<void> {
  for (;;) {
    const next = ctx.queue.pop();
    if (next === undefined || next.time > endMs) return;
    ctx.now = next.time;
    plan.handle(next.item);
    // Awaited only when the event started a restore: most events finish synchronously.
    const settling = ctx.settle();
    if (settling !== undefined) await settling;
    if (ctx.phase === 'liveness' && plan.livenessDone()) return;
  }
}

/** What happens to a run's processes on the run's own events: a world's nodes, or the processes hosting many groups. */
export interface ProcessHost {
  onResume(id: NodeId): void;
  onRestart(id: NodeId): void;
  /** Every fault healed: links restored, crashed processes restarted, paused ones resumed. */
  heal(): void;
}

/**
 * Handles an event of the run itself rather than of a group (faults, restarts, resumes, the end
 * of the safety phase); reports whether `event` was one.
 */
export function handleRunEvent(
  ctx: SimContext,
  event: SimEvent,
  nemesis: FaultSchedule,
  host: ProcessHost,
): boolean {
  switch (event.kind) {
    case 'partition':
      nemesis.partition(new Set(event.side));
      return true;
    case 'resume':
      host.onResume(event.node);
      return true;
    case 'restart':
      host.onRestart(event.node);
      return true;
    case 'nemesis':
      nemesis.onNemesis();
      return true;
    case 'heal':
      ctx.say('safety phase over: every fault healed; liveness phase begins');
      ctx.phase = 'liveness';
      host.heal();
      return true;
    default:
      return false;
  }
}
