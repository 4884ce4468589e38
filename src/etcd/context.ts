/** What every etcd service implementation of one node shares: the node and etcd's response header. */
import type { KvNode } from '../db/index.js';
import type { NodeLogger } from '../index.js';
import { SpaceGauge } from './space-gauge.js';

/**
 * etcd `WireHeader` with numbers (the proto encoders take numbers for 64-bit fields, and
 * they cost less to build and encode than decimal strings).
 */
export interface WireHeader {
  readonly cluster_id: number;
  readonly member_id: number;
  readonly revision: number;
  readonly raft_term: number;
}

/** Tunables of the etcd services. */
export interface EtcdServiceOptions {
  /**
   * How often a watch stream sends a progress notification to each idle `progress_notify`
   * watcher, in ms, plus up to 10% jitter (etcd: 10 minutes; shorter in tests).
   */
  readonly watchProgressIntervalMs: number;
}

/** etcd's values. */
export const DEFAULT_ETCD_SERVICE_OPTIONS: EtcdServiceOptions = Object.freeze({
  watchProgressIntervalMs: 10 * 60 * 1000,
});

/** The node a gRPC server serves, and helpers shared by its services. */
export class EtcdContext {
  readonly options: EtcdServiceOptions;
  /** This cluster's id and this member's id (they never change while the node runs). */
  readonly clusterId: number;
  readonly memberId: number;
  /**
   * The shortest lease TTL granted, in seconds: etcd's `minLeaseTTL`, 1.5 election timeouts
   * rounded up (a shorter lease could expire during a leader election).
   */
  readonly minLeaseTtlSeconds: number;
  /** The store's size in use, as the quota check sees it. */
  readonly space: SpaceGauge;

  constructor(
    readonly node: KvNode,
    readonly logger: NodeLogger,
    options: Partial<EtcdServiceOptions> = {},
  ) {
    this.options = { ...DEFAULT_ETCD_SERVICE_OPTIONS, ...options };
    this.clusterId = node.options.clusterId;
    this.memberId = node.options.id;
    const { electionTicks, tickMs } = node.options;
    this.minLeaseTtlSeconds = Math.max(1, Math.ceil((Math.floor((3 * electionTicks) / 2) * tickMs) / 1000));
    this.space = new SpaceGauge(() => node.backend.storageStats().usedBytes);
  }

  /**
   * The header of a response: this cluster and member, the given revision (default: this
   * node's current applied revision) and this node's current raft term.
   */
  header(revision: number = this.node.backend.revision): WireHeader {
    return {
      cluster_id: this.clusterId,
      member_id: this.memberId,
      revision,
      raft_term: this.node.raft.term,
    };
  }
}
