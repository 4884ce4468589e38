/**
 * The HTTP/2 layer of Flotilla's gRPC server (src/grpc/connection.ts), frame by frame from a
 * raw socket: what a well-behaved client may do that grpc-js never does (header blocks split
 * over CONTINUATION frames, padding, PING, a smaller frame size), what a broken or hostile
 * one does (no preface, HTTP/1.1, oversize frames, an oversize message, streams above the
 * concurrency limit, a header block interrupted) and the answer each gets: a
 * GOAWAY with RFC 9113's error code, a RST_STREAM, or a plain HTTP status, never a crash.
 */
import assert from 'node:assert/strict';
import { connect, type Socket } from 'node:net';
import { after, before, test } from 'node:test';
import { status } from '@grpc/grpc-js';
import { etcdService } from '../src/etcd/index.js';
import {
  FRAME_ROOM,
  GrpcServer,
  type StreamingCall,
  type UnaryCall,
  type UnaryCallback,
} from '../src/grpc/index.js';
import {
  ACK,
  CONTINUATION,
  DATA,
  END_HEADERS,
  END_STREAM,
  FRAME_SIZE_ERROR,
  frame,
  GOAWAY,
  HEADERS,
  NO_ERROR,
  PADDED,
  PING,
  PREFACE,
  PROTOCOL_ERROR,
  REFUSED_STREAM,
  RST_STREAM,
  SETTINGS,
  SETTINGS_MAX_FRAME_SIZE,
  settingsFrame,
  WINDOW_UPDATE,
  windowUpdateFrame,
} from '../src/http2/frames.js';
import { encodeHeaders, type HeaderField, HpackDecoder } from '../src/http2/hpack.js';

const server = new GrpcServer({
  receiveBytesMax: 1024 * 1024,
  connection: { maxConcurrentStreams: 4, streamWindow: 65_535, connectionWindow: 128 * 1024 },
});
let port = 0;

before(async () => {
  server.addService(etcdService('KV').service, {
    Put: (call: UnaryCall<{ key: Buffer }>, callback: UnaryCallback<unknown>) => {
      // 'hold' never answers: it keeps its stream open for the concurrency test.
      if (call.request.key.toString() === 'hold') return;
      callback(null, { header: { revision: call.request.key.length } });
    },
  });
  port = await server.listen('127.0.0.1', 0);
});

after(() => server.close());

interface Frame {
  readonly type: number;
  readonly flags: number;
  readonly stream: number;
  readonly payload: Buffer;
}

/** A raw HTTP/2 client connection that records every frame the server sends. */
class RawClient {
  readonly frames: Frame[] = [];
  closed = false;
  private input = Buffer.alloc(0);
  private readonly decoder = new HpackDecoder();

  constructor(readonly socket: Socket) {
    socket.on('data', (chunk: Buffer) => {
      this.input = Buffer.concat([this.input, chunk]);
      while (this.input.length >= 9) {
        const length = this.input.readUIntBE(0, 3);
        if (this.input.length < 9 + length) break;
        this.frames.push({
          type: this.input[3]!,
          flags: this.input[4]!,
          stream: this.input.readUInt32BE(5) & 0x7fffffff,
          payload: this.input.subarray(9, 9 + length),
        });
        this.input = this.input.subarray(9 + length);
      }
    });
    socket.on('close', () => {
      this.closed = true;
    });
    socket.on('error', () => {});
  }

  static async open(preface = true): Promise<RawClient> {
    const socket = connect(port, '127.0.0.1');
    await new Promise((resolve) => socket.once('connect', resolve));
    const client = new RawClient(socket);
    if (preface) client.send(PREFACE, settingsFrame([]));
    return client;
  }

  send(...buffers: Buffer[]): void {
    this.socket.write(Buffer.concat(buffers));
  }

  async waitFor(what: string, match: (f: Frame) => boolean, timeoutMs = 3000): Promise<Frame> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const found = this.frames.find(match);
      if (found !== undefined) return found;
      if (Date.now() > deadline)
        assert.fail(`no ${what} within ${timeoutMs} ms; got types ${this.frames.map((f) => f.type)}`);
      await new Promise((resolve) => setTimeout(resolve, 5));
    }
  }

  /** Header fields of every HEADERS frame of `stream`, decoded in order (the server's blocks are whole frames). */
  headersOf(stream: number): HeaderField[][] {
    return this.frames
      .filter((f) => f.type === HEADERS && f.stream === stream)
      .map((f) => this.decoder.decode(f.payload));
  }

  async goAwayCode(): Promise<number> {
    const goAway = await this.waitFor('GOAWAY', (f) => f.type === GOAWAY);
    await waitClosed(this);
    return goAway.payload.readUInt32BE(4);
  }

  close(): void {
    this.socket.destroy();
  }
}

