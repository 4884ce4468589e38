/**
 * Real processes (`flotilla cluster start --nodes 3`): exactly-once writes over HTTP through
 * different nodes; the CLI's retries of put, del and txn through a proxy that loses the
 * first answer (each applies once and reports the first outcome); and, on the same
 * cluster, the operational surface: progress while `cluster start` waits for a leader,
 * JSON log lines naming the node, `/metrics` on a follower, `snapshot save --progress`.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { readFile, stat } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { promisify } from 'node:util';
import { type ApiBody, requestJson } from './support/http.js';
import { type LocalCluster, MAIN, startLocalCluster } from './support/local-cluster.js';
import { parsePrometheus, sampleValue } from './support/metrics.js';

const run = promisify(execFile);

let cluster: LocalCluster;
const servers: Server[] = [];

before(async () => {
  cluster = await startLocalCluster(3);
});

after(async () => {
  for (const server of servers) server.close();
  await cluster?.destroy();
});

async function put(
  url: string,
  key: string,
  value: string,
  session: { clientId: number; seq: number },
): Promise<{ status: number; body: ApiBody }> {
  return requestJson(`${url}/v1/kv/${key}`, {
    method: 'PUT',
    body: JSON.stringify({ value }),
    headers: { 'x-flotilla-client-id': String(session.clientId), 'x-flotilla-seq': String(session.seq) },
  });
}

async function flotilla(...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const { stdout, stderr } = await run(process.execPath, [MAIN, ...args], { timeout: 30_000 });
    return { code: 0, stdout, stderr };
  } catch (error) {
    const e = error as { code?: number; stdout?: string; stderr?: string };
    return { code: e.code ?? -1, stdout: e.stdout ?? '', stderr: e.stderr ?? '' };
  }
}

/** The fields of a JSON log line the tests look at. */
interface LogLine {
  readonly level?: unknown;
  readonly time?: unknown;
  readonly name?: unknown;
  readonly msg?: unknown;
  readonly clientUrl?: unknown;
}

/** What the proxy saw of one request. */
interface Seen {
  readonly method: string;
  readonly path: string;
  readonly clientId: string | undefined;
  readonly seq: string | undefined;
  readonly dropped: boolean;
}

/**
 * An HTTP proxy to `target` that forwards every request but, for the first request of each
 * (client id, seq), drops the connection after the target has answered: the write is
 * applied and its answer lost, as when a node dies right after applying it.
 */
async function lossyProxy(target: string): Promise<{ url: string; seen: Seen[] }> {
  const seen: Seen[] = [];
  const answered = new Set<string>();
  const server = createServer(async (req, res) => {
    const chunks: Buffer[] = [];
    for await (const chunk of req as AsyncIterable<Buffer>) chunks.push(chunk);
    const headers: Record<string, string> = {};
    for (const name of ['content-type', 'x-flotilla-client-id', 'x-flotilla-seq']) {
      const value = req.headers[name];
      if (typeof value === 'string') headers[name] = value;
    }
    const init: RequestInit = { method: req.method ?? 'GET', headers };
    if (chunks.length > 0) init.body = Buffer.concat(chunks);
    const upstream = await fetch(`${target}${req.url ?? '/'}`, init);
    const text = await upstream.text();
    const pair = `${headers['x-flotilla-client-id']}/${headers['x-flotilla-seq']}`;
    const drop = !answered.has(pair);
    answered.add(pair);
    seen.push({
      method: req.method ?? '',
      path: req.url ?? '',
      clientId: headers['x-flotilla-client-id'],
      seq: headers['x-flotilla-seq'],
      dropped: drop,
    });
    if (drop) {
      req.socket.destroy();
      return;
    }
    res.writeHead(upstream.status, { 'content-type': 'application/json' });
    res.end(text);
  });
  servers.push(server);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, seen };
}

test('a retry of the same (client, seq) through another node answers the first revision; a stale seq is refused', async () => {
  const [n1, n2, n3] = cluster.nodes.map((n) => n.clientUrl) as [string, string, string];
  const session = { clientId: 424_242, seq: 1 };
  const first = await put(n1, 'exactly', 'first', session);
  assert.equal(first.status, 200, JSON.stringify(first.body));
  const retry = await put(n2, 'exactly', 'retried', session);
  assert.equal(retry.status, 200, JSON.stringify(retry.body));
  assert.equal(retry.body.revision, first.body.revision, 'the retry answers the first revision');
  const read = await requestJson(`${n3}/v1/kv/exactly`);
  assert.equal(read.body.value, 'first');
  assert.equal(read.body.version, 1, 'applied once');

  const second = await put(n3, 'exactly', 'second', { ...session, seq: 2 });
  assert.equal(second.status, 200);
  const stale = await put(n1, 'exactly', 'stale', session);
  assert.equal(stale.status, 409);
  assert.equal(stale.body.error?.code, 'STALE_SEQUENCE');
  assert.match(
    stale.body.error?.message ?? '',
    /command 1 of client 424242 precedes its last applied command 2/,
  );
  const after = await requestJson(`${n2}/v1/kv/exactly`);
  assert.equal(after.body.value, 'second');
  assert.equal(after.body.version, 2);
});

