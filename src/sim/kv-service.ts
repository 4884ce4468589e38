/**
 * The KV service's clients: put, get and cas on a few keys, each write storing a value no one
 * else writes, over the KV state machine (`kv-machine.ts`).
 */
import { SafetyViolation } from './checkers.js';
import { type KvCommand, KvMachine, type KvResult } from './kv-machine.js';
import type { CounterInput, CounterOutput, KvInput, KvOutput } from './linearizability.js';
import type { SimContext } from './sim-context.js';
import type { ClientOperation, SimService } from './sim-service.js';

/** The key-value store with put, get and cas. */
export class KvService implements SimService {
  /** Every value a write ever tried to store, for checking serializable reads. */
  private readonly written = new Set<string>();

  /** `keyPrefix` starts every key (see `ServiceFactory`). */
  constructor(
    private readonly ctx: SimContext,
    private readonly keyPrefix = '',
  ) {}

  createMachine(): KvMachine {
    return new KvMachine();
  }

  session(command: unknown): { client: number; seq: number } {
    return command as KvCommand;
  }

  /** A read, or a put or cas of a value no one else writes. */
  next(client: number, seq: number): ClientOperation {
    const { prng, params } = this.ctx;
    const key = `${this.keyPrefix}k${prng.int(params.keys)}`;
    const value = `${client}.${seq}`;
    const roll = prng.float();
    if (roll < params.readRate) {
      const serializable = prng.chance(params.serializableRate);
      return { input: { kind: 'get', key }, request: { kind: 'read', query: key, serializable } };
    }
    const cas = roll < params.readRate + params.casRate;
    const expected = cas
      ? prng.chance(0.3)
        ? null
        : `${1 + prng.int(params.clients)}.${1 + prng.int(seq)}`
      : undefined;
    const input: KvInput = cas
      ? { kind: 'cas', key, expected: expected ?? null, value }
      : { kind: 'put', key, value };
    this.written.add(value);
    const command: KvCommand = {
      client,
      seq,
      op: cas ? 'cas' : 'put',
      key,
      value,
      ...(cas ? { expected: expected ?? null } : {}),
    };
    return { input, request: { kind: 'write', command } };
  }

  output(input: KvInput | CounterInput, answer: unknown): KvOutput {
    switch (input.kind) {
      case 'get':
        return { kind: 'get', value: answer as string | null };
      case 'put':
        return { kind: 'put' };
      case 'cas':
        return { kind: 'cas', ok: (answer as KvResult).ok };
      default:
        throw new Error(`the KV service has no ${input.kind} operation`);
    }
  }

  /** A serializable read may be stale; it must still return a value some client wrote. */
  checkSerializableRead(input: KvInput | CounterInput, output: KvOutput | CounterOutput): void {
    if (output.kind !== 'get' || output.value === null || this.written.has(output.value)) return;
    throw new SafetyViolation(
      'serializable-read',
      `a serializable read of ${input.key} returned "${output.value}", never written`,
    );
  }
}
