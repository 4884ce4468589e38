/**
 * The in-flight window of append messages to one follower: a bounded ring buffer of the
 * last index of each message sent and not yet acknowledged, limited both in count and bytes.
 */
import { assert } from './assert.js';

/** Flow-control window for pipelined appends. */
export class Inflights {
  private readonly indexes: number[];
  private readonly sizes: number[];
  private start = 0;
  private count = 0;
  private bytes = 0;

  /**
   * @param countMax messages that may be in flight at once
   * @param bytesMax payload bytes that may be in flight at once (0 = no byte limit)
   */
  constructor(
    private readonly countMax: number,
    private readonly bytesMax: number,
  ) {
    assert(countMax > 0, 'inflight window needs room for at least one message');
    this.indexes = new Array<number>(countMax).fill(0);
    this.sizes = new Array<number>(countMax).fill(0);
  }

  /** Records a message whose last entry is `index`. Indexes must increase. */
  add(index: number, bytes: number): void {
    assert(!this.full(), 'cannot add to a full inflight window');
    if (this.count > 0) {
      const last = this.indexes[(this.start + this.count - 1) % this.countMax]!;
      assert(index > last, `inflight index ${index} not after ${last}`);
    }
    const slot = (this.start + this.count) % this.countMax;
    this.indexes[slot] = index;
    this.sizes[slot] = bytes;
    this.count++;
    this.bytes += bytes;
  }

  /** Frees every message whose last index is `<= index` (they have been acknowledged). */
  freeLE(index: number): void {
    while (this.count > 0 && this.indexes[this.start]! <= index) {
      this.bytes -= this.sizes[this.start]!;
      this.start = (this.start + 1) % this.countMax;
      this.count--;
    }
    if (this.count === 0) this.start = 0;
  }

  /**
   * Frees the oldest message. Used when a heartbeat answer shows the peer is alive while the
   * window is full: an append in the window may have been lost, and one more send lets the
   * peer reveal the gap (it rejects), which moves it back to probing.
   */
  freeFirstOne(): void {
    if (this.count === 0) return;
    this.freeLE(this.indexes[this.start]!);
  }

  /** Whether no more messages may be sent until some are acknowledged. */
  full(): boolean {
    return this.count === this.countMax || (this.bytesMax > 0 && this.bytes >= this.bytesMax);
  }

  /** Number of messages in flight. */
  get length(): number {
    return this.count;
  }

  /** Forgets everything in flight (on a change of replication state). */
  reset(): void {
    this.start = 0;
    this.count = 0;
    this.bytes = 0;
  }
}