test('the CLI retries put, del and txn with the same session after losing the answer: each applies once', async () => {
  const follower = cluster.nodes[1]!.clientUrl;
  const proxy = await lossyProxy(follower);

  const putRun = await flotilla('put', 'cli/key', 'v1', '--endpoints', proxy.url);
  assert.equal(putRun.code, 0, putRun.stderr);
  assert.equal(putRun.stdout.trim(), 'OK');
  const read = await requestJson(`${follower}/v1/kv/cli/key`);
  assert.equal(read.body.value, 'v1');
  assert.equal(read.body.version, 1, 'the retried put applied once');

  const txn = JSON.stringify({
    compare: [{ key: 'cli/key', target: 'VALUE', result: 'EQUAL', value: 'v1' }],
    success: [{ put: { key: 'cli/key', value: 'v2' } }],
    failure: [],
  });
  const txnRun = await flotilla('txn', txn, '--endpoints', proxy.url);
  assert.equal(txnRun.code, 0, txnRun.stderr);
  assert.equal(txnRun.stdout.split('\n')[0], 'SUCCEEDED', 'the retry reports the first outcome');
  assert.equal((await requestJson(`${follower}/v1/kv/cli/key`)).body.version, 2);

  const delRun = await flotilla('del', 'cli/key', '--endpoints', proxy.url);
  assert.equal(delRun.code, 0, delRun.stderr);
  assert.equal(delRun.stdout.trim(), '1', 'the retry reports the key the first attempt deleted');

  // Each command: a dropped first attempt, then one retry with the same client id and seq.
  assert.equal(proxy.seen.length, 6, JSON.stringify(proxy.seen));
  const ids = new Set<string>();
  for (let i = 0; i < 6; i += 2) {
    const [lost, retried] = [proxy.seen[i]!, proxy.seen[i + 1]!];
    assert.ok(lost.dropped && !retried.dropped);
    assert.match(lost.clientId ?? '', /^\d+$/);
    assert.equal(lost.seq, '1');
    assert.deepEqual(
      [retried.method, retried.path, retried.clientId, retried.seq],
      [lost.method, lost.path, lost.clientId, lost.seq],
    );
    ids.add(lost.clientId!);
  }
  assert.equal(ids.size, 3, 'every command has its own client id');

  // A write no endpoint answers fails with the outcome stated unknown, after its retries.
  const dead = await flotilla(
    'put',
    'cli/none',
    'v',
    '--endpoints',
    'http://127.0.0.1:1',
    '--command-timeout',
    '300',
  );
  assert.equal(dead.code, 1);
  assert.match(dead.stderr, /no endpoint answered .*may or may not have been applied/);
});

test('cluster start printed its progress; nodes log JSON lines naming themselves', async () => {
  const output = cluster.output();
  assert.match(output, /cluster of 3 nodes is up; leader n\d/);
  assert.match(output, /waiting for a leader\.\.\. n1 (unreachable|follower|pre-candidate|candidate)/);
  for (const node of cluster.nodes) {
    const lines = (await readFile(join(cluster.root, `${node.name}.log`), 'utf8'))
      .split('\n')
      .filter(Boolean);
    assert.ok(lines.length >= 3, `${node.name} logged its start`);
    for (const line of lines) {
      const entry = JSON.parse(line) as LogLine;
      assert.equal(entry.name, node.name);
      assert.ok(['debug', 'info', 'warn', 'error'].includes(String(entry.level)), line);
      assert.ok(!Number.isNaN(Date.parse(String(entry.time))), line);
      assert.equal(typeof entry.msg, 'string');
    }
    const serving = lines.map((l) => JSON.parse(l) as LogLine).find((e) => e.clientUrl);
    assert.equal(serving?.clientUrl, node.clientUrl, 'the serving line carries the client URL as a field');
  }
});

