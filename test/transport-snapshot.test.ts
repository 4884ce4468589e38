import assert from 'node:assert/strict';
import { afterEach, test } from 'node:test';
import type { SnapshotRequest } from '../src/raft/types.js';
import { pair, running, waitFor } from './support/transport-pair.js';

afterEach(async () => {
  await Promise.all(running.splice(0).map((t) => t.stop()));
});

function snapshotOf(bytes: number): SnapshotRequest {
  const data = new Uint8Array(bytes);
  for (let i = 0; i < bytes; i += 4096) data[i] = (i / 4096) & 0xff;
  data[bytes - 1] = 0x5a;
  const confState = {
    voters: [1, 2, 3],
    votersOutgoing: [],
    learners: [],
    learnersNext: [],
    autoLeave: false,
  };
  return {
    type: 'snapshot',
    groupId: 1,
    from: 1,
    to: 2,
    term: 4,
    snapshot: { meta: { index: 1000, term: 4, confState }, data },
  };
}

test('a 50 MiB snapshot streams in chunks while heartbeats keep flowing', async () => {
  const [a, b] = await pair();
  await waitFor('connection', () => a.transport.stats().peers.get(2)!.connected);
  const sent = snapshotOf(50 * 1024 * 1024);
  a.transport.send([sent]);
  let beat = 0;
  const timer = setInterval(() => {
    beat++;
    a.transport.send([
      { type: 'heartbeat', groupId: 1, from: 1, to: 2, term: 4, commit: beat, context: new Uint8Array(0) },
    ]);
  }, 1);
  try {
    await waitFor('snapshot status', () => a.snapshotStatus.length === 1);
  } finally {
    clearInterval(timer);
  }
  assert.deepStrictEqual(a.snapshotStatus, [[2, true]]);
  const snapshotAt = b.received.findIndex((r) => r.message.type === 'snapshot');
  assert.ok(snapshotAt >= 0);
  const heartbeatsBefore = b.received
    .slice(0, snapshotAt)
    .filter((r) => r.message.type === 'heartbeat').length;
  assert.ok(heartbeatsBefore >= 1, `${heartbeatsBefore} heartbeats delivered before the snapshot completed`);
  const got = b.received[snapshotAt]!.message;
  assert.ok(got.type === 'snapshot');
  assert.deepStrictEqual(got.snapshot.meta, sent.snapshot.meta);
  assert.ok(Buffer.from(got.snapshot.data).equals(sent.snapshot.data), 'snapshot data differs');
  const stats = a.transport.stats().peers.get(2)!;
  // A begin frame plus 50 chunk frames of 1 MiB, and the heartbeats between them.
  assert.ok(stats.framesSent >= 51 + heartbeatsBefore);
  assert.equal(stats.snapshotsSent, 1);
  assert.equal(b.transport.stats().peers.get(1)!.snapshotsReceived, 1);
});

test('a snapshot whose receiver goes away mid-stream reports failure', async () => {
  const [a, b] = await pair();
  await waitFor('connection', () => a.transport.stats().peers.get(2)!.connected);
  a.transport.send([snapshotOf(64 * 1024 * 1024)]);
  await waitFor('the stream began', () => a.transport.stats().peers.get(2)!.framesSent >= 3);
  await b.transport.stop();
  await waitFor('snapshot status', () => a.snapshotStatus.length === 1);
  assert.deepStrictEqual(a.snapshotStatus, [[2, false]]);
  assert.equal(a.transport.stats().peers.get(2)!.snapshotsFailed, 1);
});

test("a snapshot over the receiver's snapshotBytesMax fails and is reported", async () => {
  const [a, b] = await pair({ snapshotBytesMax: 1024 * 1024 });
  a.transport.send([snapshotOf(2 * 1024 * 1024)]);
  await waitFor('snapshot status', () => a.snapshotStatus.length === 1);
  assert.deepStrictEqual(a.snapshotStatus, [[2, false]]);
  assert.equal(b.received.length, 0);
});

test('an empty snapshot is delivered and acknowledged', async () => {
  const [a, b] = await pair();
  const sent = snapshotOf(1);
  const empty: SnapshotRequest = { ...sent, snapshot: { ...sent.snapshot, data: new Uint8Array(0) } };
  a.transport.send([empty]);
  await waitFor('snapshot status', () => a.snapshotStatus.length === 1);
  assert.deepStrictEqual(a.snapshotStatus, [[2, true]]);
  assert.deepStrictEqual(b.received[0]!.message, empty);
});
