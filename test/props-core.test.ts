/**
 * Property tests of the core's building blocks against brute-force or reference models:
 * quorum math, the in-flight window, follower progress, the raft log over MemoryStorage,
 * and MemoryStorage's snapshot and compaction.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import type { ConfState, Entry, JointVoters, NodeId, VoteResult } from '../src/raft/index.js';
import {
  AssertionError,
  entrySizeBytes,
  Inflights,
  isRaftError,
  jointActive,
  jointCommitted,
  jointVoteResult,
  MemoryStorage,
  majorityActive,
  majorityCommitted,
  majorityVoteResult,
  Progress,
  RaftLog,
} from '../src/raft/index.js';
import { ackedArb, votesArb } from './support/arbitraries.js';

const NODE_IDS = [1, 2, 3, 4, 5, 6, 7, 8, 9] as const;
const CONF: ConfState = { voters: [1], votersOutgoing: [], learners: [], learnersNext: [], autoLeave: false };

/** A voter set (possibly empty) drawn from ids 1..9. */
const voterSet = fc
  .uniqueArray(fc.constantFrom(...NODE_IDS), { maxLength: 7 })
  .map((a) => new Set<NodeId>(a));

const acked = ackedArb(30);

function quorumOf(voters: ReadonlySet<NodeId>): number {
  return Math.floor(voters.size / 2) + 1;
}

/** The largest index acknowledged by at least a quorum, by trying every candidate value. */
function bruteCommitted(voters: ReadonlySet<NodeId>, acked: (id: NodeId) => number): number {
  if (voters.size === 0) return Number.MAX_SAFE_INTEGER;
  let best = 0;
  for (const candidate of [...voters].map(acked)) {
    const holders = [...voters].filter((id) => acked(id) >= candidate).length;
    if (holders >= quorumOf(voters) && candidate > best) best = candidate;
  }
  return best;
}

/** Every way the missing voters could still answer. */
function completions(
  voters: ReadonlySet<NodeId>,
  votes: ReadonlyMap<NodeId, boolean>,
): Map<NodeId, boolean>[] {
  const missing = [...voters].filter((id) => !votes.has(id));
  const result: Map<NodeId, boolean>[] = [];
  for (let mask = 0; mask < 1 << missing.length; mask++) {
    const full = new Map(votes);
    missing.forEach((id, bit) => {
      full.set(id, (mask & (1 << bit)) !== 0);
    });
    result.push(full);
  }
  return result;
}

function wins(voters: ReadonlySet<NodeId>, votes: ReadonlyMap<NodeId, boolean>): boolean {
  return [...voters].filter((id) => votes.get(id) === true).length >= quorumOf(voters) || voters.size === 0;
}

/** Won when every completion wins, lost when none does, pending otherwise. */
function bruteVote(halves: readonly ReadonlySet<NodeId>[], votes: ReadonlyMap<NodeId, boolean>): VoteResult {
  const all = new Set(halves.flatMap((h) => [...h]));
  const outcomes = completions(all, votes).map((c) => halves.every((h) => wins(h, c)));
  if (outcomes.every((o) => o)) return 'won';
  if (outcomes.every((o) => !o)) return 'lost';
  return 'pending';
}

