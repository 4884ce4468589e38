/**
 * A slow watch consumer against real processes (`flotilla cluster start --base-port 0`): a
 * gRPC watch client that stops reading its stream while another client writes many events.
 * The server must not buffer them (HTTP/2 flow control stops the watch's pump, the watcher
 * falls behind to the unsynced group and keeps only its position, not the events), so:
 *
 * - the server's anonymous RSS (`RssAnon` in /proc/<pid>/status) grows by less than
 *   {@link RSS_GROWTH_BYTES_MAX} (80 MiB and 256 bytes per event) while the slow watcher
 *   reads nothing (the growth for the same writes without it is reported beside it, but it
 *   includes the heap's first expansion, so it is not the bound);
 * - writes keep at least {@link WRITE_RATE_RATIO_MIN} of the rate they had without it, both
 *   measured in this run;
 * - the slow watcher is parked out of the synced group (`flotilla_kv_watchers_synced` at
 *   /metrics counts only the normal watcher), so writes no longer queue events for it;
 * - a normal watcher of the same prefix keeps receiving each event within
 *   {@link WATCH_LAG_MS_MAX} of its write being acknowledged;
 * - once the slow client reads again it receives every event in revision order, exactly
 *   once, with no gap; and a slow watcher whose history was compacted gets the canceled
 *   response with `compact_revision` after the events it had not lost.
 *
 * The default size fits `npm test` on two shared cores; the full run (100,000 events)
 * is `FLOTILLA_SLOW_WATCH_EVENTS=100000 node --test dist/test/etcd-watch-slow-consumer.test.js`.
 * `FLOTILLA_SLOW_WATCH_NODES=3` runs it against three nodes instead of one.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { after, before, test } from 'node:test';
import { type ClientDuplexStream, credentials, type ServiceClientConstructor } from '@grpc/grpc-js';
import { etcdService } from '../src/etcd/index.js';
import { unaryCall } from './support/grpc-call.js';
import { until } from './support/http.js';
import { type LocalCluster, startLocalCluster } from './support/local-cluster.js';

/** Events written while the slow watcher reads nothing. */
const EVENTS = Number(process.env['FLOTILLA_SLOW_WATCH_EVENTS'] ?? 10_000);
const NODES = Number(process.env['FLOTILLA_SLOW_WATCH_NODES'] ?? 1);
/** Puts in flight at once. */
const IN_FLIGHT = 64;
/**
 * Each event's value: 1 KiB makes a backlog a server buffered stand out from the store's own
 * growth (10,000 events are 10 MiB of values, 100,000 are 100 MiB).
 */
const VALUE = Buffer.alloc(Number(process.env['FLOTILLA_SLOW_WATCH_VALUE_BYTES'] ?? 1024), 'v');
/**
 * The bound on the server's anonymous memory growth while the slow watcher reads nothing:
 * 80 MiB plus 256 bytes per event written. The store grows with every key written (its
 * index, the log) whoever watches, and RSS moves with the garbage collector's heap sizing
 * (the same 10,000-event phase grew it by 30 MiB in one run and 62 MiB in another); 50,000
 * events grew it by 42 MiB and 100,000 by 65 MiB. A backlog the server buffered costs more
 * than 1 KiB per event (each value alone is 1 KiB): with the watcher's queue unbounded,
 * 50,000 events grew it by 104 MiB, over this bound (92 MiB). That the slow watcher is
 * parked, not queueing, is checked exactly by the watcher metrics.
 */
const RSS_GROWTH_BYTES_MAX = 80 * 1024 * 1024 + 256 * EVENTS;
/** Writes with the slow watcher keep at least this share of their rate without it. */
const WRITE_RATE_RATIO_MIN = 0.7;
/** A normal watcher receives each event within this long of its put's acknowledgment. */
const WATCH_LAG_MS_MAX = 2_000;

interface WireKv {
  key: Buffer;
  mod_revision: string;
}

interface WatchResponse {
  header: { revision: string };
  watch_id: string;
  created: boolean;
  canceled: boolean;
  compact_revision: string;
  events: { type: string; kv: WireKv }[];
}

let cluster: LocalCluster;
let kv: InstanceType<ServiceClientConstructor>;
let endpoint = '';
let pid = 0;
let metricsUrl = '';

