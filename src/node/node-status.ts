/** What a node reports about its group (`status()`, the status events, `watchStatus`). */
import type { ConfState, Status } from '../raft/index.js';

/**
 * This node's view of its group: from the raft core `id`, `role`, `leader` (0: none known),
 * `term`, `vote`, `commit`, `applied`, `firstIndex` and `lastIndex`; and the fields below.
 */
export interface NodeStatus extends Status {
  /** This member's name (its id in decimal for `createNode`). */
  readonly name: string;
  /** The raft group's id (1 for `createNode`; the group's id on a multi-raft host). */
  readonly groupId: number;
  /** The cluster's id (derived from the founders, or learned when joining). */
  readonly clusterId: number;
  /** The state machine's applied index. */
  readonly machineApplied: number;
  /** The applied configuration: voters, learners (and the outgoing half of a joint one, removed ids). */
  readonly confState: ConfState;
}
