/**
 * The client workload: clients that run put, get and cas on a few keys, one operation at a
 * time, with timeouts, retries and redirects, and exactly-once sessions (client id and sequence
 * number). Completed operations form the history checked for linearizability; serializable reads
 * are checked on their own.
 */
import type { NodeId } from '../raft/index.js';
import { SafetyViolation } from './checkers.js';
import { encodeCommand, type KvResult } from './kv-machine.js';
import type { KvInput, KvOutput, Operation } from './linearizability.js';
import { describeOperation } from './linearizability.js';
import type { SimContext } from './sim-context.js';
import type { ClientReply, ClientRequest } from './sim-events.js';
import type { SimWorld } from './sim-world.js';

/** One client: one operation at a time, each numbered for exactly-once execution. */
interface SimClient {
  readonly id: number;
  seq: number;
  attempt: number;
  target: NodeId;
  /** The operation in progress, if any. */
  current: { input: KvInput; call: number; request: ClientRequest } | undefined;
  done: boolean;
}

/** The clients, what they have written, and the history of what they observed. */
export class KvWorkload {
  private readonly clients: SimClient[] = [];
  /** Completed operations, and (once the run ends) the pending ones, for the linearizability check. */
  readonly history: Operation[] = [];
  /** Every value a write ever tried to store, for checking serializable reads. */
  private readonly written = new Set<string>();

  constructor(
    private readonly ctx: SimContext,
    private readonly world: SimWorld,
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
      this.ctx.queue.push(this.ctx.prng.range(0, 50), { kind: 'client-next', client: c });
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
    const { input, request } = this.nextOperation(client);
    this.ctx.stats.ops++;
    client.current = { input, call: this.ctx.now, request };
    this.sendRequest(client);
  }

  /** Draws the client's next operation: a read, or a put or cas of a value no one else writes. */
  private nextOperation(client: SimClient): { input: KvInput; request: ClientRequest } {
    const { prng, params } = this.ctx;
    const id = client.id;
    const key = `k${prng.int(params.keys)}`;
    const value = `${id}.${client.seq}`;
    const roll = prng.float();
    if (roll < params.readRate) {
      const serializable = prng.chance(params.serializableRate);
      this.ctx.stats.reads++;
      return {
        input: { kind: 'get', key },
        request: { kind: 'read', client: id, seq: client.seq, attempt: 0, key, serializable },
      };
    }
    const cas = roll < params.readRate + params.casRate;
    const expected = cas
      ? prng.chance(0.3)
        ? null
        : `${1 + prng.int(params.clients)}.${1 + prng.int(client.seq)}`
      : undefined;
    const input: KvInput = cas
      ? { kind: 'cas', key, expected: expected ?? null, value }
      : { kind: 'put', key, value };
    this.written.add(value);
    const command = encodeCommand({
      client: id,
      seq: client.seq,
      op: cas ? 'cas' : 'put',
      key,
      value,
      ...(cas ? { expected: expected ?? null } : {}),
    });
    return { input, request: { kind: 'write', client: id, seq: client.seq, attempt: 0, command } };
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
    const output = toOutput(current.input, reply.outcome.result);
    client.current = undefined;
    ctx.after(ctx.prng.range(0, 30), { kind: 'client-next', client: client.id });
    if (current.request.kind === 'read' && current.request.serializable) {
      this.checkSerializableRead(current.input.key, output);
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

  /**
   * A serializable read may be stale, so it is not part of the linearizable history; it must
   * still return a value some client wrote (never invented or corrupted data).
   */
  private checkSerializableRead(key: string, output: KvOutput): void {
    this.ctx.stats.serializableReads++;
    if (output.kind !== 'get' || output.value === null || this.written.has(output.value)) return;
    throw new SafetyViolation(
      'serializable-read',
      `a serializable read of ${key} returned "${output.value}", never written`,
    );
  }
}

function toOutput(input: KvInput, result: KvResult | { value: string | null }): KvOutput {
  switch (input.kind) {
    case 'get':
      return { kind: 'get', value: (result as { value: string | null }).value };
    case 'put':
      return { kind: 'put' };
    case 'cas':
      return { kind: 'cas', ok: (result as KvResult).ok };
  }
}
