/**
 * A Server-Sent Events watch whose client stops reading: the server waits for the socket to
 * drain instead of buffering the response, the backlog stays in the (bounded) watcher, and
 * once the client reads again it receives every event exactly once and in order.
 */
import assert from 'node:assert/strict';
import { request, type Server } from 'node:http';
import type { Socket } from 'node:net';
import { after, before, test } from 'node:test';
import { HttpApi } from '../src/server/index.js';
import { until } from './support/http.js';
import { type SoloNode, startSoloNode } from './support/solo-node.js';

let solo: SoloNode;
let http: HttpApi;
let port = 0;

before(async () => {
  solo = await startSoloNode('flotilla-sse-');
  http = new HttpApi({ node: solo.node, host: '127.0.0.1', port: 0 });
  port = (await http.start()).port;
});

after(async () => {
  await http.stop();
  await solo.destroy();
});

test('a paused SSE watcher gets every event once, in order, after resuming', async () => {
  const PUTS = 120;
  const VALUE = 'v'.repeat(64 * 1024);
  let text = '';
  // The server side of every connection, to look at what the response has buffered.
  const sockets: Socket[] = [];
  (http as unknown as { server: Server }).server.on('connection', (socket: Socket) => sockets.push(socket));
  const response = await new Promise<import('node:http').IncomingMessage>((resolve, reject) => {
    const req = request({ port, path: '/v1/watch?prefix=bp/' }, resolve);
    req.on('error', reject);
    req.end();
  });
  response.setEncoding('utf8');
  response.on('data', (chunk: string) => {
    text += chunk;
  });
  await until('the watch to start', 5000, () => (text.includes(': watching') ? true : undefined));
  // Stop reading: about 8 MiB of events are written while nobody consumes them.
  response.pause();
  const revisions: number[] = [];
  for (let i = 0; i < PUTS; i++) {
    const res = await fetch(`http://127.0.0.1:${port}/v1/kv/bp/${String(i).padStart(4, '0')}`, {
      method: 'PUT',
      body: JSON.stringify({ value: VALUE }),
    });
    assert.equal(res.status, 200);
    revisions.push(((await res.json()) as { revision: number }).revision);
  }
  // Without back-pressure the whole backlog (about 8 MiB) would sit in the response's
  // buffer; with it, at most about one event beyond the socket's high-water mark.
  await new Promise((r) => setTimeout(r, 200));
  const buffered = Math.max(...sockets.map((socket) => socket.writableLength));
  assert.ok(buffered < 1024 * 1024, `the SSE response buffered ${buffered} bytes`);
  response.resume();
  const events = await until('every event', 20_000, () => {
    const complete = text.slice(0, text.lastIndexOf('\n\n') + 1);
    const seen = [...complete.matchAll(/^data: (.*)$/gm)].flatMap(
      (m) => (JSON.parse(m[1]!) as { events: { kv: { key: string; modRevision: number } }[] }).events,
    );
    return seen.length >= PUTS ? seen : undefined;
  });
  response.destroy();
  assert.equal(events.length, PUTS, 'no duplicates');
  assert.deepEqual(
    events.map((e) => e.kv.modRevision),
    revisions,
    'every put once, in order, at its revision',
  );
});
