/**
 * Everything a run schedules on its event queue: node events (ticks, deliveries, disk writes,
 * restarts), nemesis events, and the messages between clients and the nodes serving them.
 */
import type { GroupId, Message, NodeId } from '../raft/index.js';

/**
 * A client's request as it reaches a node: a write (a command of the run's state machine, which
 * the node encodes with the machine's codec when it proposes it), or a read (a query).
 */
export type ClientRequest =
  | { kind: 'write'; client: number; seq: number; attempt: number; command: unknown }
  | { kind: 'read'; client: number; seq: number; attempt: number; query: unknown; serializable: boolean };

/** A node's answer to one attempt of a client request: a result, or the node to try instead. */
export type ClientReply = {
  client: number;
  seq: number;
  attempt: number;
  /** `result`: the state machine's result of the write, or its answer to the query. */
  outcome: { kind: 'ok'; result: unknown } | { kind: 'redirect'; leader: NodeId };
};

/**
 * One event of a run; events on a node are held while it is paused. In a run whose processes
 * host several raft groups, what a group schedules for itself comes wrapped in `in-group`
 * (messages name their group themselves).
 */
export type SimEvent =
  | { kind: 'tick'; node: NodeId; incarnation: number }
  | { kind: 'deliver'; message: Message }
  | { kind: 'snapshot-report'; message: Message; ok: boolean }
  | { kind: 'resume'; node: NodeId }
  | { kind: 'partition'; side: NodeId[] }
  | { kind: 'persisted'; node: NodeId; incarnation: number }
  | { kind: 'restart'; node: NodeId }
  | { kind: 'nemesis' }
  | { kind: 'heal' }
  | { kind: 'client-request'; node: NodeId; request: ClientRequest }
  | { kind: 'client-reply'; reply: ClientReply }
  | { kind: 'client-next'; client: number }
  | { kind: 'client-timeout'; client: number; seq: number; attempt: number }
  | { kind: 'in-group'; group: GroupId; event: SimEvent };
