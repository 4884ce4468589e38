/**
 * Watches and leases across a leader change, with real processes (`flotilla cluster start
 * --nodes 3 --tick-ms 50`):
 *
 * - Two writers put distinct keys continuously through every node, each write exactly-once
 *   (a client session, retried with the same seq on any error or timeout), while the leader
 *   is SIGKILLed mid-stream. A watch on a follower and a watch on the leader (resumed from
 *   its last revision + 1 on another node when the leader dies) must each see every
 *   acknowledged write exactly once, at its acknowledged revision, in strictly increasing
 *   revision order, and nothing else.
 * - A lease granted with a TTL, keys attached, then the leader killed: the new leader
 *   deletes the keys once the TTL has run out (counted again from its election), never
 *   before the TTL has elapsed.
 */
import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import { after, before, test } from 'node:test';
import { type ClusterNodeInfo, initialClusterOf, serveArgs } from '../src/cli/cluster-command.js';
import { requestJsonOrUnreachable, until, untilQuiet } from './support/http.js';
import { type LocalCluster, MAIN, startLocalCluster } from './support/local-cluster.js';

const TICK_MS = 50;
/** Three of the longest randomized election timeouts (10 ticks, randomized in [t, 2t)). */
const FAILOVER_MS_MAX = 3 * 2 * 10 * TICK_MS;
/** How often the leader looks for expired leases (src/node/lease-keeper.ts). */
const LEASE_SCAN_MS = 500;

let cluster: LocalCluster;
const restarted: ChildProcess[] = [];
/** Nodes killed by a test (and not restarted). */
const dead = new Set<string>();
/** Write attempts that failed and were retried with the same session. */
let retries = 0;

before(async () => {
  cluster = await startLocalCluster(3, ['--tick-ms', String(TICK_MS)]);
});

after(async () => {
  for (const child of restarted) if (child.exitCode === null) child.kill('SIGKILL');
  await cluster?.destroy();
});

/** One request; status 0 when it failed outright (refused, reset, timed out). */
const json = requestJsonOrUnreachable;

/** The leader every live node agrees on. */
function agreedLeader(nodes: readonly ClusterNodeInfo[], not?: string): Promise<ClusterNodeInfo> {
  return until('a leader agreed on by every live node', FAILOVER_MS_MAX + 3000, async () => {
    const names = await Promise.all(
      nodes.map(async (n) => (await json(`${n.clientUrl}/v1/cluster`, {}, 1000)).body.leader?.name),
    );
    const first = names[0];
    if (first === undefined || first === not || !names.every((name) => name === first)) return undefined;
    return nodes.find((n) => n.name === first) ?? cluster.nodes.find((n) => n.name === first);
  });
}

function live(): ClusterNodeInfo[] {
  return cluster.nodes.filter((n) => !dead.has(n.name));
}

function kill(node: ClusterNodeInfo): void {
  dead.add(node.name);
  process.kill(node.pid, 'SIGKILL');
}

/** One event of a watch, flattened. */
interface SeenEvent {
  readonly revision: number;
  readonly type: string;
  readonly key: string;
  readonly modRevision: number;
  readonly version: number;
}

interface WatchBatch {
  readonly revision: number;
  readonly events: readonly {
    readonly type: string;
    readonly kv: { readonly key: string; readonly modRevision: number; readonly version: number };
  }[];
}

/**
 * A watch of `prefix` over SSE that, when its stream ends (its node died), resumes from the
 * last revision it saw + 1 on the next node of `urls`, until closed.
 */
class ResumingWatch {
  readonly events: SeenEvent[] = [];
  /** The node each stream was served by, in order. */
  readonly servedBy: string[] = [];
  lastRevision: number;
  private closed = false;
  private controller = new AbortController();
  readonly done: Promise<void>;

  constructor(
    private readonly urls: readonly string[],
    private readonly prefix: string,
    startRevision: number,
  ) {
    this.lastRevision = startRevision - 1;
    this.done = this.run();
  }

  close(): void {
    this.closed = true;
    this.controller.abort();
  }

  private async run(): Promise<void> {
    for (let i = 0; !this.closed; i = (i + 1) % this.urls.length) {
      const url = this.urls[i]!;
      try {
        await this.stream(url);
      } catch {
        // The node died, or refused the connection: resume on the next one.
      }
      if (!this.closed) await new Promise((r) => setTimeout(r, 20));
    }
  }

