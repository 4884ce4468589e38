/**
 * The write-stage histogram renders exactly what prom-client's own labelled histogram renders
 * for the same observations (bucket edges, the +Inf bucket, sums, counts, unobserved stages
 * left out), and `resetMetrics` empties it.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Histogram, Registry } from 'prom-client';
import { STAGE_BUCKETS_SECONDS } from '../src/server/metrics.js';
import { StageHistogram } from '../src/server/stage-histogram.js';

const STAGES = ['queue', 'append', 'commit', 'total'] as const;
const NAME = 'flotilla_write_stage_seconds';
const HELP = 'Latency of each stage of a write.';

function both(): {
  ours: StageHistogram<(typeof STAGES)[number]>;
  theirs: Histogram;
  a: Registry;
  b: Registry;
} {
  const a = new Registry();
  const b = new Registry();
  const ours = new StageHistogram({ name: NAME, help: HELP, stages: STAGES, buckets: STAGE_BUCKETS_SECONDS });
  ours.register(a);
  const theirs = new Histogram({
    name: NAME,
    help: HELP,
    labelNames: ['stage'],
    buckets: [...STAGE_BUCKETS_SECONDS],
    registers: [b],
  });
  return { ours, theirs, a, b };
}

test('renders what prom-client renders for the same observations', async () => {
  const { ours, theirs, a, b } = both();
  const observations: [(typeof STAGES)[number], number][] = [
    ['queue', 0],
    ['queue', 0.00002],
    ['queue', 0.000021],
    ['append', 0.003],
    ['append', 2.5],
    ['append', 7],
    ['total', 0.0101],
    ['total', 0.5],
    ['total', 0.5],
  ];
  for (const [stage, seconds] of observations) {
    ours.observe(stage, seconds);
    theirs.observe({ stage }, seconds);
  }
  const rendered = await a.metrics();
  assert.equal(rendered, await b.metrics());
  assert.ok(!rendered.includes('stage="commit"'), 'an unobserved stage is left out');
  assert.match(rendered, /flotilla_write_stage_seconds_bucket\{le="\+Inf",stage="append"\} 3/);
  assert.match(rendered, /flotilla_write_stage_seconds_bucket\{le="0.00002",stage="queue"\} 2/);
});

test('ignores non-finite values and unknown stages; resetMetrics empties it', async () => {
  const { ours, a } = both();
  ours.observe('queue', Number.NaN);
  ours.observe('other' as never, 1);
  assert.equal((await a.metrics()).includes('_count'), false);
  ours.observe('commit', 0.001);
  assert.match(await a.metrics(), /flotilla_write_stage_seconds_count\{stage="commit"\} 1/);
  a.resetMetrics();
  assert.equal((await a.metrics()).includes('_count'), false);
});
