/**
 * Scripted persistence and snapshot scenarios, FAULTS.md items 13–17: whole-cluster crashes,
 * crashes that lose unpersisted Ready batches, crashes at each persistence point, storage
 * range checks, and InstallSnapshot with a crash in the middle.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { Message, NodeId, Ready, SnapshotRequest } from '../src/raft/index.js';
import {
  AssertionError,
  DEFAULT_RAFT_OPTIONS,
  isRaftError,
  MemoryStorage,
  Prng,
  RaftLog,
} from '../src/raft/index.js';
import { Harness } from '../src/sim/harness.js';
import {
  bytes,
  commitOf,
  currentLeader,
  ids,
  logOf,
  machineState,
  run,
  runUntil,
  SafetyMonitor,
  settle,
  snapshotAndCompact,
  storedLogOf,
  text,
  tryPropose,
} from './support/cluster.js';

const electionTicks = DEFAULT_RAFT_OPTIONS.electionTicks;

function persistedHardState(h: Harness, id: NodeId): { term: number; vote: number; commit: number } {
  return { ...h.node(id).storage.initialState().hardState };
}

/** Persists a Ready the way the harness does (without sending, applying or advancing). */
function save(h: Harness, id: NodeId, rd: Ready): void {
  h.node(id).storage.saveSync({ hardState: rd.hardState, entries: rd.entries, snapshot: rd.snapshot });
}

function electAmong(h: Harness, live: readonly NodeId[]): NodeId {
  runUntil(h, () => h.leaders().filter((id) => live.includes(id)).length === 1, 20 * electionTicks);
  return h.leaders().find((id) => live.includes(id))!;
}

test('FAULTS 13: crash and restart every node: term, vote and log survive, commit never goes back', () => {
  const h = new Harness({ size: 3, seed: 31 });
  const monitor = new SafetyMonitor(h);
  const prng = new Prng(13);
  let value = 0;
  for (let round = 0; round < 8; round++) {
    const leader = electAmong(h, ids(h));
    for (let i = 0; i < 3; i++) assert.ok(tryPropose(h, leader, `v${value++}`));
    // Crash at an arbitrary point of the replication: some Readies may not be persisted.
    for (let step = prng.int(6); step > 0; step--) {
      h.processReadies();
      h.deliverAll();
    }
    monitor.observe();
    const before = new Map(
      ids(h).map((id) => {
        const n = h.node(id);
        const appliedMax = n.applied.at(-1)?.index ?? 0;
        return [id, { hard: persistedHardState(h, id), log: storedLogOf(h, id), appliedMax }] as const;
      }),
    );
    for (const id of ids(h)) h.crash(id);
    for (const id of ids(h)) h.restart(id);
    for (const id of ids(h)) {
      const status = h.node(id).raw.status();
      const saved = before.get(id)!;
      assert.deepEqual({ term: status.term, vote: status.vote, commit: status.commit }, saved.hard);
      assert.equal(status.role, 'follower');
      assert.deepEqual(logOf(h, id), saved.log, `node ${id} lost persisted entries`);
      assert.ok(status.commit >= saved.appliedMax, `node ${id} restarted below what it applied`);
    }
    monitor.observe();
  }
  const leader = electAmong(h, ids(h));
  h.propose(leader, 'last');
  run(h, 2);
  monitor.observe();
  const reference = h.appliedText(leader);
  assert.equal(reference.at(-1), 'last');
  for (const id of ids(h)) assert.deepEqual(h.appliedText(id), reference);
});

