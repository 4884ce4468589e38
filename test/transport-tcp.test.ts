import assert from 'node:assert/strict';
import { connect, createServer, type Socket } from 'node:net';
import { afterEach, describe, test } from 'node:test';
import type { Message, NodeId } from '../src/raft/types.js';
import { isTransportError, type TransportError } from '../src/transport/errors.js';
import { helloFrame, messageFrame, PROTOCOL_VERSION } from '../src/transport/frames.js';
import type { TcpTransportOptions } from '../src/transport/options.js';
import { TcpTransport } from '../src/transport/tcp-transport.js';

const CLUSTER = 0x1234;
const HOST = '127.0.0.1';

/** A transport under test and everything its callbacks reported. */
interface TestNode {
  readonly id: NodeId;
  readonly transport: TcpTransport;
  readonly port: number;
  readonly received: Message[];
  readonly errors: TransportError[];
  readonly unreachable: NodeId[];
  readonly snapshotStatus: [NodeId, boolean][];
}

const running: TcpTransport[] = [];
afterEach(async () => {
  await Promise.all(running.splice(0).map((t) => t.stop()));
});

function createNode(id: NodeId, options: Partial<TcpTransportOptions> = {}): Omit<TestNode, 'port'> {
  const node = {
    id,
    received: [] as Message[],
    errors: [] as TransportError[],
    unreachable: [] as NodeId[],
    snapshotStatus: [] as [NodeId, boolean][],
  };
  const transport = new TcpTransport({
    nodeId: id,
    clusterId: CLUSTER,
    listen: { host: HOST, port: 0 },
    peers: new Map(),
    onMessage: (m) => node.received.push(m),
    onUnreachable: (peer) => node.unreachable.push(peer),
    onSnapshotStatus: (peer, ok) => node.snapshotStatus.push([peer, ok]),
    onError: (error) => node.errors.push(error),
    ...options,
  });
  running.push(transport);
  return { ...node, transport };
}

async function startNode(id: NodeId, options: Partial<TcpTransportOptions> = {}): Promise<TestNode> {
  const node = createNode(id, options);
  const { port } = await node.transport.start();
  return { ...node, port };
}

/** Makes every node a peer of every other. */
function connectAll(nodes: readonly TestNode[]): void {
  for (const a of nodes)
    for (const b of nodes) if (a !== b) a.transport.addPeer(b.id, { host: HOST, port: b.port });
}

/** Polls `condition` until it holds; fails after `timeoutMs`. */
async function waitFor(what: string, condition: () => boolean, timeoutMs = 3000): Promise<void> {
  const deadline = performance.now() + timeoutMs;
  while (!condition()) {
    if (performance.now() > deadline) assert.fail(`timed out waiting for ${what}`);
    await sleep(5);
  }
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** A port nothing listens on (it was free a moment ago). */
async function deadPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, HOST, resolve));
  const { port } = server.address() as { port: number };
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

function heartbeat(from: NodeId, to: NodeId, commit: number): Message {
  return { type: 'heartbeat', groupId: 1, from, to, term: 1, commit, context: new Uint8Array(0) };
}

function append(from: NodeId, to: NodeId, index: number, dataBytes = 256): Message {
  const data = new Uint8Array(dataBytes).fill(index & 0xff);
  return {
    type: 'append',
    groupId: 1,
    from,
    to,
    term: 2,
    prevLogIndex: index - 1,
    prevLogTerm: 2,
    entries: [{ index, term: 2, type: 'normal', data }],
    commit: index - 1,
  };
}

