/**
 * The follower's step function: it forwards proposals and reads to the leader, and takes the
 * leader's appends (with the consistency check of §5.3), heartbeats and snapshots (§7),
 * answering each with how far its log now matches the leader's.
 */
import { assertNever } from './assert.js';
import { hup } from './election.js';
import { RaftError } from './errors.js';
import type { Raft } from './raft.js';
import { LOCAL } from './step-term.js';
import { entrySizeBytes } from './storage.js';
import { configFromConfState } from './tracker.js';
import type {
  AppendRequest,
  HeartbeatRequest,
  Message,
  NodeId,
  ProposeRequest,
  ReadIndexRequest,
  Snapshot,
  SnapshotRequest,
} from './types.js';
import { PROPOSE_HOPS_MAX } from './types.js';

/** Handles a message as a follower (a candidate hands it everything but its votes). */
export function stepFollower(r: Raft, m: Message): void {
  switch (m.type) {
    case 'propose':
    case 'read-index':
      forwardToLeader(r, m);
      return;
    case 'read-index-response':
      if (m.index > 0) r.readStates.push({ index: m.index, context: m.context });
      return;
    case 'append':
      followLeader(r, m.from);
      handleAppend(r, m);
      return;
    case 'heartbeat':
      followLeader(r, m.from);
      handleHeartbeat(r, m);
      return;
    case 'snapshot':
      followLeader(r, m.from);
      handleSnapshot(r, m);
      return;
    case 'timeout-now':
      // The leader asks us to take over now (leadership transfer), bypassing pre-vote.
      hup(r, true);
      return;
    case 'transfer-leader':
      if (r.leader !== 0) r.send({ ...m, to: r.leader, term: LOCAL });
      return;
    case 'append-response':
    case 'heartbeat-response':
    case 'snapshot-status':
    case 'unreachable':
    case 'vote':
    case 'vote-response':
      return;
    default:
      assertNever(m, 'message');
  }
}

/**
 * Forwards a proposal or read to the leader. A local request that cannot be forwarded is
 * refused with `NOT_LEADER`.
 *
 * A proposal a peer forwarded to us goes on to the leader we know, at most
 * {@link PROPOSE_HOPS_MAX} hops from its origin, so requests cannot loop. That is what a
 * deposed leader does with what was sent to it while it was cut off or stalled, as etcd's
 * followers do. One that arrives while we know no leader (we just stepped down, or an election
 * is on) is held, within {@link HELD_PROPOSALS_MAX} and {@link HELD_PROPOSAL_BYTES_MAX},
 * until we learn the leader (then it goes on) or win ourselves (then we append it): dropping it
 * would leave its client waiting for a timeout. Beyond the bounds it is dropped and its client
 * times out. Forwarding never copies a proposal, so none can be appended twice.
 *
 * A forwarded read is dropped: its sender asks the new leader itself when it learns of it.
 */
function forwardToLeader(r: Raft, m: ProposeRequest | ReadIndexRequest): void {
  const local = m.from === r.id;
  const canForward = r.role === 'follower' && r.leader !== 0 && r.options.forwardProposals;
  if (m.type === 'propose' && m.hops < PROPOSE_HOPS_MAX) {
    if (canForward) {
      r.send({ ...m, from: r.id, to: r.leader, term: LOCAL, hops: m.hops + 1 });
      return;
    }
    if (!local && r.leader === 0 && r.options.forwardProposals) {
      holdProposal(r, m);
      return;
    }
  } else if (m.type === 'read-index' && local && canForward) {
    r.send({ ...m, to: r.leader, term: LOCAL });
    return;
  }
  if (!local) return;
  const what = m.type === 'propose' ? 'accept a proposal' : 'confirm a read';
  throw new RaftError('NOT_LEADER', `node ${r.id} knows no leader to ${what}`, r.leader);
}

/** Proposals a leaderless node holds for its peers, at most. */
export const HELD_PROPOSALS_MAX = 1024;
/** Entry bytes a leaderless node holds for its peers, at most. */
export const HELD_PROPOSAL_BYTES_MAX = 8 * 1024 * 1024;