async function waitClosed(client: RawClient): Promise<void> {
  const deadline = Date.now() + 3000;
  while (!client.closed) {
    if (Date.now() > deadline) assert.fail('the server did not close the connection');
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}

function requestBlock(path = '/etcdserverpb.KV/Put', contentType = 'application/grpc'): Buffer {
  return encodeHeaders([
    [':method', 'POST'],
    [':scheme', 'http'],
    [':path', path],
    [':authority', 'localhost'],
    ['content-type', contentType],
    ['te', 'trailers'],
  ]);
}

/** A gRPC message carrying a PutRequest with `key`. */
function putMessage(key: string): Buffer {
  const body = etcdService('KV').service['Put']!.requestSerialize({ key: Buffer.from(key) });
  const out = Buffer.alloc(5 + body.length);
  out.writeUInt32BE(body.length, 1);
  body.copy(out, 5);
  return out;
}

/** Waits for `stream`'s trailers; checks its status is OK and returns the Put reply's revision. */
async function putReplyRevision(client: RawClient, stream: number): Promise<string> {
  await client.waitFor(
    'trailers',
    (f) => f.type === HEADERS && f.stream === stream && (f.flags & END_STREAM) !== 0,
  );
  assert.equal(grpcStatus(client.headersOf(stream)), '0');
  const data = await client.waitFor('DATA', (f) => f.type === DATA && f.stream === stream);
  const reply = etcdService('KV').service['Put']!.responseDeserialize(data.payload.subarray(5)) as {
    header: { revision: string };
  };
  return reply.header.revision;
}

function grpcStatus(fields: HeaderField[][]): string | undefined {
  return fields.flat().find(([name]) => name === 'grpc-status')?.[1];
}

test('a header block over HEADERS and CONTINUATION, padded DATA, and PING are served', async () => {
  const client = await RawClient.open();
  const block = requestBlock();
  client.send(
    frame(HEADERS, 0, 1, block.subarray(0, 10)),
    frame(CONTINUATION, 0, 1, block.subarray(10, 20)),
    frame(CONTINUATION, END_HEADERS, 1, block.subarray(20)),
  );
  const message = putMessage('abcd');
  const padded = Buffer.concat([Buffer.from([7]), message, Buffer.alloc(7)]);
  client.send(frame(DATA, END_STREAM | PADDED, 1, padded));
  client.send(frame(PING, 0, 0, Buffer.from('12345678')));
  assert.equal(await putReplyRevision(client, 1), '4');
  const pong = await client.waitFor('PING ACK', (f) => f.type === PING && (f.flags & ACK) !== 0);
  assert.equal(pong.payload.toString(), '12345678');
  await client.waitFor('SETTINGS ACK', (f) => f.type === SETTINGS && (f.flags & ACK) !== 0);
  client.close();
});

test('a client preface that is not HTTP/2 (HTTP/1.1) gets GOAWAY PROTOCOL_ERROR and a closed connection', async () => {
  const client = await RawClient.open(false);
  client.send(Buffer.from('GET / HTTP/1.1\r\nHost: localhost\r\n\r\n'));
  assert.equal(await client.goAwayCode(), PROTOCOL_ERROR);
});

test('a frame above the frame size limit gets GOAWAY FRAME_SIZE_ERROR', async () => {
  const client = await RawClient.open();
  client.send(frame(HEADERS, END_HEADERS, 1, requestBlock()), frame(DATA, 0, 1, Buffer.alloc(16_385)));
  assert.equal(await client.goAwayCode(), FRAME_SIZE_ERROR);
});

test('receive windows are given back as DATA arrives: 512 KiB through a 128 KiB connection window', async () => {
  const client = await RawClient.open();
  const message = putMessage('x'.repeat(512 * 1024));
  client.send(frame(HEADERS, END_HEADERS, 1, requestBlock()));
  const granted = (stream: number, initial: number) =>
    client.frames
      .filter((f) => f.type === WINDOW_UPDATE && f.stream === stream)
      .reduce((n, f) => n + f.payload.readUInt32BE(0), initial);
  const deadline = Date.now() + 5000;
  let sent = 0;
  while (sent < message.length) {
    const size = Math.min(16_384, message.length - sent);
    if (sent + size <= Math.min(granted(0, 65_535), granted(1, 65_535))) {
      client.send(
        frame(DATA, sent + size === message.length ? END_STREAM : 0, 1, message.subarray(sent, sent + size)),
      );
      sent += size;
      continue;
    }
    if (Date.now() > deadline) assert.fail(`stalled after ${sent} bytes: the server gave no window back`);
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
  assert.equal(await putReplyRevision(client, 1), String(512 * 1024));
  client.close();
});

test('a message announced above the receive limit is refused at its prefix, before its bytes are buffered', async () => {
  const client = await RawClient.open();
  const prefix = Buffer.alloc(5);
  prefix.writeUInt32BE(10 * 1024 * 1024, 1);
  client.send(
    frame(HEADERS, END_HEADERS, 1, requestBlock()),
    frame(DATA, 0, 1, Buffer.concat([prefix, Buffer.alloc(100)])),
  );
  const reset = await client.waitFor('RST_STREAM', (f) => f.type === RST_STREAM && f.stream === 1);
  assert.equal(reset.payload.readUInt32BE(0), NO_ERROR);
  assert.equal(grpcStatus(client.headersOf(1)), String(status.RESOURCE_EXHAUSTED));
  // More DATA for the refused stream is dropped; the connection keeps serving.
  client.send(frame(DATA, 0, 1, Buffer.alloc(1000)));
  client.send(frame(HEADERS, END_HEADERS, 3, requestBlock()), frame(DATA, END_STREAM, 3, putMessage('ok')));
  await client.waitFor(
    'stream 3 trailers',
    (f) => f.type === HEADERS && f.stream === 3 && (f.flags & END_STREAM) !== 0,
  );
  assert.equal(grpcStatus(client.headersOf(3)), '0');
  client.close();
});

test('streams above the concurrency limit are refused, the others served', async () => {
  const client = await RawClient.open();
  const hold = putMessage('hold');
  for (let stream = 1; stream <= 9; stream += 2) {
    client.send(frame(HEADERS, END_HEADERS, stream, requestBlock()), frame(DATA, END_STREAM, stream, hold));
  }
  const refused = await client.waitFor('RST_STREAM', (f) => f.type === RST_STREAM && f.stream === 9);
  assert.equal(refused.payload.readUInt32BE(0), REFUSED_STREAM);
  assert.equal(
    client.frames.filter((f) => f.type === RST_STREAM).length,
    1,
    'only the fifth stream is refused',
  );
  client.close();
});

test('a header block interrupted by another frame gets GOAWAY PROTOCOL_ERROR', async () => {
  const client = await RawClient.open();
  const block = requestBlock();
  client.send(frame(HEADERS, 0, 1, block.subarray(0, 5)), frame(DATA, 0, 1, Buffer.alloc(1)));
  assert.equal(await client.goAwayCode(), PROTOCOL_ERROR);
});

test('a request that is not gRPC gets HTTP 415; an unknown path gets UNIMPLEMENTED; the connection stays', async () => {
  const client = await RawClient.open();
  client.send(
    frame(HEADERS, END_HEADERS | END_STREAM, 1, requestBlock('/etcdserverpb.KV/Put', 'application/json')),
  );
  client.send(frame(HEADERS, END_HEADERS | END_STREAM, 3, requestBlock('/no.Such/Method')));
  await client.waitFor('stream 3 answer', (f) => f.type === HEADERS && f.stream === 3);
  assert.deepEqual(client.headersOf(1), [[[':status', '415']]]);
  assert.equal(grpcStatus(client.headersOf(3)), String(status.UNIMPLEMENTED));
  client.send(frame(HEADERS, END_HEADERS, 5, requestBlock()), frame(DATA, END_STREAM, 5, putMessage('ok')));
  await client.waitFor(
    'stream 5 trailers',
    (f) => f.type === HEADERS && f.stream === 5 && (f.flags & END_STREAM) !== 0,
  );
  assert.equal(client.closed, false);
  client.close();
});

test("responses follow the client's frame size and windows: a large response waits for WINDOW_UPDATE", async () => {
  const big = new GrpcServer({ receiveBytesMax: 1024 * 1024 });
  big.addService(etcdService('KV').service, {
    Put: (_call: UnaryCall<unknown>, callback: UnaryCallback<unknown>) =>
      callback(null, {
        header: { revision: 1 },
        prev_kv: { key: Buffer.from('k'), value: Buffer.alloc(100_000, 1) },
      }),
  });
  const bigPort = await big.listen('127.0.0.1', 0);
  const socket = connect(bigPort, '127.0.0.1');
  await new Promise((resolve) => socket.once('connect', resolve));
  const client = new RawClient(socket);
  client.send(PREFACE, settingsFrame([[SETTINGS_MAX_FRAME_SIZE, 16_384]]));
  client.send(frame(HEADERS, END_HEADERS, 1, requestBlock()), frame(DATA, END_STREAM, 1, putMessage('k')));
  await client.waitFor('the first DATA', (f) => f.type === DATA);
  await new Promise((resolve) => setTimeout(resolve, 100));
  const sent = () => client.frames.filter((f) => f.type === DATA).reduce((n, f) => n + f.payload.length, 0);
  assert.equal(sent(), 65_535, 'exactly the default window, then it waits');
  assert.ok(client.frames.every((f) => f.type !== DATA || f.payload.length <= 16_384));
  assert.equal(client.frames.filter((f) => f.type === HEADERS && (f.flags & END_STREAM) !== 0).length, 0);
  client.send(windowUpdateFrame(0, 1 << 20), windowUpdateFrame(1, 1 << 20));
  await client.waitFor('trailers', (f) => f.type === HEADERS && (f.flags & END_STREAM) !== 0);
  assert.ok(sent() > 100_000);
  client.close();
  await big.close();
});

test('a client that stops reading a stream holds the server to its window and a bounded queue; then gets every byte', async () => {
  const slow = new GrpcServer({ receiveBytesMax: 1024 * 1024 });
  const MESSAGES = 2000;
  const progress = { written: 0, atFirstWait: -1, done: false };
  slow.addService(etcdService('Maintenance').service, {
    Snapshot: async (call: StreamingCall<unknown, unknown>) => {
      for (let i = 0; i < MESSAGES; i++) {
        const blob = Buffer.alloc(32 * 1024, i % 251);
        progress.written += blob.length;
        if (!call.write({ remaining_bytes: MESSAGES - 1 - i, blob })) {
          if (progress.atFirstWait < 0) progress.atFirstWait = progress.written;
          await new Promise((resolve) => call.once('drain', resolve));
        }
      }
      call.end();
      progress.done = true;
    },
  });
  const slowPort = await slow.listen('127.0.0.1', 0);
  const socket = connect(slowPort, '127.0.0.1');
  await new Promise((resolve) => socket.once('connect', resolve));
  const client = new RawClient(socket);
  const request = etcdService('Maintenance').service['Snapshot']!.requestSerialize({});
  const message = Buffer.alloc(5 + request.length);
  message.writeUInt32BE(request.length, 1);
  request.copy(message, 5);
  client.send(PREFACE, settingsFrame([]));
  client.send(frame(HEADERS, END_HEADERS, 1, requestBlock('/etcdserverpb.Maintenance/Snapshot')));
  client.send(frame(DATA, END_STREAM, 1, message));
  await client.waitFor('DATA', (f) => f.type === DATA);
  await new Promise((resolve) => setTimeout(resolve, 300));
  const received = () =>
    client.frames.filter((f) => f.type === DATA).reduce((n, f) => n + f.payload.length, 0);
  // The client never gave a window back: it got exactly the default 65,535 bytes, and the
  // handler was stopped after a bounded amount (its queue), not after the 64 MB.
  assert.equal(received(), 65_535);
  assert.ok(
    progress.atFirstWait > 0 && progress.written < 2 * 1024 * 1024,
    `the handler wrote ${progress.written} bytes`,
  );
  assert.equal(progress.done, false);
  // Reading again (a large window): everything arrives, in order, then the trailers.
  client.send(windowUpdateFrame(0, 2 ** 31 - 1 - 65_535), windowUpdateFrame(1, 2 ** 31 - 1 - 65_535));
  await client.waitFor(
    'trailers',
    (f) => f.type === HEADERS && f.stream === 1 && (f.flags & END_STREAM) !== 0,
    20_000,
  );
  const body = Buffer.concat(client.frames.filter((f) => f.type === DATA).map((f) => f.payload));
  const reply = etcdService('Maintenance').service['Snapshot']!;
  let at = 0;
  for (let i = 0; i < MESSAGES; i++) {
    const length = body.readUInt32BE(at + 1);
    const decoded = reply.responseDeserialize(body.subarray(at + 5, at + 5 + length)) as {
      blob: Buffer;
      remaining_bytes: string;
    };
    assert.equal(Number(decoded.remaining_bytes), MESSAGES - 1 - i);
    assert.ok(decoded.blob.length === 32 * 1024 && decoded.blob[100] === i % 251, `message ${i} intact`);
    at += 5 + length;
  }
  assert.equal(at, body.length);
  assert.ok(progress.done);
  client.close();
  await slow.close();
});

test('framed responses held together go out as one DATA payload, split only at the frame size; a call ending while they are held sends them before its trailers', async () => {
  const reply = etcdService('Maintenance').service['Snapshot']!;
  /** One response as `sendFramed` takes it: frame room, gRPC prefix, message. */
  const framed = (i: number, size: number): Buffer => {
    const message = reply.responseSerialize({ remaining_bytes: i, blob: Buffer.alloc(size, i % 251) });
    const out = Buffer.alloc(FRAME_ROOM + 5 + message.length);
    out.writeUInt32BE(message.length, FRAME_ROOM + 1);
    message.copy(out, FRAME_ROOM + 5);
    return out;
  };
  const plan = [
    { count: 50, size: 40 }, // ~3 KB: one frame
    { count: 50, size: 1000 }, // ~52 KB: four frames of at most 16 KiB
  ];
  const held = new GrpcServer({ receiveBytesMax: 1024 * 1024 });
  held.addService(etcdService('Maintenance').service, {
    Snapshot: (call: StreamingCall<unknown, unknown>) => {
      let i = 0;
      for (const { count, size } of plan) {
        call.holdFramed();
        for (let n = 0; n < count; n++) assert.equal(call.sendFramed(framed(i++, size)), true);
        call.releaseFramed();
      }
      // Held when the call ends: sent before the trailers all the same.
      call.holdFramed();
      call.sendFramed(framed(i++, 10));
      call.end();
    },
  });
  const heldPort = await held.listen('127.0.0.1', 0);
  const socket = connect(heldPort, '127.0.0.1');
  after(() => {
    socket.destroy();
    return held.close();
  });
  await new Promise((resolve) => socket.once('connect', resolve));
  const client = new RawClient(socket);
  const request = reply.requestSerialize({});
  const message = Buffer.alloc(5 + request.length);
  message.writeUInt32BE(request.length, 1);
  request.copy(message, 5);
  client.send(PREFACE, settingsFrame([[SETTINGS_MAX_FRAME_SIZE, 16_384]]));
  client.send(windowUpdateFrame(0, 1 << 20));
  client.send(frame(HEADERS, END_HEADERS, 1, requestBlock('/etcdserverpb.Maintenance/Snapshot')));
  client.send(frame(DATA, END_STREAM, 1, message));
  // The stream's window is the default 65,535 bytes: enough for all of it.
  await client.waitFor(
    'trailers',
    (f) => f.type === HEADERS && f.stream === 1 && (f.flags & END_STREAM) !== 0,
  );
  const data = client.frames.filter((f) => f.type === DATA && f.stream === 1);
  const sizes = data.map((f) => f.payload.length);
  assert.ok(
    sizes.every((n) => n <= 16_384),
    `frames of ${sizes}`,
  );
  assert.ok(data.length <= 1 + 4 + 1, `${data.length} DATA frames for 101 responses (${sizes})`);
  const body = Buffer.concat(data.map((f) => f.payload));
  let at = 0;
  let i = 0;
  while (at < body.length) {
    const length = body.readUInt32BE(at + 1);
    const decoded = reply.responseDeserialize(body.subarray(at + 5, at + 5 + length)) as {
      remaining_bytes: string;
    };
    assert.equal(Number(decoded.remaining_bytes), i, `response ${i} in order`);
    at += 5 + length;
    i++;
  }
  assert.equal(i, 101);
});
