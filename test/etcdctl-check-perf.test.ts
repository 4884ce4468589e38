/**
 * `etcdctl check perf --load=s` (etcd 3.4's own performance check: 50 clients writing 150
 * keys a second for 60 s, then throughput, slowest request and deviation checks) against a
 * real 3-node cluster must print PASS. It runs about a minute, so it has its own file.
 *
 * The cluster runs with the default timing (100 ms ticks, a 1 s election timeout: etcd's own
 * defaults, which the check is calibrated for). A failure prints every member's leader changes
 * and warnings: a stall of the leader beyond the election timeout shows there as a new term.
 */
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { etcdctl, type LocalCluster, startLocalCluster } from './support/local-cluster.js';

let cluster: LocalCluster;

before(async () => {
  cluster = await startLocalCluster(3, []);
});

after(async () => {
  await cluster?.destroy();
});

test('etcdctl check perf --load=s passes', { timeout: 180_000 }, async () => {
  const result = await etcdctl(cluster.endpoints, ['check', 'perf', '--load=s'], { timeoutMs: 150_000 });
  if (result.code !== 0) {
    assert.fail(
      `check perf failed:\n${result.stdout.slice(-2000)}\n${result.stderr.slice(-3000)}\n${await memberEvents()}`,
    );
  }
  assert.match(result.stdout, /PASS: Throughput is \d+ writes\/s/);
  assert.match(result.stdout, /PASS: Slowest request took/);
  assert.match(result.stdout, /PASS: Stddev is/);
  assert.match(result.stdout, /\nPASS\n?$/, result.stdout.slice(-500));
  // The check deleted its keys again.
  const left = await etcdctl(cluster.endpoints, ['get', '/etcdctl-check-perf/', '--prefix', '--keys-only']);
  assert.equal(left.code, 0, left.stderr);
  assert.equal(left.stdout, '');
});

/** Every member's leader changes and warnings, from its log in the cluster's directory. */
async function memberEvents(): Promise<string> {
  const lines: string[] = [];
  for (const n of cluster.nodes) {
    const log = await readFile(join(cluster.root, `${n.name}.log`), 'utf8').catch(() => '');
    for (const line of log.split('\n')) {
      if (/"msg":"term \d+:|"level":"(warn|error)"/.test(line)) lines.push(line);
    }
  }
  return lines.join('\n');
}
