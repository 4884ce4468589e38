/**
 * Elections (§5.2, thesis §9.6): the election timer of followers and candidates, campaigns
 * with or without a pre-vote round, answering vote requests, and the leader's check-quorum.
 */
import type { Raft } from './raft.js';
import type { VoteRequest } from './types.js';

/** The tick of followers and (pre-)candidates: campaign once the election timeout passes. */
export function tickElection(r: Raft): void {
  r.electionElapsed++;
  if (r.promotable() && r.electionElapsed >= r.randomizedElectionTimeout) {
    r.electionElapsed = 0;
    hup(r, false);
  }
}

/** An isolated leader steps down: it cannot commit, and must not serve lease reads. */
export function checkQuorumActive(r: Raft): void {
  if (!r.tracker.quorumActive(r.id)) {
    r.becomeFollower(r.term, 0);
    return;
  }
  for (const [id, pr] of r.tracker.progress) if (id !== r.id) pr.recentActive = false;
}

/** Starts an election (after pre-vote, if enabled). `transfer` bypasses pre-vote and leases. */
export function hup(r: Raft, transfer: boolean): void {
  if (r.role === 'leader' || !r.promotable()) return;
  if (hasUnappliedConfChange(r)) return;
  if (r.options.preVote && !transfer) campaign(r, 'pre-vote', false);
  else campaign(r, 'vote', transfer);
}

/** A node must not campaign while it knows of a conf change it has not applied yet. */
function hasUnappliedConfChange(r: Raft): boolean {
  if (r.log.committed <= r.log.applied) return false;
  const lo = Math.max(r.log.applied + 1, r.log.firstIndex());
  const entries = r.log.slice(lo, r.log.committed + 1, Number.MAX_SAFE_INTEGER);
  return entries.some((e) => e.type === 'conf-change');
}

/**
 * Becomes a pre-candidate or candidate, votes for itself and asks every other voter for its
 * vote; a pre-vote asks for the next term without moving to it.
 */
export function campaign(r: Raft, kind: 'pre-vote' | 'vote', transfer: boolean): void {
  let term: number;
  if (kind === 'pre-vote') {
    r.becomePreCandidate();
    term = r.term + 1;
  } else {
    r.becomeCandidate();
    term = r.term;
  }
  r.tracker.recordVote(r.id, true);
  if (r.tracker.voteResult() === 'won') {
    // A single-voter group wins at once.
    if (kind === 'pre-vote') campaign(r, 'vote', transfer);
    else r.becomeLeader();
    return;
  }
  const lastLogIndex = r.log.lastIndex();
  const lastLogTerm = r.log.lastTerm();
  for (const id of r.tracker.voterIds()) {
    if (id === r.id) continue;
    r.send({
      type: 'vote',
      groupId: r.options.groupId,
      from: r.id,
      to: id,
      term,
      preVote: kind === 'pre-vote',
      lastLogIndex,
      lastLogTerm,
      transfer,
    });
  }
}

/** Answers a vote or pre-vote request (§5.2, §5.4.1); every role does, whatever its state. */
export function handleVoteRequest(r: Raft, m: VoteRequest): void {
  // We may vote again for the same candidate (a retransmission); for a new candidate only
  // if we have not voted and know no leader in this term; a pre-vote for a future term
  // commits us to nothing.
  const canVote = r.vote === m.from || (r.vote === 0 && r.leader === 0) || (m.preVote && m.term > r.term);
  const logOk = r.options.mutations.voteWithoutLogCheck || r.log.isUpToDate(m.lastLogIndex, m.lastLogTerm);
  const granted = canVote && logOk;
  r.send({
    type: 'vote-response',
    groupId: r.options.groupId,
    from: r.id,
    to: m.from,
    // A granted vote answers in the candidate's term; a rejection tells it ours.
    term: granted ? m.term : r.term,
    preVote: m.preVote,
    granted,
  });
  if (granted && !m.preVote) {
    r.electionElapsed = 0;
    r.vote = m.from;
  }
}
