/**
 * `flotilla_write_stage_seconds{stage}`: a Prometheus histogram with one fixed label (the
 * write stage) whose observations cost a bucket search and three array writes. The runtime
 * reports several stages for every write, so prom-client's `Histogram.observe` (which
 * validates and hashes the labels on every call) was a visible share of a server's CPU under
 * load; here the counts live in typed arrays and are turned into prom-client's metric shape
 * only when scraped. The exposition is the one prom-client's own histogram renders.
 */
import type { Registry } from 'prom-client';

/** One sample as prom-client's registry renders it. */
interface Sample {
  readonly labels: Readonly<Record<string, string | number>>;
  /** Labels rendered after `labels` (prom-client's histogram puts `le` first, then these). */
  readonly sharedLabels?: Readonly<Record<string, string>>;
  readonly value: number;
  readonly metricName: string;
}

/** The metric as prom-client's registry reads it from `get()`. */
interface MetricData {
  readonly name: string;
  readonly help: string;
  readonly type: 'histogram';
  readonly aggregator: 'sum';
  readonly values: Sample[];
}

/** A histogram per stage over shared bucket bounds, registered as one prom-client metric. */
export class StageHistogram<Stage extends string> {
  readonly name: string;
  readonly help: string;
  readonly type = 'histogram' as const;
  readonly aggregator = 'sum' as const;
  private readonly rows: ReadonlyMap<string, number>;
  /** Per stage, the count of each bucket (not cumulative), the last one +Inf. */
  private readonly counts: Float64Array;
  private readonly sums: Float64Array;
  private readonly totals: Float64Array;

  constructor(
    options: { name: string; help: string; stages: readonly Stage[]; buckets: readonly number[] },
    private readonly stages: readonly Stage[] = options.stages,
    private readonly bounds: readonly number[] = options.buckets,
  ) {
    this.name = options.name;
    this.help = options.help;
    this.rows = new Map(stages.map((stage, i) => [stage, i]));
    this.counts = new Float64Array(stages.length * (bounds.length + 1));
    this.sums = new Float64Array(stages.length);
    this.totals = new Float64Array(stages.length);
  }

  /** Records that `stage` took `seconds` (a stage it was not built with, or a non-finite value, is ignored). */
  observe(stage: Stage, seconds: number): void {
    const row = this.rows.get(stage);
    if (row === undefined || !Number.isFinite(seconds)) return;
    const bounds = this.bounds;
    let bucket = 0;
    while (bucket < bounds.length && seconds > bounds[bucket]!) bucket++;
    this.counts[row * (bounds.length + 1) + bucket]!++;
    this.sums[row]! += seconds;
    this.totals[row]!++;
  }

  /** Registers this histogram in `registry` (rendered with the rest at each scrape). */
  register(registry: Registry): void {
    registry.registerMetric(this as never);
  }

  /** What prom-client's registry renders: cumulative `_bucket`s, `_sum` and `_count` per stage. */
  get(): MetricData {
    const values: Sample[] = [];
    const width = this.bounds.length + 1;
    this.stages.forEach((stage, row) => {
      // Like prom-client's histogram: a stage appears once it has been observed.
      if (this.totals[row] === 0) return;
      const sharedLabels = { stage };
      let cumulative = 0;
      for (let b = 0; b < width; b++) {
        cumulative += this.counts[row * width + b]!;
        const le = b < this.bounds.length ? this.bounds[b]! : '+Inf';
        values.push({ labels: { le }, sharedLabels, value: cumulative, metricName: `${this.name}_bucket` });
      }
      values.push({ labels: { stage }, value: this.sums[row]!, metricName: `${this.name}_sum` });
      values.push({ labels: { stage }, value: this.totals[row]!, metricName: `${this.name}_count` });
    });
    return { name: this.name, help: this.help, type: 'histogram', aggregator: 'sum', values };
  }

  /** Forgets every observation (prom-client's `Registry.resetMetrics` calls it). */
  reset(): void {
    this.counts.fill(0);
    this.sums.fill(0);
    this.totals.fill(0);
  }
}
