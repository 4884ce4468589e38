/**
 * `npm run bench:grpc` (bench/grpc-server.ts) end to end on a tiny load: both servers, each
 * in its own process, serve every call of etcd-load (etcd's Go client) without an error, and
 * the JSON line carries each one's CPU per call, rate and p99 and the ratios between them.
 * Bad flags exit non-zero with a message naming the flag. (The figures themselves are
 * benchmark output, in bench/RESULTS.md, not asserted here.)
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { runProcess } from '../bench/run-process.js';

const BENCH = fileURLToPath(new URL('../bench/grpc-server.js', import.meta.url));

test('bench:grpc: both servers serve every call; the JSON line has both figures and their ratios', async () => {
  const run = await runProcess(process.execPath, [BENCH, '--rounds', '1', '--total', '3000', '--json'], {
    timeoutMs: 600_000,
  });
  assert.equal(run.code, 0, run.stderr);
  const json = JSON.parse(run.stdout.trim().split('\n').pop()!) as Record<
    string,
    Record<string, number> | number
  >;
  for (const kind of ['flotilla', 'grpcjs']) {
    const figures = json[kind] as Record<string, number>;
    assert.ok(
      figures['us_per_call']! > 0 && figures['rps']! > 0 && figures['p99_ms']! > 0,
      JSON.stringify(figures),
    );
  }
  const flotilla = json['flotilla'] as Record<string, number>;
  const grpcjs = json['grpcjs'] as Record<string, number>;
  assert.equal(json['cpu_ratio'], Number((flotilla['us_per_call']! / grpcjs['us_per_call']!).toFixed(3)));
  assert.equal(json['rps_ratio'], Number((flotilla['rps']! / grpcjs['rps']!).toFixed(3)));
  assert.match(run.stdout, /\| Flotilla \(src\/grpc\) \|/);
});

test('bench:grpc: a bad flag exits non-zero naming it', async () => {
  const run = await runProcess(process.execPath, [BENCH, '--rounds', 'two'], { timeoutMs: 30_000 });
  assert.notEqual(run.code, 0);
  assert.match(run.stderr, /--rounds two/);
});
