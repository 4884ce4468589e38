/**
 * Linearizable reads on the leader: ReadIndex (thesis §6.4), held until the leader has
 * committed an entry of its term and then confirmed by a heartbeat round; lease reads,
 * answered at once while a quorum answered recently enough; and the heartbeat rounds that
 * confirm both. The queue of reads waiting for a round is read-only.ts.
 */
import { jointActive, jointCommitted, majorityActive } from './quorum.js';
import type { Raft } from './raft.js';
import type { ReadRequest } from './read-only.js';
import { decodeRoundId, encodeRoundId } from './read-only.js';
import type { HeartbeatRequest, NodeId } from './types.js';

/** Handles a read on the leader: released at once, held, or queued for a heartbeat round. */
export function leaderReadIndex(r: Raft, request: ReadRequest): void {
  if (r.options.mutations.staleLeaderRead) {
    // Deliberate bug: answer from local state without confirming leadership.
    releaseRead(r, request);
    return;
  }
  // Until this leader commits an entry of its own term it does not know the latest commit
  // index (§6.4): hold the read.
  if (r.log.term(r.log.committed) !== r.term) {
    r.leaderState.readsAwaitingCommit.push(request);
    return;
  }
  if (
    isQuorum(r, new Set([r.id])) ||
    r.options.mutations.readIndexNoHeartbeat ||
    (r.options.readOnly === 'lease-based' && inLease(r))
  ) {
    releaseRead(r, request);
    return;
  }
  r.leaderState.readOnly.add(request);
}

/**
 * The index a read may be served at on this leader without a heartbeat round (a lease read,
 * thesis §6.4.1): the commit index while it holds a lease (see `inLease`) or is the only
 * voter, once it has committed an entry of its term. Undefined otherwise — not the leader,
 * check-quorum off (followers then promise nothing), a transfer in progress, no lease — and
 * the caller falls back to ReadIndex.
 */
export function leaseReadIndex(r: Raft): number | undefined {
  if (r.role !== 'leader' || !r.options.checkQuorum) return undefined;
  if (r.log.term(r.log.committed) !== r.term) return undefined;
  if (!isQuorum(r, new Set([r.id])) && !inLease(r)) return undefined;
  return r.log.committed;
}

/** Once the leader has committed an entry of its term, the reads held for it go ahead. */
export function onCommitInTerm(r: Raft): void {
  const lead = r.leaderState;
  if (lead.readsAwaitingCommit.length === 0 || r.log.term(r.log.committed) !== r.term) return;
  const waiting = lead.readsAwaitingCommit;
  lead.readsAwaitingCommit = [];
  for (const request of waiting) leaderReadIndex(r, { ...request, index: r.log.committed });
}

/** Starts one heartbeat round for every read queued since the last one (batching). */
export function flushReads(r: Raft): void {
  if (r.role !== 'leader' || !r.leaderState.readOnly.hasUnsent()) return;
  r.leaderState.readOnly.startRound(r.id, broadcastHeartbeat(r));
}

/** Whether reads wait for a heartbeat round to be started. */
export function hasUnsentReads(r: Raft): boolean {
  return r.role === 'leader' && r.leaderState.readOnly.hasUnsent();
}

/**
 * Whether this leader holds a lease: a quorum answered a heartbeat round sent less than
 * `electionTicks - 1 - leaseDriftTicks` ticks ago. Followers promise not to vote for another
 * leader within `electionTicks` of their ticks after hearing from us (the leader lease of
 * `stepHigherTerm`); one tick is lost to tick granularity, and `leaseDriftTicks` to clocks
 * that may run faster than ours. A paused process must catch up its ticks before serving:
 * the runtime delivers missed ticks before any other input.
 */
function inLease(r: Raft): boolean {
  if (r.leadTransferee !== 0) return false;
  const floor = r.leaseFloorTick;
  const acks = r.leaderState.leaseAcks;
  const start = jointCommitted(r.tracker.config.voters, (id) => {
    if (id === r.id) return r.ticks;
    const acked = acks.get(id);
    return acked !== undefined && acked >= floor ? acked : Number.NEGATIVE_INFINITY;
  });
  const drift = r.options.mutations.leaseReadIgnoresDrift ? 0 : r.options.leaseDriftTicks;
  return r.ticks < start + r.options.electionTicks - 1 - drift;
}

function isQuorum(r: Raft, acks: ReadonlySet<NodeId>): boolean {
  const voters = r.tracker.config.voters;
  if (r.options.mutations.noJointQuorum) return majorityActive(voters.incoming, (id) => acks.has(id));
  return jointActive(voters, (id) => acks.has(id));
}

function releaseRead(r: Raft, request: ReadRequest): void {
  if (request.from === r.id) {
    r.readStates.push({ index: request.index, context: request.context });
    return;
  }
  r.send({
    type: 'read-index-response',
    groupId: r.options.groupId,
    from: r.id,
    to: request.from,
    term: r.term,
    index: request.index,
    context: request.context,
  });
}

/**
 * Sends heartbeats to every peer as a new round, whose id travels in the context so that
 * answers can confirm ReadIndex batches and renew the lease. Returns the round id.
 */
export function broadcastHeartbeat(r: Raft): number {
  const round = ++r.heartbeatRound;
  const sentTick = r.leaderState.roundSentTick;
  sentTick.set(round, r.ticks);
  // Only rounds younger than an election timeout can matter; keep the map bounded.
  if (sentTick.size > 4 * r.options.electionTicks) {
    const oldest = sentTick.keys().next().value;
    if (oldest !== undefined) sentTick.delete(oldest);
  }
  const context = encodeRoundId(round);
  for (const [id, pr] of r.tracker.progress) {
    if (id === r.id) continue;
    const message: HeartbeatRequest = {
      type: 'heartbeat',
      groupId: r.options.groupId,
      from: r.id,
      to: id,
      term: r.term,
      // Never tell a follower to commit past what it is known to match (§5.3, and
      // hashicorp/raft 695): its log beyond `matchIndex` may still differ from ours.
      commit: Math.min(pr.matchIndex, r.log.committed),
      context,
    };
    r.send(message);
  }
  return round;
}

/**
 * `from` answered the heartbeat round in `context`: the round's send tick renews its part of
 * the lease, and the reads the round confirms are released once a quorum answered it.
 */
export function ackHeartbeatRound(r: Raft, from: NodeId, context: Uint8Array): void {
  const lead = r.leaderState;
  const round = decodeRoundId(context);
  if (round === 0) return;
  const sent = lead.roundSentTick.get(round);
  if (sent !== undefined && sent > (lead.leaseAcks.get(from) ?? -1)) lead.leaseAcks.set(from, sent);
  const released = lead.readOnly.ack(round, from, (acks) => isQuorum(r, acks));
  for (const request of released) releaseRead(r, request);
}
