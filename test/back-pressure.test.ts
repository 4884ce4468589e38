/**
 * Admission back-pressure on a real node (WAL, LMDB, the etcd gRPC and HTTP servers on real
 * sockets): with the LMDB commits held, apply stops while entries keep committing; once the
 * applied index is more than 5000 entries behind the committed index (etcd's
 * `maxGapBetweenApplyAndCommitIndex`), a new write is refused at once with etcd's exact
 * error on the etcd API (`RESOURCE_EXHAUSTED`, `etcdserver: too many requests`) and 429
 * `TOO_MANY_REQUESTS` on the HTTP API, and nothing of it is written.
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { credentials, type ServiceClientConstructor, type ServiceError, status } from '@grpc/grpc-js';
import type { KvNode } from '../src/db/index.js';
import { EtcdGrpcServer, etcdService } from '../src/etcd/index.js';
import { DEFAULT_NODE_OPTIONS } from '../src/node/index.js';
import { HttpApi } from '../src/server/index.js';
import { until } from './support/http.js';
import { type SoloNode, startSoloNode } from './support/solo-node.js';

const encoder = new TextEncoder();
const quiet = { info: () => {}, warn: () => {}, error: () => {} };

let solo: SoloNode;
let node: KvNode;
let grpc: EtcdGrpcServer;
let http: HttpApi;
let kv: InstanceType<ServiceClientConstructor>;
let httpBase = '';
/** While set, LMDB commits of batches past `after` (a log index) wait for it. */
let hold: { promise: Promise<void>; release: () => void; after: number } | undefined;
/** Set once a commit is waiting for {@link hold}. */
let holding = false;

before(async () => {
  const store = {
    // One batch in flight at most: a held commit stops the apply path at once.
    options: { commitBatchesMax: 1 },
    hooks: {
      beforeCommit: (batches: { readonly to: number }) => {
        // A commit of earlier batches only (the election's entry, under load) is not the one
        // to hold: holding it would stop the apply of 'first' and the Ready loop with it.
        if (hold === undefined || batches.to <= hold.after) return Promise.resolve();
        holding = true;
        return hold.promise;
      },
    },
  };
  solo = await startSoloNode('flotilla-back-pressure-', { requestTimeoutMs: 60_000 }, store);
  node = solo.node;
  grpc = new EtcdGrpcServer({ node, host: '127.0.0.1', port: 0, logger: quiet });
  kv = new (etcdService('KV'))(`127.0.0.1:${(await grpc.start()).port}`, credentials.createInsecure());
  http = new HttpApi({ node, host: '127.0.0.1', port: 0 });
  httpBase = `http://127.0.0.1:${(await http.start()).port}`;
});

after(async () => {
  hold?.release();
  kv?.close();
  await grpc?.stop();
  await http?.stop();
  await solo?.destroy();
});

function etcdPut(key: string, method = 'Put'): Promise<unknown> {
  return new Promise((resolve, reject) => {
    const put = kv[method] as (r: object, cb: (e: ServiceError | null, r: unknown) => void) => void;
    put.call(kv, { key: Buffer.from(key), value: Buffer.from('x') }, (e, r) => (e ? reject(e) : resolve(r)));
  });
}

function lag(): number {
  const status = node.status();
  return status.commit - status.kvApplied;
}

test("apply more than 5000 entries behind commit: writes refused fast with etcd's error and 429", async () => {
  const gap = DEFAULT_NODE_OPTIONS.applyLagEntriesMax;
  assert.equal(gap, 5000);
  // Everything applied so far (the election's empty entry) committed first: else the commit
  // held below could be that one, and the apply of 'first' would wait behind it, holding the
  // Ready loop before the puts below are even written.
  await until('the applied entries committed to LMDB', 20_000, () =>
    node.status().kvApplied === node.status().commit ? true : undefined,
  );
  await node.backend.sync();
  let release = (): void => {};
  const promise = new Promise<void>((resolve) => {
    release = resolve;
  });
  hold = { promise, release, after: node.status().lastIndex };
  const accepted: Promise<unknown>[] = [];
  const put = (key: string): void => {
    accepted.push(node.propose({ type: 'put', key: encoder.encode(key), value: encoder.encode('v') }));
  };
  // Once a batch is applied and its commit held, no later entry applies until it is let go.
  put('first');
  await until('a commit held', 20_000, () => (holding ? true : undefined));
  for (let i = 0; i <= gap + 50; i++) put(`k${i}`);
  await until('apply to fall 5000 entries behind', 20_000, () => (lag() > gap ? true : undefined));
  const revision = node.status().revision;
  const rejectedBefore = node.raft.stats().counters.proposalsRejected;

  const started = performance.now();
  const error = await etcdPut('refused-etcd').then(
    () => assert.fail('the put was accepted'),
    (e: ServiceError) => e,
  );
  assert.equal(error.code, status.RESOURCE_EXHAUSTED);
  assert.equal(error.details, 'etcdserver: too many requests');
  const res = await fetch(`${httpBase}/v1/kv/refused-http`, { method: 'PUT', body: '{"value":"x"}' });
  assert.equal(res.status, 429);
  const body = (await res.json()) as { error: { code: string } };
  assert.equal(body.error.code, 'TOO_MANY_REQUESTS');
  assert.ok(performance.now() - started < 2000, 'refused at once, not after a timeout');
  assert.equal(node.raft.stats().counters.proposalsRejected, rejectedBefore + 2);
  assert.equal(node.status().revision, revision, 'nothing applied meanwhile');

  hold = undefined;
  release();
  const results = (await Promise.all(accepted)) as { ok: boolean }[];
  assert.ok(results.every((r) => r.ok));
  await until('apply to catch up', 20_000, () => (lag() === 0 ? true : undefined));
  // Every accepted put made one revision; the refused ones none and left no key.
  assert.equal(node.status().revision, 1 + accepted.length);
  for (const key of ['refused-etcd', 'refused-http']) {
    const range = await node.read({ key: encoder.encode(key) });
    assert.equal(range.count, 0, key);
  }
  await etcdPut('after');
});
