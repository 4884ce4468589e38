/**
 * Scripted replication scenarios, FAULTS.md items 6–12: catch-up, no progress without a
 * quorum, fast backtracking, Figure 8, an unreliable network, stale messages, and churn.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type {
  AppendRequest,
  AppendResponse,
  HeartbeatRequest,
  Message,
  NodeId,
  RaftOptions,
} from '../src/raft/index.js';
import { DEFAULT_RAFT_OPTIONS, mutationsFor, Prng } from '../src/raft/index.js';
import { Harness } from '../src/sim/harness.js';
import type { Hooks } from './support/cluster.js';
import {
  commitOf,
  currentLeader,
  ids,
  leadersAmong,
  logOf,
  run,
  runUntil,
  SafetyMonitor,
  settle,
  tickNodes,
  tryPropose,
} from './support/cluster.js';

const electionTicks = DEFAULT_RAFT_OPTIONS.electionTicks;

function termOf(h: Harness, id: NodeId): number {
  return h.node(id).raw.raft.term;
}

/** The fields of an append that matter for replication, for exact comparison. */
function appendShape(m: Message): unknown {
  if (m.type === 'append') {
    return {
      type: m.type,
      from: m.from,
      to: m.to,
      prev: [m.prevLogIndex, m.prevLogTerm],
      entries: m.entries.map((e) => e.index),
      commit: m.commit,
    };
  }
  if (m.type === 'append-response') {
    return {
      type: m.type,
      from: m.from,
      to: m.to,
      reject: m.reject,
      index: m.index,
      hint: [m.hintIndex, m.hintTerm],
    };
  }
  if (m.type === 'heartbeat') return { type: m.type, from: m.from, to: m.to, commit: m.commit };
  return { type: m.type, from: m.from, to: m.to };
}

test('FAULTS 6: a follower disconnected, then reconnected, catches up', () => {
  const h = new Harness({ size: 3, seed: 7 });
  const leader = h.electLeader();
  const term = termOf(h, leader);
  const [follower, other] = ids(h).filter((id) => id !== leader) as [NodeId, NodeId];
  h.isolate(follower);
  for (const v of ['a', 'b', 'c']) h.propose(leader, v);
  assert.equal(commitOf(h, leader), 4, 'no-op plus three entries committed by leader and one follower');
  assert.deepEqual(h.appliedText(other), ['a', 'b', 'c']);
  assert.equal(h.node(follower).raw.raft.log.lastIndex(), 1);
  assert.deepEqual(h.appliedText(follower), []);

  h.heal();
  const sent: Message[] = [];
  run(h, 1, { onSend: (m) => void ((m.to === follower || m.from === follower) && sent.push(m)) });
  // The heartbeat's commit is capped at what the follower is known to match (1). Its answer
  // makes the leader send an empty append at its optimistic next index (5, after the three
  // lost appends); the rejection hints at the follower's last entry, and the next append
  // carries the three missing entries at once.
  assert.deepEqual(sent.map(appendShape), [
    { type: 'heartbeat', from: leader, to: follower, commit: 1 },
    { type: 'heartbeat-response', from: follower, to: leader },
    { type: 'append', from: leader, to: follower, prev: [4, term], entries: [], commit: 4 },
    { type: 'append-response', from: follower, to: leader, reject: true, index: 4, hint: [1, term] },
    { type: 'append', from: leader, to: follower, prev: [1, term], entries: [2, 3, 4], commit: 4 },
    { type: 'append-response', from: follower, to: leader, reject: false, index: 4, hint: [0, 0] },
    // The progress was paused (probing), so the leader resends its commit index, as etcd does.
    { type: 'append', from: leader, to: follower, prev: [4, term], entries: [], commit: 4 },
    { type: 'append-response', from: follower, to: leader, reject: false, index: 4, hint: [0, 0] },
  ]);
  assert.equal(commitOf(h, follower), 4);
  assert.deepEqual(h.appliedText(follower), ['a', 'b', 'c']);
  assert.deepEqual(logOf(h, follower), logOf(h, leader));
  assert.equal(h.node(leader).raw.raft.tracker.progress.get(follower)!.matchIndex, 4);
});

