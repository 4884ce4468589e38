/**
 * Log replication on the leader (§5.3, §5.4.2, §7): stamping and appending its own entries,
 * sending each follower appends, or a snapshot when the entries it needs are compacted, within
 * its flow control; handling the answers with fast backtracking; advancing the commit index.
 */
import { assert } from './assert.js';
import { RaftError } from './errors.js';
import type { Progress } from './progress.js';
import type { Raft } from './raft.js';
import { ackHeartbeatRound, onCommitInTerm } from './read-index.js';
import { entrySizeBytes } from './storage.js';
import type {
  AppendRequest,
  AppendResponse,
  Entry,
  HeartbeatResponse,
  NodeId,
  SnapshotRequest,
} from './types.js';

/** Assigns term and index to new entries and appends them to the leader's log. */
export function appendEntries(r: Raft, entries: readonly Entry[]): void {
  const lead = r.leaderState;
  let bytes = 0;
  for (const e of entries) bytes += entrySizeBytes(e);
  const max = r.options.uncommittedBytesMax;
  if (max > 0 && lead.uncommittedBytes > 0 && lead.uncommittedBytes + bytes > max) {
    throw new RaftError('PROPOSAL_DROPPED', `too many uncommitted bytes (${lead.uncommittedBytes})`);
  }
  lead.uncommittedBytes += bytes;
  let index = r.log.lastIndex();
  const stamped = entries.map((e) => ({ index: ++index, term: r.term, type: e.type, data: e.data }));
  r.log.append(stamped);
  // The leader's own acknowledgement comes from `persisted`, once the write is durable.
}

/** Sends appends to every follower that has something to receive. */
export function broadcastAppend(r: Raft): void {
  for (const id of r.tracker.progress.keys()) if (id !== r.id) maybeSendAppend(r, id, true);
}

/**
 * Sends the next append (or a snapshot) to `to`, unless its progress is paused. Sends an
 * empty append only when `sendIfEmpty` (to carry a commit index or probe). Returns
 * whether a message was sent.
 */
export function maybeSendAppend(r: Raft, to: NodeId, sendIfEmpty: boolean): boolean {
  const pr = r.tracker.progress.get(to);
  if (pr === undefined || pr.isPaused()) return false;
  const prevLogIndex = pr.nextIndex - 1;
  const prevLogTerm = r.log.term(prevLogIndex);
  const entries = r.log.entriesFrom(pr.nextIndex, r.options.appendBytesMax);
  if (entries === undefined || (prevLogTerm === 0 && prevLogIndex > 0)) return sendSnapshot(r, to, pr);
  if (entries.length === 0 && !sendIfEmpty) return false;
  let bytes = 0;
  for (const e of entries) bytes += entrySizeBytes(e);
  const message: AppendRequest = {
    type: 'append',
    groupId: r.options.groupId,
    from: r.id,
    to,
    term: r.term,
    prevLogIndex,
    prevLogTerm,
    entries,
    commit: r.log.committed,
  };
  r.send(message);
  pr.sentEntries(prevLogIndex + entries.length, entries.length, bytes);
  return true;
}

function sendSnapshot(r: Raft, to: NodeId, pr: Progress): boolean {
  // Snapshots are expensive: only send to a peer we have recently heard from.
  if (!pr.recentActive) return false;
  const snapshot = r.log.snapshot();
  assert(snapshot.meta.index > 0, `follower ${to} needs a snapshot but none exists`);
  const message: SnapshotRequest = {
    type: 'snapshot',
    groupId: r.options.groupId,
    from: r.id,
    to,
    term: r.term,
    snapshot,
  };
  r.send(message);
  pr.becomeSnapshot(snapshot.meta.index);
  return true;
}

/**
 * Handles a follower's answer to an append or snapshot. Returns whether it moved the
 * follower's progress on (or proved a probed follower caught up).
 */
