/**
 * The hand-written response encoders (src/etcd/codec.ts) against the proto loader's: for
 * random responses (every field at 0, small, and near 2^53; empty, short and long bytes;
 * nested txns; watch responses with negative ids and reasons), the encoders must write
 * exactly the bytes protobufjs writes for the same message with its default fields left out
 * (proto3's canonical encoding, which is also what etcd's Go server writes), and decoding
 * them must give the message back.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type { MethodDefinition } from '@grpc/grpc-js';
import fc from 'fast-check';
import {
  encodeCompactionResponse,
  encodeDeleteRangeResponse,
  encodeFramedWatchResponse,
  encodePutResponse,
  encodeRangeResponse,
  encodeTxnResponse,
  encodeWatchEvents,
  encodeWatchResponse,
  type HeaderFields,
  type WatchReply,
} from '../src/etcd/codec.js';
import { etcdService } from '../src/etcd/index.js';
import type { KeyValue, ResponseOp, WatchEvent } from '../src/kv/index.js';

/** The proto loader's codec of one method. */
function method(service: 'KV' | 'Watch', name: string): MethodDefinition<unknown, unknown> {
  const definition = etcdService(service).service[name];
  assert.ok(definition !== undefined, `${service}.${name}`);
  return definition;
}

const KV = {
  Range: method('KV', 'Range'),
  Put: method('KV', 'Put'),
  DeleteRange: method('KV', 'DeleteRange'),
  Txn: method('KV', 'Txn'),
  Compact: method('KV', 'Compact'),
};
const WATCH = method('Watch', 'Watch');
const RUNS = 300;

// ---------------------------------------------------------------- arbitraries

const numberArb = fc.oneof(
  fc.constant(0),
  fc.integer({ min: 1, max: 300 }),
  fc.integer({ min: 1, max: 2 ** 32 + 5 }),
  fc.maxSafeNat(),
);
const bytesArb = fc.oneof(
  { weight: 3, arbitrary: fc.uint8Array({ maxLength: 12 }) },
  { weight: 1, arbitrary: fc.uint8Array({ minLength: 120, maxLength: 300 }) },
);
const kvArb: fc.Arbitrary<KeyValue> = fc.record({
  key: bytesArb,
  createRevision: numberArb,
  modRevision: numberArb,
  version: numberArb,
  value: bytesArb,
  lease: numberArb,
});
const headerArb: fc.Arbitrary<HeaderFields> = fc.record({
  cluster_id: numberArb,
  member_id: numberArb,
  revision: numberArb,
  raft_term: numberArb,
});
const kvsArb = fc.array(kvArb, { maxLength: 4 });

const { op: responseOpArb } = fc.letrec<{ op: ResponseOp }>((tie) => ({
  op: fc.oneof(
    { depthSize: 'small', withCrossShrink: true },
    fc.record({
      type: fc.constant('range' as const),
      revision: numberArb,
      kvs: kvsArb,
      more: fc.boolean(),
      count: numberArb,
    }),
    fc.oneof(
      fc.record({ type: fc.constant('put' as const), revision: numberArb }),
      fc.record({ type: fc.constant('put' as const), revision: numberArb, prevKv: kvArb }),
    ),
    fc.record({
      type: fc.constant('deleteRange' as const),
      revision: numberArb,
      deleted: numberArb,
      prevKvs: kvsArb,
    }),
    fc.record({
      type: fc.constant('txn' as const),
      revision: numberArb,
      succeeded: fc.boolean(),
      responses: fc.array(tie('op'), { maxLength: 3 }),
    }),
  ),
}));

const eventArb: fc.Arbitrary<WatchEvent> = fc.oneof(
  fc.record({ type: fc.constantFrom('PUT' as const, 'DELETE' as const), kv: kvArb }),
  fc.record({ type: fc.constantFrom('PUT' as const, 'DELETE' as const), kv: kvArb, prevKv: kvArb }),
);
const watchArb: fc.Arbitrary<WatchReply> = fc.record(
  {
    header: headerArb,
    watch_id: fc.oneof(fc.constant(-1), numberArb),
    created: fc.boolean(),
    canceled: fc.boolean(),
    compact_revision: numberArb,
    cancel_reason: fc.oneof(fc.constant(''), fc.string(), fc.constant('mvcc: watcher range is empty ✓')),
    fragment: fc.boolean(),
    events: fc.array(eventArb, { maxLength: 4 }),
  },
  { requiredKeys: ['header', 'watch_id'] },
);

// ---------------------------------------------------------------- the same messages for the proto loader

type Wire = Record<string, unknown>;

/** `fields` without the ones at their proto3 default, so that protobufjs leaves them out too. */
function canonical(fields: Wire): Wire {
  const out: Wire = {};
  for (const [name, value] of Object.entries(fields)) {
    if (value === 0 || value === false || value === '' || value === undefined) continue;
    if (value instanceof Uint8Array && value.length === 0) continue;
    if (Array.isArray(value) && value.length === 0) continue;
    out[name] = value;
  }
  return out;
}

function headerWire(h: HeaderFields): Wire {
  return canonical({
    cluster_id: h.cluster_id,
    member_id: h.member_id,
    revision: h.revision,
    raft_term: h.raft_term,
  });
}

function kvWire(kv: KeyValue): Wire {
  return canonical({
    key: kv.key,
    create_revision: kv.createRevision,
    mod_revision: kv.modRevision,
    version: kv.version,
    value: kv.value,
    lease: kv.lease,
  });
}

