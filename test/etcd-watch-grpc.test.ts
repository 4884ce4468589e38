/**
 * etcd's Watch protocol as a raw gRPC client sees it, against one real node (storage, LMDB,
 * its gRPC server on a real socket) with a short progress-notification interval: watch ids
 * (server-assigned from 0, client-chosen, duplicates and empty ranges refused with etcd's
 * reasons), filters, prev_kv, cancel, progress requests and notifications, fragments,
 * merged catch-up responses, and compaction. What etcdctl and etcd3 cannot show.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { type ClientDuplexStream, credentials, type ServiceClientConstructor } from '@grpc/grpc-js';
import type { KvNode } from '../src/db/index.js';
import { EtcdGrpcServer, etcdService } from '../src/etcd/index.js';
import { unaryCall } from './support/grpc-call.js';
import { until } from './support/http.js';
import { type SoloNode, startSoloNode } from './support/solo-node.js';

const PROGRESS_MS = 200;

let solo: SoloNode | undefined;
let node: KvNode;
let server: EtcdGrpcServer;
let address = '';
let kv: InstanceType<ServiceClientConstructor>;

interface WireKv {
  key: Buffer;
  value: Buffer;
  mod_revision: string;
  create_revision: string;
  version: string;
}

interface WatchResponse {
  header: { revision: string; cluster_id: string; member_id: string };
  watch_id: string;
  created: boolean;
  canceled: boolean;
  compact_revision: string;
  cancel_reason: string;
  fragment: boolean;
  events: { type: string; kv: WireKv; prev_kv: WireKv | null }[];
}

before(async () => {
  solo = await startSoloNode('flotilla-watch-grpc-');
  node = solo.node;
  server = new EtcdGrpcServer({
    node,
    host: '127.0.0.1',
    port: 0,
    logger: { info: () => {}, warn: () => {}, error: () => {} },
    services: { watchProgressIntervalMs: PROGRESS_MS },
  });
  address = `127.0.0.1:${(await server.start()).port}`;
  kv = new (etcdService('KV'))(address, credentials.createInsecure());
});

after(async () => {
  kv?.close();
  await server?.stop();
  await solo?.destroy();
});

function call<T>(method: string, request: object): Promise<T> {
  return unaryCall<T>(kv, method, request);
}

async function put(key: string, value: string | Buffer): Promise<number> {
  // A string would be taken for base64 by the proto encoder.
  const bytes = typeof value === 'string' ? Buffer.from(value) : value;
  const response = await call<{ header: { revision: string } }>('Put', {
    key: Buffer.from(key),
    value: bytes,
  });
  return Number(response.header.revision);
}

/** A watch stream whose responses accumulate in `responses`. */
function openStream() {
  const client = new (etcdService('Watch'))(address, credentials.createInsecure()) as unknown as {
    Watch(): ClientDuplexStream<object, WatchResponse>;
    close(): void;
  };
  const stream = client.Watch();
  const responses: WatchResponse[] = [];
  stream.on('data', (r: WatchResponse) => responses.push(r));
  stream.on('error', () => {});
  return {
    responses,
    write: (request: object) => stream.write(request),
    /** Waits for the n-th response (1-based) and returns every response so far. */
    received: async (n: number, timeoutMs = 5000) => {
      await until(`${n} watch responses`, timeoutMs, () => (responses.length >= n ? true : undefined));
      return responses;
    },
    close: () => {
      stream.cancel();
      client.close();
    },
  };
}

function summary(r: WatchResponse): string[] {
  return r.events.map(
    (e) =>
      `${e.type} ${e.kv.key.toString()}=${e.kv.value.toString()}@${e.kv.mod_revision}` +
      (e.prev_kv === null ? '' : ` prev=${e.prev_kv.value.toString()}`),
  );
}