describe('quorum math', () => {
  it('majorityCommitted is the largest index acknowledged by a majority', () => {
    fc.assert(
      fc.property(voterSet, acked, (voters, acked) => {
        const ack = (id: NodeId) => acked[id - 1]!;
        assert.equal(majorityCommitted(voters, ack), bruteCommitted(voters, ack));
      }),
      { numRuns: 500 },
    );
  });

  it('jointCommitted is the minimum of the two halves; an empty outgoing half is neutral', () => {
    fc.assert(
      fc.property(voterSet, voterSet, acked, (incoming, outgoing, acked) => {
        const ack = (id: NodeId) => acked[id - 1]!;
        const joint: JointVoters = { incoming, outgoing };
        assert.equal(
          jointCommitted(joint, ack),
          Math.min(bruteCommitted(incoming, ack), bruteCommitted(outgoing, ack)),
        );
        assert.equal(
          jointCommitted({ incoming, outgoing: new Set() }, ack),
          majorityCommitted(incoming, ack),
        );
      }),
      { numRuns: 500 },
    );
  });

  it('majorityVoteResult matches the brute force over all possible remaining answers', () => {
    fc.assert(
      fc.property(voterSet, votesArb, (voters, votes) => {
        assert.equal(majorityVoteResult(voters, votes), bruteVote([voters], votes));
      }),
      { numRuns: 500 },
    );
  });

  it('jointVoteResult matches the brute force over both halves', () => {
    fc.assert(
      fc.property(voterSet, voterSet, votesArb, (incoming, outgoing, votes) => {
        assert.equal(jointVoteResult({ incoming, outgoing }, votes), bruteVote([incoming, outgoing], votes));
      }),
      { numRuns: 500 },
    );
  });

  it('majorityActive counts a strict majority; jointActive needs both halves', () => {
    const activeArb = fc.array(fc.boolean(), { minLength: 9, maxLength: 9 });
    fc.assert(
      fc.property(voterSet, voterSet, activeArb, (incoming, outgoing, active) => {
        const isActive = (id: NodeId) => active[id - 1]!;
        const count = (s: ReadonlySet<NodeId>) => [...s].filter(isActive).length;
        const expected = (s: ReadonlySet<NodeId>) => s.size === 0 || count(s) > s.size / 2;
        assert.equal(majorityActive(incoming, isActive), expected(incoming));
        assert.equal(jointActive({ incoming, outgoing }, isActive), expected(incoming) && expected(outgoing));
      }),
      { numRuns: 500 },
    );
  });

  it('empty voter sets: commit everything, win every vote, always active', () => {
    const empty = new Set<NodeId>();
    assert.equal(
      majorityCommitted(empty, () => 0),
      Number.MAX_SAFE_INTEGER,
    );
    assert.equal(majorityVoteResult(empty, new Map()), 'won');
    assert.equal(majorityVoteResult(empty, new Map([[1, false]])), 'won');
    assert.equal(
      majorityActive(empty, () => false),
      true,
    );
    const joint = { incoming: empty, outgoing: empty };
    assert.equal(
      jointCommitted(joint, () => 3),
      Number.MAX_SAFE_INTEGER,
    );
    assert.equal(jointVoteResult(joint, new Map()), 'won');
    // A single voter decides alone; two voters need both.
    assert.equal(
      majorityCommitted(new Set([4]), () => 9),
      9,
    );
    assert.equal(
      majorityCommitted(new Set([1, 2]), (id) => (id === 1 ? 5 : 3)),
      3,
    );
    assert.equal(majorityVoteResult(new Set([1, 2]), new Map([[1, true]])), 'pending');
    assert.equal(majorityVoteResult(new Set([1, 2]), new Map([[2, false]])), 'lost');
  });
});

type InflightOp =
  | { readonly kind: 'add'; readonly gap: number; readonly bytes: number }
  | { readonly kind: 'freeLE'; readonly back: number }
  | { readonly kind: 'freeFirstOne' }
  | { readonly kind: 'reset' };

const inflightOp: fc.Arbitrary<InflightOp> = fc.oneof(
  {
    arbitrary: fc.record({
      kind: fc.constant('add' as const),
      gap: fc.integer({ min: 1, max: 4 }),
      bytes: fc.nat(40),
    }),
    weight: 6,
  },
  { arbitrary: fc.record({ kind: fc.constant('freeLE' as const), back: fc.nat(12) }), weight: 3 },
  { arbitrary: fc.constant({ kind: 'freeFirstOne' as const }), weight: 1 },
  { arbitrary: fc.constant({ kind: 'reset' as const }), weight: 1 },
);

