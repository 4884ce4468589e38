/**
 * The write trace turns the runtime's moments (a Ready started, persisted, messages sent and
 * received, a proposal applied) into per-stage latencies: each stage is the difference of
 * the right two moments, rejected acknowledgements count for nothing, and with no observer
 * nothing is recorded.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { type WriteStage, WriteTrace } from '../src/node/index.js';
import type { Entry, Message, Ready } from '../src/raft/index.js';

const entry = (index: number): Entry => ({ index, term: 1, type: 'normal', data: new Uint8Array() });

function ready(entries: number[], committed: number[]): Ready {
  return {
    softState: undefined,
    hardState: undefined,
    entries: entries.map(entry),
    snapshot: undefined,
    committedEntries: committed.map(entry),
    messages: [],
    readStates: [],
  };
}

const append = (from: number, to: number, indexes: number[]): Message => ({
  type: 'append',
  groupId: 1,
  from,
  to,
  term: 1,
  prevLogIndex: 0,
  prevLogTerm: 0,
  entries: indexes.map(entry),
  commit: 0,
});

const ack = (from: number, to: number, index: number, reject = false): Message => ({
  type: 'append-response',
  groupId: 1,
  from,
  to,
  term: 1,
  reject,
  index,
  hintIndex: 0,
  hintTerm: 0,
});

function recording(): { trace: WriteTrace; seen: Map<WriteStage, number[]> } {
  const trace = new WriteTrace();
  const seen = new Map<WriteStage, number[]>();
  trace.observe = (stage, seconds) => {
    const list = seen.get(stage) ?? [];
    list.push(Math.round(seconds * 1e6) / 1e3);
    seen.set(stage, list);
  };
  return { trace, seen };
}

test('a leader write: queue, append, WAL, replicate, commit, apply and total from their moments', () => {
  const { trace, seen } = recording();
  trace.readyStarted(ready([5, 6], []), 10);
  trace.sent([append(1, 2, [5, 6]), append(1, 3, [5, 6])], 10);
  trace.persisted({ encodeMs: 0.1, writeMs: 0.4, syncMs: 1.5 }, 12);
  trace.receivedMessage(ack(2, 1, 6), 15);
  trace.receivedMessage(ack(3, 1, 5), 16); // acknowledges less than the append carried: not yet
  trace.readyStarted(ready([], [5, 6]), 16);
  trace.proposalApplied(5, 8, 9, 17);
  trace.proposalApplied(6, 8.5, 9, 18);
  trace.receivedMessage(ack(3, 1, 6), 19);
  assert.deepEqual(Object.fromEntries(seen), {
    wal_encode: [0.1],
    wal_write: [0.4],
    wal_sync: [1.5],
    replicate: [5, 9],
    total: [9, 9.5],
    queue: [1, 0.5],
    append: [1, 1],
    commit: [4, 4],
    apply: [1, 2],
  });
});

test('a follower: from an append with entries to the acknowledgement it sends', () => {
  const { trace, seen } = recording();
  trace.receivedMessage(append(1, 2, []), 0); // a heartbeat-like empty append: not a write
  trace.receivedMessage(append(1, 2, [7]), 1);
  trace.receivedMessage(append(1, 2, [8]), 2);
  trace.sent([ack(2, 1, 8, true)], 3); // a rejection acknowledges nothing
  trace.sent([ack(2, 1, 8)], 4);
  trace.sent([ack(2, 1, 8)], 5); // nothing outstanding any more
  assert.deepEqual(Object.fromEntries(seen), { follower_persist: [3, 2] });
});

test('an entry the trace never saw in a Ready reports only its total and queue time', () => {
  const { trace, seen } = recording();
  trace.proposalApplied(42, 1, 2, 5);
  assert.deepEqual(Object.fromEntries(seen), { total: [4], queue: [1] });
});

test('without an observer nothing is recorded', () => {
  const trace = new WriteTrace();
  assert.equal(trace.enabled, false);
  trace.readyStarted(ready([1], []), 1);
  trace.sent([append(1, 2, [1])], 1);
  const seen: string[] = [];
  trace.observe = (stage) => seen.push(stage);
  // Moments from before the observer was set are gone: the ack and the apply find nothing.
  trace.receivedMessage(ack(2, 1, 1), 2);
  trace.readyStarted(ready([], [1]), 3);
  trace.proposalApplied(1, 0, 0.5, 4);
  assert.deepEqual(seen, ['total', 'queue']);
});
