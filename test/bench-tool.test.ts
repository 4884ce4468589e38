/**
 * `flotilla bench` (etcd's benchmark tool for any etcd v3 endpoint) and
 * `npm run bench:vs-etcd --quick`:
 *
 * - its HPACK decoder against RFC 7541's examples, its report against known latencies;
 * - bad flags exit 2 with a message naming the flag;
 * - `bench put --json` against a real single-node etcd (the `etcd` binary, started here on
 *   free ports) and a real 3-node Flotilla (`cluster start`): the JSON's total is --total,
 *   no errors, rps > 0, and every key is really there (read back with a Range); the other
 *   workloads run against etcd; failing requests are counted as errors, not successes;
 * - `bench mixed` against the same Flotilla: --read-percent 100 writes nothing, 0 writes every
 *   key, 50 some;
 * - the vs-etcd harness in --quick mode: the JSON's shape, both systems got traffic from both
 *   clients (ours and etcd-load), and the servers' CPU per request was measured.
 */
import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { runProcess } from '../bench/run-process.js';
import { Connection, etcdMethod } from '../src/benchmark/connections.js';
import { formatSummary, LatencyRecorder, summaryJson } from '../src/benchmark/report.js';
import { freePort } from '../src/cli/cluster-command.js';
import { HpackDecoder, huffmanDecode, huffmanEncode } from '../src/http2/hpack.js';
import { type LocalCluster, startLocalCluster } from './support/local-cluster.js';
import { assertNeutral, type WorkloadJson } from './support/vs-etcd-json.js';

const MAIN = fileURLToPath(new URL('../src/cli/main.js', import.meta.url));
const VS_ETCD = fileURLToPath(new URL('../bench/vs-etcd.js', import.meta.url));

const cleanups: (() => Promise<void>)[] = [];
after(async () => {
  for (const cleanup of cleanups.reverse()) await cleanup();
});

interface Run {
  readonly code: number | null;
  readonly stdout: string;
  readonly stderr: string;
}

async function run(file: string, args: readonly string[], timeoutMs = 30_000): Promise<Run> {
  const { code, stdout, stderr } = await runProcess(process.execPath, [file, ...args], { timeoutMs });
  return { code, stdout, stderr };
}

const bench = (args: readonly string[], timeoutMs?: number): Promise<Run> =>
  run(MAIN, ['bench', ...args], timeoutMs);

interface BenchJson {
  command: string;
  total: number;
  succeeded: number;
  errors: number;
  rps: number;
  latency_ms: Record<'min' | 'mean' | 'max' | 'p50' | 'p90' | 'p99' | 'p999', number>;
  histogram: { le_ms: number; count: number }[];
  error_counts: Record<string, number>;
  put?: BenchJson;
}

function lastJson(result: Run): BenchJson {
  assert.equal(result.code, 0, `exit ${result.code}: ${result.stderr}`);
  const line = result.stdout.trim().split('\n').pop() ?? '';
  return JSON.parse(line) as BenchJson;
}

/** How many keys the endpoint holds (a keys-only Range over the whole key space). */
async function keyCount(endpoint: string): Promise<number> {
  const range = etcdMethod<{ count: string; kvs: unknown[] }>('KV', 'Range');
  const connection = await Connection.open(0, endpoint, 5000);
  try {
    const request = range.serialize({ key: Buffer.from([0]), range_end: Buffer.from([0]), keys_only: true });
    const response = range.deserialize(await connection.unary(range.path, request, 10_000));
    assert.equal(Number(response.count), response.kvs.length);
    return response.kvs.length;
  } finally {
    connection.close();
  }
}