test('FAULTS 6: a follower that missed more than a whole in-flight window of appends still catches up', () => {
  const h = new Harness({ size: 3, seed: 7, raft: { inflightMessagesMax: 8 } });
  const leader = h.electLeader();
  const [follower] = ids(h).filter((id) => id !== leader) as [NodeId];
  h.isolate(follower);
  for (let i = 0; i < 20; i++) h.propose(leader, `v${i}`);
  const pr = h.node(leader).raw.raft.tracker.progress.get(follower)!;
  assert.deepEqual([pr.state, pr.inflights.length, pr.inflights.full()], ['replicate', 8, true]);

  h.heal();
  run(h, 3);
  assert.deepEqual(
    h.appliedText(follower),
    Array.from({ length: 20 }, (_, i) => `v${i}`),
  );
  assert.deepEqual([pr.state, pr.matchIndex, pr.inflights.length], ['replicate', 21, 0]);
});

test('FAULTS 6: a caught-up follower reported unreachable goes back to replicate once it answers (etcd-io/raft#52)', () => {
  const h = new Harness({ size: 3, seed: 7 });
  const leader = h.electLeader();
  const [follower] = ids(h).filter((id) => id !== leader) as [NodeId];
  h.propose(leader, 'a');
  const pr = () => h.node(leader).raw.raft.tracker.progress.get(follower)!;
  assert.equal(pr().state, 'replicate');
  // A transport hiccup: the runtime reports the follower unreachable, then the link works again.
  h.node(leader).raw.reportUnreachable(follower);
  assert.equal(pr().state, 'probe');

  const appends: AppendRequest[] = [];
  const hooks: Hooks = { onSend: (m) => void (m.type === 'append' && m.to === follower && appends.push(m)) };
  // The first heartbeat answer triggers an empty probe at the follower's match; its answer
  // proves the follower is caught up, so the leader must stream to it again rather than keep
  // probing (one redundant append per heartbeat, new entries held back until a heartbeat).
  run(h, 1, hooks);
  assert.ok(appends.length > 0);
  assert.ok(appends.every((m) => m.entries.length === 0 && m.prevLogIndex === 2));
  appends.length = 0;
  run(h, 4, hooks);
  assert.equal(appends.length, 0, `${appends.length} more empty probes to an idle, caught-up follower`);
  assert.equal(pr().state, 'replicate');
  h.propose(leader, 'b');
  assert.deepEqual(h.appliedText(follower), ['a', 'b'], 'a new entry reaches the follower at once');
});

test('FAULTS 7: three of five disconnected: nothing commits; after healing progress resumes', () => {
  const h = new Harness({ size: 5, seed: 5 });
  const monitor = new SafetyMonitor(h);
  const hooks = monitor.hooks();
  const leader = h.electLeader();
  h.propose(leader, 'before');
  const term = termOf(h, leader);
  const followers = ids(h).filter((id) => id !== leader);
  const cut = followers.slice(0, 3);
  for (const id of cut) h.isolate(id);

  assert.ok(tryPropose(h, leader, 'no-quorum'));
  settle(h, hooks);
  const committed = commitOf(h, leader);
  assert.equal(committed, 2);
  assert.equal(h.node(leader).raw.raft.log.lastIndex(), 3, 'appended on the leader, not committed');
  // Many election timeouts: nobody commits, nobody can win, and pre-vote keeps every term.
  for (let i = 0; i < 10 * electionTicks; i++) {
    run(h, 1, hooks);
    monitor.observe();
    for (const id of ids(h)) assert.equal(commitOf(h, id), committed);
  }
  assert.deepEqual(h.leaders(), [], 'check-quorum made the minority leader step down');
  for (const id of ids(h)) {
    assert.equal(termOf(h, id), term);
    assert.deepEqual(h.appliedText(id), ['before']);
  }

  h.heal();
  runUntil(h, () => h.leaders().length === 1, 10 * electionTicks, hooks);
  const next = h.leaders()[0]!;
  h.propose(next, 'after');
  run(h, 2, hooks);
  monitor.observe();
  // The unacknowledged entry may or may not survive (it depends on who won); everyone agrees.
  const applied = h.appliedText(next);
  assert.ok(
    JSON.stringify(applied) === JSON.stringify(['before', 'no-quorum', 'after']) ||
      JSON.stringify(applied) === JSON.stringify(['before', 'after']),
    `unexpected applied sequence ${JSON.stringify(applied)}`,
  );
  for (const id of ids(h)) {
    assert.deepEqual(h.appliedText(id), applied);
    assert.equal(commitOf(h, id), commitOf(h, next));
  }
});