  private async stream(url: string): Promise<void> {
    const query = `prefix=${encodeURIComponent(this.prefix)}&startRevision=${this.lastRevision + 1}`;
    const res = await fetch(`${url}/v1/watch?${query}`, { signal: this.controller.signal });
    if (res.status !== 200 || res.body === null) throw new Error(`watch answered ${res.status}`);
    this.servedBy.push(url);
    const reader = res.body.getReader();
    const decoder = new TextDecoder();
    let text = '';
    for (;;) {
      const { value, done } = await reader.read();
      if (done) return;
      text += decoder.decode(value, { stream: true });
      const blocks = text.split('\n\n');
      text = blocks.pop() ?? '';
      for (const block of blocks) {
        if (!block.startsWith('data: ')) continue;
        const batch = JSON.parse(block.slice('data: '.length)) as WatchBatch;
        for (const e of batch.events) {
          this.events.push({
            revision: batch.revision,
            type: e.type,
            key: e.kv.key,
            modRevision: e.kv.modRevision,
            version: e.kv.version,
          });
        }
        this.lastRevision = batch.revision;
      }
    }
  }
}

/**
 * Puts `key` exactly-once: in session (clientId, seq), retried with the same pair through
 * the next node after any failure or timeout, until acknowledged. Resolves with the
 * acknowledged revision.
 */