/** Whether a put through `endpoint` succeeds within `timeoutMs` (retrying), and the last error. */
async function putWorks(endpoint: string, timeoutMs: number): Promise<string | undefined> {
  const put = etcdMethod('KV', 'Put');
  const deadline = Date.now() + timeoutMs;
  let last = 'no attempt';
  while (Date.now() < deadline) {
    let connection: Connection | undefined;
    try {
      connection = await Connection.open(0, endpoint, 2000);
      await connection.unary(
        put.path,
        put.serialize({ key: Buffer.from('probe'), value: Buffer.from('1') }),
        3000,
      );
      return undefined;
    } catch (error) {
      last = (error as Error).message;
      if (/UNIMPLEMENTED/.test(last)) return last;
      await new Promise((r) => setTimeout(r, 200));
    } finally {
      connection?.close();
    }
  }
  return last;
}

test('HPACK: the decoder reads RFC 7541 C.4 (Huffman, dynamic table) and Huffman round-trips', () => {
  const decoder = new HpackDecoder();
  const hex = (text: string): Buffer => Buffer.from(text.replace(/\s/g, ''), 'hex');
  assert.deepEqual(decoder.decode(hex('8286 8441 8cf1 e3c2 e5f2 3a6b a0ab 90f4 ff')), [
    [':method', 'GET'],
    [':scheme', 'http'],
    [':path', '/'],
    [':authority', 'www.example.com'],
  ]);
  assert.deepEqual(decoder.decode(hex('8286 84be 5886 a8eb 1064 9cbf')).slice(3), [
    [':authority', 'www.example.com'],
    ['cache-control', 'no-cache'],
  ]);
  assert.deepEqual(
    decoder.decode(hex('8287 85bf 4088 25a8 49e9 5ba9 7d7f 8925 a849 e95b b8e8 b4bf')).slice(2),
    [
      [':path', '/index.html'],
      [':authority', 'www.example.com'],
      ['custom-key', 'custom-value'],
    ],
  );
  assert.equal(huffmanEncode('www.example.com').toString('hex'), 'f1e3c2e5f23a6ba0ab90f4ff');
  const every = Buffer.from(Array.from({ length: 256 }, (_, i) => i)).toString('latin1');
  assert.equal(huffmanDecode(huffmanEncode(every)), every);
});

test('report: summary, percentiles, histogram; errors are counted apart from successes', () => {
  const recorder = new LatencyRecorder();
  for (let i = 1; i <= 1000; i++) recorder.record(i / 10); // 0.1 .. 100 ms
  recorder.recordError('UNAVAILABLE: gone');
  recorder.recordError('UNAVAILABLE: gone');
  const summary = recorder.summarize(2000);
  const json = summaryJson(summary);
  assert.equal(json.total, 1002);
  assert.equal(json.succeeded, 1000);
  assert.equal(json.errors, 2);
  assert.equal(json.rps, 500);
  assert.equal(json.latency_ms.min, 0.1);
  assert.equal(json.latency_ms.max, 100);
  assert.ok(Math.abs(json.latency_ms.p50 - 50) < 0.1, `p50 ${json.latency_ms.p50}`);
  assert.ok(Math.abs(json.latency_ms.p99 - 99) < 0.1, `p99 ${json.latency_ms.p99}`);
  assert.ok(Math.abs(json.latency_ms.p999 - 99.9) < 0.1, `p999 ${json.latency_ms.p999}`);
  assert.equal(json.histogram.length, 11);
  assert.equal(
    json.histogram.reduce((n, b) => n + b.count, 0),
    1000,
  );
  assert.deepEqual(json.error_counts, { 'UNAVAILABLE: gone': 2 });
  const text = formatSummary(summary);
  for (const line of [
    'Summary:',
    'Requests/sec:\t500.0000',
    'Response time histogram:',
    '99.9% in 0.0999 secs.',
  ]) {
    assert.ok(text.includes(line), `${line} in\n${text}`);
  }
  assert.match(text, /Error distribution:\n {2}\[2\]\tUNAVAILABLE: gone/);
});

