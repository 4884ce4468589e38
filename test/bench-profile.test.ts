/**
 * `npm run bench:profile` (bench/profile.ts):
 *
 * - the analysis of a V8 CPU profile, on a small hand-written one: self times (a sample
 *   lasts until the next), categories by script URL, native functions counted in their
 *   caller's category, the profiler's own frames left out, the top list;
 * - bad flags exit 2;
 * - the tool end to end on a tiny put workload against a real 3-node cluster: the JSON
 *   report has the leader and two followers, each busy, with time in the Raft core and in
 *   lmdb, top lists sorted by self time, percentages adding up to at most 100, and `--out`
 *   keeps one `.cpuprofile` per server.
 */
import assert from 'node:assert/strict';
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { analyseProfile, type CpuProfile, categoryOf } from '../bench/profile/analyse.js';
import type { ProfileReport, ServerReport } from '../bench/profile/report.js';
import { type Finished, runProcess } from '../bench/run-process.js';

const PROFILE = fileURLToPath(new URL('../bench/profile.js', import.meta.url));

const frame = (functionName: string, url: string, lineNumber = -1, columnNumber = -1) => ({
  functionName,
  url,
  lineNumber,
  columnNumber,
});

const RAFT = 'file:///w/dist/src/raft/raft.js';
const LMDB = 'file:///w/node_modules/lmdb/write.js';
const HOOK = 'file:///w/dist/bench/profile/hook.js';

/**
 * A call tree: (root) → (idle), (garbage collector), (program), step [raft] → append [lmdb]
 * → native commitTxn, step → writeSync [node:fs] → native writeBuffer, handle [etcd] → step
 * (the same function again), and the hook → post [node:inspector] (left out).
 */
const SYNTHETIC: CpuProfile = {
  nodes: [
    { id: 1, callFrame: frame('(root)', ''), children: [2, 3, 4, 9, 10, 12] },
    { id: 2, callFrame: frame('(idle)', '') },
    { id: 3, callFrame: frame('(garbage collector)', '') },
    { id: 4, callFrame: frame('step', RAFT, 9, 2), children: [5, 7] },
    { id: 5, callFrame: frame('append', LMDB, 99, 4), children: [6] },
    { id: 6, callFrame: frame('commitTxn', '') },
    { id: 7, callFrame: frame('writeSync', 'node:fs', 10, 0), children: [8] },
    { id: 8, callFrame: frame('writeBuffer', '') },
    { id: 9, callFrame: frame('(program)', '') },
    { id: 10, callFrame: frame('handle', 'file:///w/dist/src/etcd/kv-service.js', 5, 0), children: [11] },
    { id: 11, callFrame: frame('step', RAFT, 9, 2) },
    { id: 12, callFrame: frame('', HOOK, 50, 0), children: [13] },
    { id: 13, callFrame: frame('post', 'node:inspector', 100, 0) },
  ],
  startTime: 1000,
  endTime: 7000,
  // Timestamps 1000, 1100, 1300, 1600, 2000, 2500, 3100, 3800, 4600, 5500, 6500; the last
  // sample runs to endTime. Durations: 100, 200, 300, 400, 500, 600, 700, 800, 900, 1000, 500.
  samples: [2, 5, 6, 6, 8, 3, 11, 9, 4, 13, 2],
  timeDeltas: [0, 100, 200, 300, 400, 500, 600, 700, 800, 900, 1000],
};

test('analyseProfile: self times, categories, native callers, exclusions, top list', () => {
  const summary = analyseProfile(SYNTHETIC, { exclude: (url) => url === HOOK });
  // idle 100 + 500; step 700 + 900; append 200; commitTxn 300 + 400; writeBuffer 500;
  // gc 600; (program) 800; the hook's post 1000 (excluded).
  assert.equal(summary.samples, 11);
  assert.equal(summary.total_ms, 5);
  assert.equal(summary.idle_ms, 0.6);
  assert.equal(summary.busy_ms, 4.4);
  assert.equal(summary.gc_ms, 0.6);
  assert.equal(summary.program_ms, 0.8);
  assert.equal(summary.excluded_ms, 1);
  assert.deepEqual(summary.categories, {
    'flotilla:raft': { ms: 1.6, pct: 36.36 },
    lmdb: { ms: 0.9, pct: 20.45 },
    '(native/V8)': { ms: 0.8, pct: 18.18 },
    '(gc)': { ms: 0.6, pct: 13.63 },
    'node:internal': { ms: 0.5, pct: 11.36 },
  });
  assert.deepEqual(
    summary.top.map((f) => [f.function, f.category, f.self_ms, f.self_pct, f.caller?.function ?? null]),
    [
      ['step', 'flotilla:raft', 1.6, 36.36, null],
      ['(program)', '(native/V8)', 0.8, 18.18, null],
      ['commitTxn', 'lmdb', 0.7, 15.9, 'append'],
      ['(garbage collector)', '(gc)', 0.6, 13.63, null],
      ['writeBuffer', 'node:internal', 0.5, 11.36, 'writeSync'],
      ['append', 'lmdb', 0.2, 4.54, null],
    ],
  );
  const step = summary.top[0]!;
  assert.deepEqual([step.url, step.line, step.column], [RAFT, 10, 3]);
  assert.deepEqual(summary.top[2]!.caller, { function: 'append', url: LMDB, line: 100, column: 5 });
  // Without the exclusion the hook's call to the inspector counts, as Node's own code.
  const all = analyseProfile(SYNTHETIC, { top: 2 });
  assert.deepEqual([all.busy_ms, all.excluded_ms, all.categories['node:internal']?.ms], [5.4, 0, 1.5]);
  assert.deepEqual(
    all.top.map((f) => [f.function, f.self_ms]),
    [
      ['step', 1.6],
      ['post', 1],
    ],
  );
});

