/**
 * Scripted membership and leadership-transfer scenarios, FAULTS.md item 20 (and item 4 for
 * removed nodes): learners, single-server changes, joint consensus (Raft thesis §4.3),
 * removing and replacing the leader, removed nodes, id reuse, one change at a time, the
 * "commit an entry of your term first" rule (raft-dev 2015), configuration across restarts,
 * and leadership transfer (thesis §3.10). Each drives the in-process harness step by step
 * and asserts exact configurations, roles, terms and messages.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { ConfChange, ConfState, Message, NodeId, Raft, RaftOptions } from '../src/raft/index.js';
import { DEFAULT_RAFT_OPTIONS, isJoint } from '../src/raft/index.js';
import { Harness } from '../src/sim/harness.js';
import {
  bytes,
  confOf,
  leadersAmong,
  logOf,
  machineState,
  raftErrorOf,
  run,
  runUntil,
  SafetyMonitor,
  settle,
  snapshotAndCompact,
  tryConfChange,
  tryPropose,
} from './support/cluster.js';

const electionTicks = DEFAULT_RAFT_OPTIONS.electionTicks;

function raftOf(h: Harness, id: NodeId): Raft {
  return h.node(id).raw.raft;
}

/** A non-joint membership (plus overrides), in the sorted form `confOf` returns. */
function conf(voters: NodeId[], rest: Partial<ConfState> = {}): ConfState {
  return { voters, votersOutgoing: [], learners: [], learnersNext: [], autoLeave: false, ...rest };
}

/**
 * A cluster of `size` voters bootstrapped from a snapshot at index 1 (term 1), so new nodes
 * can join by InstallSnapshot, with node 1 elected leader of term 2 (its no-op at index 2).
 */
function clusterLedBy1(size: number, seed: number, raft: Partial<Omit<RaftOptions, 'id' | 'random'>> = {}) {
  const h = new Harness({ size, seed, bootstrapSnapshot: true, raft });
  h.campaign(1);
  assert.deepEqual(h.leaders(), [1]);
  assert.equal(raftOf(h, 1).term, 2);
  return h;
}

/** Proposes `cc` on `leader`, asserts it was accepted, and settles. */
function changeConf(h: Harness, leader: NodeId, cc: ConfChange): void {
  assert.equal(tryConfChange(h, leader, cc), undefined);
  settle(h);
}

/** Starts brand-new nodes `ids` (empty storage) and adds them as learners in one change. */
function addLearners(h: Harness, leader: NodeId, ids: readonly NodeId[]): void {
  for (const id of ids) h.addNode(id);
  changeConf(h, leader, { changes: ids.map((node) => ({ type: 'add-learner' as const, node })) });
  // One heartbeat round tells everyone the final commit index.
  run(h, 1);
}

/** Processes Readies and deliveries one step at a time until `done` holds. */
function stepUntil(h: Harness, done: () => boolean, stepsMax = 200): void {
  for (let i = 0; i < stepsMax; i++) {
    if (done()) return;
    h.processReadies();
    if (done()) return;
    h.deliverAll();
  }
  assert.fail(`condition not reached within ${stepsMax} steps`);
}

function matchOf(h: Harness, leader: NodeId, id: NodeId): number {
  const pr = raftOf(h, leader).tracker.progress.get(id);
  assert.ok(pr !== undefined, `leader ${leader} tracks no progress for ${id}`);
  return pr.matchIndex;
}

/** Cuts both directions between every node of `a` and every node of `b`. */
function cutBetween(h: Harness, a: readonly NodeId[], b: readonly NodeId[]): void {
  for (const x of a) for (const y of b) h.isolate(x, [y]);
}

// ------------------------------------------------------------------ learners

