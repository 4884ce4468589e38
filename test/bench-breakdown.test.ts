/**
 * The per-stage breakdown of `bench:vs-etcd --breakdown`: parsing Prometheus histograms out
 * of a /metrics text (as prom-client renders it), the difference of two scrapes, the sum over
 * nodes, and quantiles interpolated inside buckets as Prometheus' histogram_quantile does;
 * and the tables made of them, per node role.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Breakdown, type NodeScrape } from '../bench/vs-etcd/breakdown.js';
import {
  histogramDelta,
  histogramQuantile,
  histogramSum,
  parseHistograms,
} from '../bench/vs-etcd/prom-histogram.js';

const METRIC = 'flotilla_write_stage_seconds';

/**
 * The series of one stage's histogram: cumulative `counts` at 1, 2 and 4 ms and +Inf, the
 * sum, the count; `stageFirst` puts the stage label before `le`.
 */
function stageText(stage: string, counts: readonly number[], sum: number, stageFirst = false): string {
  const bounds = ['0.001', '0.002', '0.004', '+Inf'];
  const label = `stage="${stage}"`;
  const buckets = bounds.map((le, i) => {
    const labels = stageFirst ? `${label},le="${le}"` : `le="${le}",${label}`;
    return `${METRIC}_bucket{${labels}} ${counts[i]}\n`;
  });
  return `${buckets.join('')}${METRIC}_sum{${label}} ${sum}\n${METRIC}_count{${label}} ${counts[3]}\n`;
}

/** wal_fsync's series: 4 observations, unchanged between the two scrapes. */
const WAL_FSYNC = stageText('wal_fsync', [0, 2, 4, 4], 0.008);

/** A scrape with stages `propose` (10 observations) and `wal_fsync` (4), in that order. */
const BEFORE = `# HELP flotilla_write_stage_seconds Time a write spends in each stage
# TYPE flotilla_write_stage_seconds histogram
${stageText('propose', [4, 8, 10, 10], 0.012)}${WAL_FSYNC}# HELP flotilla_other_seconds Not this metric
# TYPE flotilla_other_seconds histogram
flotilla_other_seconds_bucket{le="+Inf",stage="propose"} 99
flotilla_write_stage_seconds_total_bogus{stage="propose"} 1
`;

/**
 * The same node later (labels in another order, a timestamp after some values): 100 more
 * `propose` observations, and a new stage whose name needs escaping.
 */
const AFTER = `${stageText('propose', [14, 58, 100, 110], 0.312, true)}${WAL_FSYNC}\
flotilla_write_stage_seconds_bucket{le="0.001",stage="apply \\"x\\", y"} 5 1712345678000
flotilla_write_stage_seconds_bucket{le="+Inf",stage="apply \\"x\\", y"} 5 1712345678000
flotilla_write_stage_seconds_sum{stage="apply \\"x\\", y"} 0.002
flotilla_write_stage_seconds_count{stage="apply \\"x\\", y"} 5
`;

test('parseHistograms: one histogram per stage, in order of first appearance, other metrics ignored', () => {
  const before = parseHistograms(BEFORE, METRIC, 'stage');
  assert.deepEqual([...before.keys()], ['propose', 'wal_fsync']);
  assert.deepEqual(before.get('propose'), {
    buckets: [
      { le: 0.001, count: 4 },
      { le: 0.002, count: 8 },
      { le: 0.004, count: 10 },
      { le: Number.POSITIVE_INFINITY, count: 10 },
    ],
    sum: 0.012,
    count: 10,
  });
  const after = parseHistograms(AFTER, METRIC, 'stage');
  assert.deepEqual([...after.keys()], ['propose', 'wal_fsync', 'apply "x", y'], 'escaped label values');
  assert.equal(after.get('apply "x", y')?.count, 5, 'a timestamp after the value is ignored');
  assert.equal(parseHistograms('# nothing here\n', METRIC, 'stage').size, 0);
});

