/**
 * etcd's space quota against a real 3-node cluster (`flotilla cluster start
 * --quota-backend-bytes`) and the real `etcdctl` (3.4): writes past the quota fail with
 * etcd's exact error and raise a replicated NOSPACE alarm that every member lists (also one
 * restarted meanwhile); refused writes change nothing; reads, deletes, compaction and defrag
 * still work; `alarm disarm` after a compaction lets writes in again.
 */
import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import { after, before, test } from 'node:test';
import { initialClusterOf, serveArgs } from '../src/cli/cluster-command.js';
import { until } from './support/http.js';
import {
  type EtcdctlResult,
  etcdctl,
  type LocalCluster,
  MAIN,
  startLocalCluster,
} from './support/local-cluster.js';

/** A small quota: about 40 versions of the 48 KiB value below. */
const QUOTA_BYTES = 2 * 1024 * 1024;
const VALUE = 'v'.repeat(48 * 1024);
const NO_SPACE = 'Error: etcdserver: mvcc: database space exceeded';
const EXTRA = ['--tick-ms', '50', '--quota-backend-bytes', String(QUOTA_BYTES)];

let cluster: LocalCluster;
let restarted: ChildProcess | undefined;

before(async () => {
  cluster = await startLocalCluster(3, EXTRA);
});

after(async () => {
  if (restarted !== undefined && restarted.exitCode === null) restarted.kill('SIGKILL');
  await cluster?.destroy();
});

async function ok(args: readonly string[], at = cluster.endpoints): Promise<string> {
  const result = await etcdctl(at, args);
  assert.equal(result.code, 0, `etcdctl ${args.join(' ')} failed:\n${result.stderr}`);
  return result.stdout;
}

async function fails(args: readonly string[], at = cluster.endpoints): Promise<EtcdctlResult> {
  const result = await etcdctl(at, args);
  assert.notEqual(result.code, 0, `etcdctl ${args.join(' ')} succeeded:\n${result.stdout}`);
  return result;
}

/** The store revision `at` reports. */
async function revision(at = cluster.endpoints): Promise<number> {
  const out = await ok(['get', 'small', '-w', 'json'], at);
  return (JSON.parse(out) as { header: { revision: number } }).header.revision;
}

/** `alarm list` on one member, as lines. */
async function alarms(at: string): Promise<string[]> {
  return nonEmptyLines(await ok(['alarm', 'list'], at));
}

/** The lines of `text` that are not blank, trimmed (etcdctl ends alarm lines with a space). */
function nonEmptyLines(text: string): string[] {
  return text
    .split('\n')
    .map((line) => line.trim())
    .filter((line) => line !== '');
}

/**
 * Asserts etcd's quota error: etcdctl's last line, after clientv3's log of the
 * RESOURCE_EXHAUSTED status (when it logs one).
 */
function assertNoSpace(result: EtcdctlResult, last = NO_SPACE): void {
  const lines = result.stderr.trim().split('\n');
  assert.equal(lines.at(-1), last, result.stderr);
  for (const line of lines.slice(0, -1)) {
    assert.match(line, /code = ResourceExhausted desc = etcdserver: mvcc: database space exceeded/);
  }
}

const alarmLine = /^memberID:(\d+) alarm:NOSPACE$/;