test('FAULTS 20: a learner joins with empty storage by snapshot, replicates, never campaigns and is not counted in quorum', () => {
  const h = clusterLedBy1(3, 41);
  const monitor = new SafetyMonitor(h);
  for (let i = 0; i < 3; i++) assert.ok(tryPropose(h, 1, `v${i}`));
  settle(h);

  const sent: Message[] = [];
  const hooks = monitor.hooks({ onSend: (m) => void sent.push(m) });
  const learner = h.addNode(4);
  assert.deepEqual(confOf(h, 4), conf([]), 'a new node starts with no membership at all');
  assert.equal(tryConfChange(h, 1, { changes: [{ type: 'add-learner', node: 4 }] }), undefined);
  settle(h, hooks);
  run(h, 1, hooks);
  for (const id of [1, 2, 3, 4]) assert.deepEqual(confOf(h, id), conf([1, 2, 3], { learners: [4] }));

  // The leader's log starts after the bootstrap snapshot: the learner gets that snapshot
  // (with the membership before it joined), then the entries after it, its own addition
  // included, and applies them on top.
  const snapshots = sent.filter((m) => m.type === 'snapshot' && m.to === 4);
  assert.equal(snapshots.length, 1);
  const snap = snapshots[0]!.type === 'snapshot' ? snapshots[0]!.snapshot : undefined;
  assert.deepEqual([snap?.meta.index, snap?.meta.term, snap?.meta.confState.voters], [1, 1, [1, 2, 3]]);
  assert.equal(learner.restoredSnapshot?.meta.index, 1);
  assert.deepEqual(logOf(h, 4), logOf(h, 1));
  assert.deepEqual(h.appliedText(4), ['v0', 'v1', 'v2']);
  assert.deepEqual(
    learner.confChanges.map((c) => [c.index, c.confState.learners]),
    [[6, [4]]],
  );
  assert.equal(matchOf(h, 1, 4), raftOf(h, 1).log.lastIndex());
  assert.equal(raftOf(h, 1).tracker.progress.get(4)?.isLearner, true);

  // Not counted in the quorum: with both voters cut off, the learner's acknowledgement alone
  // does not commit anything.
  const commit = raftOf(h, 1).log.committed;
  cutBetween(h, [1], [2, 3]);
  assert.ok(tryPropose(h, 1, 'needs-a-voter'));
  settle(h, hooks);
  assert.equal(matchOf(h, 1, 4), commit + 1, 'the learner acknowledged the entry');
  assert.equal(raftOf(h, 1).log.committed, commit, 'but a learner does not count towards commit');
  // Healed, the next heartbeat round brings the voters' acknowledgements.
  h.heal();
  run(h, 1, hooks);
  assert.equal(raftOf(h, 1).log.committed, commit + 1);

  // Commit proceeds without it: the learner is cut off and the voters commit on their own.
  h.isolate(4);
  assert.ok(tryPropose(h, 1, 'without-learner'));
  settle(h, hooks);
  assert.equal(raftOf(h, 1).log.committed, commit + 2);
  assert.equal(matchOf(h, 1, 4), commit + 1);

  // Cut off for many election timeouts, the learner never campaigns.
  const termOf4 = raftOf(h, 4).term;
  run(h, 5 * electionTicks, hooks);
  assert.equal(raftOf(h, 4).role, 'follower');
  assert.equal(raftOf(h, 4).term, termOf4);
  assert.deepEqual(
    sent.filter((m) => m.from === 4 && m.type === 'vote'),
    [],
  );
  assert.deepEqual(h.leaders(), [1]);

  // Healed and caught up, it is promoted: a single voter change, applied directly.
  h.heal();
  run(h, 1, hooks);
  assert.equal(matchOf(h, 1, 4), raftOf(h, 1).log.lastIndex());
  changeConf(h, 1, { changes: [{ type: 'add-voter', node: 4 }] });
  run(h, 1, hooks);
  for (const id of [1, 2, 3, 4]) assert.deepEqual(confOf(h, id), conf([1, 2, 3, 4]));
  assert.deepEqual(h.appliedText(4), ['v0', 'v1', 'v2', 'needs-a-voter', 'without-learner']);

  // Now it counts: with node 2 cut off, 1, 3 and 4 are a majority of four and commit.
  h.isolate(2);
  const before = raftOf(h, 1).log.committed;
  assert.ok(tryPropose(h, 1, 'with-voter-4'));
  settle(h, hooks);
  assert.equal(raftOf(h, 1).log.committed, before + 1);
  // With 2 and 3 cut off, 1 and 4 are not a majority of four.
  h.isolate(3);
  assert.ok(tryPropose(h, 1, 'two-of-four'));
  settle(h, hooks);
  assert.equal(raftOf(h, 1).log.committed, before + 1);
  assert.equal(matchOf(h, 1, 4), before + 2);
  monitor.observe();
});

test('FAULTS 20: a lagging learner is not promoted (LEARNER_NOT_READY) until it is within learnerCatchUpEntriesMax', () => {
  const h = clusterLedBy1(3, 43, { learnerCatchUpEntriesMax: 5 });
  addLearners(h, 1, [4]);
  const promote: ConfChange = { changes: [{ type: 'add-voter', node: 4 }] };

  h.isolate(4);
  for (let i = 0; i < 6; i++) assert.ok(tryPropose(h, 1, `lag${i}`));
  settle(h);
  const last = raftOf(h, 1).log.lastIndex();
  assert.equal(last - matchOf(h, 1, 4), 6);
  const message = raftErrorOf(() => h.node(1).raw.proposeConfChange(promote), 'LEARNER_NOT_READY');
  assert.match(message, /learner 4 is 6 entries behind \(at most 5 allowed\)/);
  assert.equal(raftOf(h, 1).log.lastIndex(), last, 'a refused change appends nothing');
  assert.equal(raftOf(h, 1).pendingConfIndex <= raftOf(h, 1).log.applied, true);
  assert.deepEqual(confOf(h, 1), conf([1, 2, 3], { learners: [4] }));

  // Caught up again, then 5 behind: exactly the allowed lag, so the promotion is accepted.
  h.heal();
  run(h, 1);
  assert.equal(matchOf(h, 1, 4), raftOf(h, 1).log.lastIndex());
  h.isolate(4);
  for (let i = 0; i < 5; i++) assert.ok(tryPropose(h, 1, `more${i}`));
  settle(h);
  assert.equal(raftOf(h, 1).log.lastIndex() - matchOf(h, 1, 4), 5);
  changeConf(h, 1, promote);
  assert.deepEqual(confOf(h, 1), conf([1, 2, 3, 4]));
  h.heal();
  run(h, 2);
  assert.deepEqual(confOf(h, 4), conf([1, 2, 3, 4]));
  assert.deepEqual(machineState(h.node(4)), machineState(h.node(1)));
});

