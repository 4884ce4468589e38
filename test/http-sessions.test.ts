/**
 * Exactly-once writes over HTTP against a real single-node cluster in this process: the
 * `x-flotilla-client-id` / `x-flotilla-seq` headers are validated, and a retry of the same
 * pair answers the first outcome without applying again, for every kind of write.
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import type { KvNode } from '../src/db/index.js';
import { HttpApi } from '../src/server/index.js';
import type { ApiBody } from './support/http.js';
import { type SoloNode, startSoloNode } from './support/solo-node.js';

/** The response fields these tests read. */
type Body = ApiBody & { readonly id?: number; readonly modRevision?: number };

let solo: SoloNode;
let node: KvNode;
let http: HttpApi;
let base = '';

before(async () => {
  solo = await startSoloNode('flotilla-sessions-');
  node = solo.node;
  http = new HttpApi({ node, host: '127.0.0.1', port: 0 });
  base = `http://127.0.0.1:${(await http.start()).port}`;
});

after(async () => {
  await http.stop();
  await solo.destroy();
});

async function call(
  method: string,
  path: string,
  body: unknown,
  session?: { clientId: number | string; seq: number | string },
): Promise<{ status: number; json: Body }> {
  const headers: Record<string, string> = {};
  if (session !== undefined) {
    headers['x-flotilla-client-id'] = String(session.clientId);
    headers['x-flotilla-seq'] = String(session.seq);
  }
  const init: RequestInit = { method, headers };
  if (body !== undefined) init.body = JSON.stringify(body);
  const res = await fetch(`${base}${path}`, init);
  return { status: res.status, json: (await res.json()) as Body };
}

async function revision(): Promise<number> {
  return (await call('GET', '/v1/cluster', undefined)).json.revision ?? 0;
}

test('a retried put answers the first revision and applies once; a stale seq is refused', async () => {
  const client = { clientId: 7001 };
  const first = await call('PUT', '/v1/kv/once', { value: 'first' }, { ...client, seq: 1 });
  assert.equal(first.status, 200, JSON.stringify(first.json));
  const firstRevision = first.json.revision!;
  // The same (client, seq) again, even with another value: the first outcome, nothing applied.
  const retry = await call('PUT', '/v1/kv/once', { value: 'second' }, { ...client, seq: 1 });
  assert.equal(retry.status, 200);
  assert.equal(retry.json.revision, firstRevision);
  assert.equal(await revision(), firstRevision, 'the retry did not create a revision');
  const read = await call('GET', '/v1/kv/once', undefined);
  assert.equal(read.json.value, 'first');
  assert.equal(read.json.version, 1);
  // Without a session the same request applies again (what the session prevents).
  const plain = await call('PUT', '/v1/kv/once', { value: 'plain' });
  assert.equal(plain.json.revision, firstRevision + 1);
  assert.equal((await call('GET', '/v1/kv/once', undefined)).json.version, 2);
  // The next seq applies; then seq 1 is stale.
  const next = await call('PUT', '/v1/kv/once', { value: 'third' }, { ...client, seq: 2 });
  assert.equal(next.json.revision, firstRevision + 2);
  const stale = await call('PUT', '/v1/kv/once', { value: 'late' }, { ...client, seq: 1 });
  assert.equal(stale.status, 409);
  assert.equal(stale.json.error?.code, 'STALE_SEQUENCE');
  assert.match(
    stale.json.error?.message ?? '',
    /command 1 of client 7001 precedes its last applied command 2/,
  );
  assert.equal((await call('GET', '/v1/kv/once', undefined)).json.value, 'third');
});

