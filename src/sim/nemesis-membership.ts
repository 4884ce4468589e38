/**
 * The administrative faults the nemesis asks leaders for: membership changes (learners added
 * and promoted, voters removed and replaced, several at once through joint consensus) and
 * leadership transfers. Refusals (not ready, change in progress) are expected.
 */
import type { ConfChangeSingle, NodeId } from '../raft/index.js';
import { isRaftError } from '../raft/index.js';
import type { SimContext } from './sim-context.js';
import type { SimNode } from './sim-node.js';
import type { SimWorld } from './sim-world.js';

/** A partition to spring once `leader` commits index `index`: `out` cut off from the rest. */
export interface JointTrap {
  readonly leader: NodeId;
  readonly index: number;
  readonly out: NodeId[];
}

/** Proposes membership changes and leadership transfers to the current leader. */
export class MembershipChanges {
  constructor(
    private readonly ctx: SimContext,
    private readonly world: SimWorld,
  ) {}

  /**
   * Asks the leader for a random membership change: add a learner (a new node), promote a
   * learner, remove a follower, remove the leader, replace the leader, or change several
   * voters at once (joint consensus). Refusals (not ready, change in progress) are expected.
   */
  changeMembership(): void {
    const { prng, params } = this.ctx;
    const leader = this.world.liveLeader();
    if (leader === undefined) return;
    const config = leader.raw.raft.tracker.config;
    const voters = [...config.voters.incoming];
    const learners = [...config.learners];
    const followers = voters.filter((v) => v !== leader.id);
    const changes: ConfChangeSingle[] = [];
    const roll = prng.int(6);
    if (roll === 0 || (learners.length === 0 && roll !== 2 && roll !== 3)) {
      if (this.world.nextNodeId > params.nodes + 6) return;
      const added = this.world.addNewNode();
      changes.push({ type: 'add-learner', node: added.id });
    } else if (roll === 1) {
      changes.push({ type: 'add-voter', node: prng.pick(learners) });
    } else if (roll === 2 && followers.length >= 2) {
      changes.push({ type: 'remove', node: prng.pick(followers) });
    } else if (roll === 3 && voters.length >= 3) {
      changes.push({ type: 'remove', node: leader.id });
    } else if (roll === 4) {
      changes.push({ type: 'add-voter', node: prng.pick(learners) }, { type: 'remove', node: leader.id });
    } else if (followers.length >= 2) {
      for (const id of learners.slice(0, 2)) changes.push({ type: 'add-voter', node: id });
      changes.push({ type: 'remove', node: prng.pick(followers) });
    }
    if (changes.length === 0) return;
    this.proposeChanges(leader, changes);
  }

  private proposeChanges(leader: SimNode, changes: ConfChangeSingle[]): boolean {
    let proposed = false;
    try {
      leader.raw.proposeConfChange({ changes });
      proposed = true;
      this.ctx.say(`leader ${leader.id} proposes ${changes.map((c) => `${c.type} ${c.node}`).join(', ')}`);
    } catch (error) {
      if (!isRaftError(error)) throw error;
      this.ctx.say(
        `leader ${leader.id} refuses ${changes.map((c) => `${c.type} ${c.node}`).join(', ')}: ${error.code}`,
      );
    }
    this.world.runtime.drive(leader);
    return proposed;
  }

  /** Asks the leader to hand leadership to another voter. */
  transferLeadership(): void {
    const leader = this.world.liveLeader();
    if (leader === undefined) return;
    const others = [...leader.raw.raft.tracker.config.voters.incoming].filter((v) => v !== leader.id);
    if (others.length === 0) return;
    const target = this.ctx.prng.pick(others);
    try {
      leader.raw.transferLeadership(target);
      this.ctx.stats.transfers++;
      this.ctx.say(`leader ${leader.id} transfers leadership to ${target}`);
    } catch (error) {
      if (!isRaftError(error)) throw error;
    }
    this.world.runtime.drive(leader);
  }

  /**
   * Adds learners until there are two, then swaps a majority of the followers for them.
   * Returns the trap to set when the swap was proposed.
   */
  replaceVoters(): JointTrap | undefined {
    const leader = this.world.liveLeader();
    if (leader === undefined) return undefined;
    const config = leader.raw.raft.tracker.config;
    const learners = [...config.learners];
    if (learners.length < 2) {
      this.changeMembership();
      return undefined;
    }
    const followers = [...config.voters.incoming].filter((v) => v !== leader.id);
    const out = followers.slice(0, Math.min(followers.length, learners.length));
    const changes: ConfChangeSingle[] = [
      ...learners.slice(0, out.length).map((id) => ({ type: 'add-voter' as const, node: id })),
      ...out.map((id) => ({ type: 'remove' as const, node: id })),
    ];
    if (changes.length < 2) return undefined;
    if (!this.proposeChanges(leader, changes)) return undefined;
    // Cut the outgoing voters off the moment the leader commits the change, while the news
    // of that commit is still in flight: they may then never learn that the joint
    // configuration was entered, the situation joint quorums exist for.
    return { leader: leader.id, index: leader.raw.raft.log.lastIndex(), out };
  }
}