function opBodyWire(op: ResponseOp, header: Wire): Wire {
  switch (op.type) {
    case 'range':
      return canonical({ header, kvs: op.kvs.map(kvWire), more: op.more, count: op.count });
    case 'put':
      return op.prevKv === undefined ? { header } : { header, prev_kv: kvWire(op.prevKv) };
    case 'deleteRange':
      return canonical({ header, deleted: op.deleted, prev_kvs: op.prevKvs.map(kvWire) });
    case 'txn':
      return canonical({ header, succeeded: op.succeeded, responses: op.responses.map(responseOpWire) });
  }
}

function responseOpWire(op: ResponseOp): Wire {
  const body = opBodyWire(op, headerWire({ revision: op.revision }));
  const member = {
    range: 'response_range',
    put: 'response_put',
    deleteRange: 'response_delete_range',
    txn: 'response_txn',
  };
  return { [member[op.type]]: body };
}

function watchWire(r: WatchReply): Wire {
  return canonical({
    header: headerWire(r.header),
    watch_id: r.watch_id,
    created: r.created,
    canceled: r.canceled,
    compact_revision: r.compact_revision,
    cancel_reason: r.cancel_reason,
    fragment: r.fragment,
    events: (r.events ?? []).map((e) =>
      canonical({
        type: e.type === 'DELETE' ? 1 : 0,
        kv: kvWire(e.kv),
        prev_kv: e.prevKv === undefined ? undefined : kvWire(e.prevKv),
      }),
    ),
  });
}

function sameBytes(mine: Buffer, theirs: Buffer, what: string): void {
  assert.ok(
    mine.equals(theirs),
    `${what}:\n mine   ${mine.toString('hex')}\n theirs ${theirs.toString('hex')}`,
  );
}

// ---------------------------------------------------------------- tests

describe('etcd response encoders', () => {
  test('KV responses: the bytes protobufjs writes', () => {
    fc.assert(
      fc.property(headerArb, responseOpArb, (header, op) => {
        const wireHeader = headerWire(header);
        switch (op.type) {
          case 'range':
            sameBytes(
              encodeRangeResponse({ header, body: op }),
              KV.Range.responseSerialize(opBodyWire(op, wireHeader)),
              'range',
            );
            break;
          case 'put':
            sameBytes(
              encodePutResponse({ header, body: op }),
              KV.Put.responseSerialize(opBodyWire(op, wireHeader)),
              'put',
            );
            break;
          case 'deleteRange':
            sameBytes(
              encodeDeleteRangeResponse({ header, body: op }),
              KV.DeleteRange.responseSerialize(opBodyWire(op, wireHeader)),
              'deleteRange',
            );
            break;
          case 'txn':
            sameBytes(
              encodeTxnResponse({ header, body: op }),
              KV.Txn.responseSerialize(opBodyWire(op, wireHeader)),
              'txn',
            );
            break;
        }
        sameBytes(
          encodeCompactionResponse({ header }),
          KV.Compact.responseSerialize({ header: wireHeader }),
          'compact',
        );
      }),
      { numRuns: RUNS },
    );
  });

  test('watch responses: the bytes protobufjs writes', () => {
    fc.assert(
      fc.property(watchArb, (reply) => {
        sameBytes(encodeWatchResponse(reply), WATCH.responseSerialize(watchWire(reply)), 'watch');
      }),
      { numRuns: RUNS },
    );
  });

  test('framed watch responses: the same message after the room and a gRPC prefix, events encoded once or not', () => {
    fc.assert(
      fc.property(watchArb, fc.nat(16), (reply, room) => {
        const expected = WATCH.responseSerialize(watchWire(reply));
        const { events, ...rest } = reply;
        const shared = events === undefined ? undefined : encodeWatchEvents(events);
        for (const framed of [
          encodeFramedWatchResponse(reply, room),
          encodeFramedWatchResponse(rest, room, shared ?? Buffer.alloc(0)),
        ]) {
          assert.equal(framed.length, room + 5 + expected.length);
          assert.equal(framed[room], 0, 'uncompressed');
          assert.equal(framed.readUInt32BE(room + 1), expected.length, 'length prefix');
          sameBytes(framed.subarray(room + 5), expected, 'framed watch');
        }
      }),
      { numRuns: RUNS },
    );
  });

  test('decoded by the proto loader, a range response gives the kvs back', () => {
    const kv: KeyValue = {
      key: Buffer.from('k'),
      createRevision: 2 ** 53 - 1,
      modRevision: 300,
      version: 1,
      value: Buffer.alloc(200, 7),
      lease: 2 ** 40,
    };
    const bytes = encodeRangeResponse({
      header: { cluster_id: 9, member_id: 8, revision: 301, raft_term: 2 },
      body: { kvs: [kv, { ...kv, key: Buffer.from('l'), value: new Uint8Array(0) }], more: true, count: 5 },
    });
    const decoded = KV.Range.responseDeserialize(bytes) as {
      header: Record<string, string>;
      kvs: {
        key: Buffer;
        value: Buffer;
        create_revision: string;
        mod_revision: string;
        version: string;
        lease: string;
      }[];
      more: boolean;
      count: string;
    };
    assert.deepEqual(decoded.header, { cluster_id: '9', member_id: '8', revision: '301', raft_term: '2' });
    assert.equal(decoded.more, true);
    assert.equal(decoded.count, '5');
    assert.deepEqual(decoded.kvs[0], {
      key: Buffer.from('k'),
      create_revision: String(2 ** 53 - 1),
      mod_revision: '300',
      version: '1',
      value: Buffer.alloc(200, 7),
      lease: String(2 ** 40),
    });
    assert.deepEqual(decoded.kvs[1]?.value, Buffer.alloc(0));
    const watch = WATCH.responseDeserialize(
      encodeWatchResponse({ header: { revision: 3 }, watch_id: -1, cancel_reason: 'é' }),
    ) as { watch_id: string; cancel_reason: string };
    assert.equal(watch.watch_id, '-1');
    assert.equal(watch.cancel_reason, 'é');
  });
});
