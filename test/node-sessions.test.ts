/**
 * Client sessions through the library's API (createNode), three members in one process on
 * loopback with real storage: a command proposed in a session is applied at most once
 * however it is retried — on another member, in the same batch, after snapshots and a full
 * restart — and a retry gets the first result; unknown, evicted and superseded tags are
 * refused with their codes. An on-disk state machine's commands applied before a restart
 * beyond the last snapshot keep their sequence numbers, not their results.
 */
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { freePorts } from '../src/cli/cluster-command.js';
import { KvOnDiskStateMachine } from '../src/db/kv-state-machine.js';
import {
  createNode,
  type FlotillaNode,
  type InMemoryStateMachine,
  isNodeError,
  type StateMachineEntry,
} from '../src/index.js';
import { type KvResult, LmdbKvBackend } from '../src/kv/index.js';
import { until } from './support/http.js';

const dirs: string[] = [];
after(async () => {
  await Promise.all(dirs.map((d) => rm(d, { recursive: true, force: true })));
});

type Add = { readonly n: number };

/** A counter whose `apply` counts its calls per entry, to see that a retry never reaches it. */
class Counter implements InMemoryStateMachine<Add, number, null, number> {
  readonly kind = 'in-memory';
  readonly codec = {
    encode: (c: Add): Uint8Array => Buffer.from(JSON.stringify(c)),
    decode: (b: Uint8Array): Add => JSON.parse(Buffer.from(b).toString()) as Add,
  };
  value = 0;
  apply(entries: readonly StateMachineEntry<Add>[]): number[] {
    return entries.map((e) => (this.value += e.command?.n ?? 0));
  }
  query(): number {
    return this.value;
  }
  snapshot(): Uint8Array[] {
    return [Buffer.from(String(this.value))];
  }
  async restore(chunks: AsyncIterable<Uint8Array>): Promise<void> {
    let text = '';
    for await (const c of chunks) text += Buffer.from(c).toString();
    this.value = Number(text);
  }
  async close(): Promise<void> {}
}

type Node = FlotillaNode<Add, number, null, number>;

/** The store revision after a KV command. */
function revision(result: KvResult | null): number {
  assert.ok(result?.ok === true, `the command failed: ${JSON.stringify(result)}`);
  return result.response.revision;
}

async function cluster(
  options: { sessionsMax?: number } = {},
): Promise<{ nodes: Node[]; restart: () => Promise<Node[]>; current: () => Node[] }> {
  const root = await mkdtemp(join(tmpdir(), 'flotilla-sessions-'));
  dirs.push(root);
  const ports = await freePorts(3);
  const peers = Object.fromEntries(ports.map((p, i) => [i + 1, `127.0.0.1:${p}`]));
  const start = (): Promise<Node[]> =>
    Promise.all(
      [1, 2, 3].map((id) =>
        createNode({
          id,
          listen: peers[id]!,
          peers,
          dataDir: join(root, String(id)),
          stateMachine: new Counter(),
          tickMs: 20,
          snapshotEntries: 8,
          snapshotKeepEntries: 2,
          ...options,
        }),
      ),
    );
  let nodes = await start();
  return {
    nodes,
    restart: async () => {
      await Promise.all(nodes.map((n) => n.close()));
      nodes = await start();
      return nodes;
    },
    current: () => nodes,
  };
}

const leaderOf = (nodes: readonly Node[]): Promise<Node> =>
  until('a leader', 10_000, () => nodes.find((n) => n.status().role === 'leader'));

async function refusal(promise: Promise<unknown>): Promise<string> {
  try {
    await promise;
  } catch (error) {
    if (isNodeError(error)) return error.code;
    throw error;
  }
  assert.fail('expected a refusal');
}

