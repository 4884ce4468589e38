/**
 * Latency recording and the report `flotilla bench` prints: the same summary, histogram and
 * latency distribution as etcd's `benchmark` tool (etcd's `pkg/report`), so the two tools'
 * outputs read alike, plus a JSON form.
 *
 * Latencies go into an HdrHistogram (microseconds, 3 significant digits) for percentiles and
 * the histogram; the fastest, slowest, mean and standard deviation are kept exactly. Failed
 * requests are not latencies: they are counted by message, as etcd's report does, and
 * requests/sec counts successes only.
 */
import { build, type JsHistogram } from 'hdr-histogram-js';

/** The percentiles etcd's report prints (its list plus 99.9). */
export const PERCENTILES = [10, 25, 50, 75, 90, 95, 99, 99.9] as const;

/** Buckets of the response time histogram (etcd's report uses 10, with 11 marks). */
const HISTOGRAM_BUCKETS = 10;
/** Widest bar of the text histogram, in characters (etcd's). */
const BAR_WIDTH = 40;

/** Collects the outcome of every request of one run. */
export class LatencyRecorder {
  private readonly histogram = build({ numberOfSignificantValueDigits: 3 }) as JsHistogram;
  private count = 0;
  private meanMs = 0;
  /** Sum of squared differences from the mean (Welford). */
  private m2 = 0;
  private minMs = Number.POSITIVE_INFINITY;
  private maxMs = 0;
  private readonly errorCounts = new Map<string, number>();
  private errorTotal = 0;

  /** One successful request that took `ms` milliseconds. */
  record(ms: number): void {
    const value = Math.max(ms, 0);
    // Rounded down, so that the histogram's value is never above the true latency.
    this.histogram.recordValue(Math.floor(value * 1000));
    this.count++;
    const delta = value - this.meanMs;
    this.meanMs += delta / this.count;
    this.m2 += delta * (value - this.meanMs);
    if (value < this.minMs) this.minMs = value;
    if (value > this.maxMs) this.maxMs = value;
  }

  /** One failed request. */
  recordError(message: string): void {
    this.errorTotal++;
    this.errorCounts.set(message, (this.errorCounts.get(message) ?? 0) + 1);
  }

  /** Successful requests so far. */
  get succeeded(): number {
    return this.count;
  }

  /** Failed requests so far. */
  get errors(): number {
    return this.errorTotal;
  }

  /** The summary of everything recorded, for a run that took `durationMs`. */
  summarize(durationMs: number): Summary {
    const percentiles = PERCENTILES.map((p) => ({
      percentile: p,
      ms: this.count === 0 ? 0 : this.histogram.getValueAtPercentile(p) / 1000,
    }));
    const fastestMs = this.count === 0 ? 0 : this.minMs;
    const slowestMs = this.maxMs;
    return {
      total: this.count + this.errorTotal,
      succeeded: this.count,
      errors: this.errorTotal,
      durationMs,
      rps: durationMs > 0 ? this.count / (durationMs / 1000) : 0,
      fastestMs,
      slowestMs,
      meanMs: this.meanMs,
      stddevMs: this.count === 0 ? 0 : Math.sqrt(this.m2 / this.count),
      percentiles,
      histogram: this.buckets(fastestMs, slowestMs),
      errorCounts: [...this.errorCounts.entries()].map(([message, count]) => ({ message, count })),
    };
  }

  /** etcd's histogram: 10 equal-width buckets from the fastest to the slowest; `count` is of latencies ≤ `leMs` (and above the previous mark). */
  private buckets(fastestMs: number, slowestMs: number): HistogramBucket[] {
    if (this.count === 0) return [];
    const width = (slowestMs - fastestMs) / HISTOGRAM_BUCKETS;
    const marks: number[] = [];
    for (let i = 0; i < HISTOGRAM_BUCKETS; i++) marks.push(fastestMs + width * i);
    marks.push(slowestMs);
    const counts = marks.map(() => 0);
    const iterator = this.histogram.recordedValuesIterator;
    iterator.reset();
    let bucket = 0;
    while (iterator.hasNext()) {
      const step = iterator.next();
      // The histogram's equivalent range of this value; its lowest end is ≤ the true latency.
      const ms = this.histogram.lowestEquivalentValue(step.valueIteratedTo) / 1000;
      while (bucket < marks.length - 1 && ms > marks[bucket]!) bucket++;
      counts[bucket] = (counts[bucket] ?? 0) + step.countAtValueIteratedTo;
    }
    return marks.map((leMs, i) => ({ leMs, count: counts[i] ?? 0 }));
  }
}

