/**
 * What every part of a run shares: the seed's PRNG and parameters, virtual time and the phase,
 * the event queue, the safety checker, the counters, and the narration.
 *
 * Every random choice of a run is a draw from the one PRNG here, in event order: that is what
 * makes a seed reproduce the same run.
 *
 * A run whose processes host several raft groups gives each group a view of the context
 * ({@link SimContext.forGroup}): the same queue, clock, phase, PRNG and counters, but the
 * group's own safety checker and parameters, and the events it schedules carry its group id.
 */
import type { GroupId, Mutations, Prng } from '../raft/index.js';
import { SafetyChecker } from './checkers.js';
import { EventQueue } from './event-queue.js';
import { emptySimStats, type SimStats } from './report.js';
import type { SimEvent } from './sim-events.js';
import type { SimParams } from './sim-params.js';

/** What the views of one run share and change: virtual time, the phase, unsettled work. */
interface RunClock {
  now: number;
  phase: 'safety' | 'liveness';
  unsettled: Promise<void>[];
}

/** What a view shares with the context it was made from. */
interface SharedState {
  readonly queue: EventQueue<SimEvent>;
  readonly stats: SimStats;
  readonly clock: RunClock;
}

/** A run's shared state and services. */
export class SimContext {
  /** Every scheduled event, in virtual time order (ties in scheduling order). */
  readonly queue: EventQueue<SimEvent>;
  /** The run's counters. */
  readonly stats: SimStats;
  /** Watches every step of every node (of this view's group, in a multi-group run). */
  readonly checker = new SafetyChecker();
  private readonly clock: RunClock;

  /**
   * `group`: the raft group this view schedules events for (undefined: the run's only group,
   * whose events go on the queue as they are).
   */
  constructor(
    readonly prng: Prng,
    readonly params: SimParams,
    readonly mutations: Mutations,
    private readonly narrate: ((line: string) => void) | undefined,
    readonly group: GroupId | undefined = undefined,
    shared: SharedState | undefined = undefined,
  ) {
    this.queue = shared?.queue ?? new EventQueue<SimEvent>();
    this.stats = shared?.stats ?? { ...emptySimStats(), nodes: params.nodes };
    this.clock = shared?.clock ?? { now: 0, phase: 'safety', unsettled: [] };
  }

  /** A view for raft group `group` running with `params`: its own checker, everything else shared. */
  forGroup(group: GroupId, params: SimParams): SimContext {
    const shared = { queue: this.queue, stats: this.stats, clock: this.clock };
    return new SimContext(this.prng, params, this.mutations, this.narrate, group, shared);
  }

  /** Virtual time, in milliseconds: the time of the event being handled. */
  get now(): number {
    return this.clock.now;
  }

  set now(time: number) {
    this.clock.now = time;
  }

  /** Faults happen in the safety phase only; the liveness phase has every fault healed. */
  get phase(): 'safety' | 'liveness' {
    return this.clock.phase;
  }

  set phase(phase: 'safety' | 'liveness') {
    this.clock.phase = phase;
  }

  /** Narrates `text`, stamped with the virtual time (and the group), if the run is narrated. */
  say(text: string): void {
    if (this.narrate === undefined) return;
    const group = this.group === undefined ? '' : `[group ${this.group}] `;
    this.narrate(`${(this.now / 1000).toFixed(3).padStart(7)}s  ${group}${text}`);
  }

  /**
   * Finishes `work` before the next event: the state machine interface's `restore` returns a
   * promise, and the event loop settles every such promise (in the order they were started)
   * before it takes the next event, so the run stays one deterministic sequence of events.
   */
  waitFor(work: Promise<void>): void {
    this.clock.unsettled.push(work);
  }

  /** The work to finish before the next event, if any (see {@link waitFor}). */
  settle(): Promise<unknown> | undefined {
    if (this.clock.unsettled.length === 0) return undefined;
    const all = Promise.all(this.clock.unsettled);
    this.clock.unsettled = [];
    return all;
  }

  /** Schedules `event` `delay` virtual milliseconds from now (for this view's group). */
  after(delay: number, event: SimEvent): void {
    const item: SimEvent = this.group === undefined ? event : { kind: 'in-group', group: this.group, event };
    this.queue.push(this.now + delay, item);
  }
}
