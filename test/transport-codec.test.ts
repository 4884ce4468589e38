import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import type { ConfState, Entry, Message, MessageType, Snapshot } from '../src/raft/types.js';
import { decodeMessage, encodeMessage, packWithHeader } from '../src/transport/codec.js';
import { isTransportError, TransportError } from '../src/transport/errors.js';
import { FrameReader } from '../src/transport/frame-reader.js';
import {
  decodeHello,
  decodeMessageBody,
  decodeReject,
  decodeSnapshotBegin,
  decodeSnapshotChunk,
  FRAME_KIND,
  helloFrame,
  messageFrame,
  rejectFrame,
  snapshotBeginFrame,
  snapshotChunkHeader,
} from '../src/transport/frames.js';
import { backoffDelayMs, DEFAULT_TRANSPORT_LIMITS, rejectedDelayMs } from '../src/transport/options.js';

/** Records with a plain prototype, so decoded messages compare equal with deepStrictEqual. */
function record<T>(model: { [K in keyof T]: fc.Arbitrary<T[K]> }): fc.Arbitrary<T> {
  return fc.record(model, { noNullPrototype: true }) as fc.Arbitrary<T>;
}

const id = fc.integer({ min: 0, max: 2 ** 40 });
const index = fc.maxSafeNat();
const bytes = fc.uint8Array({ maxLength: 64 });
const base = { groupId: id, from: id, to: id, term: index };

const entry: fc.Arbitrary<Entry> = record({
  index,
  term: index,
  type: fc.constantFrom('normal' as const, 'conf-change' as const),
  data: bytes,
});
const entries = fc.array(entry, { maxLength: 8 });
const ids = fc.array(id, { maxLength: 5 });
const confState: fc.Arbitrary<ConfState> = record({
  voters: ids,
  votersOutgoing: ids,
  learners: ids,
  learnersNext: ids,
  autoLeave: fc.boolean(),
});
const snapshot: fc.Arbitrary<Snapshot> = record({
  meta: record({ index, term: index, confState }),
  data: fc.uint8Array({ maxLength: 512 }),
});

/** One arbitrary per message type; the record below must name every type (checked by the compiler). */
const arbitraries: { [T in MessageType]: fc.Arbitrary<Extract<Message, { type: T }>> } = {
  vote: record({
    type: fc.constant('vote'),
    ...base,
    preVote: fc.boolean(),
    lastLogIndex: index,
    lastLogTerm: index,
    transfer: fc.boolean(),
  }),
  'vote-response': record({
    type: fc.constant('vote-response'),
    ...base,
    preVote: fc.boolean(),
    granted: fc.boolean(),
  }),
  append: record({
    type: fc.constant('append'),
    ...base,
    prevLogIndex: index,
    prevLogTerm: index,
    entries,
    commit: index,
  }),
  'append-response': record({
    type: fc.constant('append-response'),
    ...base,
    reject: fc.boolean(),
    index,
    hintIndex: index,
    hintTerm: index,
  }),
  heartbeat: record({ type: fc.constant('heartbeat'), ...base, commit: index, context: bytes }),
  'heartbeat-response': record({ type: fc.constant('heartbeat-response'), ...base, context: bytes }),
  snapshot: record({ type: fc.constant('snapshot'), ...base, snapshot }),
  'timeout-now': record({ type: fc.constant('timeout-now'), ...base }),
  'read-index': record({ type: fc.constant('read-index'), ...base, context: bytes }),
  'read-index-response': record({
    type: fc.constant('read-index-response'),
    ...base,
    index,
    context: bytes,
  }),
  propose: record({ type: fc.constant('propose'), ...base, entries, hops: fc.integer({ min: 0, max: 2 }) }),
  unreachable: record({ type: fc.constant('unreachable'), ...base }),
  'snapshot-status': record({ type: fc.constant('snapshot-status'), ...base, reject: fc.boolean() }),
  'transfer-leader': record({ type: fc.constant('transfer-leader'), ...base, transferee: id }),
};
const anyMessage: fc.Arbitrary<Message> = fc.oneof(...Object.values(arbitraries));

/** Decoding must either produce a message or throw a MALFORMED TransportError, nothing else. */
function decodesOrRejects(input: Uint8Array): void {
  try {
    decodeMessage(input);
  } catch (error) {
    assert.ok(isTransportError(error, 'MALFORMED'), `unexpected ${String(error)}`);
  }
}