before(async () => {
  cluster = await startLocalCluster(NODES);
  const node = cluster.nodes[0]!;
  endpoint = node.grpcEndpoint;
  pid = node.pid;
  metricsUrl = `${node.clientUrl}/metrics`;
  kv = new (etcdService('KV'))(endpoint, credentials.createInsecure());
});

after(async () => {
  kv?.close();
  await cluster?.destroy();
});

function call<T>(method: string, request: object): Promise<T> {
  return unaryCall<T>(kv, method, request);
}

/** The server process's anonymous resident memory (heap and buffers, not LMDB's file pages). */
function rssAnonBytes(): number {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const match = /^RssAnon:\s+(\d+) kB$/m.exec(status);
  assert.ok(match !== null, 'RssAnon in /proc/<pid>/status');
  return Number(match[1]) * 1024;
}

/**
 * Puts `count` keys under `prefix`, {@link IN_FLIGHT} at a time; returns each put's revision
 * (in key order) with its acknowledgment time, and the puts per second.
 */
async function putMany(prefix: string, count: number): Promise<{ acks: Map<number, number>; rate: number }> {
  const acks = new Map<number, number>();
  let next = 0;
  const started = performance.now();
  const worker = async (): Promise<void> => {
    while (next < count) {
      const i = next++;
      const key = Buffer.from(`${prefix}${String(i).padStart(7, '0')}`);
      const response = await call<{ header: { revision: string } }>('Put', { key, value: VALUE });
      acks.set(Number(response.header.revision), performance.now());
    }
  };
  await Promise.all(Array.from({ length: IN_FLIGHT }, worker));
  const seconds = (performance.now() - started) / 1000;
  return { acks, rate: count / seconds };
}

/** A watch stream of one prefix, recording each event's revision and arrival time. */
function openWatch(prefix: string) {
  const client = new (etcdService('Watch'))(endpoint, credentials.createInsecure()) as unknown as {
    Watch(): ClientDuplexStream<object, WatchResponse>;
    close(): void;
  };
  const stream = client.Watch();
  const revisions: number[] = [];
  const arrivals = new Map<number, number>();
  const control: WatchResponse[] = [];
  stream.on('data', (r: WatchResponse) => {
    if (r.events.length === 0) control.push(r);
    const now = performance.now();
    for (const event of r.events) {
      const revision = Number(event.kv.mod_revision);
      revisions.push(revision);
      arrivals.set(revision, now);
    }
  });
  stream.on('error', () => {});
  const key = Buffer.from(prefix);
  const rangeEnd = Buffer.from(
    prefix.slice(0, -1) + String.fromCharCode(prefix.charCodeAt(prefix.length - 1) + 1),
  );
  stream.write({ create_request: { key, range_end: rangeEnd } });
  return {
    stream,
    revisions,
    arrivals,
    control,
    created: () =>
      until('the watch to be created', 10_000, () => (control.some((r) => r.created) ? true : undefined)),
    close: () => {
      stream.cancel();
      client.close();
    },
  };
}

type Watch = ReturnType<typeof openWatch>;

/** Asserts `watch` received exactly `expected` (ascending revisions), in order, once each. */
async function receivesAll(watch: Watch, expected: readonly number[], timeoutMs: number): Promise<void> {
  const last = expected[expected.length - 1]!;
  await until(`the watch to reach revision ${last}`, timeoutMs, () =>
    watch.revisions.length >= expected.length || watch.control.some((r) => r.canceled) ? true : undefined,
  );
  assert.equal(watch.revisions.length, expected.length, 'every event, none twice');
  assert.deepEqual(watch.revisions, expected, 'in revision order with no gap');
}

/** A gauge's value from the server's /metrics. */
async function gauge(name: string): Promise<number> {
  const text = await (await fetch(metricsUrl)).text();
  const match = new RegExp(`^${name} (\\S+)$`, 'm').exec(text);
  assert.ok(match !== null, `${name} in /metrics`);
  return Number(match[1]);
}

/** Samples the server's RssAnon every 200 ms until stopped; returns the largest sample. */
function sampleRss(): { stop: () => number } {
  let max = rssAnonBytes();
  const timer = setInterval(() => {
    max = Math.max(max, rssAnonBytes());
  }, 200);
  return {
    stop: () => {
      clearInterval(timer);
      return Math.max(max, rssAnonBytes());
    },
  };
}