/** One message of every type from `from` to `to`. */
function everyType(from: NodeId, to: NodeId): Message[] {
  const base = { groupId: 7, from, to, term: 3 };
  const context = Uint8Array.of(from, to);
  const entries = [
    { index: 5, term: 3, type: 'normal' as const, data: Uint8Array.of(1, 2, 3) },
    { index: 6, term: 3, type: 'conf-change' as const, data: new Uint8Array(0) },
  ];
  const confState = {
    voters: [1, 2, 3],
    votersOutgoing: [],
    learners: [4],
    learnersNext: [],
    autoLeave: false,
  };
  return [
    { type: 'vote', ...base, preVote: true, lastLogIndex: 9, lastLogTerm: 2, transfer: false },
    { type: 'vote-response', ...base, preVote: false, granted: true },
    { type: 'append', ...base, prevLogIndex: 4, prevLogTerm: 3, entries, commit: 4 },
    { type: 'append-response', ...base, reject: true, index: 4, hintIndex: 3, hintTerm: 2 },
    { type: 'heartbeat', ...base, commit: 4, context },
    { type: 'heartbeat-response', ...base, context },
    {
      type: 'snapshot',
      ...base,
      snapshot: { meta: { index: 100, term: 3, confState }, data: new Uint8Array(3000).fill(from) },
    },
    { type: 'timeout-now', ...base },
    { type: 'read-index', ...base, context },
    { type: 'read-index-response', ...base, index: 44, context },
    { type: 'propose', ...base, entries, hops: 1 },
    { type: 'unreachable', ...base, term: 0 },
    { type: 'snapshot-status', ...base, term: 0, reject: true },
    { type: 'transfer-leader', ...base, term: 0, transferee: to },
  ];
}

describe('tcp transport: delivery', () => {
  test('three transports exchange messages of every type', async () => {
    const nodes = await Promise.all([1, 2, 3].map((id) => startNode(id)));
    connectAll(nodes);
    for (const a of nodes) for (const b of nodes) if (a !== b) a.transport.send(everyType(a.id, b.id));
    await waitFor('all messages', () => nodes.every((n) => n.received.length === 28));
    for (const n of nodes) {
      for (const sender of nodes) {
        if (sender === n) continue;
        const got = n.received.filter((m) => m.from === sender.id);
        const expected = everyType(sender.id, n.id);
        // Snapshots complete after their chunks, so only they may arrive out of send order.
        const notSnapshot = (m: Message): boolean => m.type !== 'snapshot';
        assert.deepStrictEqual(got.filter(notSnapshot), expected.filter(notSnapshot));
        assert.deepStrictEqual(
          got.filter((m) => !notSnapshot(m)),
          expected.filter((m) => !notSnapshot(m)),
        );
      }
      await waitFor('snapshot acknowledgements', () => n.snapshotStatus.length === 2);
      assert.deepStrictEqual(
        n.snapshotStatus.map(([, ok]) => ok),
        [true, true],
      );
      assert.deepStrictEqual(n.errors, []);
    }
    const stats = nodes[0]!.transport.stats().peers.get(2)!;
    assert.equal(stats.messagesSent, 14);
    assert.equal(stats.messagesReceived, 14);
    assert.equal(stats.snapshotsSent, 1);
    assert.ok(stats.bytesSent > 3000 && stats.bytesReceived > 3000);
  });

  test('order per connection is preserved across many writes', async () => {
    const [a, b] = await Promise.all([startNode(1), startNode(2)]);
    connectAll([a!, b!]);
    for (let batch = 0; batch < 40; batch++) {
      const messages: Message[] = [];
      for (let i = 1; i <= 100; i++) messages.push(append(1, 2, batch * 100 + i, 64));
      a!.transport.send(messages);
      await new Promise((resolve) => setImmediate(resolve));
    }
    await waitFor('4000 appends', () => b!.received.length === 4000);
    b!.received.forEach((m, i) => {
      assert.ok(m.type === 'append');
      assert.equal(m.entries[0]!.index, i + 1);
    });
    assert.equal(a!.transport.stats().peers.get(2)!.messagesDropped, 0);
  });

  test('messages sent in one tick are coalesced into one write', async () => {
    const [a, b] = await Promise.all([startNode(1), startNode(2)]);
    connectAll([a!, b!]);
    await waitFor('connection', () => a!.transport.stats().peers.get(2)!.connected);
    const before = a!.transport.stats().peers.get(2)!;
    // 200 separate send() calls in the same tick, as 200 Readies of different groups would.
    for (let i = 1; i <= 200; i++) a!.transport.send([heartbeat(1, 2, i)]);
    await waitFor('200 heartbeats', () => b!.received.length === 200);
    const after = a!.transport.stats().peers.get(2)!;
    assert.equal(after.framesSent - before.framesSent, 200);
    assert.equal(after.writes - before.writes, 1);
  });

  test('listening on a port in use fails with a LISTEN error', async () => {
    const a = await startNode(1);
    const b = createNode(2, { listen: { host: HOST, port: a.port } });
    await assert.rejects(b.transport.start(), (error: unknown) => {
      return (
        isTransportError(error, 'LISTEN') &&
        error.message.includes(`node 2 cannot listen on ${HOST}:${a.port}`)
      );
    });
  });

  test('messages to an unknown node are dropped and reported', async () => {
    const a = await startNode(1);
    a.transport.send([heartbeat(1, 9, 1)]);
    await waitFor('report', () => a.unreachable.length === 1);
    assert.deepStrictEqual(a.unreachable, [9]);
    assert.equal(a.transport.stats().droppedUnknownPeer, 1);
  });

  test('a full send queue drops the excess and reports the peer unreachable once', async () => {
    const b = await startNode(2);
    b.transport.addPeer(1, { host: HOST, port: await deadPort() });
    const a = createNode(1, { sendQueueMessagesMax: 10 });
    a.transport.addPeer(2, { host: HOST, port: b.port });
    // Before start() nothing is written, so the queue fills.
    const messages: Message[] = [];
    for (let i = 1; i <= 100; i++) messages.push(heartbeat(1, 2, i));
    a.transport.send(messages);
    await sleep(0);
    assert.equal(a.transport.stats().peers.get(2)!.messagesDropped, 90);
    assert.deepStrictEqual(a.unreachable, [2]);
    await a.transport.start();
    await waitFor('queued messages', () => b.received.length === 10);
    assert.deepStrictEqual(
      b.received.map((m) => (m.type === 'heartbeat' ? m.commit : -1)),
      [1, 2, 3, 4, 5, 6, 7, 8, 9, 10],
    );
  });
});

