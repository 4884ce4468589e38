/**
 * One raft group of a run: its replicas on the simulated processes (a {@link SimWorld}), the
 * service every replica runs and the group's clients. A run has one group, or, in the
 * multi-group profile, several that share the processes (`multi-group.ts`).
 */
import { SafetyViolation } from './checkers.js';
import { type CheckResult, checkLinearizable } from './linearizability.js';
import { ServiceServer } from './service-server.js';
import type { SimContext } from './sim-context.js';
import type { SimEvent } from './sim-events.js';
import type { SimNode } from './sim-node.js';
import type { SimService } from './sim-service.js';
import { SimWorld, type SimWorldOptions } from './sim-world.js';
import { Workload } from './workload.js';

/** A group's replicas, their service and its clients, and the group's own events. */
export class GroupRun {
  readonly world: SimWorld;
  readonly server: ServiceServer;
  readonly workload: Workload;

  /** `onStep` runs after each step of a replica, before the checkers see it. */
  constructor(
    readonly ctx: SimContext,
    service: SimService,
    onStep: (node: SimNode) => void,
    options: SimWorldOptions = {},
  ) {
    this.world = new SimWorld(ctx, options);
    this.server = new ServiceServer(ctx, this.world, service);
    this.workload = new Workload(ctx, this.world, service);
    this.world.runtime.attach(this.server, onStep);
  }

  /**
   * Handles `event` if it is one of the group's own (held while its process is paused);
   * reports whether it was.
   */
  handle(event: SimEvent): boolean {
    const { world } = this;
    if (world.deferIfPaused(event)) return true;
    switch (event.kind) {
      case 'tick':
        world.runtime.onTick(event.node, event.incarnation);
        return true;
      case 'deliver':
        world.runtime.onDeliver(event.message);
        return true;
      case 'snapshot-report':
        world.runtime.reportSnapshot(world.nodes.get(event.message.from)!, event.message, event.ok);
        return true;
      case 'persisted':
        world.runtime.onPersisted(event.node, event.incarnation);
        return true;
      case 'client-request':
        this.server.onClientRequest(event.node, event.request);
        return true;
      case 'client-reply':
        this.workload.onClientReply(event.reply);
        return true;
      case 'client-next':
        this.workload.onClientNext(event.client);
        return true;
      case 'client-timeout':
        this.workload.onClientTimeout(event.client, event.seq, event.attempt);
        return true;
      default:
        return false;
    }
  }

  /** Whether a replica of the group is leader. */
  hasLeader(): boolean {
    return this.world.liveRaws().some((r) => r.raft.role === 'leader');
  }

  /** Whether the group's liveness phase is over: a leader, and every client done or between operations. */
  livenessDone(): boolean {
    return this.workload.idle() && this.hasLeader();
  }

  /**
   * The liveness phase ended (`livenessMs` after healing): fails unless the group has a leader
   * and every client operation completed; then checks log matching across live replicas.
   */
  checkEnd(livenessMs: number): void {
    const { ctx } = this;
    const pending = this.workload.recordPending();
    if (!this.hasLeader()) {
      throw new SafetyViolation(
        'liveness',
        `no leader ${livenessMs} ms after every fault was healed (at ${ctx.now} ms); ${this.world.describeNodes()}`,
      );
    }
    if (pending > 0) {
      throw new SafetyViolation(
        'liveness',
        `${pending} client operations still pending ${livenessMs} ms after healing; ${this.world.describeNodes()}`,
      );
    }
    ctx.checker.checkLogMatching(this.world.liveRaws());
  }

  /** The verdict of the linearizability checker on the group's history. */
  checkHistory(): CheckResult {
    const history = this.workload.history;
    const verdict = checkLinearizable(history);
    this.ctx.say(
      `checks: election safety, vote-once, log matching, leader completeness, state machine safety, ` +
        `liveness ok; linearizability of ${history.length} operations: ${verdict.result}`,
    );
    return verdict;
  }
}
