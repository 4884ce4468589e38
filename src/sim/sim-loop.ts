/** The event loop of a run: events in virtual time order through both phases. */
import type { SimContext } from './sim-context.js';
import type { SimEvent } from './sim-events.js';

/** How long the two phases of a run last, in virtual milliseconds. */
export interface RunTiming {
  readonly safetyMs: number;
  readonly livenessMs: number;
}

/**
 * Takes events off the queue in time order and hands each to `handle`, until the safety and
 * liveness phases are over or, in the liveness phase, `done` says the run may end early.
 */
export async function runEvents(
  ctx: SimContext,
  timing: RunTiming,
  handle: (event: SimEvent) => void,
  done: () => boolean,
): Promise<void> {
  const end = timing.safetyMs + timing.livenessMs;
  for (;;) {
    const next = ctx.queue.pop();
    if (next === undefined || next.time > end) return;
    ctx.now = next.time;
    handle(next.item);
    // Awaited only when the event started a restore: most events finish synchronously.
    const settling = ctx.settle();
    if (settling !== undefined) await settling;
    if (ctx.phase === 'liveness' && done()) return;
  }
}