// ------------------------------------------------------------------ single changes and joint consensus

test('FAULTS 20: adding or removing one voter applies directly, without a joint configuration', () => {
  const h = clusterLedBy1(3, 47);
  // A brand-new node may be added straight as a voter (it is not a lagging learner).
  h.addNode(4);
  changeConf(h, 1, { changes: [{ type: 'add-voter', node: 4 }] });
  run(h, 1);
  changeConf(h, 1, { changes: [{ type: 'remove', node: 3 }] });
  run(h, 1);
  for (const id of [1, 2, 4]) {
    assert.deepEqual(
      h.node(id).confChanges.map((c) => c.confState.voters),
      [
        [1, 2, 3, 4],
        [1, 2, 4],
      ],
    );
    for (const c of h.node(id).confChanges) {
      assert.deepEqual([c.confState.votersOutgoing, c.confState.autoLeave], [[], false]);
    }
    assert.deepEqual(confOf(h, id), conf([1, 2, 4]));
  }
  // Two conf-change entries in the log, no leave-joint entry.
  const confEntries = raftOf(h, 1)
    .log.slice(2, raftOf(h, 1).log.lastIndex() + 1, Number.MAX_SAFE_INTEGER)
    .filter((e) => e.type === 'conf-change');
  assert.equal(confEntries.length, 2);
  assert.deepEqual(raftOf(h, 1).confState().removed, [3]);
  // The new configuration commits with a majority of {1, 2, 4}.
  h.isolate(2);
  assert.ok(tryPropose(h, 1, 'x'));
  settle(h);
  assert.deepEqual(h.appliedText(4), ['x']);
});

test('FAULTS 20: changing two voters enters a joint configuration and leaves it automatically once committed', () => {
  const h = clusterLedBy1(3, 53);
  // Two learners in one change: no voter changes, so it applies directly.
  addLearners(h, 1, [4, 5]);
  assert.deepEqual(confOf(h, 1), conf([1, 2, 3], { learners: [4, 5] }));
  assert.equal(h.node(1).confChanges.length, 1);

  const promote: ConfChange = {
    changes: [
      { type: 'add-voter', node: 4 },
      { type: 'add-voter', node: 5 },
    ],
  };
  assert.equal(tryConfChange(h, 1, promote), undefined);
  const enterIndex = raftOf(h, 1).log.lastIndex();
  stepUntil(h, () => isJoint(raftOf(h, 1).tracker.config));
  assert.deepEqual(confOf(h, 1), conf([1, 2, 3, 4, 5], { votersOutgoing: [1, 2, 3], autoLeave: true }));
  // The leader proposed leaving as soon as it applied the entry that entered.
  assert.equal(raftOf(h, 1).log.lastIndex(), enterIndex + 1);
  assert.equal(raftOf(h, 1).pendingConfIndex, enterIndex + 1);

  settle(h);
  run(h, 1);
  for (const id of [1, 2, 3, 4, 5]) {
    assert.deepEqual(
      h
        .node(id)
        .confChanges.slice(-2)
        .map((c) => [c.index, c.confState]),
      [
        [enterIndex, conf([1, 2, 3, 4, 5], { votersOutgoing: [1, 2, 3], autoLeave: true, removed: [] })],
        [enterIndex + 1, conf([1, 2, 3, 4, 5], { removed: [] })],
      ],
      `node ${id}`,
    );
    assert.deepEqual(confOf(h, id), conf([1, 2, 3, 4, 5]));
  }
});

/**
 * Replaces voters 2 and 3 by learners 4 and 5 (leader 1 stays) and stops right after the
 * leader applied the joint configuration {1,4,5} & {1,2,3}: its leave entry is being sent.
 */
function replaceTwoVoters(seed: number): { h: Harness; enterIndex: number } {
  const h = clusterLedBy1(3, seed);
  addLearners(h, 1, [4, 5]);
  const cc: ConfChange = {
    changes: [
      { type: 'add-voter', node: 4 },
      { type: 'add-voter', node: 5 },
      { type: 'remove', node: 2 },
      { type: 'remove', node: 3 },
    ],
  };
  assert.equal(tryConfChange(h, 1, cc), undefined);
  const enterIndex = raftOf(h, 1).log.lastIndex();
  stepUntil(h, () => isJoint(raftOf(h, 1).tracker.config));
  assert.deepEqual(confOf(h, 1), conf([1, 4, 5], { votersOutgoing: [1, 2, 3], autoLeave: true }));
  assert.equal(raftOf(h, 1).log.committed, enterIndex);
  return { h, enterIndex };
}

