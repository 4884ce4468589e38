import assert from 'node:assert/strict';
import { afterEach, test } from 'node:test';
import type { SnapshotRequest } from '../src/raft/types.js';
import { IncomingSnapshot } from '../src/transport/snapshot-receive.js';
import { framedPayload, PayloadDigest, type SnapshotSink } from '../src/transport/snapshot-stream.js';
import { pair, running, waitFor } from './support/transport-pair.js';

// Stream-mode snapshots: the message with its small data inline, then a payload read from a
// source as the peer takes it and written to the receiver's sink before delivery.

const MiB = 1024 * 1024;
afterEach(async () => {
  await Promise.all(running.splice(0).map((t) => t.stop()));
});

const inline = Uint8Array.of(1, 2, 3, 4, 5);
const message: SnapshotRequest = {
  type: 'snapshot',
  groupId: 1,
  from: 1,
  to: 2,
  term: 4,
  snapshot: {
    meta: {
      index: 1000,
      term: 4,
      confState: { voters: [1, 2], votersOutgoing: [], learners: [], learnersNext: [], autoLeave: false },
    },
    data: inline,
  },
};

function chunk(i: number, bytes = MiB): Uint8Array {
  const c = new Uint8Array(bytes);
  c.fill(i & 0xff);
  c[0] = 0xee;
  return c;
}

/** A sink that keeps what it is given, slowly, and records the order of events. */
class RecordingSink implements SnapshotSink {
  readonly parts: Uint8Array[] = [];
  readonly events: string[] = [];
  bytes = 0;
  constructor(
    private readonly delayMs = 0,
    private readonly onWrite: () => void = () => {},
  ) {}
  async write(bytes: Uint8Array): Promise<void> {
    this.onWrite();
    await new Promise((resolve) => setTimeout(resolve, this.delayMs));
    this.parts.push(bytes);
    this.bytes += bytes.length;
  }
  async finish(): Promise<void> {
    this.events.push('finish');
  }
  abort(): void {
    this.events.push('abort');
  }
}

function framed(chunks: readonly Uint8Array[]): Buffer {
  return Buffer.concat(
    chunks.flatMap((c) => {
      const header = Buffer.alloc(4);
      header.writeUInt32BE(c.length);
      return [header, Buffer.from(c)];
    }),
  );
}

test('a streamed snapshot is read as the receiver takes it, written to its sink, then delivered', async () => {
  let pulled = 0;
  let aheadMax = 0;
  const sink = new RecordingSink(4, () => {
    aheadMax = Math.max(aheadMax, pulled - sink.bytes);
  });
  const [a, b] = await pair({ openSnapshotSink: () => sink });
  const chunks = Array.from({ length: 48 }, (_, i) => chunk(i));
  let closed = 0;
  function* source(): Generator<Uint8Array> {
    for (const c of chunks) {
      pulled += c.length;
      yield c;
    }
  }
  a.transport.sendSnapshot(
    message,
    framedPayload(source(), () => closed++),
  );
  await waitFor('snapshot status', () => a.snapshotStatus.length === 1, 10_000);
  assert.deepStrictEqual(a.snapshotStatus, [[2, true]]);
  assert.equal(closed, 1, 'the source is closed once');
  assert.ok(Buffer.concat(sink.parts).equals(framed(chunks)), 'the sink holds the framed chunks');
  assert.deepStrictEqual(sink.events, ['finish']);
  assert.deepStrictEqual(
    b.received.map((r) => r.message),
    [message],
    'the message is delivered with its inline data',
  );
  // 48 MiB went through a sink that takes ~4 ms a write: the sender never ran far ahead.
  assert.ok(aheadMax < 24 * MiB, `sender read ${aheadMax} bytes ahead of the sink`);
});

test('an asynchronous source streams too', async () => {
  const sink = new RecordingSink();
  const [a] = await pair({ openSnapshotSink: () => sink });
  const chunks = [chunk(1, 10), chunk(2, 3 * MiB + 7), chunk(3, 0), chunk(4, 100)];
  async function* source(): AsyncGenerator<Uint8Array> {
    for (const c of chunks) {
      await new Promise((resolve) => setImmediate(resolve));
      yield c;
    }
  }
  a.transport.sendSnapshot(
    message,
    framedPayload(source(), () => {}),
  );
  await waitFor('snapshot status', () => a.snapshotStatus.length === 1, 10_000);
  assert.deepStrictEqual(a.snapshotStatus, [[2, true]]);
  assert.ok(Buffer.concat(sink.parts).equals(framed(chunks)));
});

test('a receiver without a sink refuses a streamed snapshot; nothing is delivered', async () => {
  const [a, b] = await pair({});
  let closed = 0;
  a.transport.sendSnapshot(
    message,
    framedPayload([chunk(1)], () => closed++),
  );
  await waitFor('snapshot status', () => a.snapshotStatus.length === 1, 10_000);
  assert.deepStrictEqual(a.snapshotStatus, [[2, false]]);
  assert.equal(closed, 1);
  assert.equal(b.received.filter((r) => r.message.type === 'snapshot').length, 0);
});

test('a source that fails cuts the stream: the sender reports failure, the receiver aborts its sink', async () => {
  const sink = new RecordingSink();
  const [a, b] = await pair({ openSnapshotSink: () => sink });
  function* source(): Generator<Uint8Array> {
    yield chunk(1);
    throw new Error('disk read failed');
  }
  a.transport.sendSnapshot(
    message,
    framedPayload(source(), () => {}),
  );
  await waitFor('snapshot status', () => a.snapshotStatus.length === 1, 10_000);
  assert.deepStrictEqual(a.snapshotStatus, [[2, false]]);
  await waitFor('sink aborted', () => sink.events.includes('abort'));
  assert.deepStrictEqual(sink.events, ['abort']);
  assert.equal(b.received.filter((r) => r.message.type === 'snapshot').length, 0);
});

test('a receiver that stops mid-stream aborts its sink and the sender reports failure', async () => {
  const sink = new RecordingSink(20);
  const [a, b] = await pair({ openSnapshotSink: () => sink });
  a.transport.sendSnapshot(
    message,
    framedPayload(
      Array.from({ length: 64 }, (_, i) => chunk(i)),
      () => {},
    ),
  );
  await waitFor('first write', () => sink.parts.length > 0);
  await b.transport.stop();
  await waitFor('snapshot status', () => a.snapshotStatus.length === 1, 10_000);
  assert.deepStrictEqual(a.snapshotStatus, [[2, false]]);
  assert.deepStrictEqual(sink.events, ['abort']);
});

test('an end frame whose length or checksum differs from what arrived is refused and aborts the sink', () => {
  for (const [bytes, crcDelta] of [
    [1, 0],
    [0, 1],
  ] as const) {
    const sink = new RecordingSink();
    const incoming = new IncomingSnapshot(1, 'stream', message, sink, MiB);
    const data = Buffer.from('payload');
    void incoming.chunk(0, data);
    const digest = new PayloadDigest();
    digest.update(data);
    assert.throws(() => incoming.end(digest.bytes + bytes, digest.crc + crcDelta), /CRC-32C/);
    incoming.abort();
    assert.deepStrictEqual(sink.events, ['abort']);
  }
  const incoming = new IncomingSnapshot(1, 'stream', message, new RecordingSink(), MiB);
  assert.throws(() => incoming.chunk(5, Buffer.from('gap')), /does not continue/);
});