describe('etcd Watch protocol', () => {
  test('ids: assigned from 0, client-chosen, duplicate and empty-range creates refused as etcd does', async () => {
    const s = openStream();
    try {
      s.write({ create_request: { key: Buffer.from('ids/'), range_end: Buffer.from('ids0') } });
      s.write({ create_request: { key: Buffer.from('ids/a'), watch_id: 7 } });
      s.write({ create_request: { key: Buffer.from('ids/a'), watch_id: 7 } });
      s.write({ create_request: { key: Buffer.from('ids/b'), range_end: Buffer.from('ids/a') } });
      s.write({ create_request: { key: Buffer.from('ids/a') } });
      const created = await s.received(5);
      assert.deepEqual(
        created.map((r) => [r.watch_id, r.created, r.canceled, r.cancel_reason]),
        [
          ['0', true, false, ''],
          ['7', true, false, ''],
          ['-1', true, true, 'mvcc: duplicate watch ID provided on the WatchStream'],
          ['-1', true, true, 'mvcc: watcher range is empty'],
          ['1', true, false, ''],
        ],
      );
      const revision = await put('ids/a', 'x');
      const events = (await s.received(8)).slice(5);
      assert.deepEqual(events.map((r) => r.watch_id).sort(), ['0', '1', '7']);
      for (const r of events) {
        assert.deepEqual(summary(r), [`Put ids/a=x@${revision}`]);
        assert.equal(r.header.revision, String(revision));
      }

      s.write({ cancel_request: { watch_id: 7 } });
      s.write({ cancel_request: { watch_id: 99 } }); // unknown: no answer
      const canceled = (await s.received(9))[8]!;
      assert.deepEqual([canceled.watch_id, canceled.canceled, canceled.created], ['7', true, false]);
      const next = await put('ids/a', 'y');
      const after = (await s.received(11)).slice(9);
      assert.deepEqual(after.map((r) => r.watch_id).sort(), ['0', '1']);
      assert.ok(after.every((r) => r.header.revision === String(next)));
      await new Promise((resolve) => setTimeout(resolve, 100));
      assert.equal(s.responses.length, 11);
    } finally {
      s.close();
    }
  });

  test('filters and prev_kv; history replay merges revisions into one response', async () => {
    const first = await put('f/a', '1');
    await put('f/a', '2');
    await call('DeleteRange', { key: Buffer.from('f/a') });
    const s = openStream();
    try {
      s.write({
        create_request: {
          key: Buffer.from('f/'),
          range_end: Buffer.from('f0'),
          start_revision: first,
          prev_kv: true,
        },
      });
      s.write({
        create_request: {
          key: Buffer.from('f/'),
          range_end: Buffer.from('f0'),
          start_revision: first,
          filters: ['Noput'],
        },
      });
      s.write({
        create_request: {
          key: Buffer.from('f/'),
          range_end: Buffer.from('f0'),
          start_revision: first,
          filters: ['Nodelete'],
        },
      });
      const responses = await s.received(6);
      const byId = new Map<string, string[]>();
      for (const r of responses.filter((r) => !r.created)) byId.set(r.watch_id, summary(r));
      assert.deepEqual(byId.get('0'), [
        `Put f/a=1@${first}`,
        `Put f/a=2@${first + 1} prev=1`,
        `Delete f/a=@${first + 2} prev=2`,
      ]);
      assert.deepEqual(byId.get('1'), [`Delete f/a=@${first + 2}`]);
      assert.deepEqual(byId.get('2'), [`Put f/a=1@${first}`, `Put f/a=2@${first + 1}`]);
    } finally {
      s.close();
    }
  });

  test('progress_request answers with id -1 and the current revision; progress_notify reports idle watches', async () => {
    const s = openStream();
    try {
      s.write({ create_request: { key: Buffer.from('p/a'), progress_notify: true } });
      s.write({ create_request: { key: Buffer.from('p/b') } });
      await s.received(2);
      const revision = await put('p/a', '1');
      await s.received(3);
      s.write({ progress_request: {} });
      const progress = (await s.received(4))[3]!;
      assert.deepEqual(
        [progress.watch_id, progress.events.length, progress.header.revision],
        ['-1', 0, String(revision)],
      );

      // Idle for a few intervals: notifications for watch 0 only, at the current revision.
      await new Promise((resolve) => setTimeout(resolve, PROGRESS_MS * 4));
      const notifications = s.responses.slice(4);
      assert.ok(notifications.length >= 1, `${notifications.length} notifications`);
      for (const r of notifications) {
        assert.deepEqual([r.watch_id, r.events.length, r.header.revision], ['0', 0, String(revision)]);
      }
    } finally {
      s.close();
    }
  });

  test('fragment splits a revision larger than the request limit; without it one response carries it', async () => {
    const big = Buffer.alloc(400 * 1024, 'v');
    const first = await put('frag/0', big);
    for (let i = 1; i < 5; i++) await put(`frag/${i}`, big);
    const deleted = await call<{ header: { revision: string } }>('DeleteRange', {
      key: Buffer.from('frag/'),
      range_end: Buffer.from('frag0'),
    });
    const revision = Number(deleted.header.revision);
    const s = openStream();
    try {
      const range = { key: Buffer.from('frag/'), range_end: Buffer.from('frag0'), prev_kv: true };
      s.write({ create_request: { ...range, start_revision: revision, fragment: true, watch_id: 1 } });
      s.write({ create_request: { ...range, start_revision: revision, watch_id: 2 } });
      await until('every fragment', 5000, () => {
        const whole = s.responses.some((r) => r.watch_id === '2' && r.events.length > 0);
        const last = s.responses.some((r) => r.watch_id === '1' && r.events.length > 0 && !r.fragment);
        return whole && last ? true : undefined;
      });
      const fragments = s.responses.filter((r) => r.watch_id === '1' && !r.created);
      assert.ok(fragments.length >= 2, `${fragments.length} fragments`);
      assert.ok(fragments.slice(0, -1).every((r) => r.fragment));
      assert.deepEqual(
        fragments.flatMap((r) => r.events.map((e) => e.kv.key.toString())),
        ['frag/0', 'frag/1', 'frag/2', 'frag/3', 'frag/4'],
      );
      const whole = s.responses.filter((r) => r.watch_id === '2' && !r.created);
      assert.equal(whole.length, 1);
      assert.equal(whole[0]!.events.length, 5);
      assert.ok(whole[0]!.events.every((e) => e.prev_kv?.value.length === big.length));
      assert.ok(first < revision);
    } finally {
      s.close();
    }
  });

  test('a start revision below the compaction: created, then canceled with the compacted revision', async () => {
    const old = await put('c/a', '1');
    const current = await put('c/a', '2');
    await call('Compact', { revision: current });
    const s = openStream();
    try {
      s.write({ create_request: { key: Buffer.from('c/a'), start_revision: old } });
      s.write({ create_request: { key: Buffer.from('c/a'), start_revision: current } });
      const responses = await s.received(4);
      const first = responses.filter((r) => r.watch_id === '0');
      assert.deepEqual(
        first.map((r) => [r.created, r.canceled, r.compact_revision, r.cancel_reason]),
        [
          [true, false, '0', ''],
          [false, true, String(current), 'etcdserver: mvcc: required revision has been compacted'],
        ],
      );
      const second = responses.filter((r) => r.watch_id === '1' && !r.created);
      assert.deepEqual(summary(second[0]!), [`Put c/a=2@${current}`]);
    } finally {
      s.close();
    }
  });
});
