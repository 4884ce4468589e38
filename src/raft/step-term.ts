/**
 * The term rules every message passes before the current role's step function sees it
 * (§5.1): a newer term makes the node follow it, unless it is a vote request within a
 * leader's lease; an older one is answered so that its stale sender learns the newer term.
 */
import type { Raft } from './raft.js';
import type { Message } from './types.js';

/** A local request to read linearizably; `context` is returned in the matching ReadState. */
export const LOCAL = 0;

/** The term rules common to every role (§5.1). Returns false if the message is done with. */
export function stepTerm(r: Raft, m: Message): boolean {
  if (m.term > r.term) return stepHigherTerm(r, m);
  if (m.term < r.term) {
    stepLowerTerm(r, m);
    return false;
  }
  return true;
}

function stepHigherTerm(r: Raft, m: Message): boolean {
  if (m.type === 'vote') {
    // Leader lease (§4.2.3): a node that heard from a leader within the minimum election
    // timeout ignores vote requests, so a removed or partitioned node cannot depose a
    // healthy leader. A transfer explicitly asks to bypass it.
    const timeout = r.options.electionTicks;
    // With lease reads on, a restarted node also keeps the promise it may have made before
    // the crash: no vote for a new leader within an election timeout of hearing one.
    const bootLease = r.options.readOnly === 'lease-based' && r.ticks < timeout;
    const inLease = r.options.checkQuorum && ((r.leader !== 0 && r.electionElapsed < timeout) || bootLease);
    if (inLease && !m.transfer) return false;
    // A pre-vote changes nothing here; a real vote moves us to its term first.
    if (!m.preVote) r.becomeFollower(m.term, 0);
    return true;
  }
  if (m.type === 'vote-response' && m.preVote && m.granted) return true;
  if (m.type === 'append' || m.type === 'heartbeat' || m.type === 'snapshot') {
    r.becomeFollower(m.term, m.from);
  } else {
    r.becomeFollower(m.term, 0);
  }
  return true;
}

function stepLowerTerm(r: Raft, m: Message): void {
  if ((r.options.checkQuorum || r.options.preVote) && (m.type === 'heartbeat' || m.type === 'append')) {
    // A stale leader (e.g. back from a partition) learns our term and steps down; without
    // this, with pre-vote on, it could keep the cluster from electing anyone.
    r.send({
      type: 'append-response',
      groupId: r.options.groupId,
      from: r.id,
      to: m.from,
      term: r.term,
      reject: false,
      index: 0,
      hintIndex: 0,
      hintTerm: 0,
    });
  } else if (m.type === 'vote') {
    // Tell the (pre-)candidate our term (Figure 2: "reply false if term < currentTerm").
    // Without this, a candidate whose term fell behind can stay behind for good when no
    // one with a newer term ever sends to it, e.g. after membership changes.
    r.send({
      type: 'vote-response',
      groupId: r.options.groupId,
      from: r.id,
      to: m.from,
      term: r.term,
      preVote: m.preVote,
      granted: false,
    });
  }
}