test('bad flags exit 2 with a message naming the flag', async () => {
  const cases: [string[], RegExp][] = [
    [['put', '--conns', '0'], /--conns must be an integer/],
    [['put', '--clients', 'many'], /--clients must be an integer/],
    [['put', '--total', '0'], /--total must be an integer/],
    [['put', '--rate', '-5'], /--rate must be an integer/],
    [['put', '--key-size', '1', '--key-space-size', '1000'], /--key-size 1 is too small/],
    [['put', '--endpoints', 'nohost'], /--endpoints: expected host:port/],
    [['put', '--endpoints', 'https://127.0.0.1:2379'], /TLS is not supported/],
    [['put', '--request-timeout', 'soon'], /--request-timeout must be a positive duration/],
    [['put', '--bogus'], /unknown option '--bogus'/],
    [['range'], /missing required argument 'key'/],
    [['range', 'foo', '--consistency', 'x'], /--consistency must be l .* or s/],
    [['range', 'foo', '--key-size', '4'], /--key-size does not apply to 'range'/],
    [['mixed'], /missing required argument 'key'/],
    [['mixed', 'foo', '--read-percent', '101'], /--read-percent must be an integer in \[0, 100\]/],
    [['put', '--read-percent', '50'], /unknown option '--read-percent'/],
    [['txn-put', '--txn-ops', '3'], /--txn-ops must be no larger than --key-space-size/],
    [['watch-latency', '--streams', '0'], /--streams must be an integer/],
    [['watch-latency', '--rate', '10'], /--rate does not apply to 'watch-latency'/],
    [['nonsense'], /unknown command 'nonsense'/],
  ];
  const results = await Promise.all(cases.map(([args]) => bench(args)));
  results.forEach((result, i) => {
    const [args, message] = cases[i]!;
    assert.equal(result.code, 2, `bench ${args.join(' ')} → ${result.code}: ${result.stderr}`);
    assert.match(result.stderr, message, `bench ${args.join(' ')}`);
  });
});

test('bench against a real etcd: put writes every key; range, txn-put, watch-latency run; failures are errors', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'flotilla-bench-etcd-'));
  const clientPort = await freePort();
  const peerPort = await freePort();
  const endpoint = `127.0.0.1:${clientPort}`;
  const etcd: ChildProcess = spawn(
    'etcd',
    [
      '--name',
      'b1',
      '--data-dir',
      join(dir, 'b1'),
      '--listen-client-urls',
      `http://${endpoint}`,
      '--advertise-client-urls',
      `http://${endpoint}`,
      '--listen-peer-urls',
      `http://127.0.0.1:${peerPort}`,
      '--initial-advertise-peer-urls',
      `http://127.0.0.1:${peerPort}`,
      '--initial-cluster',
      `b1=http://127.0.0.1:${peerPort}`,
      '--log-outputs',
      join(dir, 'etcd.log'),
      '--logger',
      'zap',
    ],
    { stdio: 'ignore' },
  );
  cleanups.push(async () => {
    etcd.kill('SIGKILL');
    await rm(dir, { recursive: true, force: true });
  });
  assert.equal(await putWorks(endpoint, 15_000), undefined, 'etcd takes puts');
  const before = await keyCount(endpoint); // the probe key

  const put = lastJson(
    await bench([
      'put',
      '--endpoints',
      endpoint,
      '--total',
      '300',
      '--clients',
      '20',
      '--conns',
      '4',
      '--sequential-keys',
      '--key-space-size',
      '300',
      '--val-size',
      '64',
      '--json',
    ]),
  );
  assert.equal(put.command, 'put');
  assert.equal(put.total, 300);
  assert.equal(put.succeeded, 300);
  assert.equal(put.errors, 0);
  assert.ok(put.rps > 0);
  assert.ok(put.latency_ms.p50 > 0 && put.latency_ms.p50 <= put.latency_ms.p99);
  assert.equal(
    put.histogram.reduce((n, b) => n + b.count, 0),
    300,
  );
  assert.equal(await keyCount(endpoint), before + 300);

  const [range, txn, watch, tooBig, text] = await Promise.all([
    bench([
      'range',
      'probe',
      '--consistency',
      's',
      '--endpoints',
      endpoint,
      '--total',
      '200',
      '--clients',
      '10',
      '--json',
    ]),
    bench([
      'txn-put',
      '--endpoints',
      endpoint,
      '--total',
      '50',
      '--txn-ops',
      '4',
      '--key-space-size',
      '100',
      '--json',
    ]),
    bench([
      'watch-latency',
      '--endpoints',
      endpoint,
      '--put-total',
      '20',
      '--put-rate',
      '200',
      '--streams',
      '2',
      '--watchers-per-stream',
      '3',
      '--json',
    ]),
    // Values above etcd's 1.5 MiB request limit: every put fails.
    bench(['put', '--endpoints', endpoint, '--total', '5', '--val-size', '2000000', '--json']),
    bench(['range', 'probe', '--endpoints', endpoint, '--total', '20']),
  ]);
  const r = lastJson(range);
  assert.equal(r.succeeded, 200);
  assert.equal(r.errors, 0);
  const t = lastJson(txn);
  assert.equal(t.succeeded, 50);
  const w = lastJson(watch);
  assert.equal(w.command, 'watch-latency');
  assert.equal(w.total, 20 * 2 * 3, 'one event per put per watcher');
  assert.equal(w.errors, 0);
  assert.equal(w.put?.succeeded, 20);
  const failing = lastJson(tooBig);
  assert.equal(failing.total, 5);
  assert.equal(failing.succeeded, 0);
  assert.equal(failing.errors, 5);
  assert.equal(failing.rps, 0);
  assert.match(Object.keys(failing.error_counts)[0] ?? '', /RESOURCE_EXHAUSTED|too large/);
  assert.equal(text.code, 0);
  assert.match(text.stdout, /^bench with linearizable range\n\nSummary:\n {2}Total:\t\d+\.\d{4} secs\./);
  assert.match(text.stdout, /Latency distribution:\n {2}10% in /);
});