for (const [cutHalf, ackingHalf] of [
  ['incoming', 'outgoing'],
  ['outgoing', 'incoming'],
] as const) {
  test(`FAULTS 20: in a joint configuration nothing commits or is read without the ${cutHalf} majority, even when the ${ackingHalf} majority acknowledges`, () => {
    const { h, enterIndex } = replaceTwoVoters(cutHalf === 'incoming' ? 59 : 61);
    const cut: NodeId[] = cutHalf === 'incoming' ? [4, 5] : [2, 3];
    const acking: NodeId[] = cutHalf === 'incoming' ? [2, 3] : [4, 5];
    for (const id of cut) h.isolate(id);
    assert.ok(tryPropose(h, 1, 'during-joint'));
    settle(h);
    const leader = raftOf(h, 1);
    const last = leader.log.lastIndex();
    assert.equal(last, enterIndex + 2, 'the leave entry and the proposal are in the log');
    for (const id of acking) assert.equal(matchOf(h, 1, id), last, `node ${id} acknowledged everything`);
    for (const id of cut) assert.ok(matchOf(h, 1, id) < enterIndex + 1);
    assert.equal(leader.log.committed, enterIndex, 'one majority of a joint configuration is not enough');
    assert.ok(isJoint(leader.tracker.config));

    // A ReadIndex round needs both halves as well.
    h.node(1).raw.readIndex(bytes('joint-read'));
    settle(h);
    run(h, 2);
    assert.deepEqual(h.node(1).readStates, []);

    // Healed, both halves acknowledge: the leave entry and the proposal commit, and the
    // removed voters 2 and 3 are gone. A new read's round confirms the earlier one too (a
    // lost round alone is not retried: see the FAULTS 18 test of scenarios-reads).
    h.heal();
    run(h, 1);
    assert.equal(leader.log.committed, last);
    h.node(1).raw.readIndex(bytes('after-heal'));
    settle(h);
    assert.deepEqual(
      h.node(1).readStates.map((rs) => [rs.index, new TextDecoder().decode(rs.context)]),
      [
        [enterIndex, 'joint-read'],
        [last, 'after-heal'],
      ],
    );
    for (const id of [1, 4, 5]) {
      assert.deepEqual(confOf(h, id), conf([1, 4, 5]));
      assert.deepEqual(h.appliedText(id), ['during-joint']);
    }
    assert.deepEqual(raftOf(h, 1).confState().removed, [2, 3]);
    assert.deepEqual([...leader.tracker.progress.keys()].sort(), [1, 4, 5]);
  });
}

test('FAULTS 20: the leader crashes in a joint configuration before leaving it; a new leader completes the change', () => {
  const { h, enterIndex } = replaceTwoVoters(127);
  const monitor = new SafetyMonitor(h);
  const hooks = monitor.hooks();
  // Node 1 crashes before its Ready with the leave entry and the commit of the joint entry
  // goes out: everyone has the joint entry, nobody knows it is committed.
  h.crash(1);
  settle(h, hooks);
  for (const id of [2, 3, 4, 5]) {
    assert.deepEqual(confOf(h, id), conf([1, 2, 3], { learners: [4, 5] }), `node ${id}`);
    assert.equal(raftOf(h, id).log.lastIndex(), enterIndex, 'nobody has the leave entry');
    assert.ok(raftOf(h, id).log.committed < enterIndex);
  }

  // 2 or 3 is elected by the old configuration, commits the joint entry with its no-op and
  // proposes the leave, which removes it: once that is applied it steps down and 4 or 5,
  // the incoming majority without node 1, take over.
  const done = () => leadersAmong(h, [4, 5]).length === 1 && !isJoint(raftOf(h, 4).tracker.config);
  runUntil(h, done, 20 * electionTicks, hooks);
  const next = leadersAmong(h, [4, 5])[0]!;
  const term = raftOf(h, next).term;
  assert.equal(term, 4);
  assert.ok([2, 3].includes(monitor.leaderOfTerm.get(3)!), 'term 3 was led by 2 or 3');
  assert.equal(monitor.leaderOfTerm.get(4), next);
  assert.ok(tryPropose(h, next, 'after'));
  settle(h, hooks);
  for (const id of [4, 5]) assert.deepEqual(confOf(h, id), conf([1, 4, 5]), `node ${id}`);
  assert.deepEqual(raftOf(h, next).confState().removed, [2, 3]);
  assert.equal(h.leaders().includes(2) || h.leaders().includes(3), false);

  // Node 1 restarts in the joint configuration it persisted and catches up with the leave.
  h.restart(1);
  assert.deepEqual(confOf(h, 1), conf([1, 2, 3]), 'the bootstrap snapshot, before replaying its log');
  h.processReadies();
  assert.deepEqual(confOf(h, 1), conf([1, 4, 5], { votersOutgoing: [1, 2, 3], autoLeave: true }));
  run(h, 2, hooks);
  assert.deepEqual(confOf(h, 1), conf([1, 4, 5]));
  for (const id of [1, 4, 5]) assert.deepEqual(h.appliedText(id).slice(-1), ['after'], `node ${id}`);
  monitor.observe();
});

// ------------------------------------------------------------------ removals

