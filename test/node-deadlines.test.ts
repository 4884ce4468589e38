/**
 * Request expiry with one timer (src/node/deadlines.ts) and the proposal tracker on top of
 * it: requests with different timeouts expire at their own deadlines, in deadline order;
 * settled ones never expire; clearing cancels everything. Timers and the clock are mocked.
 */
import assert from 'node:assert/strict';
import { afterEach, beforeEach, mock, test } from 'node:test';
import { Deadlines } from '../src/node/deadlines.js';
import { ProposalTracker } from '../src/node/proposals.js';
import { WriteTrace } from '../src/node/write-trace.js';

let clock = 0;
function advance(ms: number): void {
  clock += ms;
  mock.timers.tick(ms);
}

beforeEach(() => {
  clock = 0;
  mock.timers.enable({ apis: ['setTimeout'] });
});
afterEach(() => mock.timers.reset());

function deadlines(): { d: Deadlines; expired: number[]; settled: Set<number> } {
  const expired: number[] = [];
  const settled = new Set<number>();
  const d = new Deadlines(
    () => clock,
    (id) => !settled.has(id) && !expired.includes(id),
    (id) => expired.push(id),
  );
  return { d, expired, settled };
}

test('requests with different timeouts expire at their own deadlines, in deadline order', () => {
  const { d, expired } = deadlines();
  d.add(1, 100);
  d.add(2, 50);
  d.add(3, 100);
  advance(30);
  d.add(4, 50);
  d.add(5, 10);
  advance(9);
  assert.deepEqual(expired, []);
  advance(1);
  assert.deepEqual(expired, [5]);
  advance(10);
  assert.deepEqual(expired, [5, 2]);
  advance(30);
  assert.deepEqual(expired, [5, 2, 4]);
  advance(19);
  assert.deepEqual(expired, [5, 2, 4]);
  advance(1);
  assert.deepEqual(expired, [5, 2, 4, 1, 3]);
});

test('a request settled before its deadline does not expire; the ones behind it still do', () => {
  const { d, expired, settled } = deadlines();
  d.add(1, 100);
  d.add(2, 100);
  d.add(3, 100);
  settled.add(1);
  settled.add(3);
  advance(100);
  assert.deepEqual(expired, [2]);
});

test('clear cancels every deadline', () => {
  const { d, expired } = deadlines();
  d.add(1, 20);
  d.add(2, 40);
  d.clear();
  advance(100);
  assert.deepEqual(expired, []);
  d.add(3, 20);
  advance(20);
  assert.deepEqual(expired, [3]);
});

function tracker(leader: number): ProposalTracker {
  return new ProposalTracker({
    raw: { leader, commit: 0, proposeBatch: () => {} },
    appliedIndex: () => 0,
    options: {
      pendingProposalsMax: 100,
      applyLagEntriesMax: 100,
      proposalBatchBytesMax: 1 << 20,
      requestTimeoutMs: 1000,
    },
    counters: { proposalsAccepted: 0, proposalTimeouts: 0 } as never,
    trace: new WriteTrace(),
    wake: () => {},
    now: () => clock,
  });
}

test('proposals expire after their own timeouts; an applied one resolves and never expires', async () => {
  const t = tracker(1);
  const outcomes: string[] = [];
  const record = (name: string, p: Promise<unknown>) =>
    p.then(
      (value) => outcomes.push(`${name} ok ${String(value)}`),
      (error: Error & { code?: string }) => outcomes.push(`${name} ${error.code}`),
    );
  const a = record(
    'a',
    t.enqueue(() => new Uint8Array(1)),
  );
  const b = record(
    'b',
    t.enqueue(() => new Uint8Array(1), { timeoutMs: 50 }),
  );
  const c = record(
    'c',
    t.enqueue(() => new Uint8Array(1), { timeoutMs: 50 }),
  );
  t.flush();
  t.applied(3, 7, 'done');
  advance(50);
  await Promise.all([b, c]);
  assert.deepEqual(outcomes, ['c ok done', 'b TIMEOUT']);
  assert.equal(t.size, 1);
  advance(950);
  await a;
  assert.deepEqual(outcomes, ['c ok done', 'b TIMEOUT', 'a TIMEOUT']);
  assert.equal(t.size, 0);
});

test('a proposal never handed to the core expires as NO_LEADER', async () => {
  const t = tracker(0);
  const p = t.enqueue(() => new Uint8Array(1), { timeoutMs: 20 });
  t.flush();
  advance(20);
  await assert.rejects(p, (error: Error & { code?: string }) => error.code === 'NO_LEADER');
});
