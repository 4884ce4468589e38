/**
 * The client workload: clients that run the service's operations (put, get and cas on a few
 * keys; or adds and reads of a counter), one operation at a time, with timeouts, retries and
 * redirects, and exactly-once sessions (client id and sequence number). Completed operations
 * form the history checked for linearizability; serializable reads are checked on their own.
 */
import type { NodeId } from '../raft/index.js';
import type { CounterInput, KvInput, Operation } from './linearizability.js';
import { describeOperation } from './linearizability.js';
import type { SimContext } from './sim-context.js';
import type { ClientReply, ClientRequest } from './sim-events.js';
import type { SimService } from './sim-service.js';
import type { SimWorld } from './sim-world.js';

/** One client: one operation at a time, each numbered for exactly-once execution. */
interface SimClient {
  readonly id: number;
  seq: number;
  attempt: number;
  target: NodeId;
  /** The operation in progress, if any. */
  current: { input: KvInput | CounterInput; call: number; request: ClientRequest } | undefined;
  done: boolean;
}

/** The clients, what they have written, and the history of what they observed. */
export class Workload {
  private readonly clients: SimClient[] = [];
  /** Completed operations, and (once the run ends) the pending ones, for the linearizability check. */
  readonly history: Operation[] = [];

  constructor(
    private readonly ctx: SimContext,
    private readonly world: SimWorld,
    private readonly service: SimService,
  ) {}

  /** Creates the clients, each starting on a random node within the first 50 ms. */
  start(): void {
    for (let c = 1; c <= this.ctx.params.clients; c++) {
      this.clients.push({
        id: c,
        seq: 0,
        attempt: 0,
        target: this.world.anyNodeId(),
        current: undefined,
        done: false,
      });
      this.ctx.after(this.ctx.prng.range(0, 50), { kind: 'client-next', client: c });
    }
  }

  /** Whether every client is done or between operations. */
  idle(): boolean {
    return this.clients.every((c) => c.done || c.current === undefined);
  }

  /**
   * Adds the operations still in progress to the history, as pending (their outcome unknown),
   * and returns how many there were.
   */
  recordPending(): number {
    const pending = this.clients.filter((c) => c.current !== undefined);
    for (const c of pending) {
      this.history.push({
        clientId: c.id,
        input: c.current!.input,
        call: c.current!.call,
        return: undefined,
        output: undefined,
      });
    }
    return pending.length;
  }

  /** The client starts its next operation; in the liveness phase it stops instead. */
  onClientNext(id: number): void {
    const client = this.clients[id - 1]!;
    if (this.ctx.phase === 'liveness') {
      client.done = true;
      return;
    }
    client.seq++;
    client.attempt = 0;
    const { input, request: asked } = this.service.next(client.id, client.seq);
    const request: ClientRequest = { ...asked, client: client.id, seq: client.seq, attempt: 0 };
    this.ctx.stats.ops++;
    if (request.kind === 'read') this.ctx.stats.reads++;
    client.current = { input, call: this.ctx.now, request };
    this.sendRequest(client);
  }

  private sendRequest(client: SimClient): void {
    const { ctx } = this;
    const current = client.current!;
    const request = { ...current.request, attempt: client.attempt };
    ctx.after(this.world.network.latency(), { kind: 'client-request', node: client.target, request });
    ctx.after(ctx.params.clientTimeoutMs, {
      kind: 'client-timeout',
      client: client.id,
      seq: client.seq,
      attempt: client.attempt,
    });
  }

  /** No answer to the attempt in time: the client tries again, there or elsewhere. */
  onClientTimeout(id: number, seq: number, attempt: number): void {
    const client = this.clients[id - 1]!;
    if (client.current === undefined || client.seq !== seq || client.attempt !== attempt) return;
    // A client that stays with its node (as etcd clients keep their connection) retries there
    // mostly; otherwise it tries any node.
    const stay = this.ctx.params.forwarding && this.ctx.prng.chance(0.7);
    this.retry(client, stay ? client.target : this.world.anyNodeId());
  }

  private retry(client: SimClient, target: NodeId): void {
    client.attempt++;
    client.target = target;
    this.sendRequest(client);
  }

  /** A node answered: a redirect for the attempt in progress, or the operation's result. */
  onClientReply(reply: ClientReply): void {
    const { ctx } = this;
    const client = this.clients[reply.client - 1]!;
    const current = client.current;
    if (current === undefined || client.seq !== reply.seq) return;
    if (reply.outcome.kind === 'redirect') {
      // A redirect only matters for the attempt in progress. Any answer, though, completes
      // the operation: a client takes the first answer to any of its attempts.
      if (client.attempt !== reply.attempt) return;
      const leader = reply.outcome.leader;
      ctx.after(ctx.prng.range(1, 20), {
        kind: 'client-timeout',
        client: client.id,
        seq: client.seq,
        attempt: client.attempt,
      });
      client.target = leader;
      return;
    }
    const output = this.service.output(current.input, reply.outcome.result);
    client.current = undefined;
    ctx.after(ctx.prng.range(0, 30), { kind: 'client-next', client: client.id });
    if (current.request.kind === 'read' && current.request.serializable) {
      ctx.stats.serializableReads++;
      this.service.checkSerializableRead(current.input, output);
      return;
    }
    this.history.push({
      clientId: client.id,
      input: current.input,
      call: current.call,
      return: ctx.now,
      output,
    });
    ctx.say(describeOperation(this.history[this.history.length - 1]!));
  }
}
