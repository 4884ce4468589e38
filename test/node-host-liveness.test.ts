/**
 * The node-level frames of a multi-raft host: the beat's wire value (src/node/host-beat.ts),
 * the liveness judged from it (src/node/host-liveness.ts, on a fake clock), and coalesced
 * heartbeats (src/node/coalesced-heartbeats.ts).
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { expandHeartbeats, HeartbeatCoalescer } from '../src/node/coalesced-heartbeats.js';
import { BeatOutbox, decodeBeat, encodeBeat } from '../src/node/host-beat.js';
import { HostLiveness } from '../src/node/host-liveness.js';
import type { Message } from '../src/raft/index.js';
import { decodeHostBody, hostFrame } from '../src/transport/frames.js';

test('a beat carries the epoch, quiesce notices and wake requests; garbage is MALFORMED', () => {
  const outbox = new BeatOutbox(77);
  assert.equal(outbox.hasNotices(), false);
  outbox.quiesce(2, { groupId: 5, term: 3, commit: 40 });
  outbox.quiesce(2, { groupId: 6, term: 1, commit: 2 });
  outbox.wake(2, 9);
  outbox.wake(3, 10);
  assert.deepEqual(outbox.peersWithNotices().sort(), [2, 3]);
  const beat = decodeBeat(encodeBeat(outbox.take(2)));
  assert.deepEqual(beat, {
    epoch: 77,
    quiesces: [
      { groupId: 5, term: 3, commit: 40 },
      { groupId: 6, term: 1, commit: 2 },
    ],
    wakes: [9],
  });
  assert.deepEqual(
    decodeBeat(encodeBeat(outbox.take(2))),
    { epoch: 77, quiesces: [], wakes: [] },
    'taken once',
  );
  assert.deepEqual(outbox.peersWithNotices(), [3]);
  for (const bad of [null, [2, 1, [], []], [1, 1, [1, 2], []], [1, 1, [], [-1]], [1, 1, [], [], 0], 'x']) {
    assert.throws(() => decodeBeat(bad), { code: 'MALFORMED' }, JSON.stringify(bad));
  }
});

test('a peer not heard from for the timeout is dead once; hearing it again makes it live', () => {
  let now = 0;
  const liveness = new HostLiveness(1000, [2, 3], () => now);
  const step = (ms: number): number[] => {
    now += ms;
    return liveness.check();
  };
  assert.equal(liveness.isLive(2), true);
  for (let i = 0; i < 9; i++) {
    liveness.heard(2);
    assert.deepEqual(step(100), []);
  }
  liveness.heard(2);
  assert.deepEqual(step(100), [3], 'host 3 silent for 1000 ms');
  assert.equal(liveness.isLive(3), false);
  assert.equal(liveness.isLive(2), true);
  assert.deepEqual(step(100), [], 'reported once');
  liveness.heard(3);
  step(100);
  assert.equal(liveness.isLive(3), true, 'heard again');
  liveness.watch(4);
  assert.equal(liveness.isLive(4), true, 'a new peer gets a full window');
});

test('a host that was paused itself judges no peer dead; a new epoch means a restart', () => {
  let now = 0;
  const liveness = new HostLiveness(1000, [2], () => now);
  now = 5000;
  assert.deepEqual(liveness.check(), [], 'this process was paused: no verdict');
  assert.equal(liveness.isLive(2), true);
  now += 900;
  assert.deepEqual(liveness.check(), []);
  now += 200;
  assert.deepEqual(liveness.check(), [2], 'a fresh window from the pause');

  assert.equal(liveness.announced(2, 11), false, 'first epoch');
  assert.equal(liveness.announced(2, 11), false, 'same epoch');
  assert.equal(liveness.announced(2, 12), true, 'restarted');
});

test('heartbeats of many groups to one peer go as one frame per turn and expand into the same messages', async () => {
  const frames: { peer: number; value: unknown }[] = [];
  const direct: Message[] = [];
  const coalescer = new HeartbeatCoalescer({
    send: (messages) => direct.push(...messages),
    sendSnapshot: () => {},
    stats: () => ({ peers: new Map(), droppedUnknownPeer: 0 }),
    sendHost: (peer, value) => {
      frames.push({ peer, value: decodeHostBody(hostFrame(value).subarray(5)) });
      return true;
    },
  });
  const context = new Uint8Array([1, 2, 3, 4, 5, 6, 7, 8]);
  const sent: Message[] = [
    { type: 'heartbeat', groupId: 7, from: 1, to: 2, term: 3, commit: 9, context },
    {
      type: 'heartbeat',
      groupId: 2 ** 32 - 1,
      from: 1,
      to: 2,
      term: 1,
      commit: 0,
      context: new Uint8Array(),
    },
    { type: 'heartbeat-response', groupId: 8, from: 1, to: 2, term: 4, context },
    {
      type: 'append-response',
      groupId: 7,
      from: 1,
      to: 2,
      term: 3,
      reject: false,
      index: 9,
      hintIndex: 0,
      hintTerm: 0,
    },
    { type: 'heartbeat', groupId: 9, from: 1, to: 3, term: 2, commit: 5, context },
  ];
  coalescer.send(sent);
  assert.deepEqual(direct, [sent[3]], 'everything but heartbeats goes at once');
  assert.equal(frames.length, 0, 'batched until the turn ends');
  await new Promise((resolve) => setImmediate(resolve));
  assert.deepEqual(
    frames.map((f) => f.peer),
    [2, 3],
  );
  const plain = (m: Message): object => ({ ...m, ...('context' in m ? { context: [...m.context] } : {}) });
  const toTwo = expandHeartbeats(frames[0]!.value, 1, 2);
  assert.deepEqual(toTwo.map(plain), sent.slice(0, 3).map(plain));
  for (const bad of [
    [2, [1, 2, 3], []],
    [2, [], [1, 2, 'x']],
    [3, [], []],
    [2, [1, 1, 1, 5], []],
  ]) {
    assert.throws(() => expandHeartbeats(bad, 1, 2), { code: 'MALFORMED' }, JSON.stringify(bad));
  }
});