test('FAULTS 8: an old leader with 50+ uncommitted entries rejoins; conflicts are replaced quickly', () => {
  const h = new Harness({ size: 5, seed: 3 });
  const monitor = new SafetyMonitor(h);
  const hooks = monitor.hooks();
  const old = h.electLeader();
  h.propose(old, 'base');
  const common = h.node(old).raw.raft.log.lastIndex();
  const [buddy, ...majority] = ids(h).filter((id) => id !== old) as [NodeId, ...NodeId[]];
  h.isolate(old, majority);
  h.isolate(buddy, majority);

  // 50 entries reach the old leader and its buddy only: they can never commit.
  for (let i = 0; i < 50; i++) assert.ok(tryPropose(h, old, `old-${i}`));
  settle(h, hooks);
  for (const id of [old, buddy]) assert.equal(h.node(id).raw.raft.log.lastIndex(), common + 50);
  assert.equal(commitOf(h, old), common);

  // The majority elects a leader and commits 60 entries of its own, then changes leader again
  // (the first one crashes and restarts), so the final leader's next index for the stale
  // nodes lies far beyond their logs.
  runUntil(h, () => leadersAmong(h, majority).length === 1, 10 * electionTicks, hooks);
  const first = leadersAmong(h, majority)[0]!;
  for (let i = 0; i < 60; i++) assert.ok(tryPropose(h, first, `new-${i}`));
  settle(h, hooks);
  h.crash(first);
  h.restart(first);
  runUntil(h, () => leadersAmong(h, majority).length === 1, 10 * electionTicks, hooks);
  const leader = leadersAmong(h, majority)[0]!;
  const leaderLast = h.node(leader).raw.raft.log.lastIndex();
  assert.equal(leaderLast, common + 62, 'two no-ops and 60 entries');
  assert.equal(commitOf(h, leader), leaderLast);

  // Heal and count every append and every rejection exchanged with the stale nodes.
  h.heal();
  const appendsTo = new Map<NodeId, number>([
    [old, 0],
    [buddy, 0],
  ]);
  const rejections: AppendResponse[] = [];
  const counting = monitor.hooks({
    onSend: (m) => {
      if (m.type === 'append' && appendsTo.has(m.to)) appendsTo.set(m.to, appendsTo.get(m.to)! + 1);
      if (m.type === 'append-response' && m.reject) rejections.push(m);
    },
  });
  run(h, 3, counting);
  monitor.observe();

  // One rejection per stale node: its hint (last index of a term <= the probe's) lets the
  // leader jump straight back to the last common entry, instead of 62 round trips each.
  assert.equal(rejections.length, 2);
  for (const r of rejections) {
    assert.ok(r.from === old || r.from === buddy);
    assert.equal(r.index, leaderLast - 1, 'the probe was at the leader last index before its no-op');
    assert.equal(r.hintIndex, common + 50, 'hint: the stale last entry');
  }
  for (const [id, count] of appendsTo) assert.ok(count <= 6, `${count} appends to node ${id}`);
  for (const id of [old, buddy]) {
    assert.deepEqual(logOf(h, id), logOf(h, leader));
    const applied = h.appliedText(id);
    assert.equal(applied.length, 61);
    assert.ok(
      applied.every((v) => !v.startsWith('old-')),
      'no uncommitted entry of the old leader applied',
    );
  }
});

/** Harness options for Figure 8: plain elections driven by hand, no pre-vote and no lease. */
const figure8Options: Partial<RaftOptions> = { preVote: false, checkQuorum: false };

/** Campaigns on `id` until it wins (a rejection may first teach it a higher term). */
function campaignUntilLeader(h: Harness, id: NodeId, hooks: Hooks = {}): void {
  for (let attempt = 0; attempt < 4 && h.node(id).raw.raft.role !== 'leader'; attempt++) {
    h.node(id).raw.campaign();
    settle(h, hooks);
  }
  assert.equal(h.node(id).raw.raft.role, 'leader', `node ${id} did not win`);
}