test('categoryOf: Flotilla by source directory, packages, Node, V8', () => {
  const cases: [string, string, string][] = [
    ['file:///w/dist/src/raft/roles/leader.js', 'f', 'flotilla:raft'],
    ['file:///w/dist/src/cli/main.js', 'f', 'flotilla:cli'],
    ['file:///w/dist/src/index.js', 'f', 'flotilla:other'],
    ['file:///w/node_modules/@grpc/grpc-js/build/src/server.js', 'f', '@grpc/grpc-js'],
    ['file:///w/node_modules/pino/lib/proto.js', 'f', 'pino'],
    ['file:///w/node_modules/sonic-boom/index.js', 'f', 'node_modules (other)'],
    ['node:internal/timers', 'f', 'node:internal'],
    ['node:events', 'f', 'node:internal'],
    ['', '(idle)', '(idle)'],
    ['', '(garbage collector)', '(gc)'],
    ['', '(program)', '(native/V8)'],
    ['', 'writeBuffer', '(native/V8)'],
  ];
  for (const [url, name, category] of cases) assert.equal(categoryOf(url, name), category, url);
});

/** Runs the tool; after `timeoutMs` it gets SIGINT, so that it stops its cluster. */
const profileTool = (args: readonly string[], timeoutMs: number): Promise<Finished> =>
  runProcess(process.execPath, [PROFILE, ...args], { timeoutMs, timeoutSignal: 'SIGINT' });

test('bench:profile refuses bad flags with exit status 2', async () => {
  for (const args of [['--workload', 'nope'], ['--total', '0'], ['--bogus']]) {
    const run = await profileTool(args, 10_000);
    assert.equal(run.code, 2, `${args.join(' ')}: ${run.stderr}`);
    assert.match(run.stderr, /^error: /);
  }
});

function checkServer(server: ServerReport, requests: number): void {
  const label = `${server.role} ${server.name}`;
  assert.ok(server.busy_ms > 0, `${label} busy`);
  assert.ok(server.pid > 0, label);
  assert.ok(
    (server.categories['flotilla:raft']?.ms ?? 0) > 0,
    `${label}: flotilla:raft in ${JSON.stringify(server.categories)}`,
  );
  const categoryPct = Object.values(server.categories).reduce((sum, c) => sum + c.pct, 0);
  assert.ok(categoryPct <= 100, `${label}: categories add up to ${categoryPct}%`);
  assert.ok(server.top.length > 0 && server.top.length <= 15, label);
  for (let i = 1; i < server.top.length; i++) {
    assert.ok(server.top[i - 1]!.self_ms >= server.top[i]!.self_ms, `${label}: top sorted by self time`);
  }
  const topPct = server.top.reduce((sum, f) => sum + f.self_pct, 0);
  assert.ok(topPct <= 100, `${label}: top adds up to ${topPct}%`);
  assert.equal(server.busy_ms_per_req, Math.round((server.busy_ms / requests) * 1000) / 1000);
  assert.ok((server.cpu_ms_per_req ?? 0) > 0, `${label}: process CPU per request`);
}

test('bench:profile profiles a 3-node cluster under a put workload', { timeout: 180_000 }, async () => {
  const out = await mkdtemp(join(tmpdir(), 'flotilla-profile-test-'));
  try {
    // Generous: the first run may build bench/etcd-load (Go) before it starts.
    const args = ['--workload', 'put_100', '--total', '1500', '--interval-us', '250', '--out', out, '--json'];
    const run = await profileTool(args, 150_000);
    assert.equal(run.code, 0, run.stderr);
    const lines = run.stdout.trim().split('\n');
    const report = JSON.parse(lines.at(-1)!) as ProfileReport;
    assert.match(run.stdout, /^leader n\d \(pid \d+\)$/m);
    assert.match(run.stdout, /^follower n\d \(pid \d+\)$/m);
    assert.equal(report.workload, 'put_100');
    assert.equal(report.requests, 1500);
    assert.equal(report.errors, 0);
    assert.ok(report.rps > 0);
    assert.equal(report.leader.role, 'leader');
    assert.equal(report.followers.length, 2);
    const servers = [report.leader, ...report.followers];
    for (const server of servers) checkServer(server, report.requests);
    // lmdb-js runs on the event loop only to queue each batch's writes (its thread commits
    // them): a package's time is attributed to it, though one server's few samples may miss it.
    assert.ok(
      servers.some((server) => (server.categories['lmdb']?.ms ?? 0) > 0),
      `lmdb in ${JSON.stringify(servers.map((server) => server.categories))}`,
    );
    assert.ok(report.busy_ms_per_req > 0 && (report.cpu_ms_per_req ?? 0) > 0);
    const kept = (await readdir(out)).filter((f) => f.endsWith('.cpuprofile')).sort();
    assert.equal(kept.length, 3, kept.join(', '));
    const leaderFile = `put_100.leader.${report.leader.name}.cpuprofile`;
    assert.ok(kept.includes(leaderFile), kept.join(', '));
    const profile = JSON.parse(await readFile(join(out, leaderFile), 'utf8')) as CpuProfile;
    assert.ok(profile.nodes.length > 0 && (profile.samples?.length ?? 0) > 0);
  } finally {
    await rm(out, { recursive: true, force: true });
  }
});
