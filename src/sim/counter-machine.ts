/**
 * A user-level state machine for the simulator: a counter, written against the public
 * {@link InMemoryStateMachine} interface exactly as a user's would be (examples/counter.ts is
 * the same machine without sessions). `add n` returns the new value, the query returns the
 * value. A session table (client id -> last sequence number and its result) makes an add
 * retried by its client take effect once.
 */
import type { InMemoryStateMachine, StateMachineEntry } from '../node/state-machine.js';
import { jsonCodec, jsonImage, readJsonImage } from './machine-image.js';

/** An add as carried in a log entry. */
export interface CounterCommand {
  readonly client: number;
  readonly seq: number;
  /** What to add: a positive integer. */
  readonly n: number;
}

/** The image a snapshot holds. */
interface CounterImage {
  value: number;
  sessions: [number, { seq: number; result: number }][];
}

/**
 * The counter. `apply` answers each add with the value it produced, or null for an entry
 * without a command and for a retry older than the client's last add (no one waits for it).
 */
export class SimCounter implements InMemoryStateMachine<CounterCommand, number | null, null, number> {
  readonly kind = 'in-memory';
  readonly codec = jsonCodec<CounterCommand>();
  private value = 0;
  private sessions = new Map<number, { seq: number; result: number }>();
  /** How many adds were skipped as duplicates (retries already applied). */
  duplicates = 0;

  /** `reappliesRetry`: the deliberate bug `counter-reapplies-retry` (sessions ignored). */
  constructor(private readonly reappliesRetry = false) {}

  apply(entries: readonly StateMachineEntry<CounterCommand>[]): (number | null)[] {
    return entries.map((entry) => (entry.command === null ? null : this.add(entry.command)));
  }

  private add(command: CounterCommand): number | null {
    const session = this.sessions.get(command.client);
    if (!this.reappliesRetry && session !== undefined && command.seq <= session.seq) {
      this.duplicates++;
      return command.seq === session.seq ? session.result : null;
    }
    this.value += command.n;
    this.sessions.set(command.client, { seq: command.seq, result: this.value });
    return this.value;
  }

  query(): number {
    return this.value;
  }

  /** The value and the sessions, captured now. */
  snapshot(): Uint8Array[] {
    const image: CounterImage = { value: this.value, sessions: [...this.sessions] };
    return jsonImage(image);
  }

  /** Replaces the state with a snapshot's; an empty stream is the initial state. */
  async restore(chunks: AsyncIterable<Uint8Array>): Promise<void> {
    const image = await readJsonImage<CounterImage>(chunks);
    this.value = image?.value ?? 0;
    this.sessions = new Map(image?.sessions ?? []);
  }

  async close(): Promise<void> {}
}