/** Removes the sender's current-term entries from appends: they are "not yet replicated". */
function stripCurrentTerm(batch: Message[]): Message[] {
  return batch.map((m) =>
    m.type === 'append' ? { ...m, entries: m.entries.filter((e) => e.term < m.term) } : m,
  );
}

/**
 * Builds Figure 8 (c) of the Raft paper on five nodes:
 *   S1 (term 1) replicates index 3 ('b') to S2 only, then crashes;
 *   S5 wins term 2 with S3, S4 and appends index 3 and 4 ('c') locally, then crashes;
 *   S1 restarts and wins term 3, replicating its term-1 entry at index 3 to S2, S3, S4
 *   but not yet its own term-3 no-op at index 4.
 */
function buildFigure8(raft: Partial<RaftOptions>): Harness {
  const h = new Harness({ size: 5, seed: 8, raft: { ...figure8Options, ...raft } });
  campaignUntilLeader(h, 1);
  h.propose(1, 'a');
  h.isolate(1, [3, 4, 5]);
  h.propose(1, 'b');
  assert.deepEqual(logOf(h, 2), logOf(h, 1));
  assert.deepEqual(logOf(h, 1).at(-1), [3, 1, 'b']);
  assert.equal(commitOf(h, 1), 2);

  h.crash(1);
  h.heal();
  const dropEntries: Hooks = {
    transform: (b) => b.filter((m) => m.type !== 'append' || m.entries.length === 0),
  };
  campaignUntilLeader(h, 5, dropEntries);
  assert.equal(termOf(h, 5), 2);
  assert.ok(tryPropose(h, 5, 'c'));
  settle(h, dropEntries);
  assert.deepEqual(logOf(h, 5).slice(2), [
    [3, 2, ''],
    [4, 2, 'c'],
  ]);
  for (const id of [3, 4]) assert.equal(h.node(id).raw.raft.log.lastIndex(), 2);

  h.crash(5);
  h.restart(1);
  campaignUntilLeader(h, 1, { transform: stripCurrentTerm });
  assert.equal(termOf(h, 1), 3);
  run(h, 2, { transform: stripCurrentTerm });
  return h;
}

test('FAULTS 9: Figure 8: an entry of a prior term on a majority is not committed by counting replicas', () => {
  const h = buildFigure8({});
  // Index 3 (term 1) is now on S1, S2, S3, S4 — four of five — and the leader knows it.
  for (const id of [1, 2, 3, 4]) assert.deepEqual(logOf(h, id)[2], [3, 1, 'b']);
  const progress = h.node(1).raw.raft.tracker.progress;
  for (const id of [2, 3, 4]) assert.equal(progress.get(id)!.matchIndex, 3);
  assert.deepEqual(logOf(h, 1)[3], [4, 3, '']);
  // ... and still it is not committed: only an entry of the leader's own term can be.
  for (const id of [1, 2, 3, 4]) {
    assert.equal(commitOf(h, id), 2);
    assert.deepEqual(h.appliedText(id), ['a']);
  }

  // (d) S1 crashes before its term-3 entry spreads; S5 can still win (its last term, 2, is
  // newer than theirs) and overwrites index 3 — which is why counting replicas was unsafe.
  h.crash(1);
  h.restart(5);
  campaignUntilLeader(h, 5);
  assert.equal(termOf(h, 5), 4);
  run(h, 2);
  for (const id of [2, 3, 4, 5]) {
    assert.deepEqual(logOf(h, id).slice(2, 4), [
      [3, 2, ''],
      [4, 2, 'c'],
    ]);
    assert.deepEqual(h.appliedText(id), ['a', 'c']);
  }
});

test('FAULTS 9: Figure 8 (e): the prior-term entry commits together with an entry of the current term', () => {
  const h = buildFigure8({});
  // S1 stays up and its no-op of term 3 reaches the others: now both indexes commit.
  run(h, 3);
  for (const id of [1, 2, 3, 4]) {
    assert.equal(commitOf(h, id), 4);
    assert.deepEqual(logOf(h, id).slice(2), [
      [3, 1, 'b'],
      [4, 3, ''],
    ]);
    assert.deepEqual(h.appliedText(id), ['a', 'b']);
  }
});

