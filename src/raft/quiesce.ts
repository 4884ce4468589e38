/**
 * Quiescence: what the core decides for a runtime that stops ticking idle groups (CockroachDB's
 * quiesced ranges, TiKV's hibernate regions). The runtime owns the decision to stop and start
 * ticking and carries the notices between hosts; the core answers the questions whose answers
 * depend on raft state, and keeps its promises (leases) while it is not ticked:
 *
 * - {@link canQuiesce}: a leader may stop ticking when nothing is in flight and every member
 *   holds, has committed and has applied its whole log;
 * - {@link quiesceFollower}: a follower told so by the leader of its term may stop ticking when
 *   its log ends at the same entry;
 * - {@link tickQuiesced}: the ticks that passed while quiesced, delivered on waking without
 *   firing elections or heartbeats, so a leader's lease from before expires as it would have;
 * - {@link forgetLeader} (etcd-io/raft's `ForgetLeader`): a follower whose runtime believes the
 *   leader dead stops refusing (pre-)votes on the leader's behalf, once its promise to that
 *   leader (the leader lease of `stepHigherTerm`) has run out on its own clock.
 *
 * None of this changes what is safe: a quiesced replica is a replica that receives no ticks,
 * which raft tolerates by design; the only promise time-bound state makes is the lease, which
 * {@link forgetLeader} keeps.
 */

import type { Raft } from './raft.js';
import { releaseHeldProposals } from './step-follower.js';
import { isJoint } from './tracker.js';
import type { NodeId } from './types.js';

/**
 * Whether this leader may stop ticking: no leadership transfer, no read waiting, no
 * configuration change pending nor a joint configuration to leave, an entry of its term
 * committed, and every member's match (learners included) equal to its last index, which is
 * committed, persisted and applied here.
 */
export function canQuiesce(r: Raft): boolean {
  if (r.role !== 'leader' || r.leadTransferee !== 0) return false;
  const log = r.log;
  const last = log.lastIndex();
  if (log.committed !== last || log.applied !== last || log.applying !== last) return false;
  if (log.stableLastIndex() !== last || log.unstable.snapshot !== undefined) return false;
  if (log.term(last) !== r.term) return false;
  if (r.pendingConfIndex > log.applied || isJoint(r.tracker.config)) return false;
  const lead = r.leaderState;
  if (lead.readOnly.pendingCount > 0 || lead.readsAwaitingCommit.length > 0) return false;
  for (const pr of r.tracker.progress.values()) {
    if (pr.matchIndex !== last || pr.state === 'snapshot') return false;
  }
  return true;
}

/**
 * The leader `from` of `term` quiesced with everything up to `commit` committed. A follower of
 * that term whose log ends at the leader's entry at `commit` (same index, same term: by the Log
 * Matching property the whole log is the leader's) takes the commit index, counts the notice
 * as hearing from its leader, and returns true: it may stop ticking. Anything else — another
 * term or leader, a log that is shorter, longer or different — returns false and changes
 * nothing; the follower keeps ticking and the leader is woken by whatever it does next.
 */
export function quiesceFollower(r: Raft, from: NodeId, term: number, commit: number): boolean {
  if (r.role !== 'follower' || term !== r.term || from === r.id) return false;
  if (r.leader !== from && r.leader !== 0) return false;
  const log = r.log;
  if (log.lastIndex() !== commit || log.term(commit) !== term) return false;
  if (commit < log.committed) return false;
  log.commitTo(commit);
  r.leader = from;
  r.electionElapsed = 0;
  r.leaderHeardTick = r.ticks;
  releaseHeldProposals(r);
  return true;
}

/**
 * Delivers `ticks` ticks that passed while the group was quiesced, without their timers
 * firing. The round and lease clock (`Raft.ticks`) moves on, so a leader's lease from before
 * quiescence expires as it would have; a leader restarts its check-quorum period (its
 * followers have had nothing to answer); a follower's election timer stays where it stopped:
 * it still follows the leader it quiesced under until it hears otherwise or forgets it.
 */
export function tickQuiesced(r: Raft, ticks: number): void {
  if (ticks <= 0) return;
  r.ticks += ticks;
  if (r.role === 'leader') {
    r.electionElapsed = 0;
    r.leaderState.heartbeatElapsed = 0;
  }
}

/**
 * Forgets the leader of the current term on a follower (etcd-io/raft's `ForgetLeader`): it
 * stays a follower of the term, without campaigning, but no longer refuses (pre-)votes while
 * "in lease" of that leader, so a quorum of followers that each believe the leader dead can
 * elect another; hearing from the leader again restores it. Refused (false) unless this node
 * is a follower with a leader that it last heard from at least an election timeout ago on its
 * own clock (`Raft.ticks`, which counts quiesced ticks too): until then it keeps the promise a
 * leader's lease reads rely on. Returns whether the leader was forgotten.
 */
export function forgetLeader(r: Raft): boolean {
  if (r.role !== 'follower' || r.leader === 0) return false;
  if (r.ticks - r.leaderHeardTick < r.options.electionTicks) return false;
  r.leader = 0;
  return true;
}
