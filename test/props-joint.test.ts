/**
 * Property tests of joint consensus (Raft thesis §4.3) against brute-force models: the quorum
 * math of joint configurations (overlapping halves included), the configuration transitions
 * of `applyConfChangeTo`, the quorum overlap that makes single-voter changes safe without a
 * joint phase, and the conf-change entry encoding.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import type {
  ConfChange,
  ConfChangeSingle,
  JointVoters,
  NodeId,
  TrackerConfig,
  VoteResult,
} from '../src/raft/index.js';
import {
  AssertionError,
  applyConfChangeTo,
  decodeConfChange,
  encodeConfChange,
  isJoint,
  isRaftError,
  jointActive,
  jointCommitted,
  jointVoteResult,
} from '../src/raft/index.js';
import { ackedArb, votesArb } from './support/arbitraries.js';

const NODE_IDS = [1, 2, 3, 4, 5, 6, 7, 8, 9] as const;

const idSet = (maxLength: number) =>
  fc.uniqueArray(fc.constantFrom(...NODE_IDS), { maxLength }).map((a) => new Set<NodeId>(a));

/**
 * Two voter halves that overlap more often than independent draws would: the outgoing half
 * keeps a random part of the incoming one and adds others (either may be empty).
 */
const halvesArb: fc.Arbitrary<JointVoters> = fc
  .tuple(idSet(7), idSet(7), fc.array(fc.boolean(), { minLength: 9, maxLength: 9 }))
  .map(([incoming, extra, keep]) => {
    const outgoing = new Set<NodeId>([...incoming].filter((id) => keep[id - 1]));
    for (const id of extra) outgoing.add(id);
    return { incoming, outgoing };
  });

const acked = ackedArb(20);

function isMajorityOf(voters: ReadonlySet<NodeId>, members: ReadonlySet<NodeId>): boolean {
  if (voters.size === 0) return true;
  return [...voters].filter((id) => members.has(id)).length * 2 > voters.size;
}

/** Every subset of `ids`. */
function subsets(ids: readonly NodeId[]): Set<NodeId>[] {
  const result: Set<NodeId>[] = [];
  for (let mask = 0; mask < 1 << ids.length; mask++) {
    result.push(new Set(ids.filter((_, bit) => (mask & (1 << bit)) !== 0)));
  }
  return result;
}

describe('joint quorum math', () => {
  it('jointCommitted is the largest index both halves have a majority at (and the min of the halves)', () => {
    fc.assert(
      fc.property(halvesArb, acked, ({ incoming, outgoing }, acked) => {
        const ack = (id: NodeId) => acked[id - 1]!;
        // Brute force: the largest candidate index that a majority of each half acknowledged.
        const holders = (index: number) => new Set(NODE_IDS.filter((id) => ack(id) >= index));
        const bothAt = (index: number) =>
          isMajorityOf(incoming, holders(index)) && isMajorityOf(outgoing, holders(index));
        const expected =
          incoming.size === 0 && outgoing.size === 0
            ? Number.MAX_SAFE_INTEGER
            : Math.max(0, ...acked.filter((index) => bothAt(index)));
        const joint = jointCommitted({ incoming, outgoing }, ack);
        assert.equal(joint, expected);
        const half = (voters: ReadonlySet<NodeId>) =>
          jointCommitted({ incoming: voters, outgoing: new Set() }, ack);
        assert.equal(joint, Math.min(half(incoming), half(outgoing)));
      }),
      { numRuns: 500 },
    );
  });

  it('jointVoteResult matches the brute force over every way the missing voters could answer', () => {
    fc.assert(
      fc.property(halvesArb, votesArb, ({ incoming, outgoing }, votes) => {
        const voters = [...new Set([...incoming, ...outgoing])];
        const missing = voters.filter((id) => !votes.has(id));
        let wins = 0;
        for (const yes of subsets(missing)) {
          const granted = new Set([...voters.filter((id) => votes.get(id) === true), ...yes]);
          if (isMajorityOf(incoming, granted) && isMajorityOf(outgoing, granted)) wins++;
        }
        const total = 2 ** missing.length;
        const expected: VoteResult = wins === total ? 'won' : wins === 0 ? 'lost' : 'pending';
        assert.equal(jointVoteResult({ incoming, outgoing }, votes), expected);
      }),
      { numRuns: 500 },
    );
  });

  it('jointActive holds exactly when the active nodes are a majority of both halves', () => {
    fc.assert(
      fc.property(halvesArb, idSet(9), ({ incoming, outgoing }, active) => {
        assert.equal(
          jointActive({ incoming, outgoing }, (id) => active.has(id)),
          isMajorityOf(incoming, active) && isMajorityOf(outgoing, active),
        );
      }),
      { numRuns: 500 },
    );
  });

  it('every joint quorum overlaps every majority of either half (so neither half can decide alone)', () => {
    fc.assert(
      fc.property(halvesArb, ({ incoming, outgoing }) => {
        fc.pre(incoming.size > 0 && outgoing.size > 0);
        const all = [...new Set([...incoming, ...outgoing])];
        const jointQuorums = subsets(all).filter(
          (s) => isMajorityOf(incoming, s) && isMajorityOf(outgoing, s),
        );
        for (const half of [incoming, outgoing]) {
          for (const majority of subsets([...half]).filter((s) => isMajorityOf(half, s))) {
            for (const q of jointQuorums) assert.ok([...q].some((id) => majority.has(id)));
          }
        }
      }),
      { numRuns: 100 },
    );
  });
});