test('FAULTS 9: Figure 8 with the commit-prior-term mutation commits by counting replicas (checker sanity)', () => {
  const h = buildFigure8({ mutations: mutationsFor('commit-prior-term') });
  assert.equal(commitOf(h, 1), 3, 'the deliberate bug commits index 3 of term 1');
});

test('FAULTS 10: unreliable network (drops, duplicates, long reordering): all nodes apply the same', () => {
  const h = new Harness({ size: 5, seed: 21 });
  const prng = new Prng(77);
  const monitor = new SafetyMonitor(h);
  let now = 0;
  let chaos = true;
  let dropped = 0;
  let duplicated = 0;
  let delayedCount = 0;
  const delayed: { due: number; m: Message }[] = [];
  const transform = (batch: Message[]): Message[] => {
    if (!chaos) return batch;
    const out: Message[] = [];
    for (const m of batch) {
      if (prng.chance(0.1)) {
        dropped++;
        continue;
      }
      if (prng.chance(0.1)) {
        delayedCount++;
        delayed.push({ due: now + prng.range(1, 3 * electionTicks), m });
      } else out.push(m);
      if (prng.chance(0.05)) {
        duplicated++;
        out.push(m);
      }
    }
    // Reorder within the batch (Fisher–Yates with the seeded generator).
    for (let i = out.length - 1; i > 0; i--) {
      const j = prng.int(i + 1);
      [out[i], out[j]] = [out[j]!, out[i]!];
    }
    return out;
  };
  const hooks = monitor.hooks({ transform });
  const releaseDue = (all: boolean): void => {
    for (let i = delayed.length - 1; i >= 0; i--) {
      if (all || delayed[i]!.due <= now) {
        h.queue.push(delayed[i]!.m);
        delayed.splice(i, 1);
      }
    }
  };

  const proposedAt = new Map<string, number>();
  const acked = new Set<string>();
  let proposals = 0;
  let next = 0;
  const client = (): void => {
    for (const id of ids(h)) for (const v of h.appliedText(id)) acked.add(v);
    const leader = currentLeader(h);
    if (leader === undefined) return;
    // A new value every other tick; unacknowledged values are retried after a while.
    if (now % 2 === 0 && next < 120 && tryPropose(h, leader, `v${next}`)) {
      proposedAt.set(`v${next++}`, now);
      proposals++;
    }
    for (const [v, at] of proposedAt) {
      if (!acked.has(v) && now - at > 4 * electionTicks && tryPropose(h, leader, v)) {
        proposedAt.set(v, now);
        proposals++;
      }
    }
  };

  for (now = 0; now < 400; now++) {
    releaseDue(false);
    tickNodes(h);
    client();
    settle(h, hooks);
    monitor.observe();
  }
  assert.ok(
    dropped > 100 && duplicated > 20 && delayedCount > 100,
    `${dropped}/${duplicated}/${delayedCount}`,
  );

  // Heal: the long-delayed messages arrive last, then the clients retry until all is acknowledged.
  chaos = false;
  releaseDue(true);
  for (; now < 1000 && acked.size < next; now++) {
    tickNodes(h);
    client();
    settle(h, hooks);
    monitor.observe();
  }
  run(h, 3, hooks);
  monitor.observe();
  assert.equal(next, 120);
  assert.equal(acked.size, 120, 'every proposal was eventually acknowledged');
  const reference = h.node(1).applied.map((e) => [e.index, e.term, Buffer.from(e.data).toString()]);
  for (const id of ids(h)) {
    assert.deepEqual(
      h.node(id).applied.map((e) => [e.index, e.term, Buffer.from(e.data).toString()]),
      reference,
      `node ${id} applied a different sequence`,
    );
  }
  // Retries may apply a value twice, never more often than it was proposed.
  assert.ok(h.appliedText(1).length <= proposals);
});

