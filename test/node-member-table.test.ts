/**
 * The member table's pieces: member-update entries, the one-writer-per-field rules, the
 * table inside raft snapshots, etcd-flavoured backups, and the transport's cluster query a
 * joining member asks (against a real listening transport).
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { test } from 'node:test';
import { freePort } from '../src/cli/cluster-command.js';
import { decodeBackup, encodeEtcdBackup } from '../src/kv/backup.js';
import { frameChunks } from '../src/node/envelope.js';
import { parseClusterInfo } from '../src/node/join.js';
import {
  applyMemberUpdate,
  type MemberAddress,
  recordContextMember,
  snapshotChunks,
  splitSnapshotData,
  unwrapMemberUpdate,
  wrapMemberUpdate,
} from '../src/node/member-table.js';
import { queryClusterInfo, TcpTransport } from '../src/transport/index.js';

const origin = new Uint8Array(8).fill(7);

test('member updates round-trip through their log entry and are told apart from KV entries', () => {
  const update = { op: 'publish', id: 5, name: 'n5', clientUrls: { grpc: 'http://h:1' } } as const;
  const entry = wrapMemberUpdate(origin, 42, update);
  const back = unwrapMemberUpdate(entry);
  assert.deepEqual(back, { id: { origin: '0707070707070707', seq: 42 }, update });
  const kvEntry = entry.slice();
  kvEntry[0] = 0xf1;
  assert.equal(unwrapMemberUpdate(kvEntry), undefined);
  assert.equal(unwrapMemberUpdate(wrapMemberUpdate(origin, 1, update).subarray(0, 20)), undefined);
});

test('each field has one writer: contexts create entries, publish names, peer updates move', () => {
  const table = new Map<number, MemberAddress>([[1, { name: 'n1', host: 'a', port: 1 }]]);
  recordContextMember(table, 2, { name: '', host: 'b', port: 2 });
  recordContextMember(table, 1, { name: 'n1', host: 'stale', port: 9 });
  assert.deepEqual(table.get(1), { name: 'n1', host: 'a', port: 1 });
  applyMemberUpdate(table, { op: 'publish', id: 2, name: 'n2', clientUrls: { http: 'http://b:3' } });
  assert.deepEqual(table.get(2), { name: 'n2', host: 'b', port: 2, clientUrls: { http: 'http://b:3' } });
  // A later conf change context (e.g. a promotion) neither renames nor moves it.
  recordContextMember(table, 2, { name: '', host: 'b', port: 2 });
  assert.equal(table.get(2)?.name, 'n2');
  applyMemberUpdate(table, { op: 'peer', id: 2, host: 'c', port: 4 });
  assert.deepEqual(table.get(2), { name: 'n2', host: 'c', port: 4, clientUrls: { http: 'http://b:3' } });
  assert.equal(applyMemberUpdate(table, { op: 'peer', id: 3, host: 'x', port: 1 }), undefined);
  assert.equal(table.has(3), false);
});

test('raft snapshots carry the table first; snapshots without one still split', () => {
  const table = new Map<number, MemberAddress>([
    [1, { name: 'n1', host: 'a', port: 1, clientUrls: { grpc: 'http://a:2' } }],
  ]);
  const kv = [Uint8Array.of(0x92, 1), Uint8Array.of(0x92, 2)];
  const withTable = splitSnapshotData(frameChunks(snapshotChunks(table, kv)));
  assert.deepEqual(withTable.members, table);
  assert.deepEqual([...withTable.kvChunks], kv);
  const without = splitSnapshotData(frameChunks(kv));
  assert.equal(without.members, undefined);
  assert.deepEqual([...without.kvChunks], kv);
});

test("etcd-flavoured backups end with etcd's SHA-256 and decode like plain ones", () => {
  for (const sizes of [[1], [10, 500], [508], [512 - 4], [1020, 3]]) {
    const chunks = sizes.map((n, i) => new Uint8Array(n).fill(i + 1));
    const file = encodeEtcdBackup(chunks);
    assert.equal(file.length % 512, 32, 'etcd clients check size % 512 == 32');
    const body = file.subarray(0, file.length - 32);
    assert.deepEqual(createHash('sha256').update(body).digest(), file.subarray(file.length - 32));
    assert.deepEqual(
      decodeBackup(file).map((c) => new Uint8Array(c)),
      chunks,
    );
    assert.deepEqual(decodeBackup(frameChunks(chunks)), chunks);
  }
  const bad = encodeEtcdBackup([Uint8Array.of(1, 2, 3)]);
  bad[0] = 9;
  assert.throws(() => decodeBackup(bad));
});

test('a listening transport answers a cluster query; a joining member parses the answer', async () => {
  const port = await freePort();
  const info = {
    clusterId: 0xabc,
    members: [
      {
        id: 1,
        name: 'n1',
        host: '127.0.0.1',
        port,
        clientUrls: { grpc: 'http://127.0.0.1:9' },
        learner: false,
      },
      { id: 2, name: '', host: '127.0.0.1', port: 1, learner: true },
    ],
  };
  const transport = new TcpTransport({
    nodeId: 1,
    clusterId: 0xabc,
    listen: { host: '127.0.0.1', port },
    peers: new Map(),
    onMessage: () => {},
    clusterInfo: () => JSON.stringify(info),
  });
  await transport.start();
  try {
    const answer = await queryClusterInfo({ host: '127.0.0.1', port }, 2000);
    assert.deepEqual(parseClusterInfo(answer), info);
  } finally {
    await transport.stop();
  }
  await assert.rejects(queryClusterInfo({ host: '127.0.0.1', port }, 2000));
  assert.equal(parseClusterInfo('{"members": 1}'), undefined);
});
