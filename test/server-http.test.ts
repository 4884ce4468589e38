/**
 * The HTTP API against a real single-node cluster (storage, transport, LMDB) in this
 * process: the happy paths and every class of bad input, each with its status and code.
 */
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { freePort } from '../src/cli/cluster-command.js';
import { KvNode } from '../src/db/index.js';
import { clusterIdFrom, parseInitialCluster } from '../src/node/index.js';
import { HttpApi } from '../src/server/index.js';
import type { ApiBody } from './support/http.js';
import { parsePrometheus, sampleValue } from './support/metrics.js';

let root = '';
let node: KvNode;
let http: HttpApi;
let base = '';
let noLeaderNode: KvNode;
let noLeaderHttp: HttpApi;
let noLeaderBase = '';

async function startNode(
  initialCluster: string,
  name: string,
  requestTimeoutMs: number,
): Promise<[KvNode, HttpApi, string]> {
  const members = parseInitialCluster(initialCluster);
  const self = members.find((m) => m.name === name)!;
  const n = await KvNode.start({
    name,
    id: self.id,
    clusterId: clusterIdFrom(members),
    initialCluster,
    members: new Map(members.map((m) => [m.id, { name: m.name, host: m.host, port: m.port }])),
    dataDir: join(root, name),
    listenPeer: { host: self.host, port: self.port },
    tickMs: 20,
    kvNoSync: true,
    requestTimeoutMs,
  });
  const h = new HttpApi({ node: n, host: '127.0.0.1', port: 0 });
  const { port } = await h.start();
  return [n, h, `http://127.0.0.1:${port}`];
}

before(async () => {
  root = await mkdtemp(join(tmpdir(), 'flotilla-http-'));
  [node, http, base] = await startNode(`solo=127.0.0.1:${await freePort()}`, 'solo', 2000);
  const lonely = `l1=127.0.0.1:${await freePort()},l2=127.0.0.1:${await freePort()},l3=127.0.0.1:${await freePort()}`;
  [noLeaderNode, noLeaderHttp, noLeaderBase] = await startNode(lonely, 'l1', 300);
  const deadline = Date.now() + 5000;
  while (node.status().role !== 'leader' && Date.now() < deadline)
    await new Promise((r) => setTimeout(r, 10));
});

after(async () => {
  await http.stop();
  await node.stop();
  await noLeaderHttp.stop();
  await noLeaderNode.stop();
  await rm(root, { recursive: true, force: true });
});

async function call(
  method: string,
  path: string,
  body?: string,
  at = base,
): Promise<{ status: number; json: ApiBody }> {
  const init: RequestInit = { method };
  if (body !== undefined) init.body = body;
  const res = await fetch(`${at}${path}`, init);
  return { status: res.status, json: (await res.json()) as ApiBody };
}

function errorCode(json: ApiBody): string {
  return (json.error as { code: string }).code;
}

