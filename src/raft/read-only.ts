/**
 * Linearizable reads by ReadIndex (Raft thesis §6.4). The leader records its commit index
 * for each read, then confirms it is still the leader with one heartbeat round; every read
 * queued before that round is released together (batching) once a quorum answers.
 */
import { assert } from './assert.js';
import type { NodeId } from './types.js';

/** One read request: `from` is the node whose client asked (the leader itself for local reads). */
export interface ReadRequest {
  readonly from: NodeId;
  readonly context: Uint8Array;
  /** The leader's commit index when the request arrived. */
  readonly index: number;
}

/** A heartbeat round confirming leadership for a batch of reads. */
interface ReadRound {
  readonly id: number;
  readonly requests: ReadRequest[];
  readonly acks: Set<NodeId>;
}

/** The leader's queue of reads waiting for leadership confirmation. */
export class ReadOnly {
  /** Requests not yet covered by a heartbeat round. */
  private unsent: ReadRequest[] = [];
  /** Rounds sent, oldest first. Invariant: ids increase. */
  private rounds: ReadRound[] = [];

  /** Queues a request; it is sent with the next round. */
  add(request: ReadRequest): void {
    this.unsent.push(request);
  }

  /** Whether requests wait for a round to be started. */
  hasUnsent(): boolean {
    return this.unsent.length > 0;
  }

  /**
   * Covers every unsent request with heartbeat round `id` (ids must increase). A round with
   * no requests only serves to confirm older ones, so a trailing empty round is replaced
   * rather than kept: the list stays bounded by the rounds that carry reads.
   */
  startRound(self: NodeId, id: number): void {
    const last = this.rounds[this.rounds.length - 1];
    assert(last === undefined || id > last.id, `read round ${id} not after ${last?.id}`);
    if (this.unsent.length === 0 && last !== undefined && last.requests.length === 0) this.rounds.pop();
    this.rounds.push({ id, requests: this.unsent, acks: new Set([self]) });
    this.unsent = [];
  }

  /**
   * Records `from`'s acknowledgement of round `id` and, if `hasQuorum` holds for that round's
   * acknowledgements, releases it and every older round (a later confirmation also confirms
   * leadership at the time of earlier requests).
   */
  ack(id: number, from: NodeId, hasQuorum: (acks: ReadonlySet<NodeId>) => boolean): ReadRequest[] {
    const round = this.rounds.find((r) => r.id === id);
    if (round === undefined) return [];
    round.acks.add(from);
    if (!hasQuorum(round.acks)) return [];
    const released: ReadRequest[] = [];
    while (this.rounds.length > 0 && this.rounds[0]!.id <= id) {
      for (const request of this.rounds.shift()!.requests) released.push(request);
    }
    return released;
  }

  /** Number of requests waiting, sent or not. */
  get pendingCount(): number {
    return this.unsent.length + this.rounds.reduce((n, r) => n + r.requests.length, 0);
  }
}

/** Encodes a round id as a heartbeat context. */
export function encodeRoundId(id: number): Uint8Array {
  const bytes = new Uint8Array(8);
  new DataView(bytes.buffer).setFloat64(0, id);
  return bytes;
}

/** Decodes a heartbeat context back into a round id (0 when it carries none). */
export function decodeRoundId(context: Uint8Array): number {
  if (context.length !== 8) return 0;
  return new DataView(context.buffer, context.byteOffset, 8).getFloat64(0);
}