let flotillaWorks = false;
/** The 3-node Flotilla of the put test, once it takes puts. */
let flotilla: LocalCluster | undefined;

test('bench put against a real 3-node Flotilla writes every key', async (t) => {
  const cluster = await startLocalCluster(3);
  cleanups.push(() => cluster.destroy());
  const endpoints = cluster.endpoints;
  const first = endpoints.split(',')[0]!;
  const probe = await putWorks(first, 15_000);
  if (probe !== undefined) {
    t.skip(`Flotilla's etcd KV API does not take puts yet: ${probe}`);
    return;
  }
  flotillaWorks = true;
  flotilla = cluster;
  const before = await keyCount(first);
  const put = lastJson(
    await bench([
      'put',
      '--endpoints',
      endpoints,
      '--total',
      '300',
      '--clients',
      '30',
      '--conns',
      '6',
      '--sequential-keys',
      '--key-space-size',
      '300',
      '--json',
    ]),
  );
  assert.equal(put.total, 300);
  assert.equal(put.succeeded, 300);
  assert.equal(put.errors, 0, JSON.stringify(put.error_counts));
  assert.ok(put.rps > 0);
  assert.equal(await keyCount(first), before + 300);
});

test('bench mixed against a real 3-node Flotilla: --read-percent decides how many requests are puts', async (t) => {
  if (flotilla === undefined) {
    t.skip("Flotilla's etcd KV API does not take puts yet");
    return;
  }
  const endpoints = flotilla.endpoints;
  const first = endpoints.split(',')[0]!;
  // 16-byte keys: none of them is one of the put test's 8-byte keys.
  const sequential = ['--sequential-keys', '--key-space-size', '300', '--key-size', '16'];
  const mixed = async (readPercent: number, keys: readonly string[]): Promise<BenchJson> => {
    const flags = ['--endpoints', endpoints, '--clients', '20', '--conns', '6', '--total', '300'];
    return lastJson(
      await bench(['mixed', 'probe', '--read-percent', String(readPercent), ...flags, ...keys, '--json']),
    );
  };
  // Only reads: 300 ranges, no key written.
  const before = await keyCount(first);
  const reads = await mixed(100, sequential);
  assert.equal(reads.command, 'mixed');
  assert.equal(reads.succeeded, 300);
  assert.equal(reads.errors, 0, JSON.stringify(reads.error_counts));
  assert.equal(await keyCount(first), before);
  // Only puts: every one of the 300 sequential keys written.
  const writes = await mixed(0, sequential);
  assert.equal(writes.succeeded, 300);
  assert.equal(await keyCount(first), before + 300);
  // Half and half, random keys out of 2^40 (each put a new key): some written, not all.
  const half = await mixed(50, ['--key-space-size', String(2 ** 40)]);
  assert.equal(half.succeeded, 300);
  assert.equal(half.errors, 0, JSON.stringify(half.error_counts));
  const written = (await keyCount(first)) - before - 300;
  assert.ok(written > 0 && written < 300, `${written} keys written by 300 requests at 50% reads`);
  assert.ok(half.rps > 0 && half.latency_ms.p50 <= half.latency_ms.p99);
});