describe('HTTP API', () => {
  test('put, get (linearizable and serializable), range, delete', async () => {
    const put = await call('PUT', '/v1/kv/dir/a', JSON.stringify({ value: 'one' }));
    assert.equal(put.status, 200);
    assert.equal(typeof put.json.revision, 'number');
    await call('PUT', '/v1/kv/dir/b', JSON.stringify({ valueBase64: Buffer.from('two').toString('base64') }));
    const get = await call('GET', '/v1/kv/dir/a');
    assert.equal(get.status, 200);
    assert.equal(get.json.value, 'one');
    assert.equal(get.json.version, 1);
    const local = await call('GET', '/v1/kv/dir/b?consistency=serializable');
    assert.equal(local.json.value, 'two');
    const range = await call('GET', '/v1/kv?prefix=dir/');
    assert.equal(range.json.count, 2);
    const del = await call('DELETE', '/v1/kv/dir/a');
    assert.equal(del.json.deleted, 1);
    const gone = await call('GET', '/v1/kv/dir/a');
    assert.equal(gone.status, 404);
    assert.equal(errorCode(gone.json), 'KEY_NOT_FOUND');
    const delPrefix = await call('DELETE', '/v1/kv/dir/?prefix=true');
    assert.equal(delPrefix.json.deleted, 1);
  });

  test('txn: compare-and-swap succeeds once, then takes the failure branch', async () => {
    await call('PUT', '/v1/kv/cas', JSON.stringify({ value: 'old' }));
    const txn = {
      compare: [{ key: 'cas', target: 'VALUE', result: 'EQUAL', value: 'old' }],
      success: [{ put: { key: 'cas', value: 'new' } }],
      failure: [{ get: { key: 'cas' } }],
    };
    const first = await call('POST', '/v1/txn', JSON.stringify(txn));
    assert.equal(first.status, 200);
    assert.equal(first.json.succeeded, true);
    const second = await call('POST', '/v1/txn', JSON.stringify(txn));
    assert.equal(second.json.succeeded, false);
    const responses = second.json.responses as { get: { kvs: { value: string }[] } }[];
    assert.equal(responses[0]!.get.kvs[0]!.value, 'new');
  });

  test('bad input: JSON errors with stable codes and statuses, nothing applied', async () => {
    const before = (await call('GET', '/v1/cluster')).json.revision;
    const cases: [string, string, string | undefined, number, string][] = [
      ['PUT', '/v1/kv/x', '{not json', 400, 'INVALID_JSON'],
      ['PUT', '/v1/kv/x', '', 400, 'INVALID_JSON'],
      ['PUT', '/v1/kv/x', '[1,2]', 400, 'INVALID_ARGUMENT'],
      ['PUT', '/v1/kv/x', '{"value": 5}', 400, 'INVALID_ARGUMENT'],
      ['PUT', '/v1/kv/x', '{}', 400, 'INVALID_ARGUMENT'],
      ['PUT', '/v1/kv/x', '{"value":"v","lease":-1}', 400, 'INVALID_ARGUMENT'],
      ['PUT', '/v1/kv/x', '{"value":"v","lease":12345}', 404, 'LEASE_NOT_FOUND'],
      [
        'PUT',
        '/v1/kv/x',
        JSON.stringify({ value: 'x'.repeat(1.5 * 1024 * 1024 + 1) }),
        413,
        'REQUEST_TOO_LARGE',
      ],
      ['PUT', '/v1/kv/x', JSON.stringify({ value: 'x'.repeat(3 * 1024 * 1024) }), 413, 'REQUEST_TOO_LARGE'],
      ['PUT', '/v1/kv/%E0%A4%A', '{"value":"v"}', 400, 'INVALID_ARGUMENT'],
      ['GET', '/v1/kv/x?consistency=eventual', undefined, 400, 'INVALID_ARGUMENT'],
      ['GET', '/v1/kv/x?revision=abc', undefined, 400, 'INVALID_ARGUMENT'],
      ['GET', '/v1/kv/x?revision=999999', undefined, 400, 'FUTURE_REV'],
      ['GET', '/v1/kv', undefined, 400, 'INVALID_ARGUMENT'],
      ['POST', '/v1/txn', '{"compare":[{"key":"a","target":"NOPE","value":"x"}]}', 400, 'INVALID_ARGUMENT'],
      [
        'POST',
        '/v1/txn',
        '{"success":[{"put":{"key":"a","value":"1"}},{"put":{"key":"a","value":"2"}}]}',
        400,
        'DUPLICATE_KEY',
      ],
      ['POST', '/v1/txn', '{"success":[{"frobnicate":{"key":"a"}}]}', 400, 'INVALID_ARGUMENT'],
      ['POST', '/v1/txn', 'null', 400, 'INVALID_ARGUMENT'],
      ['PATCH', '/v1/kv/x', '{}', 405, 'METHOD_NOT_ALLOWED'],
      ['POST', '/v1/cluster', '{}', 405, 'METHOD_NOT_ALLOWED'],
      ['GET', '/v2/keys', undefined, 404, 'NOT_FOUND'],
    ];
    for (const [method, path, body, status, code] of cases) {
      const reply = await call(method, path, body);
      assert.equal(
        reply.status,
        status,
        `${method} ${path} ${body?.slice(0, 40)}: ${JSON.stringify(reply.json)}`,
      );
      assert.equal(errorCode(reply.json), code, `${method} ${path}`);
      assert.equal(typeof (reply.json.error as { message: unknown }).message, 'string');
    }
    assert.equal((await call('GET', '/v1/cluster')).json.revision, before, 'no bad request changed anything');
  });

  test('compacted revisions answer 410', async () => {
    await call('PUT', '/v1/kv/h', JSON.stringify({ value: '1' }));
    const second = await call('PUT', '/v1/kv/h', JSON.stringify({ value: '2' }));
    const revision = second.json.revision as number;
    const result = await node.propose({ type: 'compact', revision });
    assert.equal(result.ok, true);
    const old = await call('GET', `/v1/kv/h?revision=${revision - 1}`);
    assert.equal(old.status, 410);
    assert.equal(errorCode(old.json), 'COMPACTED');
  });

  test('cluster, health and metrics', async () => {
    const cluster = await call('GET', '/v1/cluster');
    assert.equal(cluster.json.role, 'leader');
    assert.deepEqual((cluster.json.leader as { name: string }).name, 'solo');
    assert.equal((await call('GET', '/health')).status, 200);
    const metrics = await (await fetch(`${base}/metrics`)).text();
    assert.match(metrics, /^flotilla_raft_is_leader 1$/m);
    assert.match(metrics, /flotilla_http_requests_total\{method="PUT",code="200"\} \d+/);
  });

  test('metrics: a valid exposition per node (own registry), raft gauges, HTTP and process metrics', async () => {
    await call('PUT', '/v1/kv/metered', JSON.stringify({ value: 'm' }));
    const res = await fetch(`${base}/metrics`);
    assert.match(res.headers.get('content-type') ?? '', /^text\/plain; version=0\.0\.4/);
    const metrics = parsePrometheus(await res.text());
    const status = node.status();
    assert.equal(sampleValue(metrics, 'flotilla_raft_is_leader'), 1);
    assert.equal(sampleValue(metrics, 'flotilla_raft_has_leader'), 1);
    assert.equal(sampleValue(metrics, 'flotilla_raft_term'), status.term);
    const applied = sampleValue(metrics, 'flotilla_raft_applied_index');
    assert.ok(applied >= 2 && applied <= sampleValue(metrics, 'flotilla_raft_commit_index'));
    assert.ok(sampleValue(metrics, 'flotilla_raft_last_index') >= applied);
    assert.ok(sampleValue(metrics, 'flotilla_kv_revision') >= 2);
    assert.ok(sampleValue(metrics, 'flotilla_raft_leader_changes_total') >= 1);
    assert.ok(sampleValue(metrics, 'flotilla_wal_saves_total') >= 1);
    assert.ok(sampleValue(metrics, 'flotilla_proposals_applied_total') >= 1);
    assert.equal(metrics.types.get('flotilla_proposals_applied_total'), 'counter');
    const puts = sampleValue(metrics, 'flotilla_http_requests_total', { method: 'PUT', code: '200' });
    assert.ok(puts >= 1);
    const count = sampleValue(metrics, 'flotilla_http_request_duration_seconds_count');
    assert.equal(
      sampleValue(metrics, 'flotilla_http_request_duration_seconds_bucket', { le: '+Inf' }),
      count,
    );
    assert.ok(count >= puts);
    assert.ok(sampleValue(metrics, 'process_cpu_user_seconds_total') > 0);
    assert.ok(sampleValue(metrics, 'nodejs_heap_size_used_bytes') > 0);
    // A scrape reads the node's current state: the counter follows the requests.
    await call('PUT', '/v1/kv/metered', JSON.stringify({ value: 'n' }));
    const again = parsePrometheus(await (await fetch(`${base}/metrics`)).text());
    assert.equal(
      sampleValue(again, 'flotilla_http_requests_total', { method: 'PUT', code: '200' }),
      puts + 1,
    );
    // The leaderless node in the same process has its own registry.
    const other = parsePrometheus(await (await fetch(`${noLeaderBase}/metrics`)).text());
    assert.equal(sampleValue(other, 'flotilla_raft_is_leader'), 0);
    assert.equal(sampleValue(other, 'flotilla_raft_has_leader'), 0);
    assert.equal(other.samples.filter((s) => s.name === 'flotilla_peer_connected').length, 2);
    assert.ok(http.metricsRegistry !== noLeaderHttp.metricsRegistry);
    assert.ok((await http.metricsRegistry.getSingleMetricAsString('flotilla_raft_term')).includes('gauge'));
  });

  test('watch over SSE: live events, history from a revision, 410 below the compaction', async () => {
    const start = ((await call('GET', '/v1/cluster')).json.revision ?? 0) + 1;
    const controller = new AbortController();
    const res = await fetch(`${base}/v1/watch?prefix=w/&startRevision=${start}&prevKv=true`, {
      signal: controller.signal,
    });
    assert.equal(res.status, 200);
    assert.match(res.headers.get('content-type') ?? '', /text\/event-stream/);
    await call('PUT', '/v1/kv/w/1', JSON.stringify({ value: 'a' }));
    await call('PUT', '/v1/kv/w/1', JSON.stringify({ value: 'b' }));
    await call('DELETE', '/v1/kv/w/1');
    const events: { type: string; kv: { key: string; value: string }; prevKv?: { value: string } }[] = [];
    const reader = res.body!.getReader();
    let text = '';
    const deadline = Date.now() + 5000;
    while (events.length < 3 && Date.now() < deadline) {
      const { value, done } = await reader.read();
      if (done) break;
      text += new TextDecoder().decode(value);
      const blocks = text.split('\n\n');
      text = blocks.pop() ?? '';
      for (const block of blocks) {
        if (!block.startsWith('data: ')) continue;
        events.push(...(JSON.parse(block.slice(6)) as { events: typeof events }).events);
      }
    }
    controller.abort();
    assert.deepEqual(
      events.map((e) => e.type),
      ['PUT', 'PUT', 'DELETE'],
    );
    assert.equal(events[1]!.kv.value, 'b');
    assert.equal(events[1]!.prevKv?.value, 'a');
    const compacted = await call('GET', '/v1/watch?key=h&startRevision=1');
    assert.equal(compacted.status, 410);
    assert.equal(errorCode(compacted.json), 'COMPACTED');
    const bad = await call('GET', '/v1/watch?key=a&prefix=b');
    assert.equal(bad.status, 400);
  });

  test('leases: grant, attach, time to live, expiry revoked by the leader, unknown lease 404', async () => {
    const grant = await call('POST', '/v1/lease/grant', JSON.stringify({ ttl: 1 }));
    assert.equal(grant.status, 200, JSON.stringify(grant.json));
    const id = (grant.json as { id: number }).id;
    assert.equal((await call('PUT', '/v1/kv/leased', JSON.stringify({ value: 'v', lease: id }))).status, 200);
    const ttl = await call('GET', `/v1/lease/${id}`);
    assert.equal(ttl.status, 200);
    assert.deepEqual((ttl.json as { keys: string[] }).keys, ['leased']);
    const keepAlive = await call('POST', '/v1/lease/keepalive', JSON.stringify({ id }));
    assert.equal(keepAlive.status, 200);
    const deadline = Date.now() + 6000;
    while ((await call('GET', '/v1/kv/leased')).status === 200) {
      assert.ok(Date.now() < deadline, 'the leased key expired');
      await new Promise((r) => setTimeout(r, 50));
    }
    assert.equal(errorCode((await call('GET', `/v1/lease/${id}`)).json), 'LEASE_NOT_FOUND');
    const revoke = await call('POST', '/v1/lease/revoke', JSON.stringify({ id: 424242 }));
    assert.equal(revoke.status, 404);
    assert.equal(errorCode(revoke.json), 'LEASE_NOT_FOUND');
    assert.equal((await call('POST', '/v1/lease/keepalive', JSON.stringify({ id: 424242 }))).status, 404);
    assert.equal((await call('POST', '/v1/lease/grant', JSON.stringify({ ttl: 0 }))).status, 400);
  });

  test('without a leader: a retryable 503 after the request timeout, health 503', async () => {
    const started = Date.now();
    const put = await call('PUT', '/v1/kv/x', '{"value":"v"}', noLeaderBase);
    assert.equal(put.status, 503);
    assert.equal(errorCode(put.json), 'NO_LEADER');
    assert.equal((put.json.error as { retryable: boolean }).retryable, true);
    assert.ok(Date.now() - started >= 250, 'waited for a leader first');
    const get = await call('GET', '/v1/kv/x', undefined, noLeaderBase);
    assert.equal(get.status, 503);
    assert.equal((await call('GET', '/health', undefined, noLeaderBase)).status, 503);
  });
});
