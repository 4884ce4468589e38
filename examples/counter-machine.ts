/**
 * The replicated counter's state machine (examples/counter.ts runs it behind HTTP): a number;
 * `add` returns the new value, the query returns the value.
 */
import type { InMemoryStateMachine, StateMachineEntry } from '../src/index.js';

/** A command of the counter. */
export type Command = { readonly op: 'add'; readonly n: number };

/** The state machine: a number; `add` returns the new value, the query returns the value. */
export class Counter implements InMemoryStateMachine<Command, number, null, number> {
  readonly kind = 'in-memory';
  readonly codec = {
    encode: (command: Command): Uint8Array => Buffer.from(JSON.stringify(command)),
    decode: (bytes: Uint8Array): Command => JSON.parse(Buffer.from(bytes).toString()) as Command,
  };
  private value = 0;

  apply(entries: readonly StateMachineEntry<Command>[]): number[] {
    return entries.map((entry) => (this.value += entry.command?.n ?? 0));
  }
  query(): number {
    return this.value;
  }
  snapshot(): Uint8Array[] {
    return [Buffer.from(String(this.value))]; // captured now, as the interface asks
  }
  async restore(chunks: AsyncIterable<Uint8Array>): Promise<void> {
    let text = '';
    for await (const chunk of chunks) text += Buffer.from(chunk).toString();
    this.value = Number(text);
  }
  async close(): Promise<void> {}
}
