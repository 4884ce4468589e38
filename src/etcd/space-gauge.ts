/** The quota check's view of the store's size in use (quota.ts). */

/** How long a measured size in use is trusted before it is measured again, in ms. */
export const SPACE_GAUGE_MAX_AGE_MS = 100;

/**
 * The store's size in use for the quota check, without measuring it on every request (LMDB's
 * page statistics and a `stat` of its file cost more than the rest of the check). Between two
 * measurements it adds the cost of every request it admitted, so its estimate only errs
 * upwards for this member's own requests; an estimate at or over the quota is measured again
 * before anything is refused (freed space is seen at once). What it cannot see within
 * {@link SPACE_GAUGE_MAX_AGE_MS} is other members' writes applied here meanwhile: like etcd's
 * own check, which races with the proposals in flight, the quota may be passed by that much.
 */
export class SpaceGauge {
  #used = 0;
  #pending = 0;
  #measuredAt = Number.NEGATIVE_INFINITY;

  constructor(private readonly measure: () => number) {}

  /** The size in use as last measured. */
  get usedBytes(): number {
    return this.#used;
  }

  /**
   * Whether a request of `cost` bytes fits under `quotaBytes` (strictly below, as etcd's
   * `backendQuota.Available`); an admitted cost counts until the next measurement.
   */
  admit(cost: number, quotaBytes: number, nowMs: number): boolean {
    let fresh = false;
    if (nowMs - this.#measuredAt > SPACE_GAUGE_MAX_AGE_MS) fresh = this.#measure(nowMs);
    if (this.#used + this.#pending + cost >= quotaBytes) {
      // Refused only on a measurement taken for this request.
      if (!fresh) this.#measure(nowMs);
      if (this.#used + cost >= quotaBytes) return false;
    }
    this.#pending += cost;
    return true;
  }

  #measure(nowMs: number): true {
    this.#used = this.measure();
    this.#pending = 0;
    this.#measuredAt = nowMs;
    return true;
  }
}