test('FAULTS 13: a restarted node remembers its vote and refuses a second candidate in the same term', () => {
  const h = new Harness({ size: 3, seed: 2, raft: { preVote: false, checkQuorum: false } });
  h.isolate(3);
  // Node 1 wins term 1 with node 2's vote; its appends are lost, so node 2's log stays empty.
  h.node(1).raw.campaign();
  settle(h, { transform: (b) => b.filter((m) => m.type !== 'append') });
  assert.equal(h.node(1).raw.raft.role, 'leader');
  assert.deepEqual(persistedHardState(h, 2), { term: 1, vote: 1, commit: 0 });

  h.crash(2);
  h.restart(2);
  const status = h.node(2).raw.status();
  assert.deepEqual([status.term, status.vote, status.leader, status.lastIndex], [1, 1, 0, 0]);

  // Node 3 (same empty log) asks for node 2's vote in term 1: refused, the vote was persisted.
  h.heal();
  h.isolate(1);
  const answers: Message[] = [];
  h.node(3).raw.campaign();
  settle(h, { onSend: (m) => void (m.type === 'vote-response' && answers.push(m)) });
  assert.deepEqual(
    answers.map((m) => m.type === 'vote-response' && [m.from, m.to, m.term, m.granted]),
    [[2, 3, 1, false]],
  );
  assert.notEqual(h.node(3).raw.raft.role, 'leader');
  assert.equal(h.node(2).raw.raft.vote, 1);
});

test('FAULTS 14: a follower crash loses its unpersisted entries, never an acknowledged write', () => {
  const h = new Harness({ size: 3, seed: 41 });
  const leader = h.electLeader();
  h.propose(leader, 'a');
  const [follower, other] = ids(h).filter((id) => id !== leader) as [NodeId, NodeId];
  h.isolate(other);

  assert.ok(tryPropose(h, leader, 'b'));
  h.processReadies();
  h.deliverAll();
  // The follower's Ready holds the entry and its acknowledgement; it crashes before the write
  // is durable, so (as the runtime must) it never sends the acknowledgement.
  const rd = h.node(follower).raw.ready();
  assert.deepEqual(
    rd.entries.map((e) => [e.index, text(e.data)]),
    [[3, 'b']],
  );
  assert.ok(rd.messages.some((m) => m.type === 'append-response' && !m.reject && m.index === 3));
  h.crash(follower);
  settle(h);
  assert.equal(commitOf(h, leader), 2, 'without the acknowledgement nothing commits');
  for (const id of ids(h)) assert.ok(!h.appliedText(id).includes('b'));

  h.restart(follower);
  assert.equal(h.node(follower).storage.lastIndex(), 2);
  assert.equal(h.node(follower).raw.status().lastIndex, 2);
  h.heal();
  run(h, 3);
  for (const id of ids(h)) assert.deepEqual(h.appliedText(id), ['a', 'b']);
});

test('FAULTS 14: a leader crash before its own write is durable loses nothing its followers persisted', () => {
  const h = new Harness({ size: 3, seed: 43 });
  const old = h.electLeader();
  h.propose(old, 'a');
  assert.ok(tryPropose(h, old, 'x'));
  // The leader may send its appends while its own write is in flight (thesis §10.2.1).
  const rd = h.node(old).raw.ready();
  assert.deepEqual(
    rd.entries.map((e) => text(e.data)),
    ['x'],
  );
  for (const m of rd.messages) h.queue.push(m);
  settle(h);
  // Both followers persisted and acknowledged: the leader commits without its own write...
  assert.equal(commitOf(h, old), 3);
  // ...but applies nothing before `advance`, and crashes before its write is durable.
  assert.deepEqual(h.appliedText(old), ['a']);
  h.crash(old);
  h.restart(old);
  assert.deepEqual(
    storedLogOf(h, old).map(([i, , d]) => [i, d]),
    [
      [1, ''],
      [2, 'a'],
    ],
  );
  const leader = electAmong(h, ids(h));
  assert.notEqual(leader, old, 'the node that lost its write cannot win against the others');
  run(h, 2);
  for (const id of ids(h)) assert.deepEqual(h.appliedText(id), ['a', 'x']);
});