test('FAULTS 11: a stale, reordered append never truncates acknowledged entries', () => {
  const h = new Harness({ size: 3, seed: 4 });
  const leader = h.electLeader();
  const [follower] = ids(h).filter((id) => id !== leader) as [NodeId];
  const held: AppendRequest[] = [];
  for (const v of ['a', 'b', 'c']) assert.ok(tryPropose(h, leader, v));
  // Hold the three appends to `follower`, then deliver them in order, then the first again.
  settle(h, {
    transform: (b) =>
      b.filter((m) => {
        if (m.type === 'append' && m.to === follower && m.entries.length > 0) {
          held.push(m);
          return false;
        }
        return true;
      }),
  });
  // Three streamed appends, then (after the commit broadcast found the follower behind) a
  // probe resending all three entries with the new commit index.
  assert.deepEqual(
    held.map((m) => [m.prevLogIndex, m.entries.map((e) => e.index), m.commit]),
    [
      [1, [2], 1],
      [2, [3], 1],
      [3, [4], 1],
      [1, [2, 3, 4], 4],
    ],
  );
  assert.equal(commitOf(h, leader), 4, 'committed with the other follower');
  // In order, then the first one again (a late duplicate), before the follower hears of any
  // commit: it keeps entries 3 and 4 (they match; nothing conflicts) and acknowledges only
  // what the stale message proves (index 2).
  for (const m of held.slice(0, 3)) h.deliver(m);
  const acknowledged = logOf(h, follower);
  assert.deepEqual(
    acknowledged.map(([i]) => i),
    [1, 2, 3, 4],
  );
  h.deliver(held[0]!);
  assert.deepEqual(logOf(h, follower), acknowledged, 'the late duplicate truncated the log');
  const replies: AppendResponse[] = [];
  settle(h, { onSend: (m) => void (m.type === 'append-response' && m.from === follower && replies.push(m)) });
  assert.deepEqual(
    replies.slice(0, 4).map((m) => [m.reject, m.index]),
    [
      [false, 2],
      [false, 3],
      [false, 4],
      [false, 2],
    ],
  );
  assert.equal(h.node(leader).raw.raft.tracker.progress.get(follower)!.matchIndex, 4, 'stale ack ignored');
  assert.equal(commitOf(h, follower), 4);

  // Once the follower has committed, a stale append below its commit index is answered with
  // the commit index and changes nothing.
  replies.length = 0;
  h.deliver(held[0]!);
  settle(h, { onSend: (m) => void (m.type === 'append-response' && m.from === follower && replies.push(m)) });
  assert.deepEqual(
    replies.map((m) => [m.reject, m.index]),
    [[false, 4]],
  );
  assert.deepEqual(
    logOf(h, follower).map(([i, , d]) => [i, d]),
    [
      [1, ''],
      [2, 'a'],
      [3, 'b'],
      [4, 'c'],
    ],
  );
  assert.equal(h.node(leader).raw.raft.tracker.progress.get(follower)!.matchIndex, 4);
  run(h, 1);
  assert.deepEqual(h.appliedText(follower), ['a', 'b', 'c']);
});