test('FAULTS 20: removing a follower: the rest commit without it, and the removed node stops campaigning', () => {
  const h = clusterLedBy1(3, 67);
  const monitor = new SafetyMonitor(h);
  const sent: Message[] = [];
  const hooks = monitor.hooks({ onSend: (m) => void sent.push(m) });
  assert.ok(tryPropose(h, 1, 'before'));
  settle(h, hooks);
  changeConf(h, 1, { changes: [{ type: 'remove', node: 3 }] });
  run(h, 1, hooks);
  for (const id of [1, 2, 3]) assert.deepEqual(confOf(h, id), conf([1, 2]), `node ${id}`);
  assert.deepEqual(raftOf(h, 3).confState().removed, [3]);
  assert.equal(raftOf(h, 1).tracker.progress.has(3), false);

  // Node 3 keeps running. It applied its removal, so it never campaigns; the leader never
  // sends to it; 1 and 2 commit on their own.
  const term = raftOf(h, 1).term;
  sent.length = 0;
  run(h, 5 * electionTicks, hooks);
  assert.ok(tryPropose(h, 1, 'after'));
  settle(h, hooks);
  assert.deepEqual(
    sent.filter((m) => m.from === 3 || m.to === 3),
    [],
  );
  assert.deepEqual(h.appliedText(2), ['before', 'after']);
  assert.deepEqual(h.appliedText(3), ['before']);
  for (const id of [1, 2, 3]) assert.equal(raftOf(h, id).term, term);
  assert.deepEqual(h.leaders(), [1]);
  monitor.observe();
});

test('FAULTS 20: a removed node that missed its removal times out, but its campaigns are ignored by the members', () => {
  const h = clusterLedBy1(3, 71);
  const monitor = new SafetyMonitor(h);
  h.isolate(3);
  changeConf(h, 1, { changes: [{ type: 'remove', node: 3 }] });
  assert.deepEqual(confOf(h, 1), conf([1, 2]));
  assert.deepEqual(confOf(h, 3), conf([1, 2, 3]), 'node 3 never learned of its removal');
  assert.ok(tryPropose(h, 1, 'two-of-two'));
  settle(h);
  h.heal();

  const fromRemoved: Message[] = [];
  const toRemoved: Message[] = [];
  const hooks = monitor.hooks({
    onSend: (m) => {
      if (m.from === 3) fromRemoved.push(m);
      if (m.to === 3) toRemoved.push(m);
    },
  });
  const term = raftOf(h, 1).term;
  run(h, 10 * electionTicks, hooks);
  assert.ok(fromRemoved.length > 0, 'the removed node timed out and campaigned');
  for (const m of fromRemoved) assert.ok(m.type === 'vote' && m.preVote, `removed node sent ${m.type}`);
  assert.deepEqual(toRemoved, [], 'the members never answer it');
  assert.deepEqual(h.leaders(), [1]);
  for (const id of [1, 2]) assert.equal(raftOf(h, id).term, term);
  assert.ok(tryPropose(h, 1, 'still-leading'));
  settle(h, hooks);
  assert.deepEqual(h.appliedText(2), ['two-of-two', 'still-leading']);
  monitor.observe();
});

test('FAULTS 4 + 20: pre-vote + check-quorum: a removed node rejoining with a higher term does not disrupt the leader', () => {
  const h = clusterLedBy1(3, 73);
  const monitor = new SafetyMonitor(h);
  h.isolate(3);
  changeConf(h, 1, { changes: [{ type: 'remove', node: 3 }] });
  const term = raftOf(h, 1).term;

  // The removed node restarts without pre-vote while still cut off and runs up its term.
  h.crash(3);
  h.restart(3, { preVote: false });
  runUntil(h, () => raftOf(h, 3).term >= term + 3, 20 * electionTicks);
  assert.equal(raftOf(h, 3).role, 'candidate');

  // Back on the network, its real vote requests carry a term the members have never seen.
  h.heal();
  const votes: Message[] = [];
  const answers: Message[] = [];
  const hooks = monitor.hooks({
    onSend: (m) => {
      if (m.from === 3 && m.type === 'vote') votes.push(m);
      if (m.to === 3) answers.push(m);
    },
  });
  run(h, 10 * electionTicks, hooks);
  assert.ok(votes.length > 0);
  for (const m of votes) assert.ok(m.type === 'vote' && m.term > term && !m.preVote);
  assert.deepEqual(answers, []);
  assert.deepEqual(h.leaders(), [1]);
  for (const id of [1, 2]) assert.equal(raftOf(h, id).term, term, `member ${id} kept its term`);
  assert.ok(tryPropose(h, 1, 'undisturbed'));
  settle(h, hooks);
  assert.deepEqual(h.appliedText(2), ['undisturbed']);
  monitor.observe();
});