test('FAULTS 14: single-node cluster: an unpersisted write is lost, an applied one never is', () => {
  const h = new Harness({ size: 1, seed: 5 });
  h.electLeader();
  h.propose(1, 'a');
  assert.deepEqual(h.appliedText(1), ['a']);

  // The Ready carrying 'b' is never persisted: nothing in it may be acknowledged yet.
  assert.ok(tryPropose(h, 1, 'b'));
  const lost = h.node(1).raw.ready();
  assert.deepEqual(
    lost.entries.map((e) => [e.index, text(e.data)]),
    [[3, 'b']],
  );
  assert.deepEqual(lost.committedEntries, [], 'a lone node commits only what is durable');
  assert.equal(commitOf(h, 1), 2);
  h.crash(1);
  h.restart(1);
  assert.deepEqual(h.node(1).raw.status().lastIndex, 2);
  h.electLeader();
  h.propose(1, 'c');
  assert.deepEqual(h.appliedText(1), ['a', 'c']);

  // 'd' is durable and applied (acknowledged), but the hard state with its commit index is
  // lost in the crash: it must come back.
  assert.ok(tryPropose(h, 1, 'd'));
  const n = h.node(1);
  const rd1 = n.raw.ready();
  save(h, 1, rd1);
  n.raw.advance(rd1);
  const rd2 = n.raw.ready();
  const indexD = rd1.entries[0]!.index;
  assert.deepEqual(
    rd2.committedEntries.map((e) => text(e.data)),
    ['d'],
  );
  assert.equal(rd2.hardState?.commit, indexD);
  for (const e of rd2.committedEntries) n.applied.push({ index: e.index, term: e.term, data: e.data });
  assert.deepEqual(h.appliedText(1), ['a', 'c', 'd']);
  h.crash(1);
  h.restart(1);
  assert.ok(persistedHardState(h, 1).commit < indexD);
  h.electLeader();
  run(h, 1);
  assert.deepEqual(h.appliedText(1), ['a', 'c', 'd']);
});

/** Sets up leader + follower with the third node cut off, and a new entry 'b' at the follower's door. */
function followerReceivesB(seed: number): { h: Harness; leader: NodeId; follower: NodeId; rd: Ready } {
  const h = new Harness({ size: 3, seed });
  const leader = h.electLeader();
  h.propose(leader, 'a');
  const [follower, other] = ids(h).filter((id) => id !== leader) as [NodeId, NodeId];
  h.isolate(other);
  assert.ok(tryPropose(h, leader, 'b'));
  h.processReadies();
  h.deliverAll();
  return { h, leader, follower, rd: h.node(follower).raw.ready() };
}

for (const point of ['before', 'after'] as const) {
  test(`FAULTS 15: crash ${point} the follower saves entries`, () => {
    const { h, leader, follower, rd } = followerReceivesB(51);
    if (point === 'after') save(h, follower, rd);
    h.crash(follower);
    settle(h);
    assert.equal(commitOf(h, leader), 2);
    h.restart(follower);
    const stored = storedLogOf(h, follower).map(([i, , d]) => [i, d]);
    assert.deepEqual(stored.at(-1), point === 'after' ? [3, 'b'] : [2, 'a']);
    h.heal();
    run(h, 3);
    for (const id of ids(h)) {
      assert.deepEqual(h.appliedText(id), ['a', 'b']);
      assert.equal(commitOf(h, id), 3);
    }
  });
}

test('FAULTS 15: crash in the middle of a WAL write: only a prefix of the entries is durable, no hard state', () => {
  const h = new Harness({ size: 3, seed: 52 });
  const leader = h.electLeader();
  h.propose(leader, 'a');
  const [follower, other] = ids(h).filter((id) => id !== leader) as [NodeId, NodeId];
  h.isolate(other);
  for (const v of ['b1', 'b2', 'b3']) assert.ok(tryPropose(h, leader, v));
  h.processReadies();
  h.deliverAll();
  const rd = h.node(follower).raw.ready();
  assert.deepEqual(
    rd.entries.map((e) => text(e.data)),
    ['b1', 'b2', 'b3'],
  );
  // The write is torn after its first record.
  h.node(follower).storage.saveSync({ entries: rd.entries.slice(0, 1) });
  h.crash(follower);
  settle(h);
  assert.equal(commitOf(h, leader), 2, 'nothing was acknowledged');
  h.restart(follower);
  assert.deepEqual(
    storedLogOf(h, follower).map(([i, , d]) => [i, d]),
    [
      [1, ''],
      [2, 'a'],
      [3, 'b1'],
    ],
  );
  h.heal();
  run(h, 3);
  for (const id of ids(h)) assert.deepEqual(h.appliedText(id), ['a', 'b1', 'b2', 'b3']);
});