test("FAULTS 11: heartbeats and empty appends never move a follower's commit past its matched log", () => {
  // Five nodes: `stale` receives three entries from the old leader that never commit, then the
  // new leader commits different entries; `stale` sees only heartbeats and empty appends.
  const h = new Harness({ size: 5, seed: 6 });
  const old = h.electLeader();
  const [stale, ...rest] = ids(h).filter((id) => id !== old) as [NodeId, ...NodeId[]];
  h.isolate(old, rest);
  h.cut.add(`${stale}->${old}`);
  for (const v of ['x1', 'x2', 'x3']) h.propose(old, v);
  assert.equal(h.node(stale).raw.raft.log.lastIndex(), 4);
  assert.equal(commitOf(h, stale), 1);
  const oldTerm = termOf(h, old);
  // Keep one heartbeat of the old leader to replay later.
  let oldHeartbeat: HeartbeatRequest | undefined;
  run(h, 1, {
    onSend: (m) => {
      if (m.type === 'heartbeat' && m.to === stale) oldHeartbeat = m;
    },
  });
  assert.ok(oldHeartbeat !== undefined);

  h.heal();
  h.isolate(old);
  // `stale` may not campaign (its longer log could win), and its appends arrive emptied.
  const emptyAppendsOnly: Hooks = {
    transform: (b) =>
      b
        .filter((m) => !(m.type === 'vote' && m.from === stale))
        .map((m) => (m.type === 'append' && m.to === stale ? { ...m, entries: [] } : m)),
  };
  runUntil(h, () => leadersAmong(h, rest).length === 1, 10 * electionTicks, emptyAppendsOnly);
  const leader = leadersAmong(h, rest)[0]!;
  for (const v of ['y1', 'y2', 'y3', 'y4', 'y5']) assert.ok(tryPropose(h, leader, v));
  const toStale: Message[] = [];
  const watch: Hooks = { ...emptyAppendsOnly, onSend: (m) => void (m.to === stale && toStale.push(m)) };
  run(h, 2 * electionTicks, watch);
  const leaderCommit = commitOf(h, leader);
  assert.equal(leaderCommit, 7, 'no-op of the new term plus five entries');
  assert.equal(h.node(leader).raw.raft.tracker.progress.get(stale)!.matchIndex, 1);

  // The leader's appends (emptied) carry commit 7 and its heartbeats at most the match (1):
  // the stale follower's commit stays at the last entry it provably shares with the leader.
  assert.ok(toStale.some((m) => m.type === 'append' && m.commit === leaderCommit));
  for (const m of toStale)
    if (m.type === 'heartbeat') assert.ok(m.commit <= 1, `heartbeat commit ${m.commit}`);
  assert.equal(commitOf(h, stale), 1);
  assert.deepEqual(h.appliedText(stale), []);
  assert.deepEqual(logOf(h, stale).slice(1), [
    [2, oldTerm, 'x1'],
    [3, oldTerm, 'x2'],
    [4, oldTerm, 'x3'],
  ]);

  // A heartbeat of the old term, arriving late, changes nothing; the answer teaches its
  // sender the current term.
  const replies: Message[] = [];
  h.node(stale).raw.step(oldHeartbeat);
  settle(h, { onSend: (m) => void replies.push(m) });
  assert.deepEqual(
    replies.map((m) => [m.type, m.from, m.to, m.term]),
    [['append-response', stale, old, termOf(h, leader)]],
  );
  assert.equal(h.node(stale).raw.raft.leader, leader);
  assert.equal(commitOf(h, stale), 1);

  // Once real appends flow, the conflicting entries are replaced and the new ones applied.
  run(h, 2);
  assert.deepEqual(h.appliedText(stale), ['y1', 'y2', 'y3', 'y4', 'y5']);
  assert.deepEqual(logOf(h, stale), logOf(h, leader));
});

test('FAULTS 12: churn: random crash, restart and disconnect under load loses no acknowledged value', () => {
  const h = new Harness({ size: 5, seed: 12 });
  const prng = new Prng(1212);
  const monitor = new SafetyMonitor(h);
  const hooks = monitor.hooks();
  const all = ids(h);
  const acked = new Set<string>();
  let next = 0;
  let crashes = 0;
  let restarts = 0;
  for (let round = 0; round < 150; round++) {
    const roll = prng.float();
    const victim = prng.pick(all);
    if (roll < 0.2 && !h.node(victim).down) {
      h.crash(victim);
      crashes++;
    } else if (roll < 0.45) {
      const down = all.filter((id) => h.node(id).down);
      if (down.length > 0) {
        h.restart(prng.pick(down));
        restarts++;
      }
    } else if (roll < 0.6) h.isolate(victim);
    else if (roll < 0.75) h.heal();
    for (let t = 0; t < 5; t++) {
      const leader = currentLeader(h);
      if (leader !== undefined) for (let k = 0; k < 2; k++) tryPropose(h, leader, `v${next++}`);
      run(h, 1, hooks);
      monitor.observe();
      // A value is acknowledged once the leader that took it has applied it.
      for (const id of h.leaders()) for (const v of h.appliedText(id)) acked.add(v);
    }
  }
  assert.ok(crashes > 10 && restarts > 10, `${crashes} crashes, ${restarts} restarts`);

  for (const id of all) if (h.node(id).down) h.restart(id);
  h.heal();
  runUntil(h, () => h.leaders().length === 1, 20 * electionTicks, hooks);
  run(h, 3, hooks);
  monitor.observe();
  assert.ok(acked.size > 100, `only ${acked.size} acknowledged values`);
  const reference = h.appliedText(all[0]!);
  for (const id of all) {
    assert.deepEqual(h.appliedText(id), reference);
    const present = new Set(h.appliedText(id));
    for (const v of acked) assert.ok(present.has(v), `acknowledged ${v} lost on node ${id}`);
  }
});
