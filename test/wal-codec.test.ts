import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import type { ConfState, Entry } from '../src/raft/types.js';
import {
  CodecError,
  decodeBatch,
  decodeSegmentHeader,
  decodeSnapshotMeta,
  FRAME_HEADER_BYTES,
  FRAME_TYPE,
  FrameEncoder,
  type WalRecord,
} from '../src/storage/codec.js';
import { findValidFrame, nonZeroEnd, readFrameAt, scanSegment } from '../src/storage/segment-scan.js';

const id = fc.integer({ min: 1, max: 2 ** 40 });
const u64 = fc.maxSafeNat();
const confStateArbitrary: fc.Arbitrary<ConfState> = fc.record({
  voters: fc.array(id, { maxLength: 5 }),
  votersOutgoing: fc.array(id, { maxLength: 5 }),
  learners: fc.array(id, { maxLength: 5 }),
  learnersNext: fc.array(id, { maxLength: 5 }),
  autoLeave: fc.boolean(),
});
const entryArbitrary: fc.Arbitrary<Entry> = fc.record({
  index: u64,
  term: u64,
  type: fc.constantFrom('normal' as const, 'conf-change' as const),
  data: fc.uint8Array({ maxLength: 300 }),
});
const recordArbitrary: fc.Arbitrary<WalRecord> = fc.oneof(
  fc.record({ type: fc.constant('entry' as const), entry: entryArbitrary }),
  fc.record({
    type: fc.constant('hard-state' as const),
    hardState: fc.record({ term: u64, vote: u64, commit: u64 }),
  }),
  fc.record({ type: fc.constant('truncate' as const), index: u64 }),
  fc.record({
    type: fc.constant('snapshot' as const),
    kind: fc.constantFrom('created' as const, 'received' as const),
    meta: fc.record({ index: u64, term: u64, confState: confStateArbitrary }),
  }),
  fc.record({ type: fc.constant('conf-state' as const), confState: confStateArbitrary }),
);

function encode(encoder: FrameEncoder, records: readonly WalRecord[]): Uint8Array {
  encoder.begin(FRAME_TYPE.BATCH);
  for (const record of records) {
    switch (record.type) {
      case 'entry':
        encoder.entry(record.entry);
        break;
      case 'hard-state':
        encoder.hardState(record.hardState);
        break;
      case 'truncate':
        encoder.truncate(record.index);
        break;
      case 'snapshot':
        encoder.snapshot(record.kind, record.meta);
        break;
      case 'conf-state':
        encoder.confStateRecord(record.confState);
        break;
    }
  }
  return Uint8Array.from(encoder.finish());
}

/** Structural copy without prototypes or typed arrays, for deepEqual. */
function plain(value: unknown): unknown {
  return JSON.parse(JSON.stringify(value, (_key, v: unknown) => (v instanceof Uint8Array ? [...v] : v)));
}