describe('Inflights', () => {
  it('matches a queue model; never exceeds its count limit; a full window refuses more', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 6 }),
        fc.oneof(fc.constant(0), fc.integer({ min: 1, max: 100 })),
        fc.array(inflightOp, { maxLength: 80 }),
        (countMax, bytesMax, ops) => {
          const inflights = new Inflights(countMax, bytesMax);
          let model: { index: number; bytes: number }[] = [];
          let last = 0;
          const modelBytes = () => model.reduce((n, m) => n + m.bytes, 0);
          const modelFull = () => model.length === countMax || (bytesMax > 0 && modelBytes() >= bytesMax);
          for (const op of ops) {
            switch (op.kind) {
              case 'add': {
                const index = last + op.gap;
                if (modelFull()) {
                  assert.throws(() => inflights.add(index, op.bytes), AssertionError);
                } else {
                  // Below the limits before the add: at most one message's bytes over afterwards.
                  assert.ok(bytesMax === 0 || modelBytes() < bytesMax);
                  inflights.add(index, op.bytes);
                  model.push({ index, bytes: op.bytes });
                  last = index;
                }
                break;
              }
              case 'freeLE': {
                const upTo = last - op.back;
                inflights.freeLE(upTo);
                model = model.filter((m) => m.index > upTo);
                break;
              }
              case 'freeFirstOne':
                inflights.freeFirstOne();
                model = model.slice(1);
                break;
              case 'reset':
                inflights.reset();
                model = [];
                break;
            }
            assert.equal(inflights.length, model.length);
            assert.ok(inflights.length <= countMax);
            assert.equal(inflights.full(), modelFull());
          }
        },
      ),
      { numRuns: 300 },
    );
  });

  it('refuses an index that does not increase', () => {
    const inflights = new Inflights(4, 0);
    inflights.add(5, 1);
    assert.throws(() => inflights.add(5, 1), AssertionError);
    assert.throws(() => inflights.add(3, 1), AssertionError);
  });
});

type ProgressOp =
  | { readonly kind: 'probe' }
  | { readonly kind: 'replicate' }
  | { readonly kind: 'snapshot'; readonly delta: number }
  | { readonly kind: 'update'; readonly delta: number }
  | { readonly kind: 'decr'; readonly rejectedDelta: number; readonly hintDelta: number }
  | { readonly kind: 'send'; readonly count: number };

const progressOp: fc.Arbitrary<ProgressOp> = fc.oneof(
  fc.constant({ kind: 'probe' as const }),
  fc.constant({ kind: 'replicate' as const }),
  fc.record({ kind: fc.constant('snapshot' as const), delta: fc.integer({ min: -3, max: 10 }) }),
  fc.record({ kind: fc.constant('update' as const), delta: fc.integer({ min: -6, max: 6 }) }),
  fc.record({
    kind: fc.constant('decr' as const),
    rejectedDelta: fc.integer({ min: -6, max: 3 }),
    hintDelta: fc.integer({ min: -10, max: 3 }),
  }),
  fc.record({ kind: fc.constant('send' as const), count: fc.nat(3) }),
);

describe('Progress', () => {
  it('keeps matchIndex < nextIndex, never lowers matchIndex, ignores stale updates and rejections', () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 20 }), fc.array(progressOp, { maxLength: 60 }), (start, ops) => {
        const pr = new Progress(start, 4, 0, false);
        for (const op of ops) {
          const before = { match: pr.matchIndex, next: pr.nextIndex, state: pr.state };
          switch (op.kind) {
            case 'probe':
              pr.becomeProbe();
              break;
            case 'replicate':
              pr.becomeReplicate();
              assert.equal(pr.nextIndex, pr.matchIndex + 1);
              break;
            case 'snapshot':
              pr.becomeSnapshot(Math.max(0, pr.nextIndex + op.delta));
              assert.ok(pr.isPaused(), 'nothing is sent while a snapshot is outstanding');
              break;
            case 'update': {
              const index = Math.max(0, before.match + op.delta);
              const updated = pr.maybeUpdate(index);
              assert.equal(updated, index > before.match);
              assert.equal(pr.matchIndex, Math.max(before.match, index));
              assert.equal(pr.nextIndex, Math.max(before.next, index + 1));
              // As the leader does on an acknowledgement.
              if (pr.state === 'replicate') pr.inflights.freeLE(index);
              break;
            }
            case 'decr': {
              const rejected = Math.max(0, before.next - 1 + op.rejectedDelta);
              const hint = Math.max(0, rejected + op.hintDelta);
              const stale =
                before.state === 'replicate' ? rejected <= before.match : rejected !== before.next - 1;
              assert.equal(pr.maybeDecrTo(rejected, hint), !stale);
              if (stale) {
                assert.deepEqual({ match: pr.matchIndex, next: pr.nextIndex, state: pr.state }, before);
              } else if (before.state === 'replicate') {
                assert.equal(pr.nextIndex, before.match + 1);
              } else {
                assert.equal(pr.nextIndex, Math.max(Math.min(rejected, hint + 1), before.match + 1));
              }
              assert.equal(pr.matchIndex, before.match);
              // As the leader does after an accepted rejection.
              if (!stale && pr.state === 'replicate') pr.becomeProbe();
              break;
            }
            case 'send': {
              if (pr.state === 'snapshot' || pr.isPaused()) break;
              const last = pr.nextIndex - 1 + op.count;
              pr.sentEntries(last, op.count, op.count * 10);
              if (before.state === 'replicate' && op.count > 0) assert.equal(pr.nextIndex, last + 1);
              if (before.state === 'probe') assert.ok(pr.isPaused(), 'one probe at a time');
              break;
            }
          }
          assert.ok(pr.matchIndex < pr.nextIndex, `match ${pr.matchIndex} >= next ${pr.nextIndex}`);
          assert.ok(pr.matchIndex >= before.match, 'matchIndex went back');
        }
      }),
      { numRuns: 500 },
    );
  });
});

