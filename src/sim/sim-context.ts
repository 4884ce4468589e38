/**
 * What every part of a run shares: the seed's PRNG and parameters, virtual time and the phase,
 * the event queue, the safety checker, the counters, and the narration.
 *
 * Every random choice of a run is a draw from the one PRNG here, in event order: that is what
 * makes a seed reproduce the same run.
 */
import type { Mutations, Prng } from '../raft/index.js';
import { SafetyChecker } from './checkers.js';
import { EventQueue } from './event-queue.js';
import { emptySimStats, type SimStats } from './report.js';
import type { SimEvent } from './sim-events.js';
import type { SimParams } from './sim-params.js';

/** A run's shared state and services. */
export class SimContext {
  /** Every scheduled event, in virtual time order (ties in scheduling order). */
  readonly queue = new EventQueue<SimEvent>();
  /** The run's counters. */
  readonly stats: SimStats;
  /** Watches every step of every node. */
  readonly checker: SafetyChecker;
  /** Virtual time, in milliseconds: the time of the event being handled. */
  now = 0;
  /** Faults happen in the safety phase only; the liveness phase has every fault healed. */
  phase: 'safety' | 'liveness' = 'safety';
  /** Work of the event being handled that finishes asynchronously (a state machine's restore). */
  private unsettled: Promise<void>[] = [];

  constructor(
    readonly prng: Prng,
    readonly params: SimParams,
    readonly mutations: Mutations,
    private readonly narrate: ((line: string) => void) | undefined,
  ) {
    this.stats = { ...emptySimStats(), nodes: params.nodes };
    this.checker = new SafetyChecker();
  }

  /** Narrates `text`, stamped with the virtual time, if the run is narrated. */
  say(text: string): void {
    if (this.narrate === undefined) return;
    this.narrate(`${(this.now / 1000).toFixed(3).padStart(7)}s  ${text}`);
  }

  /**
   * Finishes `work` before the next event: the state machine interface's `restore` returns a
   * promise, and the event loop settles every such promise (in the order they were started)
   * before it takes the next event, so the run stays one deterministic sequence of events.
   */
  waitFor(work: Promise<void>): void {
    this.unsettled.push(work);
  }

  /** The work to finish before the next event, if any (see {@link waitFor}). */
  settle(): Promise<unknown> | undefined {
    if (this.unsettled.length === 0) return undefined;
    const all = Promise.all(this.unsettled);
    this.unsettled = [];
    return all;
  }

  /** Schedules `event` `delay` virtual milliseconds from now. */
  after(delay: number, event: SimEvent): void {
    this.queue.push(this.now + delay, event);
  }
}