for (const point of ['before-snapshot', 'after-snapshot', 'after-compact'] as const) {
  test(`FAULTS 15: the leader crashes ${point} (snapshot save, then compaction)`, () => {
    const h = new Harness({ size: 3, seed: 53 });
    const monitor = new SafetyMonitor(h);
    const leader = h.electLeader();
    for (let i = 0; i < 10; i++) h.propose(leader, `v${i}`);
    const applied = h.node(leader).raw.status().applied;
    assert.equal(applied, 11);
    if (point !== 'before-snapshot') snapshotAndCompact(h, leader, point === 'after-compact');
    h.crash(leader);
    h.restart(leader);

    const n = h.node(leader);
    const status = n.raw.status();
    const snapIndex = point === 'before-snapshot' ? 0 : applied;
    assert.equal(n.storage.snapshot().meta.index, snapIndex);
    assert.equal(status.firstIndex, point === 'after-compact' ? applied + 1 : 1);
    assert.equal(status.applied, snapIndex, 'the state machine restarts from the snapshot');
    assert.equal(status.commit, applied);
    settle(h);
    // Only what the snapshot does not cover is applied again.
    assert.deepEqual(
      n.applied.map((e) => e.index),
      Array.from({ length: applied - snapIndex }, (_, i) => snapIndex + 1 + i),
    );
    const expected = Array.from({ length: 10 }, (_, i) => `v${i}`);
    assert.deepEqual(machineState(n), expected);

    const next = electAmong(h, ids(h));
    h.propose(next, 'after');
    run(h, 2);
    monitor.observe();
    for (const id of ids(h)) assert.deepEqual(machineState(h.node(id)), [...expected, 'after']);
  });
}

/** A follower cut off while the leader commits and compacts, then reconnected; returns the held snapshot message. */
function followerBehindCompaction(seed: number): {
  h: Harness;
  leader: NodeId;
  follower: NodeId;
  snapshotIndex: number;
  held: SnapshotRequest;
} {
  const h = new Harness({ size: 3, seed });
  const leader = h.electLeader();
  const [follower] = ids(h).filter((id) => id !== leader) as [NodeId];
  h.isolate(follower);
  for (let i = 0; i < 20; i++) h.propose(leader, `v${i}`);
  const snap = snapshotAndCompact(h, leader);
  for (let i = 0; i < 3; i++) h.propose(leader, `tail${i}`);
  assert.equal(h.node(leader).raw.status().firstIndex, snap.meta.index + 1);

  h.heal();
  const held: SnapshotRequest[] = [];
  run(h, 1, {
    transform: (b) =>
      b.filter((m) => {
        if (m.type !== 'snapshot') return true;
        held.push(m);
        return false;
      }),
  });
  assert.equal(held.length, 1, 'exactly one snapshot is sent (then the progress waits)');
  const m = held[0]!;
  assert.deepEqual([m.from, m.to, m.snapshot.meta.index], [leader, follower, snap.meta.index]);
  assert.equal(h.node(leader).raw.raft.tracker.progress.get(follower)!.state, 'snapshot');
  return { h, leader, follower, snapshotIndex: snap.meta.index, held: m };
}