describe('tcp transport: handshake', () => {
  /** Starts node 2 (cluster 0x1234) and node 1 dialing it with `dialer` options and claimed peer id `as`. */
  async function rejected(
    dialer: Partial<TcpTransportOptions>,
    acceptorKnowsDialer: boolean,
    as: NodeId = 2,
  ) {
    const b = await startNode(2);
    const a = await startNode(1, dialer);
    if (acceptorKnowsDialer) b.transport.addPeer(1, { host: HOST, port: a.port });
    a.transport.addPeer(as, { host: HOST, port: b.port });
    // Node 2 may dial node 1 too (and be rejected in turn): pick the errors of 1 → 2.
    const findAcceptorError = () => b.errors.find((e) => e.message.startsWith('node 2 rejected'));
    const findDialerError = () =>
      a.errors.find((e) => e.message.includes('rejected the handshake from node 1'));
    await waitFor(
      'rejection on both sides',
      () => findAcceptorError() !== undefined && findDialerError() !== undefined,
    );
    const acceptorError = findAcceptorError()!;
    const dialerError = findDialerError()!;
    assert.ok(isTransportError(acceptorError, 'HANDSHAKE_REJECTED'));
    assert.ok(isTransportError(dialerError, 'HANDSHAKE_REJECTED'));
    assert.equal(acceptorError.reason, dialerError.reason);
    assert.equal(acceptorError.peer, 1);
    assert.equal(dialerError.peer, as);
    return { a, b, acceptorError, dialerError };
  }

  test('a wrong cluster id is rejected with an error naming both ids, and not redialed fast', async () => {
    const { a, acceptorError, dialerError } = await rejected({ clusterId: 0x9999 }, true);
    assert.equal(acceptorError.reason, 'cluster-id-mismatch');
    assert.match(acceptorError.message, /cluster id mismatch: local 0x1234 remote 0x9999/);
    assert.match(acceptorError.message, /node 2 rejected the handshake from node 1/);
    assert.match(dialerError.message, /node 2 \(127\.0\.0\.1:\d+\) rejected the handshake from node 1/);
    assert.match(dialerError.message, /node 2 is in cluster 0x1234, node 1 in 0x9999/);
    // Messages to the rejecting peer are dropped and reported; no redial for rejectedRetryMs/2.
    await waitFor('unreachable report', () => a.unreachable.includes(2));
    a.transport.send([heartbeat(1, 2, 1)]);
    await sleep(300);
    const stats = a.transport.stats().peers.get(2)!;
    assert.equal(stats.dials, 1);
    assert.equal(stats.connects, 0);
    assert.ok(stats.messagesDropped >= 1);
  });

  test('an unknown dialer is rejected', async () => {
    const { acceptorError, dialerError } = await rejected({}, false);
    assert.equal(acceptorError.reason, 'unknown-node');
    assert.match(acceptorError.message, /unknown node: node 1 is not a peer of node 2/);
    assert.match(dialerError.message, /unknown node: node 1 is not a peer of node 2/);
  });

  test('a dialer rejected as unknown redials at once when the acceptor, having learned of it, connects to it', async () => {
    const { a, b, acceptorError } = await rejected({}, false);
    assert.equal(acceptorError.reason, 'unknown-node');
    // Node 2 learns of node 1 (as a member that applied node 1's addition would) and dials it:
    // node 1 does not wait out rejectedRetryMs (10 s) before its own link to node 2 is up.
    b.transport.addPeer(1, { host: HOST, port: a.port });
    await waitFor('link 1 → 2 up', () => a.transport.stats().peers.get(2)!.connected, 3000);
    a.transport.send([heartbeat(1, 2, 1)]);
    await waitFor('the heartbeat delivered', () => b.received.some((m) => m.from === 1), 3000);
  });

  test('a dialer expecting another node id is rejected', async () => {
    const { acceptorError, dialerError } = await rejected({}, true, 3);
    assert.equal(acceptorError.reason, 'node-id-mismatch');
    assert.match(acceptorError.message, /node 1 dialed node 3 but reached node 2/);
    assert.match(dialerError.message, /node 3 \(127\.0\.0\.1:\d+\) rejected the handshake from node 1/);
  });

  test('a wrong protocol version is rejected', async () => {
    const b = await startNode(2);
    b.transport.addPeer(1, { host: HOST, port: await deadPort() });
    const socket = await rawConnect(b.port);
    const answer = collect(socket);
    socket.write(
      helloFrame({ protocolVersion: PROTOCOL_VERSION + 1, clusterId: CLUSTER, fromNodeId: 1, toNodeId: 2 }),
    );
    await waitFor('socket closed', () => socket.closed);
    assert.match(Buffer.concat(answer).toString('latin1'), /protocol version mismatch/);
    assert.equal(b.errors[0]?.reason, 'protocol-version-mismatch');
  });
});