test('delete, txn and leases in a session: a retry answers the first outcome', async () => {
  const session = (seq: number) => ({ clientId: 7002, seq });
  await call('PUT', '/v1/kv/d/a', { value: 'x' });
  await call('PUT', '/v1/kv/d/b', { value: 'y' });
  const del = await call('DELETE', '/v1/kv/d/?prefix=true', undefined, session(1));
  assert.equal(del.json.deleted, 2);
  const delAgain = await call('DELETE', '/v1/kv/d/?prefix=true', undefined, session(1));
  assert.deepEqual(delAgain.json, del.json, 'the retry reports the 2 keys the first attempt deleted');

  // A compare-and-swap retried after it succeeded still reports success (without a session
  // the retry would take the failure branch).
  await call('PUT', '/v1/kv/cas', { value: 'old' });
  const txn = {
    compare: [{ key: 'cas', target: 'VALUE', result: 'EQUAL', value: 'old' }],
    success: [{ put: { key: 'cas', value: 'new' } }],
    failure: [{ get: { key: 'cas' } }],
  };
  const swap = await call('POST', '/v1/txn', txn, session(2));
  assert.equal(swap.json.succeeded, true);
  const swapAgain = await call('POST', '/v1/txn', txn, session(2));
  assert.deepEqual(swapAgain.json, swap.json);
  assert.equal((await call('POST', '/v1/txn', txn)).json.succeeded, false);

  // A retried grant answers the lease the first attempt granted (the server picks the id).
  const grant = await call('POST', '/v1/lease/grant', { ttl: 30 }, session(3));
  const grantAgain = await call('POST', '/v1/lease/grant', { ttl: 30 }, session(3));
  assert.equal(grant.status, 200);
  assert.deepEqual(grantAgain.json, grant.json);
  const id = grant.json.id!;
  const keepAlive = await call('POST', '/v1/lease/keepalive', { id }, session(4));
  assert.equal(keepAlive.status, 200);
  assert.deepEqual((await call('POST', '/v1/lease/keepalive', { id }, session(4))).json, keepAlive.json);
  const revoke = await call('POST', '/v1/lease/revoke', { id }, session(5));
  assert.equal(revoke.status, 200);
  const revokeAgain = await call('POST', '/v1/lease/revoke', { id }, session(5));
  assert.equal(revokeAgain.status, 200, 'a retried revoke answers its success, not LEASE_NOT_FOUND');
  assert.equal(revokeAgain.json.revision, revoke.json.revision);
  assert.equal((await call('POST', '/v1/lease/revoke', { id })).status, 404);

  // A seq reused for another kind of request: a clear conflict, nothing applied.
  const before = await revision();
  const reused = await call('PUT', '/v1/kv/other', { value: 'v' }, session(5));
  assert.equal(reused.status, 409);
  assert.equal(reused.json.error?.code, 'SEQUENCE_REUSED');
  assert.match(reused.json.error?.message ?? '', /seq 5 of client 7002 was used for a leaseRevoke request/);
  assert.equal(await revision(), before);
  assert.equal((await call('GET', '/v1/kv/other', undefined)).status, 404);
});

test('bad session headers: 400 INVALID_ARGUMENT naming the header, nothing applied', async () => {
  const before = await revision();
  const cases: [Record<string, string>, RegExp][] = [
    [{ 'x-flotilla-client-id': '5' }, /x-flotilla-client-id given without x-flotilla-seq/],
    [{ 'x-flotilla-seq': '5' }, /x-flotilla-seq given without x-flotilla-client-id/],
    [{ 'x-flotilla-client-id': 'abc', 'x-flotilla-seq': '1' }, /x-flotilla-client-id must be an integer/],
    [
      { 'x-flotilla-client-id': '0', 'x-flotilla-seq': '1' },
      /x-flotilla-client-id must be an integer in \[1/,
    ],
    [{ 'x-flotilla-client-id': '1', 'x-flotilla-seq': '-3' }, /x-flotilla-seq must be an integer/],
    [{ 'x-flotilla-client-id': '1', 'x-flotilla-seq': '1.5' }, /x-flotilla-seq must be an integer/],
    [{ 'x-flotilla-client-id': '99999999999999999', 'x-flotilla-seq': '1' }, /x-flotilla-client-id must be/],
  ];
  for (const [headers, message] of cases) {
    for (const [method, path, body] of [
      ['PUT', '/v1/kv/bad', '{"value":"v"}'],
      ['DELETE', '/v1/kv/bad', undefined],
      ['POST', '/v1/txn', '{"success":[{"put":{"key":"bad","value":"v"}}]}'],
      ['POST', '/v1/lease/grant', '{"ttl":5}'],
    ] as const) {
      const init: RequestInit = { method, headers };
      if (body !== undefined) init.body = body;
      const res = await fetch(`${base}${path}`, init);
      const json = (await res.json()) as ApiBody;
      assert.equal(res.status, 400, `${method} ${path} ${JSON.stringify(headers)}`);
      assert.equal(json.error?.code, 'INVALID_ARGUMENT');
      assert.match(json.error?.message ?? '', message);
    }
  }
  // Reads ignore the headers.
  const read = await fetch(`${base}/v1/kv/once`, { headers: { 'x-flotilla-seq': 'nope' } });
  assert.equal(read.status, 200);
  assert.equal(await revision(), before, 'no bad request changed anything');
});

test('concurrent duplicates of one (client, seq) apply once', async () => {
  const attempts = await Promise.all(
    Array.from({ length: 8 }, (_, i) =>
      call('PUT', '/v1/kv/race', { value: `v${i}` }, { clientId: 7003, seq: 1 }),
    ),
  );
  const revisions = new Set(attempts.map((a) => a.json.revision));
  assert.equal(revisions.size, 1, `every attempt answers one revision: ${[...revisions].join(',')}`);
  const read = await call('GET', '/v1/kv/race', undefined);
  assert.equal(read.json.version, 1);
  assert.equal(read.json.modRevision, [...revisions][0]);
});
