/**
 * The `watch_fanout` row: `--watchers` watchers of one key over `--conns` connections (the
 * `etcd3` npm client), then `--puts` puts of that key, one at a time from one more
 * connection; each put's latency is from its start until every watcher has its event.
 * Prints the figures as `flotilla bench --json` does (req/s: puts per second).
 *
 *   node dist/bench/vs-etcd/watch-fanout.js --endpoints a,b,c --watchers 1000 --conns 10 --puts 100
 */
import { connect, flag, quantile } from './etcd3-clients.js';

const KEY = 'fanout';
/** How long one put's events may take to reach every watcher. */
const EVENT_TIMEOUT_MS = 30_000;

async function main(): Promise<void> {
  const endpoints = flag('endpoints', '').split(',');
  const watchers = Number(flag('watchers', '1000'));
  const conns = Number(flag('conns', '10'));
  const puts = Number(flag('puts', '100'));
  const clients = connect(endpoints, conns + 1);
  const writer = clients.pop()!;
  let arrived = 0;
  let expected = '';
  let onAll: (() => void) | undefined;
  const creates = Array.from({ length: watchers }, async (_, i) => {
    const watcher = await clients[i % conns]!.watch().key(KEY).create();
    watcher.on('put', (kv) => {
      if (String(kv.value) !== expected) return;
      if (++arrived === watchers) onAll?.();
    });
  });
  await Promise.all(creates);
  const latencies: number[] = [];
  let errors = 0;
  const started = performance.now();
  for (let i = 0; i < puts; i++) {
    arrived = 0;
    expected = `v${i}`;
    const all = new Promise<boolean>((resolve) => {
      onAll = () => resolve(true);
      setTimeout(() => resolve(false), EVENT_TIMEOUT_MS);
    });
    const t0 = performance.now();
    await writer.put(KEY).value(expected);
    if (await all) latencies.push(performance.now() - t0);
    else errors++;
  }
  const seconds = (performance.now() - started) / 1000;
  latencies.sort((a, b) => a - b);
  const ms = (q: number) => Math.round(quantile(latencies, q) * 1000) / 1000;
  const result = {
    succeeded: latencies.length,
    errors,
    rps: latencies.length / seconds,
    latency_ms: { p50: ms(0.5), p99: ms(0.99) },
    error_counts: errors > 0 ? { 'events missing after 30 s': errors } : {},
  };
  for (const client of [...clients, writer]) client.close();
  console.log(JSON.stringify(result));
  process.exit(0);
}

await main();
