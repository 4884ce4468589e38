/**
 * Raft time: ticks come from a timer but are counted by the monotonic clock. Before any other
 * input the runtime delivers every tick that should have happened, so a process that was
 * paused (SIGSTOP, a long GC) learns at once that its election timeout or leader lease ran
 * out.
 *
 * Two parts, because they belong to different owners once one process hosts many groups: the
 * {@link TickClock} is per raft group (how many ticks its core has been given), the
 * {@link TickTimer} is per process (one interval that prompts every group to catch up).
 */
import { performance } from 'node:perf_hooks';

/** Ticks delivered at most at once after a pause: beyond it every timer has expired anyway. */
const CATCH_UP_TICKS_MAX = 1000;

/**
 * Counts the ticks due to one raft group by the monotonic clock, and delivers them. A
 * quiesced group's clock is paused: it delivers nothing until resumed, and the ticks due
 * meanwhile are handed over at once, for the core's `tickQuiesced`, instead of one by one.
 */
export class TickClock {
  private readonly startMs = performance.now();
  private deliveredTicks = 0;
  private paused = false;

  /** `tick` advances the group's core by one tick (`RawNode.tick`). */
  constructor(
    private readonly tickMs: number,
    private readonly tick: () => void,
  ) {}

  /** Ticks delivered so far: the group's clock, which read barriers are aged by. */
  get delivered(): number {
    return this.deliveredTicks;
  }

  /** Whether the clock is paused (its group quiesced). */
  get quiesced(): boolean {
    return this.paused;
  }

  /** Pauses the clock: {@link TickClock.catchUp} delivers nothing until {@link TickClock.resume}. */
  quiesce(): void {
    this.paused = true;
  }

  /**
   * Resumes a paused clock; returns how many ticks came due while it was paused, now counted
   * as delivered (the caller gives them to the core without firing its timers). 0 when it was
   * not paused.
   */
  resume(): number {
    if (!this.paused) return 0;
    this.paused = false;
    const due = this.due();
    const skipped = Math.max(0, due - this.deliveredTicks);
    this.deliveredTicks = Math.max(this.deliveredTicks, due);
    return skipped;
  }

  private due(): number {
    return Math.floor((performance.now() - this.startMs) / this.tickMs);
  }

  /** Delivers every tick the monotonic clock says is due; returns how many it delivered (none while paused). */
  catchUp(): number {
    if (this.paused) return 0;
    const due = this.due();
    const missed = due - this.deliveredTicks;
    if (missed <= 0) return 0;
    const count = Math.min(missed, CATCH_UP_TICKS_MAX);
    for (let i = 0; i < count; i++) this.tick();
    this.deliveredTicks = due;
    return count;
  }
}

/** The interval timer that prompts the runtime to catch up on ticks and run periodic checks. */
export class TickTimer {
  private timer: NodeJS.Timeout | undefined;

  /** Calls `onTimer` every `intervalMs` until {@link TickTimer.stop}. */
  start(intervalMs: number, onTimer: () => void): void {
    this.timer = setInterval(onTimer, intervalMs);
  }

  /** Stops the timer (harmless when it never started or already stopped). */
  stop(): void {
    if (this.timer !== undefined) clearInterval(this.timer);
  }
}