export function handleAppendResponse(r: Raft, m: AppendResponse): boolean {
  const pr = r.tracker.progress.get(m.from);
  if (pr === undefined) return false;
  pr.recentActive = true;
  if (m.reject) {
    // Skip a whole term of conflicting entries per round trip (§5.3, fast backtracking).
    let hint = m.hintIndex;
    if (m.hintTerm > 0) hint = r.log.findConflictByTerm(m.hintIndex, m.hintTerm).index;
    if (pr.maybeDecrTo(m.index, hint)) {
      if (pr.state === 'replicate') pr.becomeProbe();
      maybeSendAppend(r, m.from, true);
    }
    return false;
  }
  const wasPaused = pr.isPaused();
  // A probe answered exactly at the known match proves the follower is caught up: stop
  // probing too, or an idle follower stays in probe state forever (an empty append per
  // heartbeat, new entries held back until the next heartbeat answer), etcd-io/raft#52.
  const caughtUpProbe = pr.state === 'probe' && m.index === pr.matchIndex;
  if (!pr.maybeUpdate(m.index) && !caughtUpProbe) return false;
  if (pr.state === 'probe') pr.becomeReplicate();
  else if (pr.state === 'snapshot' && pr.matchIndex + 1 >= r.log.firstIndex()) {
    pr.becomeProbe();
    pr.becomeReplicate();
  } else if (pr.state === 'replicate') pr.inflights.freeLE(m.index);
  if (maybeCommitAndBroadcast(r)) {
    // Every follower was just sent the new commit index.
  } else if (wasPaused) {
    maybeSendAppend(r, m.from, true);
  }
  // Stream as much as the window allows.
  while (maybeSendAppend(r, m.from, false)) {}
  return true;
}

/** Moves the commit index if a quorum matches more; on success tells everyone. */
export function maybeCommitAndBroadcast(r: Raft): boolean {
  const committed = quorumCommitted(r);
  const before = r.log.committed;
  if (!r.log.maybeCommit(committed, r.term, r.options.mutations.commitPriorTerm)) return false;
  releaseUncommitted(r, before);
  onCommitInTerm(r);
  broadcastAppend(r);
  return true;
}

function quorumCommitted(r: Raft): number {
  if (!r.options.mutations.noJointQuorum) return r.tracker.committed();
  // Deliberate bug: decide with the incoming half of a joint configuration only.
  const incoming = { incoming: r.tracker.config.voters.incoming, outgoing: new Set<NodeId>() };
  const saved = r.tracker.config;
  r.tracker.config = { ...saved, voters: incoming };
  const result = r.tracker.committed();
  r.tracker.config = saved;
  return result;
}

function releaseUncommitted(r: Raft, before: number): void {
  const lead = r.leaderState;
  if (lead.uncommittedBytes === 0) return;
  const entries = r.log.slice(
    Math.max(before + 1, r.log.firstIndex()),
    r.log.committed + 1,
    Number.MAX_SAFE_INTEGER,
  );
  for (const e of entries) lead.uncommittedBytes = Math.max(0, lead.uncommittedBytes - entrySizeBytes(e));
}

/**
 * A follower answered a heartbeat: it is active, may take more entries (or a probe), and its
 * answer counts towards the heartbeat round that confirms reads and renews the lease.
 */
export function handleHeartbeatResponse(r: Raft, m: HeartbeatResponse): void {
  const pr = r.tracker.progress.get(m.from);
  if (pr === undefined) return;
  pr.recentActive = true;
  pr.probeSent = false;
  if (pr.state === 'replicate' && pr.inflights.full()) pr.inflights.freeFirstOne();
  if (pr.matchIndex < r.log.lastIndex() || pr.state === 'probe') maybeSendAppend(r, m.from, true);
  ackHeartbeatRound(r, m.from, m.context);
}

/** The runtime finished sending a snapshot to `from` (`reject` when it failed). */
export function handleSnapshotStatus(r: Raft, from: NodeId, reject: boolean): void {
  const pr = r.tracker.progress.get(from);
  if (pr === undefined || pr.state !== 'snapshot') return;
  if (reject) pr.pendingSnapshot = 0;
  pr.becomeProbe();
  // Wait for the next heartbeat response before probing: the peer may still be busy.
  pr.probeSent = true;
}
