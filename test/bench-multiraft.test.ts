/**
 * `npm run bench:multiraft -- --json` at its smallest: one idle row and one active row, each
 * from three host processes; the last line is the JSON shape with plausible figures.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { runProcess } from '../bench/run-process.js';

const SCRIPT = fileURLToPath(new URL('../bench/multiraft.js', import.meta.url));

test('bench:multiraft --json prints idle and active rows from three host processes', {
  timeout: 180_000,
}, async () => {
  const args = [SCRIPT, '--json', '--idle', '2', '--active', '2', '--seconds', '1', '--clients', '4'];
  const run = await runProcess(process.execPath, args, { timeoutMs: 170_000 });
  assert.equal(run.code, 0, run.stderr);
  const last = run.stdout.trim().split('\n').at(-1)!;
  const result = JSON.parse(last) as {
    idle: { groups: number; cpu_pct: number; net_bytes_per_s: number; open_ms: number; restart_ms: number }[];
    active: { groups: number; writes_per_s: number; p99_ms: number; errors: number }[];
  };
  assert.equal(result.idle.length, 1);
  const [idle] = result.idle;
  assert.equal(idle!.groups, 2);
  assert.ok(idle!.cpu_pct > 0 && idle!.cpu_pct < 200, `cpu_pct ${idle!.cpu_pct}`);
  assert.ok(idle!.net_bytes_per_s > 0, 'heartbeats flow between the processes');
  assert.ok(idle!.open_ms > 0 && idle!.restart_ms > 0);
  assert.equal(result.active.length, 1);
  const [active] = result.active;
  assert.equal(active!.groups, 2);
  assert.ok(active!.writes_per_s > 0, 'writes commit');
  assert.ok(active!.p99_ms > 0);
});
