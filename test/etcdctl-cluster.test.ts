/**
 * The real `etcdctl` (3.4) against a real 3-node cluster (`flotilla cluster start`): the
 * Cluster and Maintenance services. Member list (ids, names, client URLs that are the gRPC
 * endpoints), endpoint status / health / hashkv across the cluster (`--cluster` dials the
 * client URLs the members published), alarm list, move-leader, etcd's errors for bad member
 * requests, and the whole etcd membership flow with a real new process: `member add
 * --learner`, `flotilla serve` with the `--initial-cluster` etcdctl printed, `member
 * promote`, `member update` (then a restart on the new peer address), `member remove` of a
 * follower; and `snapshot save` restored with `flotilla snapshot restore` into a one-node
 * cluster that has the keys.
 */
import assert from 'node:assert/strict';
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { credentials, type ServiceError } from '@grpc/grpc-js';
import { freePort } from '../src/cli/cluster-command.js';
import { etcdService } from '../src/etcd/index.js';
import { requestJson, until, untilQuiet } from './support/http.js';
import { etcdctl, type LocalCluster, MAIN, startLocalCluster } from './support/local-cluster.js';

let cluster: LocalCluster;
/** The endpoints of the current members (a removed one is dropped). */
let live = '';
const children: ChildProcess[] = [];

before(async () => {
  cluster = await startLocalCluster(3);
  live = cluster.endpoints;
});

after(async () => {
  for (const child of children)
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  await cluster?.destroy();
});

/** etcdctl against `at` (default: every founding member); asserts success and returns stdout. */
async function ok(args: readonly string[], at = cluster.endpoints): Promise<string> {
  const result = await etcdctl(at, args);
  assert.equal(result.code, 0, `etcdctl ${args.join(' ')} failed:\n${result.stderr}`);
  return result.stdout;
}

interface JsonMember {
  ID: number;
  name?: string;
  peerURLs?: string[];
  clientURLs?: string[];
  isLearner?: boolean;
}

interface JsonMemberList {
  header: { cluster_id: number; member_id: number };
  members: JsonMember[];
}

interface JsonStatus {
  Endpoint: string;
  Status: {
    header: { member_id: number; revision: number };
    version: string;
    dbSize: number;
    leader: number;
    raftIndex: number;
    raftTerm: number;
    raftAppliedIndex: number;
    isLearner?: boolean;
  };
}

interface JsonHashKv {
  Endpoint: string;
  HashKV: { header: { member_id: number; revision: number }; hash: number; compact_revision?: number };
}

async function memberList(at = cluster.endpoints): Promise<JsonMemberList> {
  return JSON.parse(await ok(['member', 'list', '-w', 'json'], at)) as JsonMemberList;
}

async function statusAll(at = cluster.endpoints): Promise<JsonStatus[]> {
  return JSON.parse(await ok(['endpoint', 'status', '--cluster', '-w', 'json'], at)) as JsonStatus[];
}

/** The leader every member agrees on (its id), once they do. */
async function agreedLeader(at = cluster.endpoints): Promise<number> {
  return untilQuiet('an agreed leader', 15_000, async () => {
    const rows = await statusAll(at);
    const leader = rows[0]?.Status.leader;
    return leader !== undefined && leader !== 0 && rows.every((r) => r.Status.leader === leader)
      ? leader
      : undefined;
  });
}

const hex = (id: number): string => id.toString(16);

interface MoveLeaderClient {
  MoveLeader(request: { targetID: string }, callback: (error: ServiceError | null) => void): void;
}

