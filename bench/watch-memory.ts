/**
 * Heap bytes per idle watcher: starts N watchers (one key each, none of them written), each
 * with a consumer waiting in `next()` as a watch stream's pump does, and reports the heap
 * growth over N after a full collection. Then it writes to other keys and checks that the
 * put path does not slow with the watchers (the routing visits none of them).
 *
 *   node --expose-gc dist/bench/watch-memory.js [--watchers 100000] [--json]
 */

import { MemoryKvBackend } from '../src/kv/index.js';

interface Options {
  readonly watchers: number;
  readonly json: boolean;
}

function parse(args: readonly string[]): Options {
  const at = args.indexOf('--watchers');
  const watchers = at >= 0 ? Number(args[at + 1]) : 100_000;
  if (!Number.isSafeInteger(watchers) || watchers < 1) throw new Error('--watchers wants a positive integer');
  return { watchers, json: args.includes('--json') };
}

function collect(): number {
  const gc = (globalThis as { gc?: () => void }).gc;
  if (gc === undefined) throw new Error('run with node --expose-gc');
  for (let i = 0; i < 3; i++) gc();
  return process.memoryUsage().heapUsed;
}

const encoder = new TextEncoder();

/** Puts per second on `kv`, writing `count` keys that no watcher watches. */
function putRate(kv: MemoryKvBackend, count: number, base: number): number {
  const started = process.hrtime.bigint();
  for (let i = 0; i < count; i++) {
    const command = { type: 'put' as const, key: encoder.encode(`other/${i}`), value: encoder.encode('v') };
    kv.applyBatch([{ index: base + i, command }]);
  }
  return count / (Number(process.hrtime.bigint() - started) / 1e9);
}

async function main(): Promise<void> {
  const options = parse(process.argv.slice(2));
  const kv = new MemoryKvBackend();
  putRate(kv, 20_000, 1); // warm-up
  const idleRate = putRate(kv, 20_000, 20_001);
  const before = collect();
  const pending: Promise<unknown>[] = [];
  for (let i = 0; i < options.watchers; i++) {
    const watcher = kv.watch({ key: encoder.encode(`watched/${i.toString().padStart(8, '0')}`) });
    pending.push(watcher.next());
  }
  const after = collect();
  // The array of pending promises is the bench's own: 8 bytes a slot, taken off the figure.
  const bytesPerWatcher = (after - before) / options.watchers - 8;
  const loadedRate = putRate(kv, 20_000, 40_001);
  const result = {
    watchers: options.watchers,
    heap_bytes_per_idle_watcher: Math.round(bytesPerWatcher),
    puts_per_s_without_watchers: Math.round(idleRate),
    puts_per_s_with_watchers: Math.round(loadedRate),
  };
  if (options.json) console.log(JSON.stringify(result));
  else console.table(result);
  await kv.close();
  await Promise.all(pending);
}

await main();