describe('transport codec', () => {
  test('every message type round-trips', () => {
    for (const [type, arbitrary] of Object.entries(arbitraries)) {
      fc.assert(
        fc.property(arbitrary as fc.Arbitrary<Message>, (m) => {
          assert.deepStrictEqual(decodeMessage(encodeMessage(m)), m, type);
        }),
        { numRuns: 200 },
      );
    }
  });

  test('message frames round-trip, including snapshot begin frames without their data', () => {
    fc.assert(
      fc.property(anyMessage, (m) => {
        if (m.type !== 'snapshot') {
          const frame = messageFrame(m);
          assert.equal(frame.readUInt32BE(0), frame.length - 4);
          assert.equal(frame[4], FRAME_KIND.MESSAGE);
          assert.deepStrictEqual(decodeMessageBody(frame.subarray(5)), m);
          return;
        }
        const frame = snapshotBeginFrame(7, m, 'data');
        const begin = decodeSnapshotBegin(frame.subarray(5));
        assert.equal(begin.streamId, 7);
        assert.equal(begin.mode, 'data');
        assert.deepStrictEqual(begin.message.snapshot.meta, m.snapshot.meta);
        assert.equal(begin.message.snapshot.data.length, 0);
        // In stream mode the message keeps its (inline) data.
        const streamed = decodeSnapshotBegin(snapshotBeginFrame(9, m, 'stream').subarray(5));
        assert.equal(streamed.mode, 'stream');
        assert.deepStrictEqual(streamed.message, m);
      }),
      { numRuns: 300 },
    );
  });

  test('binary data stays binary (msgpack bin), not an array of numbers', () => {
    const data = new Uint8Array(256).fill(0xab);
    const m: Message = {
      type: 'append',
      groupId: 1,
      from: 1,
      to: 2,
      term: 3,
      prevLogIndex: 9,
      prevLogTerm: 3,
      entries: [{ index: 10, term: 3, type: 'normal', data }],
      commit: 9,
    };
    const encoded = encodeMessage(m);
    assert.ok(encoded.length < 256 + 32, `encoded ${encoded.length} bytes`);
    const decoded = decodeMessage(encoded);
    assert.ok(decoded.type === 'append');
    assert.equal(Object.getPrototypeOf(decoded.entries[0]!.data), Uint8Array.prototype);
  });

  test('decoded binary data is a plain Uint8Array view of the frame, not a copy', () => {
    const m: Message = {
      type: 'heartbeat',
      groupId: 1,
      from: 1,
      to: 2,
      term: 1,
      commit: 0,
      context: Uint8Array.of(1, 2),
    };
    const encoded = Buffer.from(encodeMessage(m));
    const decoded = decodeMessage(encoded);
    assert.ok(decoded.type === 'heartbeat');
    assert.equal(Object.getPrototypeOf(decoded.context), Uint8Array.prototype);
    assert.equal(decoded.context.buffer, encoded.buffer);
  });

  test('malformed messages are rejected with a clear MALFORMED error', () => {
    const cases: [unknown, RegExp][] = [
      [{ type: 'vote' }, /expected an array, got Object/],
      [[99, 1, 1, 2, 1], /unknown message type code 99/],
      [[1, 1, 1, 2], /missing field term/],
      [[8, 1, -1, 2, 1], /field from must be a non-negative integer, got number -1/],
      [[8, 1, 1.5, 2, 1], /field from must be a non-negative integer/],
      [[8, 1, 1, 2, 1, 'extra'], /6 slots where 5 were expected/],
      [[5, 1, 1, 2, 1, 0, [1, 2]], /field context must be binary data, got Array/],
      [[3, 1, 1, 2, 1, 0, 0, [1, 1, 0], 0], /entries has 3 slots/],
      [[3, 1, 1, 2, 1, 0, 0, [1, 1, 7, new Uint8Array()], 0], /unknown entry type code 7/],
      [[12, 1, 1, 2, 2 ** 60], /field term must be a non-negative integer/],
    ];
    for (const [value, pattern] of cases) {
      assert.throws(
        () => decodeMessage(packWithHeader(value, 0)),
        (error: unknown) =>
          error instanceof TransportError && error.code === 'MALFORMED' && pattern.test(error.message),
        `${JSON.stringify(value)} should match ${pattern}`,
      );
    }
  });

  test('garbage bytes never crash the decoder', () => {
    fc.assert(fc.property(fc.uint8Array({ maxLength: 200 }), decodesOrRejects), { numRuns: 2000 });
    const corrupted = fc
      .tuple(anyMessage, fc.nat(), fc.integer({ min: 0, max: 255 }))
      .map(([m, at, byte]) => {
        const encoded = Buffer.from(encodeMessage(m));
        encoded[at % encoded.length] = byte;
        return encoded.subarray(0, encoded.length - (at % 3));
      });
    fc.assert(fc.property(corrupted, decodesOrRejects), { numRuns: 2000 });
    // Deep nesting and huge declared lengths are rejected rather than exhausting the stack or memory.
    decodesOrRejects(Buffer.alloc(100_000, 0x91));
    decodesOrRejects(Buffer.from([0xdd, 0xff, 0xff, 0xff, 0xff]));
    decodesOrRejects(Buffer.from([0xd6, 0xff, 0, 0, 0, 1]));
  });

  test('handshake and rejection frames round-trip; a foreign hello is refused', () => {
    const hello = { protocolVersion: 1, clusterId: 0x1234, fromNodeId: 1, toNodeId: 2 };
    assert.deepStrictEqual(decodeHello(helloFrame(hello).subarray(5)), hello);
    assert.deepStrictEqual(decodeReject(rejectFrame('unknown-node', 'who?').subarray(5)), {
      reason: 'unknown-node',
      message: 'who?',
    });
    assert.throws(() => decodeHello(packWithHeader(['http', 1, 1, 1, 1], 0)), /not a flotilla peer/);
    assert.throws(() => decodeReject(packWithHeader(['bored', 'x'], 0)), /unknown rejection reason/);
  });

  test('snapshot chunk headers carry stream id and 64-bit offsets', () => {
    const header = snapshotChunkHeader(3, 5 * 2 ** 32 + 17, 4);
    const frame = Buffer.concat([header, Buffer.from([1, 2, 3, 4])]);
    assert.equal(frame.readUInt32BE(0), frame.length - 4);
    const chunk = decodeSnapshotChunk(frame.subarray(5));
    assert.deepStrictEqual(
      [chunk.streamId, chunk.offset, [...chunk.data]],
      [3, 5 * 2 ** 32 + 17, [1, 2, 3, 4]],
    );
  });
});

