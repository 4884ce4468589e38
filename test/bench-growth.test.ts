/**
 * `npm run bench:growth` end to end with a tiny load: 3-node Flotilla and 3-node etcd, each
 * loaded with 400 distinct keys by etcd-load in ten steps; the JSON's shape, no failed
 * request, every key written (the members' data grows), and plausible memory samples.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import type { GrowthJson } from '../bench/growth/report.js';
import { runProcess } from '../bench/run-process.js';

const GROWTH = fileURLToPath(new URL('../bench/growth.js', import.meta.url));
const KEYS = 400;

test('npm run bench:growth -- --keys 400 --json: per-tenth samples of both systems, no failed request', async () => {
  // It builds etcd-load first (bench/etcd-load/build.sh; about 30 s when not built yet).
  const result = await runProcess(
    process.execPath,
    [GROWTH, '--keys', String(KEYS), '--json', '--no-write'],
    {
      timeoutMs: 400_000,
    },
  );
  assert.equal(result.code, 0, result.stderr.slice(-2000));
  const json = JSON.parse(result.stdout.trim().split('\n').pop() ?? '') as GrowthJson;
  assert.equal(json.keys, KEYS);
  assert.equal(json.value_size, 1024);
  assert.equal(json.errors, 0);
  for (const field of [
    'rps_ratio',
    'p99_ratio',
    'rss_ratio',
    'disk_ratio',
    'last_decile_over_first',
  ] as const) {
    assert.ok(typeof json[field] === 'number' && json[field] > 0, `${field} = ${json[field]}`);
  }
  assert.deepEqual(Object.keys(json.systems).sort(), ['etcd', 'flotilla']);
  for (const [system, r] of Object.entries(json.systems)) {
    assert.equal(r.errors, 0, `${system}: ${JSON.stringify(r.error_kinds)}`);
    assert.deepEqual(r.error_kinds, {});
    assert.ok(r.rps > 0 && r.p99_ms > 0 && r.max_ms >= r.p99_ms, system);
    assert.deepEqual(
      r.steps.map((s) => s.keys),
      Array.from({ length: 10 }, (_, i) => ((i + 1) * KEYS) / 10),
    );
    assert.equal(r.peak_rss_mb.length, 3);
    for (const step of r.steps) {
      assert.equal(step.members.length, 3);
      for (const m of step.members) {
        assert.ok(
          m.rss_anon_mb !== null && m.rss_anon_mb > 1 && m.rss_anon_mb < 4000,
          `${system} ${m.rss_anon_mb}`,
        );
        assert.ok(m.rss_file_mb !== null && m.rss_file_mb > 0, system);
        assert.ok(m.heap_mb !== null && m.heap_mb > 1, `${system} heap ${m.heap_mb}`);
        assert.ok(m.disk_mb > 0, system);
      }
    }
    const peak = Math.max(...r.peak_rss_mb);
    const last = r.steps[r.steps.length - 1]!.members;
    assert.ok(
      last.every((m) => (m.rss_anon_mb ?? 0) + (m.rss_file_mb ?? 0) <= peak + 1),
      system,
    );
  }
});
