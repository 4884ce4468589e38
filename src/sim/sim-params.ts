/**
 * What the seed decides about a run: cluster size, fault rates, workload shape and Raft options,
 * drawn at random. Named profiles (`profiles.ts`) may then fix some of them.
 */
import type { Prng } from '../raft/index.js';
import type { ServiceName } from './sim-service.js';

/** Fault and workload parameters, all drawn from the seed. */
export interface SimParams {
  /** `random`, or the name of the profile that fixed some of the parameters. */
  profile: string;
  /** What the nodes serve: the KV store, or the user-level counter state machine (a profile's choice). */
  service: ServiceName;
  nodes: number;
  /**
   * Raft groups each process hosts (the multi-group profile's choice; 1 otherwise). With more
   * than one, the processes keep every group in one shared log and route messages by group.
   */
  groups: number;
  dropRate: number;
  duplicateRate: number;
  longDelayRate: number;
  latencyMaxMs: number;
  diskLatencyMaxMs: number;
  nemesisIntervalMs: number;
  restartDelayMaxMs: number;
  snapshotEveryEntries: number;
  snapshotKeepEntries: number;
  clients: number;
  keys: number;
  readRate: number;
  casRate: number;
  leaderEarlySend: boolean;
  appendBytesMax: number;
  inflightMessagesMax: number;
  pauseMaxMs: number;
  /**
   * `mixed`: faults of every kind. `leader-churn`: leaders crash or are cut off soon after
   * election (Figure 8). `isolated-leader`: the leader is cut off from its peers while
   * clients still reach it (stale reads). `membership`: voters are replaced in bulk while
   * partitions split old members from new ones (joint consensus).
   */
  nemesis: 'mixed' | 'leader-churn' | 'isolated-leader' | 'membership';
  /** Share of nemesis actions that change membership, and that transfer leadership. */
  membershipRate: number;
  transferRate: number;
  /** Followers serve linearizable reads via the leader's read index. */
  followerReads: boolean;
  /**
   * Clients stay with the node they reach and followers forward their writes to the leader
   * (as etcd clients and members do), instead of redirecting clients to the leader.
   */
  forwarding: boolean;
  /** Share of reads that are serializable (local, possibly stale). */
  serializableRate: number;
  readOnly: 'safe' | 'lease-based';
  /** How long a client waits for an answer before trying another node. */
  clientTimeoutMs: number;
  /** Each node's clock runs up to this fraction fast or slow. */
  driftRate: number;
  checkQuorum: boolean;
  preVote: boolean;
}

/**
 * Draws every parameter at random from the seed, `nodes` fixing the cluster size if given. The
 * order of the draws is part of what a seed means: changing it changes every run.
 */
export function drawRandomParams(prng: Prng, nodes: number | undefined): SimParams {
  const params: SimParams = {
    profile: 'random',
    service: 'kv',
    nodes: nodes ?? prng.pick([3, 3, 5, 5, 5, 7]),
    groups: 1,
    dropRate: prng.pick([0, 0.01, 0.05, 0.1, 0.2]),
    duplicateRate: prng.pick([0, 0.02, 0.1]),
    longDelayRate: prng.pick([0, 0.02, 0.1]),
    latencyMaxMs: prng.pick([2, 5, 15]),
    diskLatencyMaxMs: prng.pick([1, 4, 15, 40]),
    nemesisIntervalMs: prng.pick([40, 100, 250, 600]),
    restartDelayMaxMs: prng.pick([20, 200, 800]),
    snapshotEveryEntries: prng.pick([8, 20, 60]),
    snapshotKeepEntries: prng.pick([0, 2, 10]),
    clients: prng.range(2, 6),
    keys: prng.range(1, 4),
    readRate: prng.pick([0.2, 0.4, 0.6]),
    casRate: prng.pick([0.1, 0.3]),
    leaderEarlySend: prng.chance(0.5),
    // Small messages make acknowledgements cover part of what a leader holds, which is what
    // exposes commit-rule bugs (Figure 8).
    appendBytesMax: prng.pick([1, 300, 4096, 1 << 20]),
    inflightMessagesMax: prng.pick([1, 4, 64]),
    pauseMaxMs: prng.pick([150, 400, 1000]),
    // Rapid leader churn produces logs that diverge across several terms: Figure 8.
    nemesis: prng.pick([
      'mixed',
      'mixed',
      'mixed',
      'leader-churn',
      'leader-churn',
      'isolated-leader',
      'membership',
    ]),
    membershipRate: prng.pick([0, 0.1, 0.25]),
    transferRate: prng.pick([0, 0.05, 0.15]),
    followerReads: prng.chance(0.5),
    forwarding: prng.chance(0.5),
    serializableRate: prng.pick([0, 0.1]),
    ...leaseParams(prng),
    clientTimeoutMs: prng.pick([50, 120, 250]),
  };
  // One-entry messages with a window of one message move about one entry per round trip and
  // fsync: a configuration nobody runs, under which a backlog of retried writes can take
  // longer to replicate than any liveness bound.
  if (params.appendBytesMax === 1 && params.inflightMessagesMax === 1) params.inflightMessagesMax = 4;
  return params;
}

/** Read mode, clock drift and the election options that go with them. */
function leaseParams(prng: Prng): Pick<SimParams, 'readOnly' | 'driftRate' | 'checkQuorum' | 'preVote'> {
  const preVote = prng.chance(0.8);
  if (prng.chance(0.3)) {
    // Lease reads are only allowed with check-quorum. These seeds stretch clock drift far
    // beyond real clocks to test the lease bound; without pre-vote a node whose clock runs
    // twice as fast keeps bumping the term and legitimately livelocks Raft, so pre-vote is on.
    return {
      readOnly: 'lease-based',
      driftRate: prng.pick([0.02, 0.1, 0.2, 0.4]),
      checkQuorum: true,
      preVote: true,
    };
  }
  return { readOnly: 'safe', driftRate: prng.pick([0, 0.05]), checkQuorum: prng.chance(0.7), preVote };
}
