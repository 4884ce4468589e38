/**
 * The state machine interface (public): what the runtime drives. A replica replicates a
 * state machine's commands as bytes, applies them in log order on every member, serves reads
 * from it, and snapshots it so the log can be compacted. The KV store is one implementation
 * (src/db/kv-state-machine.ts); a user's counter is another (examples/counter.ts).
 *
 * Two kinds (Dragonboat's split, see docs/runtime-design.md):
 * - {@link InMemoryStateMachine}: the whole state lives in memory; the runtime restores it
 *   from the latest snapshot and replays the log after it on every start.
 * - {@link OnDiskStateMachine}: the state machine keeps its own durable state and reports
 *   the index it has applied durably; the runtime replays only what follows.
 *
 * Rules for every implementation:
 * - `apply` is deterministic: the same entries on the same state give the same state and the
 *   same results on every member (no clock, no randomness, no I/O whose outcome can differ;
 *   time comes in commands, as the KV's lease expiry does).
 * - `apply` sees every index exactly once, in order, with no gap, from the index after the
 *   one it was opened or restored at.
 * - A throw from `apply`, `restore` or `sync` is fatal for the replica: it cannot skip an
 *   entry, so the node stops (`FATAL`) and must be restarted. A deterministic refusal of a
 *   command is a result, not a throw.
 * - `query` never changes state.
 */

/** Turns commands into the bytes the log stores and replicates, and back. */
export interface CommandCodec<C> {
  /** The command's bytes. Called once, on the member that proposes it. */
  encode(command: C): Uint8Array;
  /**
   * The command from its bytes, on every member that applies it. Deterministic; a throw
   * (malformed bytes) makes the entry reach `apply` as `command: null` on every member and
   * fails the proposal where it was made.
   */
  decode(bytes: Uint8Array): C;
}

/** One committed log entry as a state machine sees it. */
export interface StateMachineEntry<C> {
  /** Its raft log index: consecutive across calls. */
  readonly index: number;
  /**
   * The command; null for an entry the runtime uses itself (a leader's no-op, a conf change,
   * a member update) or one whose bytes did not decode. The state machine records the index
   * as applied and returns any result (it is ignored).
   */
  readonly command: C | null;
}

/**
 * What both kinds share. `C` is a command, `R` the result of applying one, `Q` a query,
 * `A` a query's answer.
 */
export interface StateMachineCommon<C, R, Q, A> {
  readonly codec: CommandCodec<C>;
  /**
   * Applies committed entries in index order and returns one result per entry, in the same
   * order; the runtime resolves a `propose` with its entry's result on the member that made
   * it. Deterministic (see the file comment). The runtime calls it again only after the
   * previous call settled. A throw or rejection is fatal.
   */
  apply(entries: readonly StateMachineEntry<C>[]): readonly R[] | Promise<readonly R[]>;
  /**
   * Answers a query from the applied state. The runtime calls it once this member has
   * applied up to the read's index (linearizable) or at once (serializable). Must not change
   * state; a throw rejects that read only.
   */
  query(query: Q): A | Promise<A>;
  /**
   * Releases the state machine's resources; the runtime calls it last, once: on stop, or
   * when the node fails to start (then possibly before `open`).
   */
  close(): Promise<void>;
}

/** A state machine whose whole state is in memory, snapshotted by serializing it. */
export interface InMemoryStateMachine<C, R, Q, A> extends StateMachineCommon<C, R, Q, A> {
  readonly kind: 'in-memory';
  /**
   * A consistent copy of the state as of the call: the state must be captured before this
   * returns (entries applied while the stream is read must not show in it). The runtime
   * stores the chunks as the snapshot file, off the event loop's critical path.
   */
  snapshot(): AsyncIterable<Uint8Array> | Iterable<Uint8Array>;
  /**
   * Replaces the whole state by a stream from {@link InMemoryStateMachine.snapshot} (on
   * start, or from the leader). A throw is fatal.
   */
  restore(chunks: AsyncIterable<Uint8Array>): Promise<void>;
}

/** A pinned, consistent view of an on-disk state machine's state (see `openSnapshot`). */
export interface StateMachineSnapshot {
  /** The applied index the view captures. */
  readonly index: number;
  /** The view's chunks; read once. */
  chunks(): AsyncIterable<Uint8Array> | Iterable<Uint8Array>;
  /** Releases the view (idempotent); the runtime calls it whether or not it read the chunks. */
  close(): void;
}

/** A state machine that keeps its own durable state (the KV store on LMDB). */
export interface OnDiskStateMachine<C, R, Q, A> extends StateMachineCommon<C, R, Q, A> {
  readonly kind: 'on-disk';
  /**
   * Opens its durable state, once, before anything else; reports the index it has applied
   * (0 when new). The runtime replays the log from the next index; every entry at or below
   * it must be durable, or a crash would lose it.
   */
  open(): Promise<{ appliedIndex: number }>;
  /**
   * Makes everything applied so far durable. The runtime calls it before it compacts the
   * log behind the applied index.
   */
  sync(): Promise<void>;
  /**
   * Pins one consistent view of the state (an LMDB read transaction) at its applied index.
   * The raft snapshot of an on-disk state machine is metadata only: the runtime opens a view
   * only when a follower needs the state, and streams its chunks to it as the connection
   * drains (so the view may stay pinned for as long as the transfer takes).
   */
  openSnapshot(): StateMachineSnapshot | Promise<StateMachineSnapshot>;
  /**
   * Replaces the whole state by chunks from {@link OnDiskStateMachine.openSnapshot};
   * nothing changes unless all of it arrived intact. Resolves with the applied index of the
   * restored state (the runtime checks it against the snapshot's). A throw is fatal.
   */
  restore(chunks: AsyncIterable<Uint8Array>): Promise<{ appliedIndex: number }>;
  /**
   * Optional: registers the runtime's listener for a failure of work the state machine does
   * in the background (the KV store's LMDB commits run behind `apply`). The state machine is
   * unusable from then on; the runtime stops the node, as it does when its WAL fails.
   */
  onFailure?(listener: (error: unknown) => void): void;
}

/** Any state machine the runtime can drive. */
export type StateMachine<C, R, Q, A> = InMemoryStateMachine<C, R, Q, A> | OnDiskStateMachine<C, R, Q, A>;
