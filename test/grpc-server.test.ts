/**
 * Flotilla's gRPC server (src/grpc/) against a real gRPC client, `@grpc/grpc-js`, on loopback:
 * the etcd service definitions with handlers of the test's own, so each protocol behaviour is
 * checked on its own — unary answers and errors (status codes, messages with non-ASCII text),
 * metadata, unknown methods, oversize requests, deadlines, server streaming under flow control
 * with a client that stops reading, bidirectional streams with half-close and cancellation.
 * test/grpc-frames.test.ts checks the HTTP/2 layer frame by frame; the etcd tests check the
 * whole API with etcdctl, etcd's Go client and etcd3.
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import {
  type Client,
  type ClientDuplexStream,
  credentials,
  Metadata,
  type ServiceError,
  status,
} from '@grpc/grpc-js';
import { etcdService } from '../src/etcd/index.js';
import { GrpcServer, type StreamingCall, type UnaryCall, type UnaryCallback } from '../src/grpc/index.js';

const RECEIVE_MAX = 64 * 1024;

interface PutRequest {
  key: Buffer;
  value: Buffer;
}

const server = new GrpcServer({ receiveBytesMax: RECEIVE_MAX });
let port = 0;
const clients: Client[] = [];
/** Unary calls whose handler never answers, to observe cancellation. */
const held: UnaryCall<PutRequest>[] = [];
/** The last server-streaming call and how many bytes it had written when `write` first said wait. */
const snapshot = { bytesAtFirstWait: -1, done: false };
const watchCalls: StreamingCall<{ create_request?: { key: Buffer } }, unknown>[] = [];
const SNAPSHOT_CHUNKS = 2000;
const CHUNK_BYTES = 32 * 1024;