// ------------------------------------------------------------------ configuration transitions

/** A valid non-joint configuration: at least one voter, learners disjoint from voters. */
const simpleConfigArb: fc.Arbitrary<TrackerConfig> = fc
  .tuple(
    fc.uniqueArray(fc.constantFrom(...NODE_IDS), { minLength: 1, maxLength: 6 }),
    fc.uniqueArray(fc.constantFrom(...NODE_IDS), { maxLength: 4 }),
  )
  .map(([voters, learners]) => ({
    voters: { incoming: new Set(voters), outgoing: new Set<NodeId>() },
    learners: new Set(learners.filter((id) => !voters.includes(id))),
    learnersNext: new Set<NodeId>(),
    autoLeave: false,
  }));

/** A valid joint configuration (as entering one produces). */
const jointConfigArb: fc.Arbitrary<TrackerConfig> = fc
  .tuple(idSet(6), idSet(6), idSet(4), idSet(3), fc.boolean())
  .filter(([incoming, outgoing]) => incoming.size > 0 && outgoing.size > 0)
  .map(([incoming, outgoing, learners, next, autoLeave]) => ({
    voters: { incoming, outgoing },
    learners: new Set([...learners].filter((id) => !incoming.has(id) && !outgoing.has(id))),
    learnersNext: new Set([...next].filter((id) => outgoing.has(id) && !incoming.has(id))),
    autoLeave,
  }));

const validIdArb = fc.constantFrom(...NODE_IDS);
const anyIdArb = fc.oneof(
  { weight: 9, arbitrary: validIdArb },
  { weight: 1, arbitrary: fc.constantFrom(0, -1, 1.5, Number.NaN) },
);

const singleArb = (ids: fc.Arbitrary<number>): fc.Arbitrary<ConfChangeSingle> =>
  fc
    .tuple(fc.constantFrom('add-voter' as const, 'add-learner' as const, 'remove' as const), ids)
    .map(([type, node]) => ({ type, node }));

/** Changes with valid ids (possibly leaving no voter), or occasionally invalid ids. */
const changesArb = fc.oneof(
  { weight: 4, arbitrary: fc.array(singleArb(validIdArb), { minLength: 1, maxLength: 5 }) },
  { weight: 1, arbitrary: fc.array(singleArb(anyIdArb), { minLength: 1, maxLength: 5 }) },
);

/** The voters and learners a change list aims at from a non-joint config, by a naive model. */
function target(config: TrackerConfig, changes: readonly ConfChangeSingle[]) {
  const voters = new Set(config.voters.incoming);
  const learners = new Set(config.learners);
  for (const { type, node } of changes) {
    voters.delete(node);
    learners.delete(node);
    if (type === 'add-voter') voters.add(node);
    if (type === 'add-learner') learners.add(node);
  }
  return { voters, learners };
}