function rawConnect(port: number): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const socket = connect({ host: HOST, port }, () => resolve(socket));
    socket.on('error', reject);
  });
}

function collect(socket: Socket): Buffer[] {
  const chunks: Buffer[] = [];
  socket.on('data', (chunk: Buffer) => chunks.push(chunk));
  socket.on('error', () => {});
  return chunks;
}

describe('tcp transport: hostile input', () => {
  test('garbage from raw sockets closes those connections and nothing else', async () => {
    const [a, b] = await Promise.all([startNode(1), startNode(2)]);
    connectAll([a!, b!]);
    const garbage = [
      Buffer.from('GET / HTTP/1.1\r\nHost: x\r\n\r\n'),
      Buffer.from([0, 0, 0, 3, 1, 0xc1, 0xc1]),
      Buffer.from([0, 0, 0, 0]),
      Buffer.from([0, 0, 0, 2, 99, 0]),
      Buffer.from(Array.from({ length: 4096 }, (_, i) => (i * 7919) & 0xff)),
    ];
    for (const bytes of garbage) {
      const socket = await rawConnect(b!.port);
      collect(socket);
      socket.write(bytes);
      await waitFor('acceptor closes the connection', () => socket.closed);
    }
    assert.equal(b!.errors.length, garbage.length);
    for (const error of b!.errors) {
      assert.ok(['MALFORMED', 'FRAME_TOO_LARGE', 'PROTOCOL'].includes(error.code), error.message);
      assert.match(error.message, /from 127\.0\.0\.1:\d+ \(before the handshake\)/);
    }
    a!.transport.send([heartbeat(1, 2, 1)]);
    await waitFor('a real peer still gets through', () => b!.received.length === 1);
  });

  test('garbage after a valid handshake closes the connection with an error naming the peer', async () => {
    const b = await startNode(2);
    b.transport.addPeer(1, { host: HOST, port: await deadPort() });
    const socket = await rawConnect(b.port);
    collect(socket);
    socket.write(
      helloFrame({ protocolVersion: PROTOCOL_VERSION, clusterId: CLUSTER, fromNodeId: 1, toNodeId: 2 }),
    );
    socket.write(messageFrame(heartbeat(1, 2, 1)));
    socket.write(Buffer.from([0, 0, 0, 4, 4, 0x93, 0x01, 0x02]));
    await waitFor('connection closed', () => socket.closed);
    assert.equal(b.received.length, 1);
    assert.equal(b.errors.length, 1);
    assert.ok(isTransportError(b.errors[0], 'MALFORMED'));
    assert.match(b.errors[0].message, /from node 1 \(127\.0\.0\.1:\d+\): malformed message/);
  });

  test('a frame over the limit closes the connection with an error naming the peer and size', async () => {
    const b = await startNode(2);
    b.transport.addPeer(1, { host: HOST, port: await deadPort() });
    const socket = await rawConnect(b.port);
    collect(socket);
    socket.write(
      helloFrame({ protocolVersion: PROTOCOL_VERSION, clusterId: CLUSTER, fromNodeId: 1, toNodeId: 2 }),
    );
    const header = Buffer.alloc(4);
    header.writeUInt32BE(17 * 1024 * 1024, 0);
    socket.write(header);
    await waitFor('connection closed', () => socket.closed);
    assert.ok(isTransportError(b.errors[0], 'FRAME_TOO_LARGE'));
    assert.match(
      b.errors[0].message,
      /from node 1 \(127\.0\.0\.1:\d+\): frame of 17825792 bytes exceeds frameBytesMax 16777216/,
    );
  });

  test('a peer with a smaller frame limit closes the connection; the sender reports it unreachable', async () => {
    const b = await startNode(2, { frameBytesMax: 64 * 1024, snapshotChunkBytes: 32 * 1024 });
    const a = await startNode(1);
    connectAll([a, b]);
    a.transport.send([append(1, 2, 1, 100 * 1024)]);
    await waitFor('error at the receiver', () => b.errors.length === 1);
    assert.ok(isTransportError(b.errors[0], 'FRAME_TOO_LARGE'));
    assert.match(b.errors[0].message, /from node 1 .*: frame of 1024\d\d bytes exceeds frameBytesMax 65536/);
    await waitFor('unreachable at the sender', () => a.unreachable.includes(2));
  });

  test("a message over the sender's own limit is dropped before it is written", async () => {
    const b = await startNode(2);
    const a = await startNode(1, { frameBytesMax: 64 * 1024, snapshotChunkBytes: 32 * 1024 });
    connectAll([a, b]);
    a.transport.send([append(1, 2, 1, 100 * 1024), heartbeat(1, 2, 5)]);
    await waitFor('heartbeat', () => b.received.length === 1);
    assert.equal(b.received[0]!.type, 'heartbeat');
    assert.ok(isTransportError(a.errors[0], 'FRAME_TOO_LARGE'));
    assert.match(a.errors[0].message, /append message of \d+ bytes to node 2: exceeds frameBytesMax 65536/);
    assert.equal(a.transport.stats().peers.get(2)!.messagesDropped, 1);
  });
});