/** Resolves once `condition` holds; fails after `timeoutMs`. */
async function waitFor(condition: () => boolean, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) assert.fail(`condition not met within ${timeoutMs} ms: ${condition}`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

function header(revision: number) {
  return { cluster_id: 1, member_id: 2, revision, raft_term: 3 };
}

before(async () => {
  server.addService(etcdService('KV').service, {
    Put: (call: UnaryCall<PutRequest>, callback: UnaryCallback<unknown>) => {
      const key = call.request.key.toString();
      if (key === 'fail')
        return callback({ code: status.FAILED_PRECONDITION, details: 'etcdserver: nöt leader 100%' });
      if (key === 'hold') return void held.push(call);
      if (key === 'throw') throw new Error('handler bug');
      const echo = call.metadata.get('x-echo')[0];
      setImmediate(() =>
        callback(null, {
          header: header(call.request.value.length),
          prev_kv: { key: Buffer.from(String(echo ?? '')) },
        }),
      );
    },
  });
  server.addService(etcdService('Maintenance').service, {
    Snapshot: (call: StreamingCall<unknown, unknown>) => void streamSnapshot(call),
  });
  server.addService(etcdService('Watch').service, {
    Watch: (call: StreamingCall<{ create_request?: { key: Buffer } }, unknown>) => {
      watchCalls.push(call);
      // A stream that watched 'abc' ends when the client half-closes; the others only when cancelled.
      let endWithClient = false;
      call.on('data', (request: { create_request?: { key: Buffer } }) => {
        const key = request.create_request?.key.toString() ?? '';
        endWithClient ||= key === 'abc';
        if (key === 'boom') call.emit('error', { code: status.OUT_OF_RANGE, details: 'watch failed' });
        else call.write({ header: header(7), watch_id: key.length, created: true });
      });
      call.on('end', () => {
        if (endWithClient) call.end();
      });
    },
  });
  port = await server.listen('127.0.0.1', 0);
});

after(async () => {
  for (const client of clients) client.close();
  await server.close();
});

async function streamSnapshot(call: StreamingCall<unknown, unknown>): Promise<void> {
  let written = 0;
  for (let i = 0; i < SNAPSHOT_CHUNKS; i++) {
    const blob = Buffer.alloc(CHUNK_BYTES, i % 251);
    written += blob.length;
    const more = call.write({ header: header(1), remaining_bytes: SNAPSHOT_CHUNKS - 1 - i, blob });
    if (!more) {
      if (snapshot.bytesAtFirstWait < 0) snapshot.bytesAtFirstWait = written;
      await new Promise((resolve) => call.once('drain', resolve));
    }
  }
  call.end();
  snapshot.done = true;
}

function client(name: 'KV' | 'Maintenance' | 'Watch'): Client {
  const Service = etcdService(name);
  const c = new Service(`127.0.0.1:${port}`, credentials.createInsecure());
  clients.push(c);
  return c;
}

function put(c: Client, request: object, metadata = new Metadata(), deadlineMs = 5000): Promise<unknown> {
  const fn = (c as unknown as Record<string, (...args: unknown[]) => void>)['Put']!;
  return new Promise((resolve, reject) => {
    fn.call(
      c,
      request,
      metadata,
      { deadline: Date.now() + deadlineMs },
      (error: ServiceError | null, response: unknown) => (error === null ? resolve(response) : reject(error)),
    );
  });
}

test('unary calls: response, metadata, many at once on one connection', async () => {
  const kv = client('KV');
  const metadata = new Metadata();
  metadata.set('x-echo', 'hello');
  const response = (await put(kv, { key: Buffer.from('a'), value: Buffer.alloc(300) }, metadata)) as {
    header: { revision: string; raft_term: string };
    prev_kv: { key: Buffer };
  };
  assert.equal(response.header.revision, '300');
  assert.equal(response.header.raft_term, '3');
  assert.equal(response.prev_kv.key.toString(), 'hello');
  const many = await Promise.all(
    Array.from({ length: 500 }, (_, i) => put(kv, { key: Buffer.from(`k${i}`), value: Buffer.alloc(i) })),
  );
  assert.deepEqual(
    many.map((r) => (r as { header: { revision: string } }).header.revision),
    Array.from({ length: 500 }, (_, i) => String(i)),
  );
});

test('errors: status and message (non-ASCII, %) as sent; a throwing handler does not take the server down', async () => {
  const kv = client('KV');
  await assert.rejects(put(kv, { key: Buffer.from('fail') }), (error: ServiceError) => {
    assert.equal(error.code, status.FAILED_PRECONDITION);
    assert.equal(error.details, 'etcdserver: nöt leader 100%');
    return true;
  });
  const Kv = etcdService('KV');
  const range = (c: Client) =>
    new Promise<ServiceError>((resolve) =>
      (c as unknown as Record<string, (...a: unknown[]) => void>)['Range']!.call(c, {}, (e: ServiceError) =>
        resolve(e),
      ),
    );
  const unimplemented = await range(new Kv(`127.0.0.1:${port}`, credentials.createInsecure()));
  assert.equal(unimplemented.code, status.UNIMPLEMENTED);
  assert.match(unimplemented.details, /does not implement the method \/etcdserverpb\.KV\/Range/);
  await assert.rejects(put(kv, { key: Buffer.from('throw') }), (error: ServiceError) => {
    assert.equal(error.code, status.UNKNOWN);
    assert.equal(error.details, 'grpc: the method handler failed');
    return true;
  });
  assert.ok(await put(kv, { key: Buffer.from('after'), value: Buffer.alloc(1) }));
});

test('a request above the receive limit gets RESOURCE_EXHAUSTED and the connection keeps serving', async () => {
  const kv = client('KV');
  await assert.rejects(
    put(kv, { key: Buffer.from('big'), value: Buffer.alloc(RECEIVE_MAX + 1) }),
    (error: ServiceError) => {
      assert.equal(error.code, status.RESOURCE_EXHAUSTED);
      assert.match(error.details, /larger than max \(\d+ vs\. 65536\)/);
      return true;
    },
  );
  const ok = (await put(kv, { key: Buffer.from('small'), value: Buffer.alloc(RECEIVE_MAX - 100) })) as {
    header: { revision: string };
  };
  assert.equal(ok.header.revision, String(RECEIVE_MAX - 100));
});

test('deadlines: the client gets DEADLINE_EXCEEDED and the server sees the call cancelled', async () => {
  const kv = client('KV');
  const before = held.length;
  await assert.rejects(put(kv, { key: Buffer.from('hold') }, new Metadata(), 300), (error: ServiceError) => {
    assert.equal(error.code, status.DEADLINE_EXCEEDED);
    return true;
  });
  assert.equal(held.length, before + 1);
  const call = held[held.length - 1]!;
  assert.ok(Number.isFinite(call.deadline), 'grpc-timeout was read');
  await waitFor(() => call.cancelled, 2000);
});

test('server streaming: 64 MB in 32 KiB messages, with back-pressure, every message in order', async () => {
  const maintenance = client('Maintenance');
  const stream = (maintenance as unknown as Record<string, (r: object) => NodeJS.ReadableStream>)[
    'Snapshot'
  ]!({});
  let chunks = 0;
  let ok = true;
  stream.on('data', (response: { remaining_bytes: string; blob: Buffer }) => {
    ok &&=
      Number(response.remaining_bytes) === SNAPSHOT_CHUNKS - 1 - chunks && response.blob[0] === chunks % 251;
    ok &&= response.blob.length === CHUNK_BYTES;
    chunks++;
  });
  await new Promise<void>((resolve, reject) => {
    stream.on('end', () => resolve());
    stream.on('error', reject);
  });
  assert.equal(chunks, SNAPSHOT_CHUNKS);
  assert.ok(ok, 'every message in order and intact');
  assert.ok(snapshot.done);
  // The handler wrote faster than the client read: write() asked it to wait at least once.
  assert.ok(snapshot.bytesAtFirstWait > 0);
});

test('bidirectional streams: replies, half-close ends with OK, an emitted error ends with its status, cancel is seen', async () => {
  const watch = client('Watch');
  const open = () =>
    (watch as unknown as Record<string, () => ClientDuplexStream<object, object>>)['Watch']!();
  const s = open();
  const replies: { watch_id: string }[] = [];
  s.on('data', (r: { watch_id: string }) => replies.push(r));
  const ended = new Promise<{ code: number }>((resolve) => s.on('status', resolve));
  s.write({ create_request: { key: Buffer.from('abc') } });
  s.write({ create_request: { key: Buffer.from('abcdef') } });
  await waitFor(() => replies.length === 2, 3000);
  assert.deepEqual(
    replies.map((r) => r.watch_id),
    ['3', '6'],
  );
  s.end();
  assert.equal((await ended).code, status.OK);

  const failing = open();
  failing.on('data', () => {});
  const failed = new Promise<ServiceError>((resolve) => failing.on('error', resolve));
  failing.write({ create_request: { key: Buffer.from('boom') } });
  const error = await failed;
  assert.equal(error.code, status.OUT_OF_RANGE);
  assert.equal(error.details, 'watch failed');

  const count = watchCalls.length;
  const cancelled = open();
  cancelled.on('error', () => {});
  cancelled.write({ create_request: { key: Buffer.from('x') } });
  await waitFor(() => watchCalls.length === count + 1, 3000);
  const serverSide = watchCalls[count]!;
  let sawCancel = false;
  serverSide.on('cancelled', () => {
    sawCancel = true;
  });
  cancelled.cancel();
  await waitFor(() => sawCancel && serverSide.cancelled, 3000);
});

test('close: open streams are ended and the port is released', async () => {
  const other = new GrpcServer({ receiveBytesMax: RECEIVE_MAX });
  let serverCall: StreamingCall<unknown, unknown> | undefined;
  other.addService(etcdService('Watch').service, {
    Watch: (call: StreamingCall<unknown, unknown>) => {
      serverCall = call;
    },
  });
  const otherPort = await other.listen('127.0.0.1', 0);
  const Watch = etcdService('Watch');
  const c = new Watch(`127.0.0.1:${otherPort}`, credentials.createInsecure());
  const s = (c as unknown as Record<string, () => ClientDuplexStream<object, object>>)['Watch']!();
  const errored = new Promise<ServiceError>((resolve) => s.on('error', resolve));
  s.write({});
  await waitFor(() => serverCall !== undefined, 3000);
  await other.close();
  assert.equal(serverCall!.cancelled, true);
  assert.equal((await errored).code, status.UNAVAILABLE);
  c.close();
  const again = new GrpcServer({ receiveBytesMax: RECEIVE_MAX });
  assert.equal(await again.listen('127.0.0.1', otherPort), otherPort);
  await again.close();
});
