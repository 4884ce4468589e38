/**
 * The counter service's clients: concurrent adds of small amounts and linearizable reads of one
 * counter, over the user-level counter state machine (`counter-machine.ts`). Each add returns
 * the value it produced, which pins where it took effect: an add applied twice, or lost, shows
 * in the history.
 */
import { SafetyViolation } from './checkers.js';
import { type CounterCommand, SimCounter } from './counter-machine.js';
import type { CounterInput, CounterOutput, KvInput, KvOutput } from './linearizability.js';
import type { SimContext } from './sim-context.js';
import type { ClientOperation, SimService } from './sim-service.js';

/** The key the counter's operations carry in the history. */
const COUNTER_KEY = 'counter';
/** An add adds 1 to this many. */
const ADD_MAX = 5;

/** The counter with add and read. */
export class CounterService implements SimService {
  constructor(private readonly ctx: SimContext) {}

  createMachine(): SimCounter {
    return new SimCounter(this.ctx.mutations.counterReappliesRetry);
  }

  session(command: unknown): { client: number; seq: number } {
    return command as CounterCommand;
  }

  next(client: number, seq: number): ClientOperation {
    const { prng, params } = this.ctx;
    if (prng.float() < params.readRate) {
      const serializable = prng.chance(params.serializableRate);
      return {
        input: { kind: 'read', key: COUNTER_KEY },
        request: { kind: 'read', query: null, serializable },
      };
    }
    const n = prng.range(1, ADD_MAX);
    const command: CounterCommand = { client, seq, n };
    return { input: { kind: 'add', key: COUNTER_KEY, n }, request: { kind: 'write', command } };
  }

  output(input: KvInput | CounterInput, answer: unknown): CounterOutput {
    if (input.kind !== 'add' && input.kind !== 'read') {
      throw new Error(`the counter service has no ${input.kind} operation`);
    }
    return { kind: input.kind, value: answer as number };
  }

  /** A serializable read may be stale, but a counter that only grows never reads below 0. */
  checkSerializableRead(_input: KvInput | CounterInput, output: KvOutput | CounterOutput): void {
    const value = output.kind === 'read' ? output.value : undefined;
    if (value !== undefined && Number.isInteger(value) && value >= 0) return;
    throw new SafetyViolation(
      'serializable-read',
      `a serializable read of the counter returned ${String(value)}`,
    );
  }
}