test('FAULTS 20: removing the leader: it refuses proposals (NOT_LEADER) until the change commits, then steps down', () => {
  const h = clusterLedBy1(3, 79);
  const monitor = new SafetyMonitor(h);
  const sent: Message[] = [];
  const hooks = monitor.hooks({ onSend: (m) => void sent.push(m) });
  assert.ok(tryPropose(h, 1, 'a'));
  settle(h, hooks);
  const term = raftOf(h, 1).term;

  assert.equal(tryConfChange(h, 1, { changes: [{ type: 'remove', node: 1 }] }), undefined);
  const removalIndex = raftOf(h, 1).log.lastIndex();
  const refusal = raftErrorOf(() => h.node(1).raw.propose(bytes('late')), 'NOT_LEADER');
  assert.match(refusal, /being removed/);
  assert.equal(raftOf(h, 1).log.lastIndex(), removalIndex, 'nothing is appended after the removal');

  // Still leading while the removal is in flight: it commits with 2 and 3, then applies.
  stepUntil(h, () => raftOf(h, 1).log.committed === removalIndex);
  assert.equal(raftOf(h, 1).role, 'leader');
  raftErrorOf(() => h.node(1).raw.propose(bytes('late')), 'NOT_LEADER');
  settle(h, hooks);
  assert.equal(raftOf(h, 1).role, 'follower');
  assert.equal(raftOf(h, 1).term, term, 'stepping down does not change the term');
  for (const id of [1, 2, 3]) assert.deepEqual(confOf(h, id), conf([2, 3]));

  // 2 and 3 elect a leader of the next term; node 1 never campaigns.
  sent.length = 0;
  runUntil(h, () => leadersAmong(h, [2, 3]).length === 1, 10 * electionTicks, hooks);
  const next = leadersAmong(h, [2, 3])[0]!;
  assert.equal(raftOf(h, next).term, term + 1);
  assert.deepEqual(
    sent.filter((m) => m.from === 1),
    [],
  );
  assert.ok(tryPropose(h, next, 'b'));
  settle(h, hooks);
  for (const id of [2, 3]) assert.deepEqual(h.appliedText(id), ['a', 'b']);
  assert.deepEqual(h.appliedText(1), ['a']);
  assert.equal(h.leaders().includes(1), false);
  monitor.observe();
});

test('FAULTS 20: replacing the leader jointly: it leads through the joint phase, then steps down; its id is never reused', () => {
  const h = clusterLedBy1(3, 83);
  const monitor = new SafetyMonitor(h);
  const hooks = monitor.hooks();
  assert.ok(tryPropose(h, 1, 'a'));
  settle(h, hooks);
  addLearners(h, 1, [4]);
  const term = raftOf(h, 1).term;

  const cc: ConfChange = {
    changes: [
      { type: 'add-voter', node: 4 },
      { type: 'remove', node: 1 },
    ],
  };
  assert.equal(tryConfChange(h, 1, cc), undefined);
  stepUntil(h, () => isJoint(raftOf(h, 1).tracker.config));
  assert.deepEqual(confOf(h, 1), conf([2, 3, 4], { votersOutgoing: [1, 2, 3], autoLeave: true }));
  assert.equal(raftOf(h, 1).role, 'leader', 'a voter of the outgoing half still leads');
  raftErrorOf(() => h.node(1).raw.propose(bytes('late')), 'NOT_LEADER');

  settle(h, hooks);
  assert.equal(raftOf(h, 1).role, 'follower');
  for (const id of [1, 2, 3, 4]) assert.deepEqual(confOf(h, id), conf([2, 3, 4]), `node ${id}`);
  runUntil(h, () => leadersAmong(h, [2, 3, 4]).length === 1, 10 * electionTicks, hooks);
  const next = leadersAmong(h, [2, 3, 4])[0]!;
  assert.equal(raftOf(h, next).term, term + 1);
  assert.ok(tryPropose(h, next, 'b'));
  settle(h, hooks);
  for (const id of [2, 3, 4]) assert.deepEqual(machineState(h.node(id)), ['a', 'b']);

  // The removed id can never come back, as a voter or a learner.
  for (const type of ['add-voter', 'add-learner'] as const) {
    const message = raftErrorOf(
      () => h.node(next).raw.proposeConfChange({ changes: [{ type, node: 1 }] }),
      'NODE_ID_REUSED',
    );
    assert.match(message, /node id 1 was removed/);
  }
  monitor.observe();
});

// ------------------------------------------------------------------ one change at a time

test('FAULTS 20: a second change while one is pending is refused with CONF_CHANGE_IN_PROGRESS', () => {
  const h = clusterLedBy1(3, 89);
  h.addNode(4);
  h.addNode(5);
  assert.equal(tryConfChange(h, 1, { changes: [{ type: 'add-learner', node: 4 }] }), undefined);
  const last = raftOf(h, 1).log.lastIndex();
  assert.equal(
    tryConfChange(h, 1, { changes: [{ type: 'add-learner', node: 5 }] }),
    'CONF_CHANGE_IN_PROGRESS',
  );
  assert.equal(raftOf(h, 1).log.lastIndex(), last);
  settle(h);
  assert.equal(tryConfChange(h, 1, { changes: [{ type: 'add-learner', node: 5 }] }), undefined);
  settle(h);
  run(h, 1);
  assert.deepEqual(confOf(h, 1), conf([1, 2, 3], { learners: [4, 5] }));
});