test('quota: NOSPACE, replicated alarm, restart, compact + disarm', { timeout: 180_000 }, async () => {
  await ok(['put', 'small', '1']);
  let written = 0;
  let refused: EtcdctlResult | undefined;
  for (let i = 0; i < 200 && refused === undefined; i++) {
    const result = await etcdctl(cluster.endpoints, ['put', 'big', VALUE]);
    if (result.code === 0) written++;
    else refused = result;
  }
  assert.ok(refused !== undefined, 'the quota was never reached');
  assertNoSpace(refused);
  assert.ok(written >= 10, `only ${written} writes before the quota`);

  // The member that refused raised its NOSPACE alarm, through raft: every member lists it.
  const ids = new Set(cluster.nodes.map((n) => String(n.id)));
  const first = await alarms(cluster.nodes[0]!.grpcEndpoint);
  assert.equal(first.length, 1, first.join('\n'));
  assert.ok(ids.has(alarmLine.exec(first[0]!)?.[1] ?? ''), `bad alarm line: ${first[0]}`);
  await sameAlarmsEverywhere(first);

  // Refused requests change nothing; reads, deletes work.
  const before = await revision();
  for (const node of cluster.nodes) {
    assertNoSpace(await fails(['put', 'refused', 'x'], node.grpcEndpoint));
  }
  assertNoSpace(
    await fails(['lease', 'grant', '60']),
    'Error: failed to grant lease (etcdserver: mvcc: database space exceeded)',
  );
  const txn = await etcdctl(cluster.endpoints, ['txn'], {
    input: ['', 'put refused x', '', '', ''].join('\n'),
  });
  assertNoSpace(txn);
  assert.equal(await revision(), before);
  assert.equal(await ok(['get', 'refused']), '');
  assert.equal((await ok(['get', 'big', '--print-value-only'])).trim(), VALUE);
  assert.equal(await ok(['del', 'small']), '1\n');
  // Each member refused a write over the quota, so each raised its own alarm.
  const listed = await alarms(cluster.nodes[0]!.grpcEndpoint);
  assert.deepEqual(new Set(listed.map((line) => alarmLine.exec(line)?.[1])), ids, listed.join('\n'));
  await sameAlarmsEverywhere(listed);

  // A restarted member keeps the alarm (it is in the replicated state, not in memory).
  const node = cluster.nodes[2]!;
  process.kill(node.pid, 'SIGTERM');
  await until(`${node.name} to exit`, 15_000, () => (isAlive(node.pid) ? undefined : true));
  restarted = spawn(process.execPath, [MAIN, ...serveArgs(node, initialClusterOf(cluster.nodes), EXTRA)], {
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let log = '';
  restarted.stderr?.on('data', (d: Buffer) => {
    log += d.toString();
  });
  await until(`${node.name} to list the alarm again`, 30_000, async () => {
    const result = await etcdctl(node.grpcEndpoint, ['alarm', 'list']);
    return result.code === 0 && nonEmptyLines(result.stdout).join('\n') === listed.join('\n')
      ? true
      : undefined;
  }).catch((error: Error) => assert.fail(`${error.message}\n${log.slice(-3000)}`));

  // Compact, defragment: the alarm stays until disarmed.
  const current = await revision();
  assert.match(await ok(['compact', String(current)]), new RegExp(`compacted revision ${current}`));
  const defrag = await ok(['defrag']);
  assert.equal(defrag.match(/Finished defragmenting etcd member/g)?.length, 3, defrag);
  assertNoSpace(await fails(['put', 'after', 'x']));

  const disarmed = nonEmptyLines(await ok(['alarm', 'disarm']));
  assert.deepEqual(disarmed, listed);
  for (const n of cluster.nodes) {
    await until(`no alarm on ${n.name}`, 10_000, async () =>
      (await alarms(n.grpcEndpoint)).length === 0 ? true : undefined,
    );
  }
  await until('a write after the disarm', 10_000, async () =>
    (await etcdctl(cluster.endpoints, ['put', 'after', 'x'])).code === 0 ? true : undefined,
  );
  assert.equal(await ok(['get', 'after', '--print-value-only']), 'x\n');

  // Status reports the file size and the (smaller, after compaction) size in use.
  const status = JSON.parse(await ok(['endpoint', 'status', '-w', 'json'], node.grpcEndpoint)) as {
    Status: { dbSize: number; dbSizeInUse: number };
  }[];
  const { dbSize, dbSizeInUse } = status[0]!.Status;
  assert.ok(dbSizeInUse > 0 && dbSizeInUse < QUOTA_BYTES && dbSizeInUse <= dbSize, JSON.stringify(status));
});

/** Waits until every member lists exactly `expected`. */
async function sameAlarmsEverywhere(expected: readonly string[]): Promise<void> {
  for (const node of cluster.nodes) {
    await until(`the alarms on ${node.name}`, 10_000, async () =>
      (await alarms(node.grpcEndpoint)).join('\n') === expected.join('\n') ? true : undefined,
    );
  }
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}
