/**
 * Quorum math for majority and joint configurations. Pure functions over sets of node ids,
 * kept apart from everything else so they can be property-tested on their own.
 */
import type { NodeId } from './types.js';

/** Outcome of a vote count. */
export type VoteResult = 'won' | 'lost' | 'pending';

/**
 * The largest index that a majority of `voters` has acknowledged, given each voter's
 * acknowledged index. An empty voter set commits everything (so joint math can ignore an
 * empty outgoing half).
 */
export function majorityCommitted(voters: ReadonlySet<NodeId>, acked: (id: NodeId) => number): number {
  const n = voters.size;
  if (n === 0) return Number.MAX_SAFE_INTEGER;
  const indexes: number[] = [];
  for (const id of voters) indexes.push(acked(id));
  indexes.sort((a, b) => b - a);
  // With indexes sorted descending, the (n/2+1)-th largest is held by a majority.
  return indexes[Math.floor(n / 2)]!;
}

/** Counts the votes of a majority configuration; `votes` maps voter id to granted. */
export function majorityVoteResult(
  voters: ReadonlySet<NodeId>,
  votes: ReadonlyMap<NodeId, boolean>,
): VoteResult {
  if (voters.size === 0) return 'won';
  let granted = 0;
  let missing = 0;
  for (const id of voters) {
    const vote = votes.get(id);
    if (vote === undefined) missing++;
    else if (vote) granted++;
  }
  const quorum = Math.floor(voters.size / 2) + 1;
  if (granted >= quorum) return 'won';
  if (granted + missing >= quorum) return 'pending';
  return 'lost';
}

/** Whether a majority of `voters` satisfies `active` (an empty set counts as a quorum). */
export function majorityActive(voters: ReadonlySet<NodeId>, active: (id: NodeId) => boolean): boolean {
  if (voters.size === 0) return true;
  let count = 0;
  for (const id of voters) if (active(id)) count++;
  return count >= Math.floor(voters.size / 2) + 1;
}

/** A joint configuration: decisions need a majority of each half. */
export interface JointVoters {
  readonly incoming: ReadonlySet<NodeId>;
  readonly outgoing: ReadonlySet<NodeId>;
}

/** The index committed by a joint configuration: the smaller of the two halves' indexes. */
export function jointCommitted(voters: JointVoters, acked: (id: NodeId) => number): number {
  return Math.min(majorityCommitted(voters.incoming, acked), majorityCommitted(voters.outgoing, acked));
}

/** Vote result of a joint configuration: won only if both halves won, lost if either lost. */
export function jointVoteResult(voters: JointVoters, votes: ReadonlyMap<NodeId, boolean>): VoteResult {
  const a = majorityVoteResult(voters.incoming, votes);
  const b = majorityVoteResult(voters.outgoing, votes);
  if (a === 'won' && b === 'won') return 'won';
  if (a === 'lost' || b === 'lost') return 'lost';
  return 'pending';
}

/** Whether both halves of a joint configuration have an active majority. */
export function jointActive(voters: JointVoters, active: (id: NodeId) => boolean): boolean {
  return majorityActive(voters.incoming, active) && majorityActive(voters.outgoing, active);
}