// ------------------------------------------------------------------------------------------------
// RaftLog over MemoryStorage against a reference model.

function entry(index: number, term: number): Entry {
  // Fixed-size payloads, so byte limits cut after a predictable number of entries.
  return { index, term, type: 'normal', data: new TextEncoder().encode(payload(index, term)) };
}

function payload(index: number, term: number): string {
  return `${index}@${term}`.padStart(12, '.');
}

type LogOp =
  | { readonly kind: 'new-leader'; readonly keep: number; readonly count: number }
  | { readonly kind: 'append'; readonly prev: number; readonly count: number; readonly commit: number }
  | { readonly kind: 'persist' }
  | { readonly kind: 'apply' }
  | { readonly kind: 'compact'; readonly at: number };

const logOp: fc.Arbitrary<LogOp> = fc.oneof(
  {
    arbitrary: fc.record({
      kind: fc.constant('new-leader' as const),
      keep: fc.nat(1000),
      count: fc.integer({ min: 0, max: 6 }),
    }),
    weight: 2,
  },
  {
    arbitrary: fc.record({
      kind: fc.constant('append' as const),
      prev: fc.nat(1000),
      count: fc.nat(6),
      commit: fc.nat(1000),
    }),
    weight: 6,
  },
  { arbitrary: fc.constant({ kind: 'persist' as const }), weight: 2 },
  { arbitrary: fc.constant({ kind: 'apply' as const }), weight: 1 },
  { arbitrary: fc.record({ kind: fc.constant('compact' as const), at: fc.nat(1000) }), weight: 1 },
);

/** Scales `fraction` (0..1000) into `[lo, hi]`. */
function within(lo: number, hi: number, fraction: number): number {
  return hi <= lo ? lo : lo + Math.floor(((hi - lo + 1) * fraction) / 1001);
}

/** Reference follower: `terms[i - 1]` is the term at index `i`. */
interface FollowerModel {
  terms: number[];
  committed: number;
}

function modelAppend(
  f: FollowerModel,
  prev: number,
  prevTerm: number,
  commit: number,
  entries: Entry[],
): number | undefined {
  if (prev > f.terms.length || (prev > 0 && f.terms[prev - 1] !== prevTerm)) return undefined;
  for (const e of entries) {
    if (f.terms[e.index - 1] === e.term) continue;
    f.terms = f.terms.slice(0, e.index - 1);
    for (const rest of entries.filter((x) => x.index >= e.index)) f.terms.push(rest.term);
    break;
  }
  const lastNew = prev + entries.length;
  f.committed = Math.max(f.committed, Math.min(commit, lastNew));
  return lastNew;
}

