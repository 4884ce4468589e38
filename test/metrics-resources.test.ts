/**
 * `/metrics` of a real `flotilla serve` process reports what memory and stalls are judged
 * by: heap, resident memory by kind (checked against the process's own /proc/PID/status),
 * the LMDB store's size and event-loop delay, with plausible values after some writes.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { freePort } from '../src/cli/cluster-command.js';
import { residentMemory } from '../src/server/process-metrics.js';
import { parsePrometheus, sampleValue } from './support/metrics.js';

const MAIN = fileURLToPath(new URL('../src/cli/main.js', import.meta.url));
const MiB = 1024 * 1024;
const cleanups: (() => Promise<void>)[] = [];

after(async () => {
  for (const cleanup of cleanups.reverse()) await cleanup();
});

/** Starts a one-member `flotilla serve`; resolves with its pid and client URL once it takes writes. */
async function startServe(): Promise<{ pid: number; base: string }> {
  const dir = await mkdtemp(join(tmpdir(), 'flotilla-metrics-'));
  const [peer, client] = [await freePort(), await freePort()];
  const args = [
    ...[MAIN, 'serve', '--name', 'a', '--data-dir', join(dir, 'a')],
    ...['--listen-peer', `127.0.0.1:${peer}`, '--listen-client', `127.0.0.1:${client}`],
    ...['--initial-cluster', `a=127.0.0.1:${peer}`],
  ];
  const child = spawn(process.execPath, args, { stdio: 'ignore' });
  cleanups.push(async () => {
    child.kill('SIGKILL');
    await new Promise((resolve) => (child.exitCode !== null ? resolve(null) : child.once('exit', resolve)));
    await rm(dir, { recursive: true, force: true });
  });
  const base = `http://127.0.0.1:${client}`;
  const deadline = Date.now() + 20_000;
  for (;;) {
    const put = await fetch(`${base}/v1/kv/ready`, { method: 'PUT', body: '{"value":"1"}' }).catch(
      () => null,
    );
    if (put?.status === 200) break;
    assert.ok(Date.now() < deadline, 'serve did not take a write within 20 s');
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  assert.ok(child.pid !== undefined);
  return { pid: child.pid, base };
}

test('metrics: heap, RSS by kind, LMDB size and event-loop delay of a real node', async () => {
  const { pid, base } = await startServe();
  const value = 'v'.repeat(4096);
  for (let i = 0; i < 200; i += 20) {
    const puts = Array.from({ length: 20 }, (_, j) =>
      fetch(`${base}/v1/kv/key-${i + j}`, { method: 'PUT', body: JSON.stringify({ value }) }),
    );
    for (const res of await Promise.all(puts)) assert.equal(res.status, 200);
  }
  // LMDB commits run behind the applies (every 100 ms): scrape until all 200 values are in.
  let metrics = parsePrometheus(await (await fetch(`${base}/metrics`)).text());
  for (let tries = 0; sampleValue(metrics, 'flotilla_kv_db_size_in_use_bytes') < 200 * 4096; tries++) {
    assert.ok(tries < 50, 'LMDB did not take 200 values of 4 KiB within 5 s');
    await new Promise((resolve) => setTimeout(resolve, 100));
    metrics = parsePrometheus(await (await fetch(`${base}/metrics`)).text());
  }
  const value_ = (name: string): number => sampleValue(metrics, name);
  for (const name of [
    'flotilla_process_heap_used_bytes',
    'flotilla_process_external_bytes',
    'flotilla_process_array_buffers_bytes',
    'flotilla_process_rss_anon_bytes',
    'flotilla_process_rss_file_bytes',
    'flotilla_kv_db_size_bytes',
    'flotilla_kv_db_size_in_use_bytes',
    'flotilla_event_loop_delay_p99_seconds',
    'flotilla_event_loop_delay_max_seconds',
  ]) {
    assert.equal(metrics.types.get(name), 'gauge', name);
  }
  const heapUsed = value_('flotilla_process_heap_used_bytes');
  assert.ok(heapUsed > 4 * MiB && heapUsed < 1024 * MiB, `heap used ${heapUsed}`);
  assert.ok(value_('flotilla_process_external_bytes') >= value_('flotilla_process_array_buffers_bytes'));
  // The V8 heap is anonymous memory: RssAnon holds it; the process's own /proc agrees in size.
  const anon = value_('flotilla_process_rss_anon_bytes');
  assert.ok(anon > heapUsed && anon < 2048 * MiB, `RssAnon ${anon}, heap ${heapUsed}`);
  const fromProc = residentMemory(pid);
  assert.ok(fromProc !== undefined, 'this test runs on Linux');
  assert.ok(Math.abs(fromProc.anonBytes - anon) < 64 * MiB, `RssAnon ${anon} vs ${fromProc.anonBytes}`);
  assert.ok(value_('flotilla_process_rss_file_bytes') > 0);
  const used = value_('flotilla_kv_db_size_in_use_bytes');
  assert.ok(used <= value_('flotilla_kv_db_size_bytes') && used < 64 * MiB, `LMDB in use ${used}`);
  // Measured from the node's start (not from the first scrape), so the writes' work shows.
  const p99 = value_('flotilla_event_loop_delay_p99_seconds');
  const max = value_('flotilla_event_loop_delay_max_seconds');
  assert.ok(p99 >= 0 && p99 <= max && max > 0 && max < 5, `event-loop delay p99 ${p99} max ${max}`);
});
