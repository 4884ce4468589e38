/** Pure parts of the runtime: cluster identity, the proposal envelope, snapshot framing, lease expiry. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { expiredLeases } from '../src/db/lease-keeper.js';
import {
  clusterIdFrom,
  frameChunks,
  isNodeError,
  nodeIdFromName,
  parseInitialCluster,
  unframeChunks,
  unwrapCommand,
  wrapCommand,
} from '../src/node/index.js';

test('node ids are deterministic, positive, safe integers; cluster ids ignore member order', () => {
  assert.equal(nodeIdFromName('n1'), nodeIdFromName('n1'));
  assert.notEqual(nodeIdFromName('n1'), nodeIdFromName('n2'));
  for (const name of ['a', 'n1', 'x'.repeat(64)]) {
    const id = nodeIdFromName(name);
    assert.ok(Number.isSafeInteger(id) && id > 0 && id < 2 ** 48);
  }
  const a = parseInitialCluster('n1=127.0.0.1:1,n2=127.0.0.1:2');
  const b = parseInitialCluster('n2=127.0.0.1:2, n1=http://127.0.0.1:1');
  assert.equal(clusterIdFrom(a), clusterIdFrom(b));
  assert.notEqual(clusterIdFrom(a), clusterIdFrom(parseInitialCluster('n1=127.0.0.1:1,n2=127.0.0.1:3')));
  assert.deepEqual(parseInitialCluster('x=[::1]:7000')[0], {
    name: 'x',
    id: nodeIdFromName('x'),
    host: '::1',
    port: 7000,
  });
});

test('parseInitialCluster refuses bad input with INVALID_CONFIG', () => {
  for (const bad of ['', 'n1', 'n1=host', 'n1=host:0', '=h:1', 'a b=h:1', 'a=h:1,a=h:2', 'a=h:1,b=h:1']) {
    assert.throws(
      () => parseInitialCluster(bad),
      (e: unknown) => isNodeError(e, 'INVALID_CONFIG'),
      bad,
    );
  }
});

test('the envelope round-trips a request id and command; other data is not an envelope', () => {
  const origin = Uint8Array.from([1, 2, 3, 4, 5, 6, 7, 8]);
  const command = Uint8Array.from([9, 9, 9]);
  const wrapped = wrapCommand(origin, 2 ** 40 + 5, command);
  const unwrapped = unwrapCommand(wrapped)!;
  assert.deepEqual(unwrapped.id, { origin: '0102030405060708', seq: 2 ** 40 + 5 });
  assert.deepEqual([...unwrapped.command], [9, 9, 9]);
  assert.equal(unwrapCommand(new Uint8Array()), undefined);
  assert.equal(unwrapCommand(Uint8Array.from([0x82, 1, 2])), undefined);
});

test('entries of different origins, interleaved, keep their own ids; sessions round-trip', () => {
  const origins = [1, 2, 3].map((k) => Uint8Array.from([k, 0, 0, 0, 0, 0, 0, 0xff - k]));
  for (let round = 0; round < 3; round++) {
    for (const [k, origin] of origins.entries()) {
      const seq = 2 ** 52 + round * 7 + k;
      const unwrapped = unwrapCommand(wrapCommand(origin, seq, Uint8Array.from([k])))!;
      assert.deepEqual(unwrapped.id, { origin: Buffer.from(origin).toString('hex'), seq });
    }
  }
  // Two origins that share their first 4 bytes keep their own ids too.
  for (const origin of [
    Uint8Array.from([9, 9, 9, 9, 1, 1, 1, 1]),
    Uint8Array.from([9, 9, 9, 9, 2, 2, 2, 2]),
  ]) {
    for (let k = 0; k < 2; k++) {
      const unwrapped = unwrapCommand(wrapCommand(origin, 5, Uint8Array.from([k])))!;
      assert.equal(unwrapped.id.origin, Buffer.from(origin).toString('hex'));
    }
  }
  const session = { clientId: 2 ** 33 + 1, seq: 2 ** 32 - 1 };
  const back = unwrapCommand(wrapCommand(origins[0]!, 1, Uint8Array.from([7]), session))!;
  assert.deepEqual(back.session, session);
  assert.deepEqual([...back.command], [7]);
});

test('snapshot chunks frame and unframe; truncation is detected', () => {
  const chunks = [Uint8Array.from([1]), new Uint8Array(0), Uint8Array.from([2, 3, 4])];
  const framed = frameChunks(chunks);
  assert.deepEqual(
    [...unframeChunks(framed)].map((c) => [...c]),
    [[1], [], [2, 3, 4]],
  );
  assert.throws(() => [...unframeChunks(framed.subarray(0, framed.length - 1))], /truncated/);
});

test('a lease expires by the leader clock, never before the leader has waited its remaining TTL', () => {
  const leases = [
    { id: 1, ttlSeconds: 10, remainingTtlSeconds: 10, anchorMs: 1000 },
    { id: 2, ttlSeconds: 10, remainingTtlSeconds: 2, anchorMs: 1000 },
  ];
  assert.deepEqual(expiredLeases(leases, 0, 3000), [2]);
  assert.deepEqual(expiredLeases(leases, 0, 11_000), [1, 2]);
  // A leader since 5000 restarts the countdown from then.
  assert.deepEqual(expiredLeases(leases, 5000, 6000), []);
  assert.deepEqual(expiredLeases(leases, 5000, 7000), [2]);
});