function checkLogAgainstModel(
  log: RaftLog,
  storage: MemoryStorage,
  model: FollowerModel,
  probe: number,
): void {
  assert.equal(log.lastIndex(), model.terms.length);
  assert.equal(log.committed, model.committed);
  const snapIndex = storage.snapshot().meta.index;
  assert.equal(log.firstIndex(), snapIndex + 1);
  for (let i = 0; i <= model.terms.length + 1; i++) {
    const expected = i < snapIndex || i > model.terms.length ? 0 : i === 0 ? 0 : model.terms[i - 1]!;
    assert.equal(log.term(i), expected, `term(${i})`);
  }
  // A slice: [lo, hi) within the available range, whole and byte-limited.
  const first = log.firstIndex();
  const last = log.lastIndex();
  const lo = within(first, last + 1, probe);
  const hi = within(lo, last + 1, (probe * 7) % 1001);
  const whole = log.slice(lo, hi, Number.MAX_SAFE_INTEGER);
  assert.deepEqual(
    whole.map((e) => [e.index, e.term]),
    Array.from({ length: hi - lo }, (_, k) => [lo + k, model.terms[lo + k - 1]!]),
  );
  for (const e of whole) assert.equal(new TextDecoder().decode(e.data), payload(e.index, e.term));
  const cap = entrySizeBytes(entry(1, 1)) * 2;
  const limited = log.slice(lo, hi, cap);
  assert.deepEqual(limited, whole.slice(0, Math.max(hi > lo ? 1 : 0, Math.min(whole.length, 2))));
}

describe('RaftLog over MemoryStorage', () => {
  it('matches a reference log under appends with conflicts, persistence and compaction', () => {
    fc.assert(
      fc.property(fc.array(logOp, { maxLength: 60 }), fc.nat(1000), (ops, probe) => {
        const storage = new MemoryStorage();
        const log = new RaftLog(storage, { noTruncateOnConflict: false });
        const model: FollowerModel = { terms: [], committed: 0 };
        let leader: number[] = [];
        let leaderTerm = 1;
        let leaderCommit = 0;
        const leaderEntries = (lo: number, count: number) =>
          leader.slice(lo, lo + count).map((t, k) => entry(lo + k + 1, t));
        for (const op of ops) {
          const committedBefore = log.committed;
          switch (op.kind) {
            case 'new-leader': {
              // A new leader keeps at least every committed entry, then appends in a new term.
              const keep = within(leaderCommit, leader.length, op.keep);
              leaderTerm++;
              leader = [...leader.slice(0, keep), ...Array<number>(op.count).fill(leaderTerm)];
              break;
            }
            case 'append': {
              // The follower's handler answers appends below its commit index without calling maybeAppend.
              const prev = within(log.committed, leader.length, op.prev);
              const entries = leaderEntries(prev, op.count);
              leaderCommit = within(leaderCommit, leader.length, op.commit);
              const prevTerm = prev === 0 ? 0 : leader[prev - 1]!;
              const got = log.maybeAppend(prev, prevTerm, leaderCommit, entries);
              assert.equal(got, modelAppend(model, prev, prevTerm, leaderCommit, entries));
              // findConflict against the entries just offered: nothing may conflict any more.
              if (got !== undefined) assert.equal(log.findConflict(entries), 0);
              break;
            }
            case 'persist': {
              const unstable = log.unstableEntries();
              const lastEntry = unstable[unstable.length - 1];
              if (lastEntry === undefined) break;
              storage.append(unstable);
              log.stableTo(lastEntry.index, lastEntry.term);
              assert.equal(log.unstableEntries().length, 0);
              break;
            }
            case 'apply':
              log.appliedTo(log.committed);
              break;
            case 'compact': {
              const upTo = Math.min(log.applied, storage.lastIndex(), log.stableLastIndex());
              const snapIndex = storage.snapshot().meta.index;
              if (upTo <= snapIndex) break;
              const at = within(snapIndex + 1, upTo, op.at);
              storage.createSnapshotSync(at, CONF, new Uint8Array());
              storage.compactSync(at);
              break;
            }
          }
          assert.ok(log.committed >= committedBefore, 'commit index went back');
          checkLogAgainstModel(log, storage, model, probe);
        }
        // findConflict on a fresh leader suffix: the first index that is new or differs.
        const offered = leaderEntries(Math.max(log.committed, log.firstIndex() - 1), 8);
        const expected = offered.find((e) => model.terms[e.index - 1] !== e.term)?.index ?? 0;
        assert.equal(log.findConflict(offered), expected);
      }),
      { numRuns: 300 },
    );
  });

  it('findConflictByTerm returns the last index at or below with a term no greater', () => {
    fc.assert(
      fc.property(
        fc.array(fc.integer({ min: 1, max: 3 }), { maxLength: 20 }),
        fc.nat(25),
        fc.nat(6),
        (steps, index, term) => {
          // Terms never decrease along a log.
          const terms: number[] = [];
          let t = 1;
          for (const s of steps) {
            t += s - 1;
            terms.push(t);
          }
          const storage = new MemoryStorage();
          storage.append(terms.map((tm, i) => entry(i + 1, tm)));
          const log = new RaftLog(storage, { noTruncateOnConflict: false });
          const from = Math.min(index, terms.length);
          let expected = { index: 0, term: 0 };
          for (let i = from; i > 0; i--) {
            if (terms[i - 1]! <= term) {
              expected = { index: i, term: terms[i - 1]! };
              break;
            }
          }
          assert.deepEqual(log.findConflictByTerm(from, term), expected);
        },
      ),
      { numRuns: 300 },
    );
  });

  it('refuses to truncate a committed entry and to commit beyond the last index', () => {
    const storage = new MemoryStorage();
    storage.append([entry(1, 1), entry(2, 1), entry(3, 1)]);
    const log = new RaftLog(storage, { noTruncateOnConflict: false });
    log.commitTo(2);
    assert.throws(() => log.maybeAppend(1, 1, 3, [entry(2, 2)]), AssertionError);
    assert.throws(() => log.commitTo(4), AssertionError);
    log.commitTo(1);
    assert.equal(log.committed, 2, 'commitTo never lowers the commit index');
    // An append that only proves index 1 never commits beyond it, whatever the leader's commit.
    const other = new RaftLog(new MemoryStorage(), { noTruncateOnConflict: false });
    other.append([entry(1, 1), entry(2, 1), entry(3, 1)]);
    assert.equal(other.maybeAppend(1, 1, 3, []), 1);
    assert.equal(other.committed, 1);
  });
});

