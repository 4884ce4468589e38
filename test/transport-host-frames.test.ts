/**
 * HOST frames on loopback (src/transport/frames.ts): a value sent with `sendHost` arrives at
 * the peer's `onHostMessage` in order with its raft messages; a receiver that finds the value
 * malformed (a `TransportError`) drops the connection, which redials; without the handler the
 * frames are dropped silently; to a peer that is down they are dropped and counted.
 */
import assert from 'node:assert/strict';
import { afterEach, test } from 'node:test';
import type { Message } from '../src/raft/types.js';
import { TransportError } from '../src/transport/errors.js';
import { pair, running, waitFor } from './support/transport-pair.js';

afterEach(async () => {
  await Promise.all(running.splice(0).map((t) => t.stop()));
});

function heartbeat(commit: number): Message {
  return { type: 'heartbeat', groupId: 1, from: 1, to: 2, term: 1, commit, context: new Uint8Array() };
}

test('host frames arrive in order with messages; a malformed one drops the connection', async () => {
  const order: string[] = [];
  const [a, b] = await pair({
    onMessage: (m) => order.push(`message ${m.type === 'heartbeat' ? m.commit : m.type}`),
    onHostMessage: (from, value) => {
      if (value === 'bad') throw new TransportError('MALFORMED', 'malformed host frame: bad');
      order.push(`host ${from} ${JSON.stringify(value)}`);
    },
  });
  a.transport.send([heartbeat(1)]);
  assert.equal(a.transport.sendHost(2, [1, 'x', [2, 3]]), true);
  a.transport.send([heartbeat(2)]);
  await waitFor('three deliveries', () => order.length === 3);
  assert.deepEqual(order, ['message 1', 'host 1 [1,"x",[2,3]]', 'message 2']);
  const connects = a.transport.stats().peers.get(2)!.connects;
  a.transport.sendHost(2, 'bad');
  await waitFor(
    'a redial after the malformed frame',
    () => a.transport.stats().peers.get(2)!.connects > connects,
  );
  a.transport.sendHost(2, 7);
  await waitFor('delivery after the redial', () => order.length === 4);
  assert.equal(order[3], 'host 1 7');
  assert.equal(b.transport.sendHost(9, 1), false, 'an unknown peer');
});

test('without a handler host frames are dropped; to a peer that is down they are dropped and counted', async () => {
  const [a, b] = await pair();
  a.transport.sendHost(2, [1, 2, 3]);
  a.transport.send([heartbeat(5)]);
  await waitFor('the message after the host frame', () => b.received.length === 1);
  await running.splice(running.indexOf(b.transport), 1)[0]!.stop();
  await waitFor('the link down', () => a.transport.stats().peers.get(2)!.connected === false);
  await waitFor('the link marked down', () => {
    const before = a.transport.stats().peers.get(2)!.messagesDropped;
    return !a.transport.sendHost(2, 0) && a.transport.stats().peers.get(2)!.messagesDropped === before + 1;
  });
});