for (const point of ['before', 'after'] as const) {
  test(`FAULTS 15: a follower crashes ${point} saving a snapshot from the leader`, () => {
    const { h, leader, follower, snapshotIndex, held } = followerBehindCompaction(57);
    const f = h.node(follower);
    f.raw.step(held);
    const rd = f.raw.ready();
    assert.equal(rd.snapshot?.meta.index, snapshotIndex);
    if (point === 'after') save(h, follower, rd);
    h.crash(follower);
    h.restart(follower);
    const status = h.node(follower).raw.status();
    if (point === 'after') {
      assert.deepEqual(
        [status.firstIndex, status.applied, status.commit],
        [snapshotIndex + 1, snapshotIndex, snapshotIndex],
      );
      assert.deepEqual(
        machineState(h.node(follower)),
        Array.from({ length: 20 }, (_, i) => `v${i}`),
      );
    } else {
      assert.deepEqual(
        [status.firstIndex, status.lastIndex, h.node(follower).storage.snapshot().meta.index],
        [1, 1, 0],
      );
    }
    // The transport reports how the send ended: it completed only if the follower saved it.
    h.node(leader).raw.reportSnapshot(follower, point === 'after');
    const snapshots: SnapshotRequest[] = [];
    run(h, 3, { onSend: (m) => void (m.type === 'snapshot' && snapshots.push(m)) });
    assert.equal(snapshots.length, point === 'after' ? 0 : 1, 'resent only if it was lost');
    for (const id of ids(h)) {
      assert.deepEqual(machineState(h.node(id)), [
        ...Array.from({ length: 20 }, (_, i) => `v${i}`),
        'tail0',
        'tail1',
        'tail2',
      ]);
    }
  });
}

test('FAULTS 16: in-memory storage refuses out-of-range reads; the log never serves them as data', () => {
  const s = new MemoryStorage();
  s.append(
    Array.from({ length: 10 }, (_, i) => ({
      index: i + 1,
      term: i < 5 ? 1 : 2,
      type: 'normal' as const,
      data: bytes(`e${i + 1}`),
    })),
  );
  const conf = { voters: [1], votersOutgoing: [], learners: [], learnersNext: [], autoLeave: false };
  s.createSnapshotSync(6, conf, bytes('state'));
  s.compactSync(6);
  assert.throws(
    () => s.term(5),
    (e) => isRaftError(e, 'COMPACTED'),
  );
  assert.equal(s.term(6), 2, 'the snapshot index keeps its term');
  assert.throws(
    () => s.term(11),
    (e) => isRaftError(e, 'UNAVAILABLE'),
  );
  assert.throws(
    () => s.entries(6, 8, 1 << 20),
    (e) => isRaftError(e, 'COMPACTED'),
  );
  assert.throws(() => s.entries(7, 12, 1 << 20), AssertionError);
  assert.deepEqual(
    s.entries(7, 11, 1 << 20).map((e) => text(e.data)),
    ['e7', 'e8', 'e9', 'e10'],
  );
  const log = new RaftLog(s, { noTruncateOnConflict: false });
  assert.deepEqual([log.term(5), log.term(6), log.term(11)], [0, 2, 0]);
  assert.equal(log.entriesFrom(6, 1 << 20), undefined, 'compacted: the caller must send a snapshot');
});