// ------------------------------------------------------------------------------------------------
// MemoryStorage: appends, snapshots and compaction against a reference model.

type StorageOp =
  | { readonly kind: 'append'; readonly from: number; readonly count: number; readonly bump: boolean }
  | { readonly kind: 'snapshot'; readonly at: number; readonly compact: boolean; readonly compactAt: number }
  | { readonly kind: 'apply-snapshot'; readonly ahead: number };

const storageOp: fc.Arbitrary<StorageOp> = fc.oneof(
  {
    arbitrary: fc.record({
      kind: fc.constant('append' as const),
      from: fc.nat(1000),
      count: fc.integer({ min: 1, max: 5 }),
      bump: fc.boolean(),
    }),
    weight: 5,
  },
  {
    arbitrary: fc.record({
      kind: fc.constant('snapshot' as const),
      at: fc.nat(1000),
      compact: fc.boolean(),
      compactAt: fc.nat(1000),
    }),
    weight: 2,
  },
  {
    arbitrary: fc.record({
      kind: fc.constant('apply-snapshot' as const),
      ahead: fc.integer({ min: 0, max: 6 }),
    }),
    weight: 1,
  },
);

interface StorageModel {
  /** Index and term of the last compacted entry (the log holds entries after it). */
  offset: number;
  offsetTerm: number;
  terms: number[];
  snapIndex: number;
  snapTerm: number;
}

function modelTerm(m: StorageModel, index: number): number | 'COMPACTED' | 'UNAVAILABLE' {
  if (index < m.offset) return 'COMPACTED';
  if (index === m.offset) return m.offsetTerm;
  return m.terms[index - m.offset - 1] ?? 'UNAVAILABLE';
}

