/**
 * The step function of pre-candidates and candidates: they count the votes of their
 * campaign, step back to follower on hearing from the leader of their term, and otherwise
 * act as a follower that knows no leader.
 */
import { campaign } from './election.js';
import type { Raft } from './raft.js';
import { broadcastAppend } from './replication.js';
import { stepFollower } from './step-follower.js';
import type { Message, VoteResponse } from './types.js';

/** Handles a message as a pre-candidate or candidate. */
export function stepCandidate(r: Raft, m: Message): void {
  switch (m.type) {
    case 'vote-response':
      handleVoteResponse(r, m);
      return;
    case 'append':
    case 'heartbeat':
    case 'snapshot':
      // A candidate that hears from the leader of its term steps back to follower.
      r.becomeFollower(r.term, m.from);
      stepFollower(r, m);
      return;
    default:
      stepFollower(r, m);
  }
}

function handleVoteResponse(r: Raft, m: VoteResponse): void {
  const expected = r.role === 'pre-candidate';
  if (m.preVote !== expected) return;
  r.tracker.recordVote(m.from, m.granted);
  const result = r.tracker.voteResult();
  if (result === 'won') {
    if (r.role === 'pre-candidate') campaign(r, 'vote', false);
    else {
      r.becomeLeader();
      broadcastAppend(r);
    }
  } else if (result === 'lost') {
    r.becomeFollower(r.term, 0);
  }
}