test('/metrics on a follower: raft gauges, peers connected, HTTP and process metrics', async () => {
  const { body } = await requestJson(`${cluster.nodes[0]!.clientUrl}/v1/cluster`);
  const follower = cluster.nodes.find((n) => n.name !== body.leader?.name)!;
  await requestJson(`${follower.clientUrl}/v1/kv/metrics`, { method: 'PUT', body: '{"value":"m"}' });
  const res = await fetch(`${follower.clientUrl}/metrics`);
  assert.match(res.headers.get('content-type') ?? '', /^text\/plain; version=0\.0\.4/);
  const metrics = parsePrometheus(await res.text());
  assert.equal(sampleValue(metrics, 'flotilla_raft_is_leader'), 0);
  assert.equal(sampleValue(metrics, 'flotilla_raft_has_leader'), 1);
  assert.ok(sampleValue(metrics, 'flotilla_raft_term') >= 2);
  const applied = sampleValue(metrics, 'flotilla_raft_applied_index');
  assert.ok(applied >= 5 && applied <= sampleValue(metrics, 'flotilla_raft_commit_index'));
  assert.ok(sampleValue(metrics, 'flotilla_raft_last_index') >= applied);
  assert.ok(sampleValue(metrics, 'flotilla_kv_revision') >= 5);
  for (const peer of cluster.nodes.filter((n) => n !== follower)) {
    assert.equal(sampleValue(metrics, 'flotilla_peer_connected', { peer: String(peer.id) }), 1);
    assert.equal(sampleValue(metrics, 'flotilla_peer_messages_dropped_total', { peer: String(peer.id) }), 0);
  }
  assert.ok(sampleValue(metrics, 'flotilla_http_requests_total', { method: 'PUT', code: '200' }) >= 1);
  assert.equal(metrics.types.get('flotilla_http_request_duration_seconds'), 'histogram');
  assert.ok(sampleValue(metrics, 'flotilla_apply_entries_total') >= 5);
  assert.equal(metrics.types.get('flotilla_apply_entries_total'), 'counter');
  assert.ok(sampleValue(metrics, 'process_cpu_user_seconds_total') > 0);
  assert.ok(sampleValue(metrics, 'process_resident_memory_bytes') > 1024 * 1024);
  // The per-stage write latencies: the follower's own (forwarded) proposal, its appends.
  assert.equal(metrics.types.get('flotilla_write_stage_seconds'), 'histogram');
  const stage = (exposition: typeof metrics, name: string, suffix = 'count'): number =>
    sampleValue(exposition, `flotilla_write_stage_seconds_${suffix}`, { stage: name });
  for (const name of ['total', 'queue', 'append', 'commit', 'apply', 'wal_sync', 'follower_persist']) {
    assert.ok(stage(metrics, name) >= 1, `follower stage ${name} observed`);
  }
  assert.ok(stage(metrics, 'total', 'sum') > 0);
  const leader = cluster.nodes.find((n) => n.name === body.leader?.name)!;
  const leaderMetrics = parsePrometheus(await (await fetch(`${leader.clientUrl}/metrics`)).text());
  assert.ok(stage(leaderMetrics, 'replicate') >= 2, 'the leader timed both followers acknowledging');
});

test("status names every member with its process id; --leader-pid prints the leader's alone", async () => {
  const endpoints = cluster.nodes.map((n) => n.clientUrl).join(',');
  const listed = await flotilla('status', '--json', '--endpoints', endpoints);
  assert.equal(listed.code, 0, listed.stderr);
  const rows = JSON.parse(listed.stdout) as { name: string; pid: number; role: string }[];
  for (const node of cluster.nodes) {
    assert.equal(rows.find((r) => r.name === node.name)?.pid, node.pid, `${node.name}'s pid`);
  }
  const leader = rows.find((r) => r.role === 'leader')!;
  const printed = await flotilla('status', '--leader-pid', '--endpoints', endpoints);
  assert.equal(printed.code, 0, printed.stderr);
  assert.equal(printed.stdout, `${leader.pid}\n`);
  // Asked only followers, no endpoint answers as the leader: exit 1, nothing on stdout.
  const followers = cluster.nodes.filter((n) => n.name !== leader.name).map((n) => n.clientUrl);
  const none = await flotilla('status', '--leader-pid', '--endpoints', followers.join(','));
  assert.deepEqual([none.code, none.stdout], [1, '']);
  assert.match(none.stderr, /no endpoint answered as the leader/);
});

test('snapshot save --progress reports the bytes received on stderr; stdout keeps its format', async () => {
  const file = join(cluster.root, 'backup.snap');
  const saved = await flotilla(
    'snapshot',
    'save',
    file,
    '--progress',
    '--endpoints',
    cluster.nodes[0]!.clientUrl,
  );
  assert.equal(saved.code, 0, saved.stderr);
  const { size } = await stat(file);
  assert.match(saved.stdout, new RegExp(`^saved ${size} bytes at revision \\d+ to ${file}\\n$`));
  assert.match(saved.stderr, new RegExp(`received ${size} bytes in \\d+\\.\\d s, done`));
  const quiet = await flotilla('snapshot', 'save', file, '--endpoints', cluster.nodes[0]!.clientUrl);
  assert.equal(quiet.stderr, '', 'no progress without --progress when stderr is not a terminal');
});