describe('MemoryStorage', () => {
  it('createSnapshotSync / compactSync / applySnapshot match a reference model', () => {
    fc.assert(
      fc.property(fc.array(storageOp, { maxLength: 40 }), (ops) => {
        const s = new MemoryStorage();
        const m: StorageModel = { offset: 0, offsetTerm: 0, terms: [], snapIndex: 0, snapTerm: 0 };
        let term = 1;
        for (const op of ops) {
          const last = m.offset + m.terms.length;
          switch (op.kind) {
            case 'append': {
              // Anywhere from just after the compaction point to just after the last entry.
              const from = within(m.offset + 1, last + 1, op.from);
              if (op.bump) term++;
              const entries = Array.from({ length: op.count }, (_, k) => entry(from + k, term));
              s.append(entries);
              m.terms = [...m.terms.slice(0, from - m.offset - 1), ...entries.map((e) => e.term)];
              break;
            }
            case 'snapshot': {
              if (last <= m.snapIndex) {
                assert.throws(
                  () => s.createSnapshotSync(m.snapIndex, CONF, new Uint8Array()),
                  AssertionError,
                );
                break;
              }
              const at = within(m.snapIndex + 1, last, op.at);
              const snap = s.createSnapshotSync(at, CONF, new TextEncoder().encode(`snap${at}`));
              m.snapIndex = at;
              m.snapTerm = modelTerm(m, at) as number;
              assert.deepEqual([snap.meta.index, snap.meta.term], [m.snapIndex, m.snapTerm]);
              assert.equal(s.firstIndex(), m.offset + 1, 'a snapshot alone keeps the entries');
              assert.throws(() => s.compactSync(m.snapIndex + 1), AssertionError);
              if (op.compact) {
                const upTo = within(m.offset, m.snapIndex, op.compactAt);
                s.compactSync(upTo);
                if (upTo > m.offset) {
                  m.offsetTerm = modelTerm(m, upTo) as number;
                  m.terms = m.terms.slice(upTo - m.offset);
                  m.offset = upTo;
                }
              }
              break;
            }
            case 'apply-snapshot': {
              const index = m.snapIndex + op.ahead;
              if (op.ahead === 0) {
                assert.throws(() => s.applySnapshot(s.snapshot()), AssertionError);
                break;
              }
              term++;
              const conf: ConfState = { ...CONF, voters: [1, 2, 3] };
              s.applySnapshot({ meta: { index, term, confState: conf }, data: new Uint8Array([1]) });
              Object.assign(m, {
                offset: index,
                offsetTerm: term,
                terms: [],
                snapIndex: index,
                snapTerm: term,
              });
              assert.deepEqual(s.initialState().confState, conf);
              break;
            }
          }
          // Ranges, terms and errors.
          const lastNow = m.offset + m.terms.length;
          assert.equal(s.firstIndex(), m.offset + 1);
          assert.equal(s.lastIndex(), lastNow);
          assert.deepEqual([s.snapshot().meta.index, s.snapshot().meta.term], [m.snapIndex, m.snapTerm]);
          for (let i = Math.max(0, m.offset - 2); i <= lastNow + 2; i++) {
            const expected = modelTerm(m, i);
            if (typeof expected === 'number') assert.equal(s.term(i), expected);
            else
              assert.throws(
                () => s.term(i),
                (e) => isRaftError(e, expected),
              );
          }
          assert.throws(
            () => s.entries(m.offset, lastNow + 1, 1 << 20),
            (e) => isRaftError(e, 'COMPACTED'),
          );
          assert.throws(() => s.entries(m.offset + 1, lastNow + 2, 1 << 20), AssertionError);
          const all = s.entries(m.offset + 1, lastNow + 1, 1 << 20);
          assert.deepEqual(
            all.map((e) => [e.index, e.term]),
            m.terms.map((t, k) => [m.offset + 1 + k, t]),
          );
          // Byte limits: a prefix, never empty when the range is not.
          const oneEntry = entrySizeBytes(entry(1, 1));
          const limited = s.entries(m.offset + 1, lastNow + 1, oneEntry * 2 + 1);
          assert.equal(limited.length, Math.min(all.length, 2));
          if (all.length > 0) assert.equal(s.entries(m.offset + 1, lastNow + 1, 0).length, 1);
        }
      }),
      { numRuns: 400 },
    );
  });
});