test('FAULTS 20: while a joint configuration waits for its leave entry, another change is refused with CONF_CHANGE_IN_PROGRESS', () => {
  const h = clusterLedBy1(3, 97);
  addLearners(h, 1, [4, 5]);
  assert.equal(
    tryConfChange(h, 1, {
      changes: [
        { type: 'add-voter', node: 4 },
        { type: 'add-voter', node: 5 },
      ],
    }),
    undefined,
  );
  // Before the entering entry is applied.
  assert.equal(tryConfChange(h, 1, { changes: [{ type: 'remove', node: 3 }] }), 'CONF_CHANGE_IN_PROGRESS');
  // Joint, with the leave entry proposed but not applied: the change is still in progress
  // (retrying later succeeds), which is not the same as an invalid change.
  stepUntil(h, () => isJoint(raftOf(h, 1).tracker.config));
  assert.ok(raftOf(h, 1).pendingConfIndex > raftOf(h, 1).log.applied);
  assert.equal(tryConfChange(h, 1, { changes: [{ type: 'remove', node: 3 }] }), 'CONF_CHANGE_IN_PROGRESS');
  settle(h);
  assert.equal(tryConfChange(h, 1, { changes: [{ type: 'remove', node: 3 }] }), undefined);
  settle(h);
  assert.deepEqual(confOf(h, 1), conf([1, 2, 4, 5]));
});

test('FAULTS 20: a new leader refuses a conf change until it has committed an entry of its own term (raft-dev 2015)', () => {
  const h = clusterLedBy1(3, 101);
  assert.ok(tryPropose(h, 1, 'a'));
  settle(h);
  run(h, 1);
  h.addNode(4);

  // Node 1 is cut off; 2 and 3 elect a leader whose no-op cannot commit: append answers are lost.
  h.isolate(1);
  h.filter = (m) => m.type !== 'append-response';
  runUntil(h, () => leadersAmong(h, [2, 3]).length === 1, 10 * electionTicks);
  const next = leadersAmong(h, [2, 3])[0]!;
  const r = raftOf(h, next);
  assert.equal(r.log.lastTerm(), r.term, 'the no-op of the new term is in its log');
  assert.ok(r.log.term(r.log.committed) < r.term);
  // Everything before the no-op is applied, so only the term rule refuses the change.
  assert.ok(r.pendingConfIndex <= r.log.applied);
  const message = raftErrorOf(
    () => h.node(next).raw.proposeConfChange({ changes: [{ type: 'add-learner', node: 4 }] }),
    'CONF_CHANGE_IN_PROGRESS',
  );
  assert.match(message, /has not yet committed an entry of its term/);
  // Normal proposals are accepted meanwhile.
  assert.ok(tryPropose(h, next, 'b'));

  h.filter = () => true;
  runUntil(h, () => r.log.term(r.log.committed) === r.term, 3);
  assert.equal(tryConfChange(h, next, { changes: [{ type: 'add-learner', node: 4 }] }), undefined);
  h.heal();
  settle(h);
  run(h, 1);
  assert.deepEqual(confOf(h, next), conf([1, 2, 3], { learners: [4] }));
  assert.deepEqual(h.appliedText(4), ['a', 'b']);
});

// ------------------------------------------------------------------ restarts

test('FAULTS 20 + 13: after membership changes and snapshots, every node restarts with the same configuration', () => {
  const h = clusterLedBy1(3, 103);
  const monitor = new SafetyMonitor(h);
  const hooks = monitor.hooks();
  assert.ok(tryPropose(h, 1, 'a'));
  addLearners(h, 1, [4, 5]);
  changeConf(h, 1, { changes: [{ type: 'add-voter', node: 4 }] });
  changeConf(h, 1, { changes: [{ type: 'remove', node: 3 }] });
  changeConf(h, 1, {
    changes: [
      { type: 'add-voter', node: 5 },
      { type: 'remove', node: 2 },
    ],
  });
  assert.ok(tryPropose(h, 1, 'b'));
  settle(h, hooks);
  run(h, 1, hooks);
  const members: NodeId[] = [1, 4, 5];
  for (const id of members) {
    assert.deepEqual(raftOf(h, id).confState(), { ...conf([1, 4, 5]), removed: [2, 3] }, `node ${id}`);
  }

  // Every member snapshots and compacts; then one more change lands after the snapshot.
  for (const id of members) snapshotAndCompact(h, id);
  addLearners(h, 1, [6]);
  assert.ok(tryPropose(h, 1, 'c'));
  settle(h, hooks);
  run(h, 1, hooks);
  const all: NodeId[] = [...members, 6];
  const before = new Map(all.map((id) => [id, raftOf(h, id).confState()] as const));
  assert.deepEqual(before.get(1), { ...conf([1, 4, 5], { learners: [6] }), removed: [2, 3] });
  monitor.observe();

  for (const id of [...all, 2, 3]) h.crash(id);
  for (const id of all) h.restart(id);
  for (const id of members) {
    // The snapshot's membership (removed ids included) right away; the change after it is
    // applied again from the log.
    assert.deepEqual(raftOf(h, id).confState(), { ...conf([1, 4, 5]), removed: [2, 3] }, `node ${id}`);
  }
  h.processReadies();
  for (const id of all) assert.deepEqual(raftOf(h, id).confState(), before.get(id), `node ${id}`);

  const leader = h.electLeader();
  assert.ok(members.includes(leader));
  for (const node of [2, 3]) {
    assert.equal(tryConfChange(h, leader, { changes: [{ type: 'add-voter', node }] }), 'NODE_ID_REUSED');
  }
  assert.ok(tryPropose(h, leader, 'd'));
  settle(h, hooks);
  run(h, 1, hooks);
  for (const id of all) assert.deepEqual(machineState(h.node(id)), ['a', 'b', 'c', 'd'], `node ${id}`);
  monitor.observe();
});

