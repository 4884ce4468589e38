/**
 * Membership changes as a node carries them out (thesis §4): validating a proposed change,
 * the leader's guards on conf-change proposals, applying a committed change, and leaving a
 * joint configuration automatically. The configurations themselves are computed by
 * confchange.ts and tracked by tracker.ts.
 */
import { applyConfChangeTo, decodeConfChange, encodeConfChange, isLeaveJoint } from './confchange.js';
import { RaftError } from './errors.js';
import type { Raft } from './raft.js';
import { broadcastAppend, maybeCommitAndBroadcast } from './replication.js';
import type { TrackerConfig } from './tracker.js';
import { confStateFromConfig, isJoint } from './tracker.js';
import type { ConfChange, ConfChangeSingle, ConfState } from './types.js';

/** Implements {@link Raft.proposeConfChange}: validates `cc`, then proposes it. */
export function proposeConfChange(r: Raft, cc: ConfChange): void {
  if (r.role !== 'leader') {
    throw new RaftError('NOT_LEADER', `node ${r.id} is not the leader`, r.leader);
  }
  // One change at a time: while one is pending, including the automatic leave of a joint
  // configuration, the next one is early, not invalid (the caller retries later).
  const config = r.tracker.config;
  if (r.pendingConfIndex > r.log.applied || (isJoint(config) && config.autoLeave && !isLeaveJoint(cc))) {
    throw new RaftError('CONF_CHANGE_IN_PROGRESS', 'a configuration change is still being applied');
  }
  // Validate against the configuration it will apply to (the previous one is applied).
  applyConfChangeTo(config, cc);
  for (const change of cc.changes) checkSingleChange(r, change);
  r.propose([{ index: 0, term: 0, type: 'conf-change', data: encodeConfChange(cc) }]);
}

function checkSingleChange(r: Raft, change: ConfChangeSingle): void {
  if (r.removed.has(change.node)) {
    throw new RaftError('NODE_ID_REUSED', `node id ${change.node} was removed and cannot be reused`);
  }
  if (change.type !== 'add-voter' || !r.tracker.config.learners.has(change.node)) return;
  const pr = r.tracker.progress.get(change.node);
  const lag = r.log.lastIndex() - (pr?.matchIndex ?? 0);
  if (lag > r.options.learnerCatchUpEntriesMax) {
    throw new RaftError(
      'LEARNER_NOT_READY',
      `learner ${change.node} is ${lag} entries behind (at most ${r.options.learnerCatchUpEntriesMax} allowed)`,
    );
  }
}

/**
 * Refuses a proposal of `count` conf-change entries unless it is one change, no other is
 * pending, and this leader has committed an entry of its term.
 */
export function checkConfChangeAllowed(r: Raft, count: number): void {
  if (count > 1) throw new RaftError('INVALID_CONF_CHANGE', 'one configuration change per proposal');
  if (r.pendingConfIndex > r.log.applied) {
    throw new RaftError('CONF_CHANGE_IN_PROGRESS', 'a configuration change is still being applied');
  }
  // A new leader must first commit an entry of its own term (raft-dev, 2015).
  if (r.log.term(r.log.committed) !== r.term) {
    throw new RaftError('CONF_CHANGE_IN_PROGRESS', 'the leader has not yet committed an entry of its term');
  }
}

/**
 * Whether this leader has proposed (or inherited) a change that removes it. It then accepts
 * no more proposals: its log must not grow past the entry removing it, which commits only
 * with the new voters' acknowledgements. Otherwise a removed leader could hold entries no
 * new voter has, refuse them its vote as out of date, and leave a joint configuration that
 * still needs that vote without a leader (a liveness hole of applying changes on commit).
 */
export function removingSelf(r: Raft): boolean {
  let config = r.tracker.config;
  if (!config.voters.incoming.has(r.id)) return true;
  if (r.pendingConfIndex <= r.log.applied) return false;
  const lo = Math.max(r.log.applied + 1, r.log.firstIndex());
  for (const e of r.log.slice(lo, r.log.lastIndex() + 1, Number.MAX_SAFE_INTEGER)) {
    if (e.type !== 'conf-change') continue;
    try {
      config = applyConfChangeTo(config, decodeConfChange(e.data));
    } catch (error) {
      if (!(error instanceof RaftError)) throw error;
    }
  }
  return !config.voters.incoming.has(r.id);
}

/** Implements {@link Raft.applyConfChange}; also records the ids the change removed. */
export function applyConfChange(r: Raft, cc: ConfChange): TrackerConfig {
  const before = new Set(r.tracker.memberIds());
  const config = applyConfChangeTo(r.tracker.config, cc);
  applyConfig(r, config);
  const after = new Set(r.tracker.memberIds());
  for (const id of before) if (!after.has(id)) r.removed.add(id);
  return config;
}

/** Implements {@link Raft.maybeAutoLeave}. */
export function maybeAutoLeave(r: Raft): void {
  const config = r.tracker.config;
  if (r.role !== 'leader' || !isJoint(config) || !config.autoLeave) return;
  if (r.pendingConfIndex > r.log.applied || r.leadTransferee !== 0) return;
  try {
    r.propose([
      { index: 0, term: 0, type: 'conf-change', data: encodeConfChange({ changes: [], leaveJoint: true }) },
    ]);
  } catch (error) {
    // Refused for now (e.g. too many uncommitted bytes): the next advance tries again.
    if (!(error instanceof RaftError)) throw error;
  }
}

/** Implements {@link Raft.confState}. */
export function confState(r: Raft): ConfState {
  const removed = [...r.removed].sort((a, b) => a - b);
  return { ...confStateFromConfig(r.tracker.config), removed };
}

/** Implements {@link Raft.applyConfig}. */
export function applyConfig(r: Raft, config: TrackerConfig): void {
  r.tracker.applyConfig(config, r.log.lastIndex() + 1);
  if (r.role !== 'leader') return;
  if (!r.tracker.isVoter(r.id)) {
    // A removed leader steps down once the change is committed (§4.2.2).
    r.becomeFollower(r.term, 0);
    return;
  }
  // A smaller quorum may commit more right away.
  if (!maybeCommitAndBroadcast(r)) broadcastAppend(r);
}