function sorted(s: ReadonlySet<NodeId>): NodeId[] {
  return [...s].sort((a, b) => a - b);
}

function voterDelta(a: ReadonlySet<NodeId>, b: ReadonlySet<NodeId>): number {
  return [...a].filter((id) => !b.has(id)).length + [...b].filter((id) => !a.has(id)).length;
}

/** The invariants of every configuration `applyConfChangeTo` may return. */
function checkWellFormed(c: TrackerConfig): void {
  const { incoming, outgoing } = c.voters;
  assert.ok(incoming.size > 0, 'a configuration has at least one voter');
  for (const id of c.learners) {
    assert.ok(!incoming.has(id) && !outgoing.has(id), `learner ${id} is also a voter`);
    assert.ok(!c.learnersNext.has(id), `learner ${id} is also in learnersNext`);
  }
  for (const id of c.learnersNext) {
    assert.ok(outgoing.has(id) && !incoming.has(id), `learnersNext ${id} must be an outgoing-only voter`);
  }
  if (!isJoint(c)) assert.deepEqual([c.learnersNext.size, c.autoLeave], [0, false]);
}

/** Applies `cc`; returns the result, or undefined when refused (always as INVALID_CONF_CHANGE). */
function tryApply(config: TrackerConfig, cc: ConfChange): TrackerConfig | undefined {
  try {
    return applyConfChangeTo(config, cc);
  } catch (error) {
    assert.ok(isRaftError(error, 'INVALID_CONF_CHANGE'), `unexpected ${String(error)}`);
    return undefined;
  }
}

describe('applyConfChangeTo', () => {
  it('from a non-joint config: well-formed result or INVALID_CONF_CHANGE; simple changes never go joint', () => {
    fc.assert(
      fc.property(simpleConfigArb, changesArb, (config, changes) => {
        const next = tryApply(config, { changes });
        const aim = target(config, changes);
        const validIds = changes.every((c) => Number.isInteger(c.node) && c.node > 0);
        if (!validIds || aim.voters.size === 0) {
          assert.equal(next, undefined, 'an invalid id or an empty voter set is refused');
          return;
        }
        assert.ok(next !== undefined);
        checkWellFormed(next);
        assert.deepEqual(sorted(next.voters.incoming), sorted(aim.voters));
        if (voterDelta(config.voters.incoming, aim.voters) <= 1) {
          assert.equal(isJoint(next), false, 'at most one voter changes: applied directly');
          assert.deepEqual(sorted(next.learners), sorted(aim.learners));
        } else {
          assert.equal(isJoint(next), true);
          assert.deepEqual(sorted(next.voters.outgoing), sorted(config.voters.incoming));
          assert.equal(next.autoLeave, true);
        }
      }),
      { numRuns: 1000 },
    );
  });

  it('leaveJoint(enterJoint(c)) has the target voters and learners; leaving again is refused', () => {
    fc.assert(
      fc.property(simpleConfigArb, changesArb, (config, changes) => {
        const joint = tryApply(config, { changes });
        fc.pre(joint !== undefined && isJoint(joint));
        const aim = target(config, changes);
        const left = tryApply(joint, { changes: [], leaveJoint: true });
        assert.ok(left !== undefined);
        checkWellFormed(left);
        assert.equal(isJoint(left), false);
        assert.deepEqual(sorted(left.voters.incoming), sorted(aim.voters));
        assert.deepEqual(sorted(left.learners), sorted(aim.learners));
        assert.equal(tryApply(left, { changes: [], leaveJoint: true }), undefined);
      }),
      { numRuns: 1000 },
    );
  });

  it('from a joint config only leaving is allowed', () => {
    fc.assert(
      fc.property(jointConfigArb, changesArb, (config, changes) => {
        checkWellFormed(config);
        assert.equal(tryApply(config, { changes }), undefined, 'a joint config must be left first');
        const left = tryApply(config, { changes: [] });
        assert.ok(left !== undefined);
        checkWellFormed(left);
        assert.deepEqual(sorted(left.voters.incoming), sorted(config.voters.incoming));
        assert.deepEqual(
          sorted(left.learners),
          sorted(new Set([...config.learners, ...config.learnersNext])),
        );
      }),
      { numRuns: 500 },
    );
  });

  it('single-voter changes are safe without a joint phase: every old majority overlaps every new one', () => {
    fc.assert(
      fc.property(simpleConfigArb, singleArb(validIdArb), (config, change) => {
        const next = tryApply(config, { changes: [change] });
        fc.pre(next !== undefined);
        assert.equal(isJoint(next), false);
        const before = config.voters.incoming;
        const after = next.voters.incoming;
        const oldMajorities = subsets([...before]).filter((s) => isMajorityOf(before, s));
        const newMajorities = subsets([...after]).filter((s) => isMajorityOf(after, s));
        for (const a of oldMajorities) {
          for (const b of newMajorities)
            assert.ok(
              [...a].some((id) => b.has(id)),
              `${sorted(a)} vs ${sorted(b)}`,
            );
        }
      }),
      { numRuns: 300 },
    );
  });

  it('the inputs are never modified', () => {
    fc.assert(
      fc.property(
        fc.oneof(simpleConfigArb, jointConfigArb),
        changesArb,
        fc.boolean(),
        (config, changes, leave) => {
          const snapshot = JSON.stringify(config, (_, v: unknown) => (v instanceof Set ? sorted(v) : v));
          tryApply(config, leave ? { changes: [], leaveJoint: true } : { changes });
          assert.equal(
            JSON.stringify(config, (_, v: unknown) => (v instanceof Set ? sorted(v) : v)),
            snapshot,
          );
        },
      ),
      { numRuns: 300 },
    );
  });

  it('a leave-joint change that also lists changes is refused, not stripped of its changes', () => {
    // types.ts: leaving is "an empty change list with `leaveJoint`". Anything else must be an
    // error: applying it as a plain leave silently drops the listed changes.
    fc.assert(
      fc.property(
        jointConfigArb,
        fc.array(singleArb(validIdArb), { minLength: 1, maxLength: 3 }),
        (config, changes) => {
          assert.equal(tryApply(config, { changes, leaveJoint: true }), undefined);
        },
      ),
      { numRuns: 100 },
    );
  });
});

