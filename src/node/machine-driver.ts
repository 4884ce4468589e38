/**
 * The replica's side of a state machine (state-machine.ts): one surface over both kinds,
 * and the applied index the runtime keeps for it. An in-memory state machine starts empty
 * (applied index 0) and is restored from the raft snapshot on start; an on-disk one reports
 * its own applied index when opened. From then on the driver moves the applied index with
 * every applied batch and checks that no index is skipped or repeated.
 */
import type { CommandCodec, StateMachine, StateMachineEntry, StateMachineSnapshot } from './state-machine.js';

/** A state machine of the caller's types, seen by the runtime (which only moves values around). */
export type UnknownStateMachine = StateMachine<unknown, unknown, unknown, unknown>;

/** Drives one state machine of either kind and tracks its applied index. */
export class MachineDriver {
  private applied = 0;
  private opened = false;

  constructor(readonly machine: UnknownStateMachine) {}

  /** The index of the last entry applied (or restored). Invariant: never decreases except by restore. */
  get appliedIndex(): number {
    return this.applied;
  }

  /** Whether the state machine keeps its own durable state (its raft snapshots are metadata only). */
  get onDisk(): boolean {
    return this.machine.kind === 'on-disk';
  }

  /** The state machine's command codec. */
  get codec(): CommandCodec<unknown> {
    return this.machine.codec;
  }

  /** Opens an on-disk state machine and takes its applied index; an in-memory one starts at 0. */
  async open(): Promise<void> {
    if (this.opened) throw new Error('state machine opened twice');
    this.opened = true;
    if (this.machine.kind === 'on-disk') this.applied = (await this.machine.open()).appliedIndex;
  }

  /**
   * Applies consecutive entries that follow the applied index; one result per entry. A
   * state machine that returns another number of results broke its contract: fatal.
   */
  async apply(entries: readonly StateMachineEntry<unknown>[]): Promise<readonly unknown[]> {
    const first = entries[0];
    if (first === undefined) return [];
    if (first.index !== this.applied + 1) {
      throw new Error(`apply from index ${first.index}, but the state machine is at ${this.applied}`);
    }
    const results = await this.machine.apply(entries);
    if (results.length !== entries.length) {
      throw new Error(`state machine returned ${results.length} results for ${entries.length} entries`);
    }
    this.applied = first.index + entries.length - 1;
    return results;
  }

  /** A read against the applied state. */
  query(query: unknown): unknown {
    return this.machine.query(query);
  }

  /**
   * A consistent view of the state at the applied index, pinned before this returns for an
   * in-memory state machine (its `snapshot` captures the state at the call).
   */
  openSnapshot(): StateMachineSnapshot | Promise<StateMachineSnapshot> {
    const machine = this.machine;
    if (machine.kind === 'on-disk') return machine.openSnapshot();
    const chunks = machine.snapshot();
    return { index: this.applied, chunks: () => chunks, close: () => {} };
  }

  /** Replaces the state by a snapshot's at `index`; an on-disk state machine must report that index. */
  async restore(index: number, chunks: Iterable<Uint8Array> | AsyncIterable<Uint8Array>): Promise<void> {
    const machine = this.machine;
    if (machine.kind === 'in-memory') {
      await machine.restore(toAsync(chunks));
    } else {
      const { appliedIndex } = await machine.restore(toAsync(chunks));
      if (appliedIndex !== index) {
        throw new Error(`snapshot at index ${index} restored a state machine at ${appliedIndex}`);
      }
    }
    this.applied = index;
  }

  /** Registers the listener of a background failure, for a state machine that reports them. */
  onFailure(listener: (error: unknown) => void): void {
    if (this.machine.kind === 'on-disk') this.machine.onFailure?.(listener);
  }

  /** Makes what was applied durable (nothing to do for an in-memory state machine). */
  async sync(): Promise<void> {
    if (this.machine.kind === 'on-disk') await this.machine.sync();
  }

  /** Closes the state machine. */
  close(): Promise<void> {
    return this.machine.close();
  }
}

async function* toAsync(
  chunks: Iterable<Uint8Array> | AsyncIterable<Uint8Array>,
): AsyncGenerator<Uint8Array> {
  yield* chunks;
}