/** One bar of the response time histogram. */
export interface HistogramBucket {
  readonly leMs: number;
  readonly count: number;
}

/** What one run measured. */
export interface Summary {
  /** Requests issued (succeeded + errors). */
  readonly total: number;
  readonly succeeded: number;
  readonly errors: number;
  readonly durationMs: number;
  /** Successful requests per second over the whole run. */
  readonly rps: number;
  readonly fastestMs: number;
  readonly slowestMs: number;
  readonly meanMs: number;
  readonly stddevMs: number;
  readonly percentiles: readonly { readonly percentile: number; readonly ms: number }[];
  readonly histogram: readonly HistogramBucket[];
  readonly errorCounts: readonly { readonly message: string; readonly count: number }[];
}

/** A summary's latency at `percentile` (one of {@link PERCENTILES}), in ms. */
export function percentileMs(summary: Summary, percentile: number): number {
  return summary.percentiles.find((p) => p.percentile === percentile)?.ms ?? 0;
}

function formatNumber(value: number, precise: boolean): string {
  return precise ? String(value) : value.toFixed(4);
}

/**
 * The summary as etcd's `benchmark` prints it: seconds with 4 decimals (`precise`: full
 * precision), the histogram with bars of `∎`, the latency distribution, the errors.
 */
export function formatSummary(summary: Summary, precise = false): string {
  const sec = (ms: number): string => `${formatNumber(ms / 1000, precise)} secs`;
  let text = '';
  if (summary.succeeded > 0) {
    text += '\nSummary:\n';
    text += `  Total:\t${sec(summary.durationMs)}.\n`;
    text += `  Slowest:\t${sec(summary.slowestMs)}.\n`;
    text += `  Fastest:\t${sec(summary.fastestMs)}.\n`;
    text += `  Average:\t${sec(summary.meanMs)}.\n`;
    text += `  Stddev:\t${sec(summary.stddevMs)}.\n`;
    text += `  Requests/sec:\t${formatNumber(summary.rps, precise)}\n`;
    text += '\nResponse time histogram:\n';
    const most = Math.max(0, ...summary.histogram.map((b) => b.count));
    for (const bucket of summary.histogram) {
      const bar = most > 0 ? Math.floor((bucket.count * BAR_WIDTH) / most) : 0;
      text += `  ${formatNumber(bucket.leMs / 1000, precise)} [${bucket.count}]\t|${'∎'.repeat(bar)}\n`;
    }
    text += '\nLatency distribution:\n';
    for (const { percentile, ms } of summary.percentiles) {
      if (ms > 0) text += `  ${percentile}% in ${sec(ms)}.\n`;
    }
  }
  if (summary.errors > 0) {
    text += '\nError distribution:\n';
    for (const { message, count } of summary.errorCounts) text += `  [${count}]\t${message}\n`;
  }
  return text;
}

/** Rounds to microseconds (ms with 3 decimals), the resolution of the recorded latencies. */
function roundMs(ms: number): number {
  return Math.round(ms * 1000) / 1000;
}

/** The JSON form of one summary (latencies in milliseconds). */
export interface SummaryJson {
  total: number;
  succeeded: number;
  errors: number;
  duration_s: number;
  rps: number;
  latency_ms: {
    min: number;
    mean: number;
    stddev: number;
    max: number;
    p10: number;
    p25: number;
    p50: number;
    p75: number;
    p90: number;
    p95: number;
    p99: number;
    p999: number;
  };
  histogram: { le_ms: number; count: number }[];
  error_counts: Record<string, number>;
}

/** The summary as one JSON-ready object. */
export function summaryJson(summary: Summary): SummaryJson {
  const p = (percentile: number): number => roundMs(percentileMs(summary, percentile));
  return {
    total: summary.total,
    succeeded: summary.succeeded,
    errors: summary.errors,
    duration_s: Math.round(summary.durationMs) / 1000,
    rps: Math.round(summary.rps * 100) / 100,
    latency_ms: {
      min: roundMs(summary.fastestMs),
      mean: roundMs(summary.meanMs),
      stddev: roundMs(summary.stddevMs),
      max: roundMs(summary.slowestMs),
      p10: p(10),
      p25: p(25),
      p50: p(50),
      p75: p(75),
      p90: p(90),
      p95: p(95),
      p99: p(99),
      p999: p(99.9),
    },
    histogram: summary.histogram.map((b) => ({ le_ms: roundMs(b.leMs), count: b.count })),
    error_counts: Object.fromEntries(summary.errorCounts.map((e) => [e.message, e.count])),
  };
}
