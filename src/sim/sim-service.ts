/**
 * What a run serves on top of Raft, chosen by the seed's profile: the state machine each node
 * runs (through the public interface only) and what its clients do with it. The KV store
 * (`kv-service.ts`) is the default; the counter (`counter-service.ts`) is a user-level state
 * machine, so the public interface itself is under the linearizability checker.
 */
import type { CounterInput, CounterOutput, KvInput, KvOutput } from './linearizability.js';
import type { SimContext } from './sim-context.js';
import type { SimStateMachine } from './sim-machine-driver.js';

/** A client's operation: what the history records, and what the client asks a node. */
export interface ClientOperation {
  readonly input: KvInput | CounterInput;
  readonly request:
    | { readonly kind: 'write'; readonly command: unknown }
    | { readonly kind: 'read'; readonly query: unknown; readonly serializable: boolean };
}

/** One run's service: its state machine, its clients' operations and how to read their answers. */
export interface SimService {
  /** A fresh replica of the state machine (a node booting, before its snapshot is restored). */
  createMachine(): SimStateMachine & { readonly duplicates: number };
  /** The client session a command carries: which request its result answers. */
  session(command: unknown): { readonly client: number; readonly seq: number };
  /** Draws the next operation of client `client`, numbered `seq` in its session. */
  next(client: number, seq: number): ClientOperation;
  /** What the history records for `input` given the state machine's answer. */
  output(input: KvInput | CounterInput, answer: unknown): KvOutput | CounterOutput;
  /**
   * Checks a serializable read's output, which may be stale and so is not part of the
   * linearizable history (throws a SafetyViolation).
   */
  checkSerializableRead(input: KvInput | CounterInput, output: KvOutput | CounterOutput): void;
}

/** The services a profile can choose. */
export type ServiceName = 'kv' | 'counter';

/**
 * A service's constructor. `keyPrefix` starts every key a KV service's clients use, so the
 * groups of a multi-group run write different commands ('' for a run of one group).
 */
export type ServiceFactory = (ctx: SimContext, keyPrefix: string) => SimService;
