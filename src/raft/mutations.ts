/**
 * Deliberate bugs that the simulator's tests switch on, one at a time, to prove that its
 * checkers can fail. Production code paths always use {@link NO_MUTATIONS}; nothing outside
 * the simulator constructs another value.
 */

/** One flag per deliberate bug. */
export interface Mutations {
  /** Commit an entry of a prior term by counting replicas (the Figure 8 bug). */
  readonly commitPriorTerm: boolean;
  /** Grant votes without checking that the candidate's log is up to date. */
  readonly voteWithoutLogCheck: boolean;
  /** Runtime: lose the persisted vote when a node restarts. */
  readonly forgetVoteOnRestart: boolean;
  /** Runtime: send messages (acknowledgements, votes) before the Ready is durable. */
  readonly ackBeforePersist: boolean;
  /** The leader answers reads from its local state without confirming leadership. */
  readonly staleLeaderRead: boolean;
  /** A follower keeps its conflicting entries instead of truncating them. */
  readonly noTruncateOnConflict: boolean;
  /** A joint configuration decides with the incoming half only. */
  readonly noJointQuorum: boolean;
  /** ReadIndex releases reads without a heartbeat round confirming leadership. */
  readonly readIndexNoHeartbeat: boolean;
  /** Lease reads trust the full election timeout, ignoring the declared clock drift. */
  readonly leaseReadIgnoresDrift: boolean;
  /** The simulator's counter state machine applies a retried add again (its session check skipped). */
  readonly counterReappliesRetry: boolean;
  /**
   * The simulator's shared log of a multi-group process, on recovery, indexes entries by log
   * index alone: where another group wrote the same index later, its entry is taken.
   */
  readonly walMixesGroups: boolean;
  /**
   * The simulator's multi-group process hands some incoming messages to the wrong group,
   * re-tagged with that group's id (as a host with an off-by-one routing table would).
   */
  readonly misrouteGroupMessage: boolean;
  /**
   * The simulator's receiving runtime takes a snapshot stream that was cut off (its sender
   * crashed, or the link went down) as if it had ended, and hands the core the snapshot with
   * the bytes that arrived.
   */
  readonly tornSnapshotStream: boolean;
  /**
   * The simulator's receiving runtime restores its state machine from a snapshot stream as
   * soon as the stream ends, before the core has said whether it takes the snapshot (one
   * older than what the node has applied, or from a deposed leader, is refused).
   */
  readonly staleSnapshotStream: boolean;
}

/** The kebab-case names used on the command line. */
export const MUTATION_NAMES = {
  'commit-prior-term': 'commitPriorTerm',
  'vote-without-log-check': 'voteWithoutLogCheck',
  'forget-vote-on-restart': 'forgetVoteOnRestart',
  'ack-before-persist': 'ackBeforePersist',
  'stale-leader-read': 'staleLeaderRead',
  'no-truncate-on-conflict': 'noTruncateOnConflict',
  'no-joint-quorum': 'noJointQuorum',
  'read-index-no-heartbeat': 'readIndexNoHeartbeat',
  'lease-read-ignores-drift': 'leaseReadIgnoresDrift',
  'counter-reapplies-retry': 'counterReappliesRetry',
  'wal-mixes-groups': 'walMixesGroups',
  'misroute-group-message': 'misrouteGroupMessage',
  'torn-snapshot-stream': 'tornSnapshotStream',
  'stale-snapshot-stream': 'staleSnapshotStream',
} as const satisfies Record<string, keyof Mutations>;

/** A mutation's command-line name. */
export type MutationName = keyof typeof MUTATION_NAMES;

/** No deliberate bugs: what every production path uses. */
export const NO_MUTATIONS: Mutations = Object.freeze({
  commitPriorTerm: false,
  voteWithoutLogCheck: false,
  forgetVoteOnRestart: false,
  ackBeforePersist: false,
  staleLeaderRead: false,
  noTruncateOnConflict: false,
  noJointQuorum: false,
  readIndexNoHeartbeat: false,
  leaseReadIgnoresDrift: false,
  counterReappliesRetry: false,
  walMixesGroups: false,
  misrouteGroupMessage: false,
  tornSnapshotStream: false,
  staleSnapshotStream: false,
});

/** The flag object with exactly one mutation switched on. */
export function mutationsFor(name: MutationName): Mutations {
  return Object.freeze({ ...NO_MUTATIONS, [MUTATION_NAMES[name]]: true });
}

/** Whether `name` names a mutation. */
export function isMutationName(name: string): name is MutationName {
  return Object.hasOwn(MUTATION_NAMES, name);
}