// ------------------------------------------------------------------ encoding

describe('conf-change entry encoding', () => {
  const nodeArb = fc.integer({ min: 1, max: Number.MAX_SAFE_INTEGER });
  const ccArb: fc.Arbitrary<ConfChange> = fc
    .tuple(fc.array(singleArb(nodeArb), { maxLength: 8 }), fc.boolean())
    .map(([changes, leaveJoint]) => (leaveJoint ? { changes, leaveJoint: true } : { changes }));

  it('decodeConfChange(encodeConfChange(cc)) is cc', () => {
    fc.assert(
      fc.property(ccArb, (cc) => {
        const data = encodeConfChange(cc);
        assert.equal(data.length, 5 + 9 * cc.changes.length);
        assert.deepEqual(decodeConfChange(data), cc);
        // Decoding does not depend on the buffer's offset in a larger allocation.
        const padded = new Uint8Array(data.length + 7);
        padded.set(data, 3);
        assert.deepEqual(decodeConfChange(padded.subarray(3, 3 + data.length)), cc);
      }),
      { numRuns: 500 },
    );
  });

  it('`leaveJoint: false` decodes like an absent flag', () => {
    fc.assert(
      fc.property(fc.array(singleArb(nodeArb), { maxLength: 4 }), (changes) => {
        assert.deepEqual(decodeConfChange(encodeConfChange({ changes, leaveJoint: false })), { changes });
      }),
    );
  });

  it('a truncated, padded or unknown-typed entry is rejected as corrupt', () => {
    fc.assert(
      fc.property(ccArb, fc.nat(), (cc, cut) => {
        const data = encodeConfChange(cc);
        assert.throws(() => decodeConfChange(data.subarray(0, cut % data.length)), AssertionError);
        assert.throws(() => decodeConfChange(new Uint8Array([...data, 0])), AssertionError);
        if (cc.changes.length > 0) {
          const bad = data.slice();
          bad[5] = 3;
          assert.throws(() => decodeConfChange(bad), AssertionError);
        }
      }),
      { numRuns: 300 },
    );
  });
});