async function putExactlyOnce(
  key: string,
  clientId: number,
  seq: number,
  deadlineMs: number,
): Promise<number> {
  for (let attempt = 0; ; attempt++) {
    const nodes = live();
    const node = nodes[(seq + attempt) % nodes.length]!;
    const { status, body } = await json(
      `${node.clientUrl}/v1/kv/${key}`,
      {
        method: 'PUT',
        body: JSON.stringify({ value: `v-${key}` }),
        headers: { 'x-flotilla-client-id': String(clientId), 'x-flotilla-seq': String(seq) },
      },
      1500,
    );
    if (status === 200) return body.revision!;
    // Unreachable, back-pressure, no leader yet, timed out: retry. Anything else is a bug.
    assert.ok(
      [0, 429, 503, 504].includes(status),
      `put ${key} through ${node.name}: ${status} ${JSON.stringify(body)}`,
    );
    assert.ok(
      Date.now() < deadlineMs,
      `put ${key} acknowledged in time (last: ${status} ${JSON.stringify(body)})`,
    );
    retries++;
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** Asserts that `events` are exactly the acknowledged writes, each once, in revision order. */
function assertExactlyAcknowledged(
  what: string,
  events: readonly SeenEvent[],
  acked: ReadonlyMap<string, number>,
): void {
  const seen = new Map<string, SeenEvent>();
  let previous = 0;
  for (const e of events) {
    assert.ok(
      e.revision > previous,
      `${what}: revision ${e.revision} after ${previous} (strictly increasing)`,
    );
    previous = e.revision;
    assert.equal(e.modRevision, e.revision, `${what}: ${e.key}'s mod revision is its batch's`);
    assert.equal(e.type, 'PUT');
    assert.ok(
      !seen.has(e.key),
      `${what}: ${e.key} seen twice (revisions ${seen.get(e.key)?.revision}, ${e.revision})`,
    );
    assert.equal(e.version, 1, `${what}: ${e.key} applied once`);
    seen.set(e.key, e);
  }
  for (const [key, revision] of acked) {
    assert.equal(seen.get(key)?.revision, revision, `${what}: acknowledged ${key} at revision ${revision}`);
  }
  assert.equal(seen.size, acked.size, `${what}: no event but the acknowledged writes`);
}

test('watches on a follower and on the killed leader see every acknowledged write once, in order', async (t) => {
  const leader = await agreedLeader(cluster.nodes);
  const [follower, other] = cluster.nodes.filter((n) => n !== leader) as [ClusterNodeInfo, ClusterNodeInfo];
  const { body } = await json(`${leader.clientUrl}/v1/cluster`);
  const start = body.revision! + 1;
  const onFollower = new ResumingWatch([follower.clientUrl], 'w/', start);
  // Resumes on the other survivors (the killed leader's URL last: it refuses by then).
  const onLeader = new ResumingWatch([leader.clientUrl, other.clientUrl, follower.clientUrl], 'w/', start);
  await until('both watches streaming', 5000, () =>
    onFollower.servedBy.length > 0 && onLeader.servedBy.length > 0 ? true : undefined,
  );

  const WRITES_PER_WRITER = 60;
  const KILL_AFTER = 40;
  const acked = new Map<string, number>();
  const deadline = Date.now() + 20_000;
  let killedAt = 0;
  let seenByLeaderAtKill = 0;
  const writer = async (name: string, clientId: number): Promise<void> => {
    for (let seq = 1; seq <= WRITES_PER_WRITER; seq++) {
      const key = `w/${name}${String(seq).padStart(3, '0')}`;
      acked.set(key, await putExactlyOnce(key, clientId, seq, deadline));
      if (acked.size >= KILL_AFTER && killedAt === 0) {
        killedAt = Date.now();
        seenByLeaderAtKill = onLeader.events.length;
        kill(leader);
      }
    }
  };
  await Promise.all([writer('a', 9_000_001), writer('b', 9_000_002)]);
  assert.ok(killedAt > 0);
  const newLeader = await agreedLeader(live(), leader.name);
  const maxRevision = Math.max(...acked.values());
  await until('both watches caught up', 10_000, () =>
    onFollower.lastRevision >= maxRevision && onLeader.lastRevision >= maxRevision ? true : undefined,
  );
  onFollower.close();
  onLeader.close();
  await Promise.all([onFollower.done, onLeader.done]);

  assert.equal(acked.size, 2 * WRITES_PER_WRITER);
  assert.ok(
    seenByLeaderAtKill > 0 && seenByLeaderAtKill < acked.size,
    `the leader's watch was mid-stream when killed (${seenByLeaderAtKill} events)`,
  );
  assert.ok(onLeader.servedBy.length >= 2, 'the watch on the killed leader resumed on another node');
  assert.equal(onLeader.servedBy[0], leader.clientUrl);
  assert.equal(onFollower.servedBy.length, 1, "the follower's watch never broke");
  assertExactlyAcknowledged('watch on the follower', onFollower.events, acked);
  assertExactlyAcknowledged('watch resumed after the leader died', onLeader.events, acked);
  assert.deepEqual(onLeader.events, onFollower.events);
  assert.notEqual(newLeader.name, leader.name);
  t.diagnostic(
    `${acked.size} writes (revisions ${start}..${maxRevision}), ${retries} retried attempts; ` +
      `leader ${leader.name} killed after ${KILL_AFTER} acks with ${seenByLeaderAtKill} events seen on it; ` +
      `its watch resumed on ${onLeader.servedBy.slice(1).join(', ')}; new leader ${newLeader.name}`,
  );
});

test('lease expiry across a leader change: the new leader deletes the keys after the TTL, not before', async (t) => {
  // Bring the killed node back, so that killing another leader leaves a majority.
  for (const node of cluster.nodes.filter((n) => dead.has(n.name))) {
    const child = spawn(
      process.execPath,
      [MAIN, ...serveArgs(node, initialClusterOf(cluster.nodes), ['--tick-ms', String(TICK_MS)])],
      { stdio: 'ignore' },
    );
    restarted.push(child);
    node.pid = child.pid ?? 0;
    dead.delete(node.name);
  }
  const leader = await agreedLeader(cluster.nodes);
  const [follower, other] = cluster.nodes.filter((n) => n !== leader) as [ClusterNodeInfo, ClusterNodeInfo];

  const TTL_S = 3;
  const grantedAt = Date.now();
  const grant = await json(`${follower.clientUrl}/v1/lease/grant`, {
    method: 'POST',
    body: JSON.stringify({ ttl: TTL_S }),
  });
  assert.equal(grant.status, 200, JSON.stringify(grant.body));
  const id = (grant.body as { id: number }).id;
  for (const [node, key] of [
    [follower, 'lease/a'],
    [other, 'lease/b'],
  ] as const) {
    const put = await json(`${node.clientUrl}/v1/kv/${key}`, {
      method: 'PUT',
      body: JSON.stringify({ value: 'v', lease: id }),
    });
    assert.equal(put.status, 200, JSON.stringify(put.body));
  }
  kill(leader);
  const killedAt = Date.now();

  // Poll a survivor's local state until the keys are gone.
  const gone = await untilQuiet(
    'the leased keys deleted',
    TTL_S * 1000 + FAILOVER_MS_MAX + 2 * LEASE_SCAN_MS + 3000,
    async () => {
      const { status, body } = await json(
        `${other.clientUrl}/v1/kv?prefix=lease/&consistency=serializable`,
        {},
        1000,
      );
      if (status !== 200) return undefined;
      if (body.count === 2) return undefined;
      return { count: body.count, at: Date.now() };
    },
  );
  const elapsedMs = gone.at - grantedAt;
  assert.equal(gone.count, 0, 'both keys deleted together (one revoke)');
  assert.ok(elapsedMs >= TTL_S * 1000 - 200, `deleted ${elapsedMs} ms after the grant: not before the TTL`);
  const newLeader = await agreedLeader(live(), leader.name);
  assert.notEqual(newLeader.name, leader.name);
  // The new leader counts the whole remaining TTL from its election (a skewed clock can only
  // make a lease live longer): the deletion cannot precede the kill by less than the TTL.
  assert.ok(gone.at - killedAt >= TTL_S * 1000 - 200, `deleted ${gone.at - killedAt} ms after the kill`);
  const lease = await json(`${newLeader.clientUrl}/v1/lease/${id}`);
  assert.equal(lease.status, 404);
  assert.equal(lease.body.error?.code, 'LEASE_NOT_FOUND');
  t.diagnostic(
    `TTL ${TTL_S} s: keys deleted ${elapsedMs} ms after the grant, ${gone.at - killedAt} ms after killing ` +
      `${leader.name}; new leader ${newLeader.name}`,
  );
});
