import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type { Message, NodeId } from '../src/raft/types.js';
import { FaultTransport, partition } from '../src/transport/fault-transport.js';
import type { MessageSender } from '../src/transport/options.js';

/** Records what the wrapper passes on, with the time. */
class Recorder implements MessageSender {
  readonly sent: { message: Message; at: number }[] = [];
  send(messages: readonly Message[]): void {
    for (const message of messages) this.sent.push({ message, at: performance.now() });
  }
}

function heartbeat(to: NodeId, commit: number): Message {
  return { type: 'heartbeat', groupId: 1, from: 1, to, term: 1, commit, context: new Uint8Array(0) };
}

function commits(recorder: Recorder): number[] {
  return recorder.sent.map(({ message }) => (message.type === 'heartbeat' ? message.commit : -1));
}

async function waitFor(what: string, condition: () => boolean, timeoutMs = 2000): Promise<void> {
  const deadline = performance.now() + timeoutMs;
  while (!condition()) {
    if (performance.now() > deadline) assert.fail(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 2));
  }
}

describe('fault transport', () => {
  test('drops are decided by the seed: same seed, same drops', () => {
    const run = (seed: number): number[] => {
      const recorder = new Recorder();
      const faults = new FaultTransport(recorder, { seed });
      faults.setFaults({ dropRate: 0.3 });
      for (let i = 0; i < 1000; i++) faults.send([heartbeat(2, i)]);
      assert.equal(faults.stats().dropped + recorder.sent.length, 1000);
      return commits(recorder);
    };
    const first = run(42);
    assert.deepStrictEqual(run(42), first);
    assert.notDeepStrictEqual(run(43), first);
    assert.ok(first.length > 600 && first.length < 800, `${first.length} of 1000 delivered at drop rate 0.3`);
  });

  test('per-link delays hold messages back and keep their order', async () => {
    const recorder = new Recorder();
    const faults = new FaultTransport(recorder, { seed: 1 });
    faults.setFaults({ delayMs: 30, delayJitterMs: 40 }, 2);
    const start = performance.now();
    for (let i = 0; i < 50; i++) faults.send([heartbeat(2, i), heartbeat(3, i)]);
    // Link 3 has no faults: through at once.
    assert.equal(recorder.sent.length, 50);
    await waitFor('delayed messages', () => recorder.sent.length === 100);
    const toTwo = recorder.sent.filter(({ message }) => message.to === 2);
    assert.deepStrictEqual(
      toTwo.map(({ message }) => (message.type === 'heartbeat' ? message.commit : -1)),
      Array.from({ length: 50 }, (_, i) => i),
    );
    assert.ok(toTwo.every(({ at }) => at - start >= 29));
    assert.equal(faults.stats().delayed, 50);
    faults.close();
  });

  test('partition blocks links across groups on every node; heal restores them', () => {
    const recorders = new Map<NodeId, Recorder>();
    const wrappers = new Map<NodeId, FaultTransport>();
    for (const id of [1, 2, 3]) {
      const recorder = new Recorder();
      recorders.set(id, recorder);
      wrappers.set(id, new FaultTransport(recorder, { seed: id }));
    }
    partition(wrappers, [[1], [2, 3]]);
    const sendAll = (): void => {
      for (const [from, wrapper] of wrappers) {
        for (const to of [1, 2, 3]) if (to !== from) wrapper.send([{ ...heartbeat(to, from), from }]);
      }
    };
    sendAll();
    const links = (): string[] =>
      [...recorders].flatMap(([from, r]) => r.sent.map(({ message }) => `${from}->${message.to}`)).sort();
    assert.deepStrictEqual(links(), ['2->3', '3->2']);
    for (const wrapper of wrappers.values()) wrapper.heal();
    sendAll();
    assert.equal(links().length, 2 + 6);
  });

  test('a dropped snapshot is reported as failed, so raft does not wait for it forever', async () => {
    const reports: [NodeId, boolean][] = [];
    const faults = new FaultTransport(new Recorder(), {
      seed: 1,
      onSnapshotStatus: (peer, ok) => reports.push([peer, ok]),
    });
    faults.block(2);
    const confState = {
      voters: [1, 2],
      votersOutgoing: [],
      learners: [],
      learnersNext: [],
      autoLeave: false,
    };
    faults.send([
      {
        type: 'snapshot',
        groupId: 1,
        from: 1,
        to: 2,
        term: 1,
        snapshot: { meta: { index: 5, term: 1, confState }, data: new Uint8Array(8) },
      },
    ]);
    await waitFor('report', () => reports.length === 1);
    assert.deepStrictEqual(reports, [[2, false]]);
    assert.equal(faults.stats().blocked, 1);
  });
});