test('a command in a session applies once however it is retried, and a retry gets its result', async () => {
  const { nodes, restart, current } = await cluster();
  try {
    const leader = await leaderOf(nodes);
    const follower = nodes.find((n) => n !== leader)!;
    const clientId = await follower.openSession();
    assert.ok(clientId > 0);
    const tag = (seq: number) => ({ session: { clientId, seq } });
    assert.equal(await leader.propose({ n: 10 }, tag(1)), 10);
    // The retry, on another member: the first result, not a second application.
    assert.equal(await follower.propose({ n: 10 }, tag(1)), 10);
    // Two copies in flight together (likely one batch): both get the one result.
    const [a, b] = await Promise.all([leader.propose({ n: 5 }, tag(2)), leader.propose({ n: 5 }, tag(2))]);
    assert.deepEqual([a, b], [15, 15]);
    assert.equal(await leader.read(null), 15);
    // An older sequence number was superseded: refused, nothing applied.
    assert.equal(await refusal(leader.propose({ n: 1 }, tag(1))), 'DUPLICATE');
    assert.equal(
      await refusal(leader.propose({ n: 1 }, { session: { clientId: 424242, seq: 1 } })),
      'SESSION_EXPIRED',
    );
    // Commands without a session still apply each time.
    await leader.propose({ n: 1 });
    await leader.propose({ n: 1 });
    assert.equal(await leader.read(null), 17);
    // Enough entries for snapshots and compaction, then a whole-cluster restart: the table
    // comes back from the snapshot and the log, with the results.
    for (let i = 0; i < 20; i++) await leader.propose({ n: 0 });
    const again = await restart();
    const leader2 = await leaderOf(again);
    assert.equal(await leader2.propose({ n: 5 }, tag(2)), 15, 'the result survives a restart');
    assert.equal(await leader2.propose({ n: 3 }, tag(3)), 20);
    for (const n of again) assert.equal(await n.read(null), 20);
  } finally {
    await Promise.all(current().map((n) => n.close().catch(() => {})));
  }
});

test('the session table is bounded: the session used longest ago is evicted and refused', async () => {
  const { nodes } = await cluster({ sessionsMax: 2 });
  try {
    const leader = await leaderOf(nodes);
    const first = await leader.openSession();
    await leader.propose({ n: 1 }, { session: { clientId: first, seq: 1 } });
    await leader.openSession();
    await leader.openSession();
    assert.equal(
      await refusal(leader.propose({ n: 1 }, { session: { clientId: first, seq: 2 } })),
      'SESSION_EXPIRED',
    );
    assert.equal(await leader.read(null), 1);
  } finally {
    await Promise.all(nodes.map((n) => n.close()));
  }
});

test('an on-disk state machine: commands applied beyond the last snapshot keep their sequence numbers over a restart', async () => {
  const root = await mkdtemp(join(tmpdir(), 'flotilla-sessions-disk-'));
  dirs.push(root);
  const [port] = await freePorts(1);
  const peers = { 1: `127.0.0.1:${port}` };
  const start = () =>
    createNode({
      id: 1,
      listen: peers[1],
      peers,
      dataDir: join(root, 'n1'),
      stateMachine: new KvOnDiskStateMachine(() =>
        LmdbKvBackend.open(join(root, 'n1', 'kv'), { noSync: true }),
      ),
      tickMs: 20,
    });
  let node = await start();
  try {
    await until('a leader', 10_000, () => (node.status().role === 'leader' ? true : undefined));
    const clientId = await node.openSession();
    const put = { type: 'put' as const, key: Buffer.from('k'), value: Buffer.from('v1') };
    const first = revision(await node.propose(put, { session: { clientId, seq: 1 } }));
    assert.equal(revision(await node.propose(put, { session: { clientId, seq: 1 } })), first);
    await node.close();
    node = await start();
    await until('a leader', 10_000, () => (node.status().role === 'leader' ? true : undefined));
    // Applied before the restart, beyond the snapshot: known as applied, its result is not kept.
    assert.equal(await refusal(node.propose(put, { session: { clientId, seq: 1 } })), 'DUPLICATE');
    const next = revision(
      await node.propose({ ...put, value: Buffer.from('v2') }, { session: { clientId, seq: 2 } }),
    );
    assert.equal(next, first + 1, 'the retry did not write');
  } finally {
    await node.close();
  }
});