function holdProposal(r: Raft, m: ProposeRequest): void {
  let bytes = 0;
  for (const e of m.entries) bytes += entrySizeBytes(e);
  if (r.heldProposals.length >= HELD_PROPOSALS_MAX || r.heldProposalBytes + bytes > HELD_PROPOSAL_BYTES_MAX)
    return;
  r.heldProposals.push(m);
  r.heldProposalBytes += bytes;
}

/** Empties the held proposals and returns them, oldest first. */
export function takeHeldProposals(r: Raft): ProposeRequest[] {
  const held = r.heldProposals;
  if (held.length > 0) {
    r.heldProposals = [];
    r.heldProposalBytes = 0;
  }
  return held;
}

/** Forwards the held proposals, if any, to the leader this follower just learned. */
export function releaseHeldProposals(r: Raft): void {
  if (r.heldProposals.length === 0) return;
  for (const m of takeHeldProposals(r)) forwardToLeader(r, m);
}

/** Hearing from the leader of its term restarts the election timer and names the leader. */
function followLeader(r: Raft, leader: NodeId): void {
  r.electionElapsed = 0;
  r.leader = leader;
  r.leaderHeardTick = r.ticks;
  releaseHeldProposals(r);
}

function handleAppend(r: Raft, m: AppendRequest): void {
  if (m.prevLogIndex < r.log.committed) {
    // Everything up to our commit index already matches: say how far.
    sendAppendResponse(r, m.from, false, r.log.committed, 0, 0);
    return;
  }
  const lastNew = r.log.maybeAppend(m.prevLogIndex, m.prevLogTerm, m.commit, m.entries);
  if (lastNew !== undefined) {
    sendAppendResponse(r, m.from, false, lastNew, 0, 0);
    return;
  }
  // Hint the last index whose term is at most the leader's prevLogTerm, so the leader can
  // skip all our entries of a term it does not have.
  const hint = r.log.findConflictByTerm(Math.min(m.prevLogIndex, r.log.lastIndex()), m.prevLogTerm);
  sendAppendResponse(r, m.from, true, m.prevLogIndex, hint.index, hint.term);
}

function sendAppendResponse(
  r: Raft,
  to: NodeId,
  reject: boolean,
  index: number,
  hintIndex: number,
  hintTerm: number,
): void {
  r.send({
    type: 'append-response',
    groupId: r.options.groupId,
    from: r.id,
    to,
    term: r.term,
    reject,
    index,
    hintIndex,
    hintTerm,
  });
}

function handleHeartbeat(r: Raft, m: HeartbeatRequest): void {
  r.log.commitTo(Math.min(m.commit, r.log.lastIndex()));
  r.send({
    type: 'heartbeat-response',
    groupId: r.options.groupId,
    from: r.id,
    to: m.from,
    term: r.term,
    context: m.context,
  });
}

function handleSnapshot(r: Raft, m: SnapshotRequest): void {
  // Either way the answer is how far our log now provably matches the leader's.
  if (restore(r, m.snapshot)) sendAppendResponse(r, m.from, false, r.log.lastIndex(), 0, 0);
  else sendAppendResponse(r, m.from, false, r.log.committed, 0, 0);
}

/** Installs a snapshot from the leader unless our log already covers it. */
function restore(r: Raft, snapshot: Snapshot): boolean {
  const { index, term } = snapshot.meta;
  if (index <= r.log.committed) return false;
  // Entries handed to the application are being applied against the current membership;
  // switching to the snapshot's under them would apply their conf changes twice. The leader
  // sends the snapshot again later.
  if (r.log.applying > r.log.applied) return false;
  if (r.log.matchTerm(index, term)) {
    // Our log already has the snapshot's last entry: just fast-forward the commit index.
    r.log.commitTo(index);
    return false;
  }
  r.log.restore(snapshot);
  r.tracker.applyConfig(configFromConfState(snapshot.meta.confState), r.log.lastIndex() + 1);
  for (const id of snapshot.meta.confState.removed ?? []) r.removed.add(id);
  return true;
}