describe('WAL codec', () => {
  test('batches round-trip through encode, frame check and decode', () => {
    const encoder = new FrameEncoder(16);
    fc.assert(
      fc.property(fc.array(recordArbitrary, { maxLength: 20 }), (records) => {
        const frame = encode(encoder, records);
        const read = readFrameAt(frame, 0);
        assert.ok('frame' in read);
        assert.equal(read.frame.type, FRAME_TYPE.BATCH);
        assert.equal(read.frame.end, frame.length);
        assert.deepEqual(plain(decodeBatch(read.frame.payload)), plain(records));
      }),
    );
  });

  test('segment headers and snapshot metadata round-trip', () => {
    fc.assert(
      fc.property(u64, u64, u64, confStateArbitrary, (seq, index, term, confState) => {
        const carry = {
          hardState: { term, vote: 3, commit: index },
          confState,
          snapshotIndex: index,
          snapshotTerm: term,
          lastIndex: index + 0,
          lastTerm: term,
        };
        const header = new FrameEncoder()
          .begin(FRAME_TYPE.SEGMENT_HEADER)
          .segmentHeader({ seq, carry })
          .finish();
        const read = readFrameAt(header, 0);
        assert.ok('frame' in read);
        assert.deepEqual(plain(decodeSegmentHeader(read.frame.payload)), plain({ seq, carry }));
        const meta = new FrameEncoder()
          .begin(FRAME_TYPE.SNAPSHOT_META)
          .snapshotMeta({ index, term, confState })
          .finish();
        const metaRead = readFrameAt(meta, 0);
        assert.ok('frame' in metaRead);
        assert.deepEqual(
          plain(decodeSnapshotMeta(metaRead.frame.payload)),
          plain({ index, term, confState }),
        );
      }),
    );
  });

  test('any single bit flip in a frame is detected', () => {
    const frame = encode(new FrameEncoder(), [
      { type: 'entry', entry: { index: 7, term: 2, type: 'normal', data: new Uint8Array([1, 2, 3]) } },
      { type: 'hard-state', hardState: { term: 2, vote: 1, commit: 7 } },
    ]);
    for (let bit = 0; bit < frame.length * 8; bit++) {
      const copy = frame.slice();
      copy[bit >> 3]! ^= 1 << (bit & 7);
      assert.ok('invalid' in readFrameAt(copy, 0), `flip of bit ${bit} went unnoticed`);
    }
  });

  test('rejects values a u64 field cannot carry', () => {
    assert.throws(() => new FrameEncoder().begin(FRAME_TYPE.BATCH).truncate(-1));
    assert.throws(() => new FrameEncoder().begin(FRAME_TYPE.BATCH).truncate(2 ** 53));
  });

  test('malformed batch payloads raise CodecError', () => {
    assert.throws(() => decodeBatch(Uint8Array.from([9, 0, 0, 0, 0])), CodecError);
    assert.throws(() => decodeBatch(Uint8Array.from([1, 200, 0, 0, 0, 1])), CodecError);
    assert.throws(() => decodeBatch(Uint8Array.from([3, 4, 0, 0, 0, 1, 2, 3, 4])), CodecError);
  });
});

describe('segment scan', () => {
  const encoder = new FrameEncoder();
  const frameA = encode(encoder, [{ type: 'truncate', index: 0x01_0203_0405 }]);
  const frameB = encode(encoder, [{ type: 'truncate', index: Number.MAX_SAFE_INTEGER }]);
  const both = new Uint8Array([...frameA, ...frameB]);

  test('ends cleanly at end of file or at zeros', () => {
    assert.deepEqual(scanSegment(both).tail, { kind: 'eof' });
    const padded = new Uint8Array([...both, ...new Uint8Array(100)]);
    const scan = scanSegment(padded);
    assert.equal(scan.frames.length, 2);
    assert.equal(scan.end, both.length);
    assert.deepEqual(scan.tail, { kind: 'zeros' });
  });

  test('a partial last frame is a bad tail with nothing valid after it', () => {
    const torn = both.slice(0, both.length - 3);
    const scan = scanSegment(new Uint8Array([...torn, ...new Uint8Array(50)]));
    assert.equal(scan.end, frameA.length);
    assert.equal(scan.tail.kind, 'bad');
    assert.ok(scan.tail.kind === 'bad' && scan.tail.nextValidFrame === undefined);
    assert.ok(scan.tail.kind === 'bad' && scan.tail.garbageEnd === torn.length);
  });

  test('damage followed by a valid frame is reported with its position', () => {
    const damaged = both.slice();
    damaged[FRAME_HEADER_BYTES + 2]! ^= 0xff;
    const scan = scanSegment(damaged);
    assert.equal(scan.end, 0);
    assert.ok(scan.tail.kind === 'bad' && scan.tail.nextValidFrame === frameA.length);
    assert.equal(findValidFrame(damaged, 1), frameA.length);
  });

  test('nonZeroEnd finds the last non-zero byte across chunk boundaries', () => {
    const bytes = new Uint8Array(200_000);
    assert.equal(nonZeroEnd(bytes, 10), 10);
    bytes[70_000] = 1;
    assert.equal(nonZeroEnd(bytes, 10), 70_001);
    assert.equal(nonZeroEnd(bytes, 70_001), 70_001);
  });
});