function sorted(acks: Map<number, number>): number[] {
  return [...acks.keys()].sort((a, b) => a - b);
}

/** Writes `count` events under `prefix` while sampling the server's RssAnon; the rate and the growth. */
async function loadPhase(prefix: string, count: number) {
  const rssBefore = rssAnonBytes();
  const sampler = sampleRss();
  const { acks, rate } = await putMany(prefix, count);
  return { acks, rate, growth: sampler.stop() - rssBefore };
}

/** The largest delay from a put's acknowledgment to `watch` receiving its event (negative if before). */
async function lagMaxMs(watch: Watch, acks: Map<number, number>): Promise<number> {
  const last = Math.max(...acks.keys());
  await until('the normal watcher to catch up', 30_000, () => (watch.arrivals.has(last) ? true : undefined));
  let lagMax = Number.NEGATIVE_INFINITY;
  for (const [revision, acked] of acks) {
    const arrived = watch.arrivals.get(revision);
    assert.ok(arrived !== undefined, `the normal watcher got revision ${revision}`);
    lagMax = Math.max(lagMax, arrived - acked);
  }
  return lagMax;
}

test('a watcher that reads nothing costs neither memory nor write rate, then gets every event', {
  timeout: 300_000,
}, async () => {
  const normal = openWatch('slow/');
  await normal.created();
  // Warm up (JIT, LMDB map, gRPC channels) so the baseline is not the cold start.
  const warm = await putMany('slow/warm/', 1_000);
  const baseline = await loadPhase('slow/base/', EVENTS);
  await receivesAll(normal, sorted(new Map([...warm.acks, ...baseline.acks])), 30_000);

  const slow = openWatch('slow/');
  await slow.created();
  slow.stream.pause();
  const loaded = await loadPhase('slow/load/', EVENTS);
  const lagMax = await lagMaxMs(normal, loaded.acks);
  assert.deepEqual([await gauge('flotilla_kv_watchers'), await gauge('flotilla_kv_watchers_synced')], [2, 1]);
  const ratio = loaded.rate / baseline.rate;
  console.log(
    `# ${EVENTS} events per phase on ${NODES} node(s): RssAnon grew ${mib(baseline.growth)} MiB without ` +
      `the slow watcher, ${mib(loaded.growth)} MiB with it; puts/s ${baseline.rate.toFixed(0)} without, ` +
      `${loaded.rate.toFixed(0)} with (ratio ${ratio.toFixed(2)}); normal watcher lag max ${lagMax.toFixed(0)} ms`,
  );
  assert.ok(loaded.growth < RSS_GROWTH_BYTES_MAX, `RssAnon grew ${mib(loaded.growth)} MiB`);
  assert.ok(ratio >= WRITE_RATE_RATIO_MIN, `write rate ratio ${ratio.toFixed(2)}`);
  assert.ok(lagMax <= WATCH_LAG_MS_MAX, `normal watcher lag ${lagMax.toFixed(0)} ms`);
  assert.equal(slow.revisions.length, 0, 'the paused client handled no event');

  slow.stream.resume();
  await receivesAll(slow, sorted(loaded.acks), 120_000);
  normal.close();
  slow.close();
});

test('a paused watcher whose history is compacted gets what it had, then compact_revision', {
  timeout: 120_000,
}, async () => {
  const slow = openWatch('gone/');
  await slow.created();
  slow.stream.pause();
  const written = sorted((await putMany('gone/', Math.min(EVENTS, 5_000))).acks);
  const compactRevision = written[written.length - 1]!;
  await call('Compact', { revision: compactRevision, physical: true });
  slow.stream.resume();
  await until('the compacted watch to be canceled', 60_000, () =>
    slow.control.some((r) => r.canceled) ? true : undefined,
  );
  const canceled = slow.control.find((r) => r.canceled)!;
  assert.equal(Number(canceled.compact_revision), compactRevision);
  // What it received is an unbroken prefix of what was written, and short of the end: the
  // rest was served from history, which the compaction took.
  const received = slow.revisions;
  assert.deepEqual(received, written.slice(0, received.length));
  assert.ok(received.length < written.length, `received ${received.length} of ${written.length}`);
  console.log(
    `# compacted slow watcher: ${received.length} of ${written.length} events, then compact_revision`,
  );
  slow.close();
});

function mib(bytes: number): string {
  return (bytes / (1024 * 1024)).toFixed(1);
}
