/**
 * The entry list the search walks: call/return events in time order, with O(1) removal and LIFO
 * re-insertion.
 */
import type { Operation } from './linearizability-history.js';

/** Head sentinel of the entry list. */
export const HEAD = 0;
/** Entry kind: an operation's return. */
export const RETURN_ENTRY = 0;
/** Entry kind: the call of a completed operation. */
export const CALL_ENTRY = 1;
/** Entry kind: the call of an operation whose outcome is unknown (it has no return entry). */
const PENDING_CALL_ENTRY = 2;

/**
 * Entries are numbered from 1 in time order, 0 being the head sentinel and -1 "none". A pending
 * operation returns at +infinity: it gets no return entry, so it stays a candidate from its call
 * on. (Trying pending operations at their call position, as Porcupine does, measured far faster
 * than deferring them until other candidates fail: eagerly linearized lost writes are usually
 * overwritten harmlessly, whereas deferring them makes the search commit to wrong orders first.)
 *
 * Removal leaves an entry's own links intact so that undoing removals in reverse order restores the
 * list exactly ("dancing links"), which is all a depth-first search needs.
 */
export class EntryList {
  readonly next: Int32Array;
  readonly prev: Int32Array;
  /** Entry -> operation index. */
  readonly opOf: Int32Array;
  /** Entry -> RETURN_ENTRY, CALL_ENTRY or PENDING_CALL_ENTRY. */
  readonly kind: Uint8Array;
  /** Operation index -> its return entry (completed operations only). */
  private readonly returnEntry: Int32Array;

  constructor(ops: readonly Operation[]) {
    const order = sortEvents(ops);
    const size = order.length + 1;
    this.next = new Int32Array(size).fill(-1);
    this.prev = new Int32Array(size).fill(-1);
    this.opOf = new Int32Array(size);
    this.kind = new Uint8Array(size);
    this.returnEntry = new Int32Array(ops.length);
    order.forEach((event, k) => {
      const entry = k + 1;
      const op = event >> 1;
      this.opOf[entry] = op;
      this.prev[entry] = entry - 1;
      this.next[entry - 1] = entry;
      if ((event & 1) === 0) {
        this.kind[entry] = RETURN_ENTRY;
        this.returnEntry[op] = entry;
      } else {
        this.kind[entry] = ops[op]!.return === undefined ? PENDING_CALL_ENTRY : CALL_ENTRY;
      }
    });
  }

  /** Removes call entry `call` and, for a completed operation, its return entry. */
  lift(call: number): void {
    this.unlink(call);
    if (this.kind[call] === CALL_ENTRY) this.unlink(this.returnEntry[this.opOf[call]!]!);
  }

  /** Undoes the matching {@link lift}; must be called in reverse order of the lifts. */
  unlift(call: number): void {
    if (this.kind[call] === CALL_ENTRY) this.relink(this.returnEntry[this.opOf[call]!]!);
    this.relink(call);
  }

  private unlink(entry: number): void {
    const prev = this.prev[entry]!;
    const next = this.next[entry]!;
    this.next[prev] = next;
    if (next !== -1) this.prev[next] = prev;
  }

  private relink(entry: number): void {
    const next = this.next[entry]!;
    this.next[this.prev[entry]!] = entry;
    if (next !== -1) this.prev[next] = entry;
  }
}

/**
 * Orders the events (event = op * 2 + isCall; pending operations have no return event) by time. At
 * equal times: returns of ordinary ops, then calls of zero-length ops, then their returns, then
 * calls of ordinary ops, so that a return at t precedes a call at t (see the module comment).
 * Remaining ties break by op index.
 */
function sortEvents(ops: readonly Operation[]): number[] {
  const time = new Float64Array(2 * ops.length);
  const rank = new Uint8Array(2 * ops.length);
  const events: number[] = [];
  ops.forEach((op, i) => {
    const instant = op.return === op.call;
    if (op.return !== undefined) {
      events.push(2 * i);
      time[2 * i] = op.return;
      rank[2 * i] = instant ? 2 : 0;
    }
    events.push(2 * i + 1);
    time[2 * i + 1] = op.call;
    rank[2 * i + 1] = instant ? 1 : 3;
  });
  return events.sort((a, b) => time[a]! - time[b]! || rank[a]! - rank[b]! || (a >> 1) - (b >> 1));
}
