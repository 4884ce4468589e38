/**
 * How a simulated node drives its state machine: only through the public interface
 * (state-machine.ts), under the contract the runtime's MachineDriver enforces (consecutive
 * indexes, one result per entry). The runtime's driver awaits every call, which would let the
 * simulator's single-threaded event loop move on mid-apply; this one calls `apply`, `query`
 * and `snapshot` synchronously, so the machines the simulator runs must answer those without
 * a promise (a promise is refused loudly). `restore` is asynchronous by the interface: the
 * simulator settles it before its next event (see `SimContext.waitFor`).
 */

import { frameChunks, unframeChunks } from '../node/envelope.js';
import type { InMemoryStateMachine, StateMachineEntry } from '../node/state-machine.js';
import { SafetyViolation } from './checkers.js';

/** An in-memory state machine of any types, as the simulated node sees it. */
export type SimStateMachine = InMemoryStateMachine<unknown, unknown, unknown, unknown>;

/** Drives one in-memory state machine and tracks its applied index. */
export class SimMachineDriver {
  /** Invariant: the index of the last entry applied or restored; moves only forward, or by restore. */
  private applied = 0;

  constructor(readonly machine: SimStateMachine) {}

  /** The index of the last entry applied (or restored). */
  get appliedIndex(): number {
    return this.applied;
  }

  /** Applies consecutive entries that follow the applied index; one result per entry. */
  apply(entries: readonly StateMachineEntry<unknown>[]): readonly unknown[] {
    const first = entries[0];
    if (first === undefined) return [];
    if (first.index !== this.applied + 1) {
      // The machine would skip entries or apply some twice: its state is not its log's.
      throw new SafetyViolation(
        'state-machine-safety',
        `apply from index ${first.index}, but the state machine is at ${this.applied}`,
      );
    }
    entries.forEach((entry, i) => {
      if (entry.index !== first.index + i) throw new Error(`apply batch skips to index ${entry.index}`);
    });
    const results = this.machine.apply(entries);
    if (results instanceof Promise)
      throw new Error('the simulator drives state machines whose apply is synchronous');
    if (results.length !== entries.length) {
      throw new Error(`state machine returned ${results.length} results for ${entries.length} entries`);
    }
    this.applied = first.index + entries.length - 1;
    return results;
  }

  /** A read against the applied state. */
  query(query: unknown): unknown {
    const answer = this.machine.query(query);
    if (answer instanceof Promise)
      throw new Error('the simulator drives state machines whose query is synchronous');
    return answer;
  }

  /**
   * The state at the applied index as one image: the snapshot's chunks, each after its
   * length (envelope.ts, `frameChunks`), so the image can be streamed and cut anywhere.
   */
  snapshot(): Uint8Array {
    const chunks = this.machine.snapshot();
    if (!(Symbol.iterator in chunks))
      throw new Error('the simulator drives state machines whose snapshot is synchronous');
    return frameChunks(chunks);
  }

  /** Replaces the state by an image from {@link snapshot} taken at `index` (empty: the initial state). */
  async restore(index: number, image: Uint8Array): Promise<void> {
    await this.machine.restore(chunksOf(image));
    this.applied = index;
  }
}

/**
 * The chunks of an image from {@link SimMachineDriver.snapshot}, as far as they are whole: a
 * chunk cut short at the image's end is left out, as a decoder of a record stream stops where
 * the bytes stop. So an image cut anywhere still restores, to part of the state: only the
 * stream that carried it can say it was whole, which is what the simulator's snapshot streams
 * check (and the deliberate bug `torn-snapshot-stream` skips).
 */
async function* chunksOf(image: Uint8Array): AsyncGenerator<Uint8Array> {
  try {
    yield* unframeChunks(image);
  } catch {
    // unframeChunks throws only at a truncated chunk: the image ends there.
  }
}