describe('tcp transport: failures and reconnects', () => {
  test('reconnects with backoff after the peer restarts on the same port', async () => {
    const b = await startNode(2);
    // random() = 0.5: delays are half the bound (25, 50, 100, 200 ms...), so the count is predictable.
    const a = await startNode(1, { random: () => 0.5 });
    connectAll([a, b]);
    a.transport.send([heartbeat(1, 2, 1)]);
    await waitFor('first heartbeat', () => b.received.length === 1);
    await b.transport.stop();
    await waitFor('loss reported', () => a.unreachable.includes(2));
    const downAt = performance.now();
    a.transport.send([heartbeat(1, 2, 2)]); // dropped: the peer is down
    await sleep(400);
    // The restarted peer: a new transport on the same port, as a restarted process would be.
    const restarted = createNode(2, { listen: { host: HOST, port: b.port } });
    restarted.transport.addPeer(1, { host: HOST, port: a.port });
    await restarted.transport.start();
    await waitFor('reconnected', () => a.transport.stats().peers.get(2)!.connects === 2, 4000);
    const elapsed = performance.now() - downAt;
    a.transport.send([heartbeat(1, 2, 3)]);
    await waitFor('heartbeat after restart', () => restarted.received.length === 1);
    const stats = a.transport.stats().peers.get(2)!;
    // Redials 25, 50, 100, 200, 400 ms apart: the initial dial plus about log2(elapsed / 25) more.
    // A fixed-interval or immediate redial loop would show dozens.
    const bound = Math.ceil(Math.log2(elapsed / 25)) + 2;
    assert.ok(stats.dials >= 3 && stats.dials <= bound, `${stats.dials} dials in ${elapsed.toFixed(0)} ms`);
    assert.ok(stats.messagesDropped >= 1);
  });

  test('a snapshot to a dead peer reports failure', async () => {
    const a = await startNode(1);
    a.transport.addPeer(2, { host: HOST, port: await deadPort() });
    const snapshot = everyType(1, 2).find((m) => m.type === 'snapshot')!;
    a.transport.send([snapshot]);
    await waitFor('snapshot status', () => a.snapshotStatus.length === 1);
    assert.deepStrictEqual(a.snapshotStatus, [[2, false]]);
    assert.ok(a.unreachable.includes(2));
    // Once the peer is known down, a new snapshot fails at once.
    a.transport.send([snapshot]);
    await waitFor('second status', () => a.snapshotStatus.length === 2);
    assert.deepStrictEqual(a.snapshotStatus[1], [2, false]);
    assert.equal(a.transport.stats().peers.get(2)!.snapshotsFailed, 2);
  });

  test('only one snapshot per peer is in flight; a second one fails at once', async () => {
    const [a, b] = await Promise.all([startNode(1), startNode(2)]);
    connectAll([a!, b!]);
    const snapshot = everyType(1, 2).find((m) => m.type === 'snapshot')!;
    a!.transport.send([snapshot, snapshot]);
    await waitFor('both statuses', () => a!.snapshotStatus.length === 2);
    assert.deepStrictEqual(a!.snapshotStatus, [
      [2, false],
      [2, true],
    ]);
    assert.equal(b!.received.length, 1);
  });

  test('updatePeer redials at the new address; removePeer stops sending and refuses the peer', async () => {
    const [a, b] = await Promise.all([startNode(1), startNode(2)]);
    a!.transport.addPeer(2, { host: HOST, port: await deadPort() });
    b!.transport.addPeer(1, { host: HOST, port: a!.port });
    a!.transport.updatePeer(2, { host: HOST, port: b!.port });
    a!.transport.send([heartbeat(1, 2, 1)]);
    await waitFor('delivery at the new address', () => b!.received.length === 1);
    b!.transport.removePeer(1);
    assert.deepStrictEqual(b!.transport.peers(), []);
    await waitFor('a notices', () => a!.unreachable.includes(2));
    await waitFor('a is refused as unknown', () => b!.errors.some((e) => e.reason === 'unknown-node'), 4000);
  });
});