describe('frame reader', () => {
  /** Frames of `sizes` bytes each (kind byte included), their bytes all equal to their index. */
  function stream(sizes: readonly number[]): Buffer {
    return Buffer.concat(
      sizes.map((size, i) => {
        const frame = Buffer.alloc(4 + size, i & 0xff);
        frame.writeUInt32BE(size, 0);
        return frame;
      }),
    );
  }

  test('reassembles frames split at arbitrary points', () => {
    fc.assert(
      fc.property(
        fc.array(fc.integer({ min: 1, max: 300 }), { minLength: 1, maxLength: 20 }),
        fc.array(fc.nat(), { maxLength: 30 }),
        (sizes, cuts) => {
          const bytes = stream(sizes);
          const points = [...new Set(cuts.map((c) => c % bytes.length))].sort((a, b) => a - b);
          const reader = new FrameReader(1000);
          const frames: Buffer[] = [];
          let start = 0;
          for (const end of [...points, bytes.length]) {
            reader.push(bytes.subarray(start, end));
            start = end;
            for (let f = reader.next(); f !== undefined; f = reader.next()) frames.push(f);
          }
          assert.deepStrictEqual(
            frames.map((f) => f.length),
            sizes,
          );
          for (const [i, f] of frames.entries()) assert.ok(f.every((b) => b === (i & 0xff)));
          assert.equal(reader.pendingBytes, 0);
        },
      ),
      { numRuns: 300 },
    );
  });

  test('a declared length over the limit is refused before buffering the payload', () => {
    const reader = new FrameReader(1024);
    const header = Buffer.alloc(4);
    header.writeUInt32BE(1025, 0);
    reader.push(header);
    assert.throws(
      () => reader.next(),
      (e: unknown) =>
        isTransportError(e, 'FRAME_TOO_LARGE') &&
        /frame of 1025 bytes exceeds frameBytesMax 1024/.test(e.message),
    );
    const empty = new FrameReader(1024);
    empty.push(Buffer.alloc(4));
    assert.throws(
      () => empty.next(),
      (e: unknown) => isTransportError(e, 'MALFORMED'),
    );
  });
});

describe('backoff', () => {
  test('full jitter within a doubling bound capped at backoffMaxMs', () => {
    const limits = DEFAULT_TRANSPORT_LIMITS;
    const bounds = [50, 100, 200, 400, 800, 1600, 2000, 2000, 2000];
    bounds.forEach((bound, failures) => {
      assert.equal(
        backoffDelayMs(failures, () => 0, limits),
        0,
      );
      assert.equal(
        backoffDelayMs(failures, () => 0.999_999, limits),
        bound - 1,
      );
      assert.equal(
        backoffDelayMs(failures, () => 0.5, limits),
        bound / 2,
      );
    });
    assert.equal(
      backoffDelayMs(1000, () => 0.5, limits),
      1000,
    );
  });

  test('a rejected handshake waits at least half of rejectedRetryMs', () => {
    const limits = DEFAULT_TRANSPORT_LIMITS;
    assert.equal(
      rejectedDelayMs(() => 0, limits),
      limits.rejectedRetryMs / 2,
    );
    assert.ok(rejectedDelayMs(() => 0.999, limits) < limits.rejectedRetryMs);
  });
});
