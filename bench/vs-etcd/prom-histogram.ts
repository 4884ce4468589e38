/**
 * Prometheus histograms from the text exposition format (as prom-client renders /metrics):
 * parsing the `_bucket{le=...}`, `_sum` and `_count` series of one metric, the difference
 * of two scrapes, the sum over nodes, and quantiles estimated as Prometheus'
 * `histogram_quantile` does (linear interpolation inside the bucket). Pure functions.
 */

/** One cumulative bucket: how many observations were at most `le`. */
export interface Bucket {
  readonly le: number;
  readonly count: number;
}

/** A histogram: cumulative buckets in increasing `le` (the last one +Inf), sum and count. */
export interface Histogram {
  readonly buckets: readonly Bucket[];
  readonly sum: number;
  readonly count: number;
}

/** One sample line: its series name, labels and value. */
interface Sample {
  readonly name: string;
  readonly labels: ReadonlyMap<string, string>;
  readonly value: number;
}

function parseValue(text: string): number {
  if (text === '+Inf' || text === 'Inf') return Number.POSITIVE_INFINITY;
  if (text === '-Inf') return Number.NEGATIVE_INFINITY;
  return Number(text);
}

const UNESCAPE: Record<string, string> = { n: '\n', '\\': '\\', '"': '"' };

/** Parses `{a="x",b="y\"z"}` starting at `text[at] === '{'`; returns the labels and the index after '}'. */
function parseLabels(text: string, at: number): { labels: Map<string, string>; end: number } | null {
  const labels = new Map<string, string>();
  let i = at + 1;
  for (;;) {
    while (text[i] === ' ' || text[i] === ',') i++;
    if (text[i] === '}') return { labels, end: i + 1 };
    const name = /^[a-zA-Z_][a-zA-Z0-9_]*/.exec(text.slice(i))?.[0];
    if (name === undefined || text[i + name.length] !== '=' || text[i + name.length + 1] !== '"') return null;
    i += name.length + 2;
    let value = '';
    while (i < text.length && text[i] !== '"') {
      if (text[i] === '\\') {
        value += UNESCAPE[text[i + 1] ?? ''] ?? `\\${text[i + 1] ?? ''}`;
        i += 2;
      } else {
        value += text[i++];
      }
    }
    if (i >= text.length) return null;
    labels.set(name, value);
    i++;
  }
}

/** One line of the exposition format as a sample; null for comments, blank or malformed lines. */
function parseSample(line: string): Sample | null {
  const text = line.trim();
  if (text === '' || text.startsWith('#')) return null;
  const name = /^[a-zA-Z_:][a-zA-Z0-9_:]*/.exec(text)?.[0];
  if (name === undefined) return null;
  let labels = new Map<string, string>();
  let rest = text.slice(name.length);
  if (rest.startsWith('{')) {
    const parsed = parseLabels(text, name.length);
    if (parsed === null) return null;
    labels = parsed.labels;
    rest = text.slice(parsed.end);
  }
  const value = parseValue(rest.trim().split(/\s+/)[0] ?? '');
  return Number.isNaN(value) ? null : { name, labels, value };
}

interface Accumulating {
  readonly buckets: Map<number, number>;
  sum: number;
  count: number;
}

function freeze(h: Accumulating): Histogram {
  const buckets = [...h.buckets].map(([le, count]) => ({ le, count })).sort((a, b) => a.le - b.le);
  return { buckets, sum: h.sum, count: h.count };
}

/**
 * The histograms of `metric` in `text`, one per value of label `by` ('' where it is absent),
 * in order of first appearance; series that differ only in other labels are added up.
 */
export function parseHistograms(text: string, metric: string, by: string): Map<string, Histogram> {
  const found = new Map<string, Accumulating>();
  for (const line of text.split('\n')) {
    const sample = parseSample(line);
    if (sample === null || !sample.name.startsWith(metric)) continue;
    const suffix = sample.name.slice(metric.length);
    if (suffix !== '_bucket' && suffix !== '_sum' && suffix !== '_count') continue;
    const key = sample.labels.get(by) ?? '';
    let h = found.get(key);
    if (h === undefined) {
      h = { buckets: new Map(), sum: 0, count: 0 };
      found.set(key, h);
    }
    if (suffix === '_sum') h.sum += sample.value;
    else if (suffix === '_count') h.count += sample.value;
    else {
      const le = parseValue(sample.labels.get('le') ?? '');
      if (!Number.isNaN(le)) h.buckets.set(le, (h.buckets.get(le) ?? 0) + sample.value);
    }
  }
  return new Map([...found].map(([key, h]) => [key, freeze(h)]));
}

/** `a + sign * b`, bucket by bucket (buckets missing from one side count as 0). */
function combine(a: Histogram, b: Histogram, sign: 1 | -1): Histogram {
  const buckets = new Map<number, number>();
  for (const { le, count } of a.buckets) buckets.set(le, count);
  for (const { le, count } of b.buckets) buckets.set(le, (buckets.get(le) ?? 0) + sign * count);
  return freeze({ buckets, sum: a.sum + sign * b.sum, count: a.count + sign * b.count });
}

/** What was observed between two scrapes: `after - before`. */
export function histogramDelta(after: Histogram, before: Histogram | undefined): Histogram {
  return before === undefined ? after : combine(after, before, -1);
}

/** Two histograms (of two nodes, or two runs) added up. */
export function histogramSum(a: Histogram, b: Histogram): Histogram {
  return combine(a, b, 1);
}

/**
 * The `q`-quantile (0..1) as Prometheus' `histogram_quantile` estimates it: the bucket that
 * holds the rank, and linear interpolation between its bounds (the first bucket's lower
 * bound is 0; a rank in the +Inf bucket gives the highest finite bound). Null when there are
 * no observations, no +Inf bucket, or `q` is outside [0, 1].
 */
export function histogramQuantile(q: number, h: Histogram): number | null {
  const buckets = h.buckets;
  const last = buckets[buckets.length - 1];
  if (buckets.length < 2 || last === undefined || last.le !== Number.POSITIVE_INFINITY) return null;
  if (last.count <= 0 || !(q >= 0 && q <= 1)) return null;
  const rank = q * last.count;
  const b = buckets.findIndex((bucket) => bucket.count >= rank);
  if (b === buckets.length - 1) return buckets[buckets.length - 2]!.le;
  const upper = buckets[b]!;
  if (b === 0 && upper.le <= 0) return upper.le;
  const lowerLe = b === 0 ? 0 : buckets[b - 1]!.le;
  const lowerCount = b === 0 ? 0 : buckets[b - 1]!.count;
  const inBucket = upper.count - lowerCount;
  if (inBucket <= 0) return upper.le;
  return lowerLe + (upper.le - lowerLe) * ((rank - lowerCount) / inBucket);
}
