/**
 * `etcdctl check perf --load=s` (etcd 3.4's own performance check: 50 clients writing 150
 * keys a second for 60 s, then throughput, slowest request and deviation checks) against a
 * real 3-node cluster must print PASS. It runs about a minute, so it has its own file.
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { etcdctl, type LocalCluster, startLocalCluster } from './support/local-cluster.js';

let cluster: LocalCluster;

before(async () => {
  cluster = await startLocalCluster(3);
});

after(async () => {
  await cluster?.destroy();
});

test('etcdctl check perf --load=s passes', { timeout: 180_000 }, async () => {
  const result = await etcdctl(cluster.endpoints, ['check', 'perf', '--load=s'], { timeoutMs: 150_000 });
  assert.equal(result.code, 0, `check perf failed:\n${result.stdout.slice(-2000)}\n${result.stderr}`);
  assert.match(result.stdout, /PASS: Throughput is \d+ writes\/s/);
  assert.match(result.stdout, /PASS: Slowest request took/);
  assert.match(result.stdout, /PASS: Stddev is/);
  assert.match(result.stdout, /\nPASS\n?$/, result.stdout.slice(-500));
  // The check deleted its keys again.
  const left = await etcdctl(cluster.endpoints, ['get', '/etcdctl-check-perf/', '--prefix', '--keys-only']);
  assert.equal(left.code, 0, left.stderr);
  assert.equal(left.stdout, '');
});