test('npm run bench:vs-etcd -- --quick: every workload, both systems, both clients, CPU per request', async (t) => {
  if (!flotillaWorks) {
    t.skip("Flotilla's etcd KV API does not take puts yet");
    return;
  }
  // It builds etcd-load first (bench/etcd-load/build.sh; about 30 s when not built yet).
  const result = await run(VS_ETCD, ['--quick', '--json'], 400_000);
  assert.equal(result.code, 0, result.stderr.slice(-2000));
  const json = JSON.parse(result.stdout.trim().split('\n').pop() ?? '') as Record<string, WorkloadJson> & {
    limits: { fdatasync_per_s: number; tcp_rtt_us: number };
  };
  const workloads = [
    'put_1',
    'put_100',
    'put_1000',
    'range_l_100',
    'range_s_100',
    'txn_put_100',
    'mixed_100',
    'watch_latency',
    'put_100_with_10k_watchers',
    'watch_fanout',
  ];
  assert.deepEqual(Object.keys(json).sort(), [...workloads, 'limits'].sort());
  for (const key of workloads) {
    const w = json[key]!;
    for (const field of [
      'flotilla_rps',
      'etcd_rps',
      'flotilla_p99_ms',
      'etcd_p99_ms',
      'rps_ratio',
    ] as const) {
      assert.equal(typeof w[field], 'number', `${key}.${field} = ${w[field]}`);
    }
    // A ratio to 0 is no number: etcd's tool times a watch event from the end of its put, so
    // in a tiny run every event can arrive first and etcd's p99 be 0.
    if (w.etcd_p99_ms > 0) assert.equal(typeof w.p99_ratio, 'number', `${key}.p99_ratio = ${w.p99_ratio}`);
    else assert.equal(w.p99_ratio, null, `${key}: a ratio to a zero p99 is null`);
    assert.ok(w.flotilla_rps > 0 && w.etcd_rps > 0, key);
    assert.ok(w.flotilla_ok > 0 && w.etcd_ok > 0, `${key}: both got traffic`);
    // Our client's runs last long enough (its start-up alone) for the servers' CPU to tick.
    for (const field of ['flotilla_cpu_ms_per_req', 'etcd_cpu_ms_per_req', 'cpu_ratio'] as const) {
      assert.ok((w[field] ?? 0) > 0, `${key}.${field} = ${w[field]}`);
    }
    assert.ok((w.flotilla_client_cpu_share ?? 0) > 0 && (w.etcd_client_cpu_share ?? 0) > 0, key);
    assertNeutral(key, w);
  }
  const watched = json['put_100_with_10k_watchers']!;
  for (const field of ['flotilla_watch_slowdown', 'etcd_watch_slowdown'] as const) {
    assert.ok((watched[field] ?? 0) > 0, `put_100_with_10k_watchers.${field} = ${watched[field]}`);
  }
  for (const field of ['flotilla_rss_bytes_per_watcher', 'etcd_rss_bytes_per_watcher'] as const) {
    assert.equal(typeof watched[field], 'number', `put_100_with_10k_watchers.${field}`);
  }
  assert.ok(json.limits.fdatasync_per_s > 0);
  assert.ok(json.limits.tcp_rtt_us > 0);
});