test('histogramDelta and histogramQuantile: what happened between two scrapes, p50 and p99 interpolated', () => {
  const before = parseHistograms(BEFORE, METRIC, 'stage');
  const after = parseHistograms(AFTER, METRIC, 'stage');
  const propose = histogramDelta(after.get('propose')!, before.get('propose'));
  assert.equal(propose.count, 100);
  assert.ok(Math.abs(propose.sum - 0.3) < 1e-12);
  // Between the scrapes: 10 in (0, 1 ms], 40 in (1, 2], 40 in (2, 4], 10 above 4 ms.
  assert.deepEqual(
    propose.buckets.map((b) => b.count),
    [10, 50, 90, 100],
  );
  // p50: rank 50 is the last of (1, 2] → 2 ms. p25: rank 25, 15 into 40 of (1, 2] → 1.375 ms.
  assert.equal(histogramQuantile(0.5, propose), 0.002);
  assert.ok(Math.abs(histogramQuantile(0.25, propose)! - 0.001375) < 1e-12);
  // p05: rank 5 in the first bucket, from 0 → 0.5 ms.
  assert.ok(Math.abs(histogramQuantile(0.05, propose)! - 0.0005) < 1e-12);
  // p99: rank 99 lies in +Inf → the highest finite bound.
  assert.equal(histogramQuantile(0.99, propose), 0.004);
  // A stage that saw nothing between the scrapes: no quantile.
  const fsync = histogramDelta(after.get('wal_fsync')!, before.get('wal_fsync'));
  assert.equal(fsync.count, 0);
  assert.equal(histogramQuantile(0.5, fsync), null);
  // A stage new since the first scrape counts from zero.
  assert.equal(histogramDelta(after.get('apply "x", y')!, undefined).count, 5);
  // Without a +Inf bucket, or q out of range: no quantile.
  assert.equal(histogramQuantile(0.5, { buckets: [{ le: 1, count: 3 }], sum: 1, count: 3 }), null);
  assert.equal(histogramQuantile(1.5, propose), null);
});

test('histogramSum: two nodes added up bucket by bucket', () => {
  const a = parseHistograms(BEFORE, METRIC, 'stage').get('propose')!;
  const b = parseHistograms(AFTER, METRIC, 'stage').get('propose')!;
  const both = histogramSum(a, b);
  assert.equal(both.count, 120);
  assert.deepEqual(
    both.buckets.map((x) => x.count),
    [18, 66, 110, 120],
  );
  // p50 of the sum: rank 60, 42 into 48 of (1, 2] → 1.875 ms.
  assert.ok(Math.abs(histogramQuantile(0.5, both)! - 0.001875) < 1e-12);
});

test('Breakdown: per role (followers added up), over runs, stages in the leader’s order of appearance', () => {
  const scrape = (role: string, text: string): NodeScrape => ({
    role,
    stages: parseHistograms(text, METRIC, 'stage'),
  });
  const empty = scrape('follower', '');
  const breakdown = new Breakdown();
  // Member 1 is a follower that only saw wal_fsync; member 2 the leader; member 3 another follower.
  breakdown.add(
    'put_1',
    'ours',
    [empty, scrape('leader', BEFORE), empty],
    [scrape('follower', WAL_FSYNC), scrape('leader', AFTER), scrape('follower', WAL_FSYNC)],
  );
  assert.equal(breakdown.has('put_1', 'ours'), true);
  assert.equal(breakdown.has('put_1', 'neutral'), false);
  const rows = breakdown.rows('put_1', 'ours');
  assert.deepEqual(
    rows.map((r) => [r.stage, r.role, r.count]),
    [
      ['propose', 'leader', 100],
      ['wal_fsync', 'follower', 8],
      ['apply "x", y', 'leader', 5],
    ],
  );
  const propose = rows[0]!;
  assert.equal(propose.mean_ms, 3);
  assert.equal(propose.p50_ms, 2);
  assert.equal(propose.p99_ms, 4);
  // The leader saw no wal_fsync during the run: no row for it.
  assert.equal(breakdown.exposed('put_1', 'ours'), true);
  assert.deepEqual(Object.keys(breakdown.json()), ['put_1']);
});
