/**
 * Membership configuration plus the leader's per-peer progress and the votes of an election.
 */
import { assert } from './assert.js';
import { Progress } from './progress.js';
import type { JointVoters, VoteResult } from './quorum.js';
import { jointActive, jointCommitted, jointVoteResult } from './quorum.js';
import type { ConfState, NodeId } from './types.js';

/** A membership configuration. Invariant: voters and learners are disjoint. */
export interface TrackerConfig {
  readonly voters: JointVoters;
  readonly learners: ReadonlySet<NodeId>;
  /** Voters of the outgoing half that become learners when the joint config is left. */
  readonly learnersNext: ReadonlySet<NodeId>;
  readonly autoLeave: boolean;
}

/** Builds a tracker configuration from its persisted form. */
export function configFromConfState(cs: ConfState): TrackerConfig {
  return {
    voters: { incoming: new Set(cs.voters), outgoing: new Set(cs.votersOutgoing) },
    learners: new Set(cs.learners),
    learnersNext: new Set(cs.learnersNext),
    autoLeave: cs.autoLeave,
  };
}

/** The persisted form of a tracker configuration (sorted, for stable comparison). */
export function confStateFromConfig(config: TrackerConfig): ConfState {
  const sorted = (s: ReadonlySet<NodeId>) => [...s].sort((a, b) => a - b);
  return {
    voters: sorted(config.voters.incoming),
    votersOutgoing: sorted(config.voters.outgoing),
    learners: sorted(config.learners),
    learnersNext: sorted(config.learnersNext),
    autoLeave: config.autoLeave,
  };
}

/** Whether a configuration is joint. */
export function isJoint(config: TrackerConfig): boolean {
  return config.voters.outgoing.size > 0;
}

/** Tracks the configuration, progress of every member, and votes. */
export class ProgressTracker {
  config: TrackerConfig;
  progress = new Map<NodeId, Progress>();
  votes = new Map<NodeId, boolean>();

  constructor(
    config: TrackerConfig,
    private readonly inflightCountMax: number,
    private readonly inflightBytesMax: number,
  ) {
    this.config = config;
  }

  /** Every voter of either half. */
  voterIds(): NodeId[] {
    const ids = new Set<NodeId>([...this.config.voters.incoming, ...this.config.voters.outgoing]);
    return [...ids].sort((a, b) => a - b);
  }

  /** Every member: voters and learners. */
  memberIds(): NodeId[] {
    const ids = new Set<NodeId>([...this.voterIds(), ...this.config.learners, ...this.config.learnersNext]);
    return [...ids].sort((a, b) => a - b);
  }

  /** Whether `id` can vote in this configuration. */
  isVoter(id: NodeId): boolean {
    return this.config.voters.incoming.has(id) || this.config.voters.outgoing.has(id);
  }

  /** Whether `id` is a member at all. */
  isMember(id: NodeId): boolean {
    return this.isVoter(id) || this.config.learners.has(id) || this.config.learnersNext.has(id);
  }

  /**
   * Installs a configuration: keeps the progress of remaining members, creates progress for
   * new ones starting at `nextIndex`, drops removed ones.
   */
  applyConfig(config: TrackerConfig, nextIndex: number): void {
    this.config = config;
    for (const v of config.voters.incoming) assert(!config.learners.has(v), `node ${v} is voter and learner`);
    const members = new Set(this.memberIds());
    for (const id of [...this.progress.keys()]) if (!members.has(id)) this.progress.delete(id);
    for (const id of members) {
      const isLearner = !this.isVoter(id);
      const existing = this.progress.get(id);
      if (existing !== undefined) {
        existing.isLearner = isLearner;
        continue;
      }
      const pr = new Progress(nextIndex, this.inflightCountMax, this.inflightBytesMax, isLearner);
      // A new member is presumed active so check-quorum does not count it as lost at once.
      pr.recentActive = true;
      this.progress.set(id, pr);
    }
  }

  /** The largest index acknowledged by a quorum of voters. */
  committed(): number {
    return jointCommitted(this.config.voters, (id) => this.progress.get(id)?.matchIndex ?? 0);
  }

  /** Whether a quorum of voters was recently active. */
  quorumActive(self: NodeId): boolean {
    return jointActive(
      this.config.voters,
      (id) => id === self || (this.progress.get(id)?.recentActive ?? false),
    );
  }

  /** Records a vote (the first answer from each voter counts). */
  recordVote(id: NodeId, granted: boolean): void {
    if (!this.votes.has(id)) this.votes.set(id, granted);
  }

  /** The current election outcome. */
  voteResult(): VoteResult {
    return jointVoteResult(this.config.voters, this.votes);
  }

  /** Forgets all votes (a new election starts). */
  resetVotes(): void {
    this.votes = new Map();
  }
}
