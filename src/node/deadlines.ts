/**
 * When requests expire, with one timer for all of them rather than a `setTimeout` per request
 * (a timer object created and cancelled for every proposal was a per-write cost).
 *
 * Requests are numbered in the order they arrive and each has a timeout; requests with the
 * same timeout therefore expire in arrival order, so each timeout value gets a FIFO of
 * (number, deadline) pairs, kept as plain numbers (nothing of a request is retained after it
 * settles). The one timer is armed for the earliest head among the FIFOs. A request that
 * settled before its deadline is skipped when it reaches the head; once nothing is pending
 * every FIFO is emptied and the timer cancelled, so no timer outlives the requests.
 */

/** One timeout value's requests, in arrival (and so deadline) order. */
interface Fifo {
  readonly ids: number[];
  readonly at: number[];
  head: number;
}

/** Drops the consumed front of a FIFO once it is most of the arrays. */
const COMPACT_AFTER = 1024;

/** The deadlines of pending requests, firing `expire(id)` for those still pending when theirs passes. */
export class Deadlines {
  private readonly fifos = new Map<number, Fifo>();
  private timer: NodeJS.Timeout | undefined;
  private timerAt = Number.POSITIVE_INFINITY;

  constructor(
    /** The clock deadlines are measured on, in milliseconds (performance.now). */
    private readonly now: () => number,
    /** Whether request `id` is still pending (a settled one is skipped). */
    private readonly pending: (id: number) => boolean,
    /** Request `id` is pending past its deadline. */
    private readonly expire: (id: number) => void,
  ) {}

  /** Request `id` (greater than every earlier one) expires `timeoutMs` from now. */
  add(id: number, timeoutMs: number): void {
    let fifo = this.fifos.get(timeoutMs);
    if (fifo === undefined) {
      fifo = { ids: [], at: [], head: 0 };
      this.fifos.set(timeoutMs, fifo);
    }
    const at = this.now() + timeoutMs;
    fifo.ids.push(id);
    fifo.at.push(at);
    if (at < this.timerAt) this.arm(at);
  }

  /** Forgets every deadline and cancels the timer (nothing is pending). */
  clear(): void {
    this.fifos.clear();
    clearTimeout(this.timer);
    this.timer = undefined;
    this.timerAt = Number.POSITIVE_INFINITY;
  }

  private arm(at: number): void {
    clearTimeout(this.timer);
    this.timerAt = at;
    this.timer = setTimeout(() => this.fire(), Math.max(1, Math.ceil(at - this.now())));
  }

  /** Expires every pending request whose deadline passed, then re-arms for the next one. */
  private fire(): void {
    this.timer = undefined;
    this.timerAt = Number.POSITIVE_INFINITY;
    const now = this.now();
    const due: number[] = [];
    let next = Number.POSITIVE_INFINITY;
    for (const [timeoutMs, fifo] of this.fifos) {
      while (fifo.head < fifo.ids.length) {
        const id = fifo.ids[fifo.head]!;
        if (this.pending(id) && fifo.at[fifo.head]! > now) break;
        if (this.pending(id)) due.push(id);
        fifo.head++;
      }
      if (fifo.head === fifo.ids.length) this.fifos.delete(timeoutMs);
      else {
        next = Math.min(next, fifo.at[fifo.head]!);
        compact(fifo);
      }
    }
    if (next < Number.POSITIVE_INFINITY) this.arm(next);
    for (const id of due) this.expire(id);
  }
}

function compact(fifo: Fifo): void {
  if (fifo.head < COMPACT_AFTER || fifo.head * 2 < fifo.ids.length) return;
  fifo.ids.splice(0, fifo.head);
  fifo.at.splice(0, fifo.head);
  fifo.head = 0;
}