// ------------------------------------------------------------------ leadership transfer

test('leadership transfer to a caught-up voter: TimeoutNow at once, the target leads in a higher term', () => {
  const h = clusterLedBy1(3, 107);
  assert.ok(tryPropose(h, 1, 'a'));
  settle(h);
  run(h, 1);
  const term = raftOf(h, 1).term;
  h.node(1).raw.transferLeadership(2);
  assert.deepEqual(
    raftOf(h, 1).msgs.map((m) => [m.type, m.from, m.to, m.term]),
    [['timeout-now', 1, 2, term]],
  );
  const votes: Message[] = [];
  settle(h, { onSend: (m) => void (m.type === 'vote' && votes.push(m)) });
  // The target skips pre-vote and asks for votes that bypass the followers' leader lease.
  assert.deepEqual(
    votes.map((m) => m.type === 'vote' && [m.from, m.term, m.preVote, m.transfer]),
    [
      [2, term + 1, false, true],
      [2, term + 1, false, true],
    ],
  );
  assert.deepEqual(h.leaders(), [2]);
  assert.equal(raftOf(h, 2).term, term + 1);
  for (const id of [1, 3]) assert.deepEqual([raftOf(h, id).role, raftOf(h, id).leader], ['follower', 2]);
  assert.ok(tryPropose(h, 2, 'b'));
  settle(h);
  run(h, 1);
  for (const id of [1, 2, 3]) assert.deepEqual(h.appliedText(id), ['a', 'b']);
});

test('leadership transfer to a lagging voter: it is brought up to date first; proposals are refused meanwhile', () => {
  const h = clusterLedBy1(3, 109);
  h.isolate(3);
  for (let i = 0; i < 5; i++) assert.ok(tryPropose(h, 1, `v${i}`));
  settle(h);
  const last = raftOf(h, 1).log.lastIndex();
  assert.ok(matchOf(h, 1, 3) < last);

  h.node(1).raw.transferLeadership(3);
  assert.equal(raftOf(h, 1).leadTransferee, 3);
  assert.deepEqual(
    raftOf(h, 1).msgs.filter((m) => m.type === 'timeout-now'),
    [],
  );
  raftErrorOf(() => h.node(1).raw.propose(bytes('refused')), 'TRANSFER_IN_PROGRESS');
  assert.equal(raftOf(h, 1).log.lastIndex(), last);

  h.heal();
  const sent: Message[] = [];
  const matchAtTimeoutNow: number[] = [];
  run(h, 1, {
    onSend: (m) => {
      sent.push(m);
      if (m.type === 'timeout-now') matchAtTimeoutNow.push(matchOf(h, 1, 3));
    },
  });
  const timeoutNow = sent.findIndex((m) => m.type === 'timeout-now');
  const caughtUp = sent.findIndex((m) => m.type === 'append-response' && m.from === 3 && m.index === last);
  assert.ok(caughtUp >= 0 && timeoutNow > caughtUp, 'TimeoutNow only after the target matched the log');
  assert.deepEqual(matchAtTimeoutNow, [last]);
  assert.ok(sent.slice(0, timeoutNow).some((m) => m.type === 'append' && m.to === 3 && m.entries.length > 0));
  assert.deepEqual(h.leaders(), [3]);
  assert.deepEqual(h.appliedText(3), ['v0', 'v1', 'v2', 'v3', 'v4']);
});

test('leadership transfer to an unreachable voter is abandoned after an election timeout; the leader accepts proposals again', () => {
  const h = clusterLedBy1(3, 113);
  assert.ok(tryPropose(h, 1, 'a'));
  settle(h);
  run(h, 1);
  h.isolate(3);
  const term = raftOf(h, 1).term;
  const lost: Message[] = [];
  h.node(1).raw.transferLeadership(3);
  settle(h, { onSend: (m) => void lost.push(m) });
  assert.deepEqual(
    lost.map((m) => [m.type, m.to]),
    [['timeout-now', 3]],
    'the TimeoutNow is lost on the cut link',
  );

  for (let tick = 1; tick < electionTicks; tick++) {
    run(h, 1);
    assert.equal(raftOf(h, 1).leadTransferee, 3, `still transferring after ${tick} ticks`);
    raftErrorOf(() => h.node(1).raw.propose(bytes('refused')), 'TRANSFER_IN_PROGRESS');
  }
  run(h, 1);
  assert.equal(raftOf(h, 1).leadTransferee, 0);
  assert.deepEqual(h.leaders(), [1]);
  assert.equal(raftOf(h, 1).term, term);
  assert.ok(tryPropose(h, 1, 'b'));
  settle(h);
  assert.deepEqual(h.appliedText(2), ['a', 'b']);
  // With pre-vote the cut-off target could not raise its term meanwhile either.
  assert.equal(raftOf(h, 3).term, term);
});
