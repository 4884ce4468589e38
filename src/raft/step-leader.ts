/**
 * The leader's step and tick functions: proposals and reads, the followers' answers and the
 * runtime's reports, heartbeats with check-quorum, and leadership transfer (thesis §3.10).
 */
import { assert, assertNever } from './assert.js';
import { checkConfChangeAllowed, removingSelf } from './conf-change-apply.js';
import { checkQuorumActive } from './election.js';
import { RaftError } from './errors.js';
import type { Raft } from './raft.js';
import { broadcastHeartbeat, leaderReadIndex } from './read-index.js';
import {
  appendEntries,
  broadcastAppend,
  handleAppendResponse,
  handleHeartbeatResponse,
  handleSnapshotStatus,
  maybeSendAppend,
} from './replication.js';
import type { Entry, Message, NodeId } from './types.js';

/** Handles a message as the leader. */
export function stepLeader(r: Raft, m: Message): void {
  switch (m.type) {
    case 'propose':
      leaderPropose(r, m.entries);
      return;
    case 'read-index':
      leaderReadIndex(r, { from: m.from, context: m.context, index: r.log.committed });
      return;
    case 'append-response':
      if (handleAppendResponse(r, m)) maybeFinishTransfer(r, m.from);
      return;
    case 'heartbeat-response':
      handleHeartbeatResponse(r, m);
      return;
    case 'snapshot-status':
      handleSnapshotStatus(r, m.from, m.reject);
      return;
    case 'unreachable': {
      // Streaming optimistically to an unreachable peer only fills its window: probe instead.
      const pr = r.tracker.progress.get(m.from);
      if (pr !== undefined && pr.state === 'replicate') pr.becomeProbe();
      return;
    }
    case 'transfer-leader':
      handleTransferLeader(r, m.transferee);
      return;
    case 'append':
    case 'heartbeat':
    case 'snapshot':
      // Two leaders in one term would violate election safety (§5.2).
      assert(false, `leader ${r.id} got ${m.type} from ${m.from} in its own term ${r.term}`);
      return;
    case 'timeout-now':
    case 'read-index-response':
    case 'vote':
    case 'vote-response':
      return;
    default:
      assertNever(m, 'message');
  }
}

/** The leader's tick: check-quorum every election timeout, heartbeats every heartbeat timeout. */
export function tickHeartbeat(r: Raft): void {
  r.leaderState.heartbeatElapsed++;
  r.electionElapsed++;
  if (r.electionElapsed >= r.options.electionTicks) {
    r.electionElapsed = 0;
    if (r.options.checkQuorum) checkQuorumActive(r);
    if (r.role !== 'leader') return;
    // A transfer that has not completed within an election timeout is abandoned.
    r.leadTransferee = 0;
  }
  const lead = r.leaderState;
  if (lead.heartbeatElapsed >= r.options.heartbeatTicks) {
    lead.heartbeatElapsed = 0;
    const round = broadcastHeartbeat(r);
    // Pending reads ride on every heartbeat round: a round lost on the way is retried by the
    // next one, whose confirmation also confirms every older round (read-only.ts).
    if (lead.readOnly.pendingCount > 0) lead.readOnly.startRound(r.id, round);
  }
}

function leaderPropose(r: Raft, entries: readonly Entry[]): void {
  if (r.leadTransferee !== 0) {
    throw new RaftError('TRANSFER_IN_PROGRESS', `leadership is being transferred to ${r.leadTransferee}`);
  }
  if (!r.tracker.progress.has(r.id)) {
    throw new RaftError('NOT_LEADER', `node ${r.id} was removed from the configuration`);
  }
  const conf = entries.findIndex((e) => e.type === 'conf-change');
  if (conf >= 0) checkConfChangeAllowed(r, entries.filter((e) => e.type === 'conf-change').length);
  else if (removingSelf(r)) {
    throw new RaftError('NOT_LEADER', `leader ${r.id} is being removed from the configuration`);
  }
  appendEntries(r, entries);
  if (conf >= 0) r.pendingConfIndex = r.log.lastIndex() - (entries.length - 1 - conf);
  broadcastAppend(r);
}

function handleTransferLeader(r: Raft, transferee: NodeId): void {
  const pr = r.tracker.progress.get(transferee);
  if (pr === undefined || pr.isLearner) {
    throw new RaftError('INVALID_TRANSFER_TARGET', `node ${transferee} is not a voter`);
  }
  if (transferee === r.id || transferee === r.leadTransferee) return;
  r.leadTransferee = transferee;
  // The transfer must finish within an election timeout, else it is abandoned.
  r.electionElapsed = 0;
  if (pr.matchIndex === r.log.lastIndex()) sendTimeoutNow(r, transferee);
  else maybeSendAppend(r, transferee, true);
}

/** The transferee acknowledged more of the log: once it has all of it, it takes over. */
function maybeFinishTransfer(r: Raft, from: NodeId): void {
  const pr = r.tracker.progress.get(from);
  if (from === r.leadTransferee && pr !== undefined && pr.matchIndex === r.log.lastIndex()) {
    sendTimeoutNow(r, from);
  }
}

function sendTimeoutNow(r: Raft, to: NodeId): void {
  // The target will campaign bypassing followers' leases: ours ends here.
  r.leaseFloorTick = r.ticks + 1;
  r.send({ type: 'timeout-now', groupId: r.options.groupId, from: r.id, to, term: r.term });
}