test('FAULTS 17: a follower behind compaction gets InstallSnapshot, survives a crash mid-install, restarts from snapshot + tail', () => {
  const { h, leader, follower, snapshotIndex, held } = followerBehindCompaction(61);
  const state = JSON.parse(text(held.snapshot.data)) as string[];
  assert.deepEqual(
    state,
    Array.from({ length: 20 }, (_, i) => `v${i}`),
  );
  assert.deepEqual(held.snapshot.meta.confState.voters, [1, 2, 3]);

  // Crash in the middle of installing: the Ready carrying the snapshot is never saved.
  const f = h.node(follower);
  f.raw.step(held);
  assert.equal(f.raw.ready().snapshot?.meta.index, snapshotIndex);
  h.crash(follower);
  h.restart(follower);
  assert.equal(h.node(follower).storage.snapshot().meta.index, 0);
  h.node(leader).raw.reportSnapshot(follower, false);

  const sent: Message[] = [];
  run(h, 3, { onSend: (m) => void (m.to === follower && sent.push(m)) });
  const resent = sent.filter((m): m is SnapshotRequest => m.type === 'snapshot');
  assert.equal(resent.length, 1);
  assert.equal(resent[0]!.snapshot.meta.index, snapshotIndex);
  const installed = h.node(follower);
  assert.equal(installed.restoredSnapshot?.meta.index, snapshotIndex);
  assert.equal(installed.storage.snapshot().meta.index, snapshotIndex);
  assert.equal(installed.raw.status().firstIndex, snapshotIndex + 1);
  // The entries after the snapshot arrive as appends and are applied on top of it.
  assert.deepEqual(h.appliedText(follower), ['tail0', 'tail1', 'tail2']);
  assert.deepEqual(machineState(installed), machineState(h.node(leader)));

  // More writes, then a crash: the node restarts from its snapshot plus its log tail.
  const current = currentLeader(h)!;
  h.propose(current, 'after');
  run(h, 1);
  const lastIndex = h.node(current).raw.status().lastIndex;
  h.crash(follower);
  h.restart(follower);
  const restarted = h.node(follower);
  const status = restarted.raw.status();
  assert.deepEqual(
    [status.firstIndex, status.applied, status.commit, status.lastIndex],
    [snapshotIndex + 1, snapshotIndex, lastIndex, lastIndex],
  );
  settle(h);
  assert.deepEqual(h.appliedText(follower), ['tail0', 'tail1', 'tail2', 'after']);
  run(h, 2);
  for (const id of ids(h))
    assert.deepEqual(machineState(h.node(id)), [...state, 'tail0', 'tail1', 'tail2', 'after']);
});

test('FAULTS 17: churn with periodic compaction: lagging nodes catch up by snapshot, no acknowledged value lost', () => {
  const h = new Harness({ size: 5, seed: 71 });
  const prng = new Prng(1717);
  const monitor = new SafetyMonitor(h);
  const all = ids(h);
  let snapshotsSent = 0;
  // The runtime reports every snapshot send: done when it reached a live peer over a live link.
  const hooks = monitor.hooks({
    transform: (batch) => {
      for (const m of batch) {
        if (m.type !== 'snapshot') continue;
        snapshotsSent++;
        const ok = !h.node(m.to).down && !h.node(m.from).down && !h.cut.has(`${m.from}->${m.to}`);
        if (!h.node(m.from).down) h.node(m.from).raw.reportSnapshot(m.to, ok);
      }
      return batch;
    },
  });
  const acked = new Set<string>();
  let next = 0;
  for (let round = 0; round < 120; round++) {
    const roll = prng.float();
    const victim = prng.pick(all);
    if (roll < 0.15 && !h.node(victim).down) h.crash(victim);
    else if (roll < 0.35) {
      const down = all.filter((id) => h.node(id).down);
      if (down.length > 0) h.restart(prng.pick(down));
    } else if (roll < 0.5) h.isolate(victim);
    else if (roll < 0.65) h.heal();
    // Every node compacts now and then, as an application with a log size limit would.
    if (round % 7 === 0) {
      for (const id of all) {
        const n = h.node(id);
        if (!n.down && n.raw.status().applied > n.storage.snapshot().meta.index) snapshotAndCompact(h, id);
      }
    }
    for (let t = 0; t < 5; t++) {
      const leader = currentLeader(h);
      if (leader !== undefined) for (let k = 0; k < 2; k++) tryPropose(h, leader, `v${next++}`);
      run(h, 1, hooks);
      monitor.observe();
      for (const id of h.leaders()) for (const v of machineState(h.node(id))) acked.add(v);
    }
  }
  for (const id of all) if (h.node(id).down) h.restart(id);
  h.heal();
  runUntil(h, () => h.leaders().length === 1, 20 * electionTicks, hooks);
  run(h, 5, hooks);
  monitor.observe();
  assert.ok(snapshotsSent > 0, 'no node ever needed a snapshot');
  assert.ok(acked.size > 100, `only ${acked.size} acknowledged values`);
  const reference = machineState(h.node(all[0]!));
  for (const id of all) {
    assert.deepEqual(machineState(h.node(id)), reference, `node ${id} diverged`);
    const present = new Set(machineState(h.node(id)));
    for (const v of acked) assert.ok(present.has(v), `acknowledged ${v} lost on node ${id}`);
  }
});
