/**
 * The KV store as a state machine the runtime drives (state-machine.ts): an on-disk state
 * machine over a {@link KvBackend}. Commands are `KvCommand`s in the KV codec's bytes,
 * results the backend's `KvResult` (null for an entry without a command), queries etcd
 * ranges. The backend keeps its own applied index durably in LMDB, so a restart replays only
 * the log after it. What the etcd and HTTP servers need beyond the interface (watches,
 * leases, hashes, storage statistics) they reach through `KvNode.backend` (kv-node.ts): the
 * KV node made this state machine, so it holds its backend.
 */

import type { CommandCodec, OnDiskStateMachine, StateMachineSnapshot } from '../index.js';
import {
  decodeCommand,
  encodeCommand,
  type KvBackend,
  type KvCommand,
  type KvEntry,
  KvError,
  type KvResult,
  type RangeRequest,
  type RangeResponse,
} from '../kv/index.js';

/** The KV codec (kv/codec.ts) as a command codec. */
export const KV_COMMAND_CODEC: CommandCodec<KvCommand> = Object.freeze({
  encode: encodeCommand,
  decode: decodeCommand,
});

/** The KV store behind the state machine interface; `B` is the backend kind. */
export class KvOnDiskStateMachine<B extends KvBackend = KvBackend>
  implements OnDiskStateMachine<KvCommand, KvResult | null, RangeRequest, RangeResponse>
{
  readonly kind = 'on-disk';
  readonly codec = KV_COMMAND_CODEC;
  private opened: B | undefined;

  /** `openBackend` opens the backend's durable state; it is called once, by {@link open}. */
  constructor(private readonly openBackend: () => B) {}

  /** The open backend; throws `CLOSED` before {@link open}. */
  get backend(): B {
    if (this.opened === undefined) throw new KvError('CLOSED', 'kv: state machine not opened');
    return this.opened;
  }

  /** Opens the backend and reports the index it has applied. */
  async open(): Promise<{ appliedIndex: number }> {
    this.opened ??= this.openBackend();
    return { appliedIndex: this.opened.appliedIndex };
  }

  /**
   * One `applyBatch` for the entries, once the store has room for more work in flight (its
   * back-pressure: LMDB commits run behind the apply path, see src/kv/lmdb-commits.ts).
   */
  apply(entries: readonly KvEntry[]): ReturnType<KvBackend['applyBatch']> | Promise<(KvResult | null)[]> {
    const room = this.backend.backPressure();
    if (room === undefined) return this.backend.applyBatch(entries);
    return room.then(() => this.backend.applyBatch(entries));
  }

  /** Passes on the backend's background failures (a failed LMDB commit). */
  onFailure(listener: (error: unknown) => void): void {
    this.backend.onFailure(listener);
  }

  /** An etcd range against the applied state. */
  query(request: RangeRequest): RangeResponse {
    return this.backend.range(request);
  }

  /** Resolves once everything applied is durable. */
  sync(): Promise<void> {
    return this.backend.sync();
  }

  /** A KV snapshot: one LMDB read transaction, pinned until closed or read to the end. */
  openSnapshot(): StateMachineSnapshot {
    const snapshot = this.backend.snapshot();
    return {
      index: snapshot.meta.appliedIndex,
      chunks: () => snapshot,
      close: () => snapshot.release(),
    };
  }

  /** Replaces the store by a KV snapshot's chunks (verified before anything changes). */
  async restore(chunks: AsyncIterable<Uint8Array>): Promise<{ appliedIndex: number }> {
    await this.backend.restore(chunks);
    return { appliedIndex: this.backend.appliedIndex };
  }

  /** Closes the backend (if it was opened). */
  async close(): Promise<void> {
    await this.opened?.close();
  }
}