/** Starts `flotilla serve` with `args` (its output is kept for failure messages). */
function serve(args: readonly string[]): { child: ChildProcess; output: () => string } {
  const child = spawn(process.execPath, [MAIN, 'serve', ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  children.push(child);
  let output = '';
  child.stdout?.on('data', (d: Buffer) => {
    output += d.toString();
  });
  child.stderr?.on('data', (d: Buffer) => {
    output += d.toString();
  });
  return { child, output: () => output };
}

async function stopped(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  await new Promise((resolve) => child.once('exit', resolve));
}

describe('etcdctl: cluster and maintenance', () => {
  test('member list: ids, names, peer URLs and the gRPC endpoints as client URLs', async () => {
    // Members publish their client URLs right after they start: wait for all three.
    const list = await until('every member to publish', 10_000, async () => {
      const l = await memberList();
      return l.members.every((m) => (m.clientURLs ?? []).length > 0) ? l : undefined;
    });
    const byId = new Map(list.members.map((m) => [m.ID, m]));
    assert.equal(list.members.length, 3);
    for (const n of cluster.nodes) {
      const m = byId.get(n.id);
      assert.ok(m !== undefined, `${n.name} listed`);
      assert.equal(m.name, n.name);
      assert.deepEqual(m.peerURLs, [n.peerUrl]);
      assert.deepEqual(m.clientURLs, [n.grpcEndpoint]);
      assert.notEqual(m.isLearner, true);
    }
    assert.deepEqual(
      list.members.map((m) => m.ID),
      [...list.members.map((m) => m.ID)].sort((a, b) => a - b),
      'sorted by id, as etcd lists them',
    );
    const simple = await ok(['member', 'list']);
    for (const n of cluster.nodes) {
      assert.ok(
        simple.includes(`${hex(n.id)}, started, ${n.name}, ${n.peerUrl}, ${n.grpcEndpoint}, false`),
        simple,
      );
    }
    // The HTTP API lists the same URLs.
    const { body } = await requestJson(`${cluster.nodes[0]!.clientUrl}/v1/members`);
    for (const n of cluster.nodes) {
      const m = body.members?.find((x) => x.id === n.id) as
        | { clientUrl?: string; grpcUrl?: string }
        | undefined;
      assert.equal(m?.clientUrl, n.clientUrl);
      assert.equal(m?.grpcUrl, `http://${n.grpcEndpoint}`);
    }
  });

  test('endpoint status, health and alarm list across the cluster', async () => {
    const rows = await statusAll();
    assert.deepEqual(rows.map((r) => r.Endpoint).sort(), cluster.nodes.map((n) => n.grpcEndpoint).sort());
    const leader = await agreedLeader();
    assert.equal(rows.filter((r) => r.Status.header.member_id === r.Status.leader).length, 1);
    assert.ok(cluster.nodes.some((n) => n.id === leader));
    for (const r of rows) {
      assert.match(r.Status.version, /^3\.4\.\d+\+flotilla/);
      assert.ok(r.Status.dbSize > 0 && r.Status.raftTerm > 0 && r.Status.raftAppliedIndex > 0);
      assert.notEqual(r.Status.isLearner, true);
    }
    // etcdctl 3.4 prints health lines on stderr.
    const health = await etcdctl(live, ['endpoint', 'health', '--cluster']);
    assert.equal(health.code, 0, health.stderr);
    assert.equal(
      health.stderr.match(/is healthy: successfully committed proposal/g)?.length,
      3,
      health.stderr,
    );
    assert.equal(await ok(['alarm', 'list']), '');
  });

  test('endpoint hashkv: every member gives the same hash at the same revision', async () => {
    for (let i = 0; i < 20; i++) await ok(['put', `hash/${i}`, `v${i}`], cluster.nodes[i % 3]!.grpcEndpoint);
    await ok(['del', 'hash/0']);
    const rows = await until('equal hashes', 15_000, async () => {
      const all = JSON.parse(await ok(['endpoint', 'hashkv', '--cluster', '-w', 'json'])) as JsonHashKv[];
      const revisions = new Set(all.map((r) => r.HashKV.header.revision));
      return all.length === 3 && revisions.size === 1 ? all : undefined;
    });
    assert.equal(new Set(rows.map((r) => r.HashKV.hash)).size, 1, JSON.stringify(rows));
    assert.notEqual(rows[0]!.HashKV.hash, 0);
    const simple = await ok(['endpoint', 'hashkv', '--cluster']);
    assert.equal(simple.trim().split('\n').length, 3);
  });

  test('move-leader hands leadership to a follower', async () => {
    const leader = await agreedLeader();
    const follower = cluster.nodes.find((n) => n.id !== leader)!;
    const out = await ok(['move-leader', hex(follower.id)]);
    assert.match(out, new RegExp(`Leadership transferred from ${hex(leader)} to ${hex(follower.id)}`));
    assert.equal(await agreedLeader(), follower.id);
    // Sent to a follower only, it is refused as etcd refuses it.
    const other = cluster.nodes.find((n) => n.id !== follower.id)!;
    const refused = await etcdctl(other.grpcEndpoint, ['move-leader', hex(other.id)]);
    assert.notEqual(refused.code, 0);
    assert.match(refused.stderr, /no leader endpoint given/);
  });

  test("bad member requests get etcd's errors", async () => {
    const unknown = await etcdctl(cluster.endpoints, ['member', 'remove', 'abc123']);
    assert.notEqual(unknown.code, 0);
    assert.match(unknown.stderr, /etcdserver: member not found/);
    const voter = await etcdctl(cluster.endpoints, ['member', 'promote', hex(cluster.nodes[0]!.id)]);
    assert.notEqual(voter.code, 0);
    assert.match(voter.stderr, /etcdserver: can only promote a learner member/);
    const update = await etcdctl(cluster.endpoints, [
      'member',
      'update',
      hex(cluster.nodes[0]!.id),
      `--peer-urls=${cluster.nodes[1]!.peerUrl}`,
    ]);
    assert.notEqual(update.code, 0);
    assert.match(update.stderr, /etcdserver: Peer URLs already exists/);
    // MoveLeader sent to a follower (etcdctl itself only sends it to the leader).
    const leader = await agreedLeader();
    const follower = cluster.nodes.find((n) => n.id !== leader)!;
    const maintenance = new (etcdService('Maintenance'))(follower.grpcEndpoint, credentials.createInsecure());
    const error = await new Promise<ServiceError | null>((resolve) => {
      (maintenance as unknown as MoveLeaderClient).MoveLeader({ targetID: String(follower.id) }, (e) =>
        resolve(e),
      );
    });
    maintenance.close();
    assert.equal(error?.details, 'etcdserver: not leader');
  });

  test('member add --learner, start it, promote it, update its peer URL, remove a follower', async () => {
    await ok(['put', 'before-join', 'yes']);
    const peerPort = await freePort();
    const clientPort = await freePort();
    const grpcPort = await freePort();
    const added = await ok(['member', 'add', 'n4', `--peer-urls=http://127.0.0.1:${peerPort}`, '--learner']);
    const id = Number.parseInt(/Member\s+([0-9a-f]+) added/.exec(added)?.[1] ?? '', 16);
    const initialCluster = /ETCD_INITIAL_CLUSTER="([^"]+)"/.exec(added)?.[1];
    assert.ok(Number.isSafeInteger(id) && initialCluster !== undefined, added);
    assert.match(added, /ETCD_INITIAL_CLUSTER_STATE="existing"/);
    assert.ok(initialCluster.includes(`n4=http://127.0.0.1:${peerPort}`), initialCluster);

    // Not started yet: no name, no client URLs, a learner.
    const unstarted = (await memberList()).members.find((m) => m.ID === id);
    assert.deepEqual(
      {
        name: unstarted?.name ?? '',
        clientURLs: unstarted?.clientURLs ?? [],
        isLearner: unstarted?.isLearner,
      },
      { name: '', clientURLs: [], isLearner: true },
    );

    const dataDir = join(cluster.root, 'n4');
    const args = (peer: number, ic: string): string[] => [
      '--name',
      'n4',
      '--data-dir',
      dataDir,
      '--listen-peer',
      `127.0.0.1:${peer}`,
      '--listen-client',
      `127.0.0.1:${clientPort}`,
      '--listen-grpc',
      `127.0.0.1:${grpcPort}`,
      '--initial-cluster',
      ic,
      '--initial-cluster-state',
      'existing',
      '--tick-ms',
      '50',
    ];
    let n4 = serve(args(peerPort, initialCluster));
    const n4Endpoint = `127.0.0.1:${grpcPort}`;
    await until('n4 to start and publish', 20_000, async () => {
      const m = (await memberList()).members.find((x) => x.ID === id);
      return m?.name === 'n4' && m.clientURLs?.[0] === n4Endpoint ? true : undefined;
    }).catch((error: Error) => assert.fail(`${error.message}\n${n4.output()}`));
    assert.equal(
      await untilQuiet('n4 to catch up', 15_000, async () => {
        const out = await ok(['get', 'before-join', '--print-value-only', '--consistency=s'], n4Endpoint);
        return out === 'yes\n' ? out : undefined;
      }),
      'yes\n',
    );

    // Promote it (retried while it is still catching up).
    const promoted = await until('the promotion', 20_000, async () => {
      const r = await etcdctl(cluster.endpoints, ['member', 'promote', hex(id)]);
      if (r.code === 0) return r.stdout;
      assert.match(r.stderr, /in sync with leader|request timed out|leader changed/);
      return undefined;
    });
    assert.match(promoted, new RegExp(`Member\\s+${hex(id)} promoted`));
    const members = (await memberList(n4Endpoint)).members;
    assert.equal(members.length, 4);
    assert.notEqual(members.find((m) => m.ID === id)?.isLearner, true);

    // Move its peer address: update the member, restart it on the new port.
    const newPeerPort = await freePort();
    const updated = await ok(['member', 'update', hex(id), `--peer-urls=http://127.0.0.1:${newPeerPort}`]);
    assert.match(updated, new RegExp(`Member\\s+${hex(id)} updated`));
    for (const at of cluster.nodes.map((n) => n.grpcEndpoint)) {
      const m = (await memberList(at)).members.find((x) => x.ID === id);
      assert.deepEqual(m?.peerURLs, [`http://127.0.0.1:${newPeerPort}`]);
    }
    n4.child.kill('SIGTERM');
    await stopped(n4.child);
    n4 = serve(args(newPeerPort, initialCluster.replace(`:${peerPort}`, `:${newPeerPort}`)));
    await ok(['put', 'after-move', 'moved']);
    await untilQuiet('n4 to catch up on its new address', 20_000, async () => {
      const out = await ok(['get', 'after-move', '--print-value-only', '--consistency=s'], n4Endpoint);
      return out === 'moved\n' ? true : undefined;
    }).catch((error: Error) => assert.fail(`${error.message}\n${n4.output()}`));

    // Remove a founding follower: it is no longer listed, writes still succeed.
    const leader = await agreedLeader();
    const follower = cluster.nodes.find((n) => n.id !== leader)!;
    const removed = await ok(['member', 'remove', hex(follower.id)]);
    assert.match(removed, new RegExp(`Member\\s+${hex(follower.id)} removed`));
    process.kill(follower.pid, 'SIGTERM');
    const remaining = [...cluster.nodes.filter((n) => n !== follower).map((n) => n.grpcEndpoint), n4Endpoint];
    const after = await memberList(remaining.join(','));
    assert.deepEqual(
      after.members.map((m) => m.ID).sort((a, b) => a - b),
      [...cluster.nodes.filter((n) => n !== follower).map((n) => n.id), id].sort((a, b) => a - b),
    );
    await ok(['put', 'after-remove', 'still'], remaining.join(','));
    for (const at of remaining) {
      await untilQuiet(`after-remove on ${at}`, 10_000, async () => {
        const out = await ok(['get', 'after-remove', '--print-value-only', '--consistency=s'], at);
        return out === 'still\n' ? true : undefined;
      });
    }
    live = remaining.join(',');
    const rows = await statusAll(live);
    assert.equal(rows.length, 3);
  });

  test('snapshot save, then flotilla snapshot restore into a one-node cluster with the keys', async () => {
    const at = live.split(',')[0]!;
    await ok(['put', 'snap/a', '1'], at);
    await ok(['put', 'snap/b', '2'], at);
    const file = join(cluster.root, 'backup.db');
    const saved = await etcdctl(at, ['snapshot', 'save', file]);
    assert.equal(saved.code, 0, saved.stderr);
    assert.match(saved.stdout, /Snapshot saved at/);

    const peer = await freePort();
    const client = await freePort();
    const grpc = await freePort();
    const dataDir = join(cluster.root, 'restored');
    const restored = spawnSync(
      process.execPath,
      [
        MAIN,
        'snapshot',
        'restore',
        file,
        '--name',
        'r1',
        '--data-dir',
        dataDir,
        '--initial-cluster',
        `r1=127.0.0.1:${peer}`,
      ],
      { encoding: 'utf8', timeout: 20_000 },
    );
    assert.equal(restored.status, 0, restored.stderr);
    assert.match(restored.stdout, /restored r1 at index \d+, revision \d+/);
    const r1 = serve([
      '--name',
      'r1',
      '--data-dir',
      dataDir,
      '--listen-peer',
      `127.0.0.1:${peer}`,
      '--listen-client',
      `127.0.0.1:${client}`,
      '--listen-grpc',
      `127.0.0.1:${grpc}`,
      '--initial-cluster',
      `r1=127.0.0.1:${peer}`,
      '--tick-ms',
      '50',
    ]);
    const values = await untilQuiet('the restored node to serve', 15_000, async () => {
      const out = await ok(['get', 'snap/', '--prefix', '--print-value-only'], `127.0.0.1:${grpc}`);
      return out === '' ? undefined : out;
    }).catch((error: Error) => assert.fail(`${error.message}\n${r1.output()}`));
    assert.equal(values, '1\n2\n');
    assert.equal(await ok(['get', 'before-join', '--print-value-only'], `127.0.0.1:${grpc}`), 'yes\n');
    r1.child.kill('SIGTERM');
    await stopped(r1.child);
  });
});
