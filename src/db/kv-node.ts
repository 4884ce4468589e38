/**
 * The KV database's node: the public runtime (`startNode`) replicating the LMDB key-value
 * store as its on-disk state machine (kv-state-machine.ts), and what the etcd and HTTP
 * servers need of the KV on top of it: typed `propose`/`read` with the KV's validation, the
 * backend for watches, leases, hashes and storage statistics (this module made the state
 * machine, so it holds its backend), the KV's own settings, and the leader's lease-expiry
 * scan (lease-keeper.ts), which runs while the `role` events say this node leads and
 * proposes `leaseRevoke` commands like any client. It reaches the runtime only through the
 * package's public entry (src/index.ts), as any library user does.
 */
import { join } from 'node:path';
import {
  type FlotillaNode,
  type NodeInit,
  type NodeOptions,
  type NodeStatus,
  type ProposeOptions,
  startNode,
} from '../index.js';
import {
  type KvCommand,
  type KvResult,
  LmdbKvBackend,
  type LmdbKvOptions,
  type LmdbKvTestHooks,
  type RangeRequest,
  type RangeResponse,
  validateCommand,
} from '../kv/index.js';
import { KvOnDiskStateMachine } from './kv-state-machine.js';
import { LeaseKeeper } from './lease-keeper.js';

type Role = NodeStatus['role'];

/** The runtime's handle of a KV node: commands, results, queries and answers of the KV store. */
export type KvRaftNode = FlotillaNode<KvCommand, KvResult | null, RangeRequest, RangeResponse>;

/** Settings of the KV store itself (local, not replicated). */
export interface KvSettings {
  /** Skip LMDB fsyncs (tests and benchmarks only; see docs/kv.md). */
  readonly kvNoSync: boolean;
  /**
   * etcd's `--quota-backend-bytes`: a write that would take the KV store's size in use past
   * this raises the replicated `NOSPACE` alarm and fails (see src/etcd/quota.ts).
   */
  readonly quotaBackendBytes: number;
}

/** The defaults of {@link KvSettings}. */
export const DEFAULT_KV_SETTINGS: KvSettings = Object.freeze({
  kvNoSync: false,
  /** etcd's default, 2 GiB. */
  quotaBackendBytes: 2 * 1024 * 1024 * 1024,
});

/** What {@link KvNode.start} takes: the runtime's options and the KV's settings. */
export type KvNodeInit = NodeInit & Partial<KvSettings>;

/** The options a KV node runs with (the runtime's as it reports them, and the KV's). */
export type KvNodeOptions = Readonly<NodeOptions> & KvSettings;

/** What a KV node knows about its group and its store (`/v1/cluster`, `status`, metrics). */
export interface KvNodeStatus extends NodeStatus {
  /** The KV store's applied index. */
  readonly kvApplied: number;
  readonly revision: number;
}

/**
 * Settings of the node's LMDB store beyond `kvNoSync`, and test seams: tests hold its commits
 * to make apply fall behind commit.
 */
export interface KvStoreSettings {
  readonly options?: Partial<LmdbKvOptions>;
  readonly hooks?: LmdbKvTestHooks;
}

/** One member of the KV database: a runtime node replicating the LMDB key-value store. */
export class KvNode {
  /** The options this node runs with (`id` and `clusterId` as recovered or learned). */
  readonly options: KvNodeOptions;
  private readonly leases: LeaseKeeper;
  /** Wall-clock time this node became leader (its `role` event); 0 while it is not leader. */
  private leaderSinceMs = 0;
  private scanTimer: NodeJS.Timeout | undefined;
  private stopped = false;

  private constructor(
    /** The runtime's handle: membership, leadership, status, events, statistics. */
    readonly raft: KvRaftNode,
    private readonly kv: KvOnDiskStateMachine<LmdbKvBackend>,
    settings: KvSettings,
  ) {
    this.options = { ...raft.options, ...settings };
    this.leases = new LeaseKeeper({
      leaderSinceMs: () => this.leaderSinceMs,
      leases: () => kv.backend.leaseList(),
      revoke: (id) => this.propose({ type: 'leaseRevoke', id }),
      logger: raft.options.logger,
    });
    raft.on('role', (role) => this.onRole(role));
    raft.on('removed', () => this.onRole('follower'));
    this.onRole(raft.status().role);
  }

  /**
   * Opens (or bootstraps, or joins with) the data directory, recovers storage and the KV
   * store (in `dataDir/kv`), starts the transport and the tick timer (see `startNode`).
   * Throws `INVALID_CONFIG` when the data directory belongs to another member or cluster.
   * `store` tunes the LMDB store.
   */
  static async start(init: KvNodeInit, store: KvStoreSettings = {}): Promise<KvNode> {
    const { kvNoSync, quotaBackendBytes, ...options } = { ...DEFAULT_KV_SETTINGS, ...init };
    const kv = new KvOnDiskStateMachine(() =>
      LmdbKvBackend.open(join(init.dataDir, 'kv'), { ...store.options, noSync: kvNoSync }, store.hooks),
    );
    const raft = await startNode(options, kv);
    return new KvNode(raft, kv, { kvNoSync, quotaBackendBytes });
  }

  /**
   * Proposes a KV command and resolves with its outcome once it has been applied on this
   * node (a deterministic KV error is an outcome, `{ok: false}`). Rejects like
   * `FlotillaNode.propose`, or with a `KvError` for an invalid command.
   */
  async propose(command: KvCommand, options: ProposeOptions = {}): Promise<KvResult> {
    validateCommand(command, this.kv.backend.options);
    return (await this.raft.propose(command, options)) as KvResult;
  }

  /**
   * Reads a range (see `FlotillaNode.read` for the consistencies). Rejects like
   * {@link KvNode.propose}, or with a `KvError` (`COMPACTED`, `FUTURE_REV`,
   * `INVALID_ARGUMENT`).
   */
  read(
    request: RangeRequest,
    consistency: 'linearizable' | 'serializable' = 'linearizable',
  ): Promise<RangeResponse> {
    if (consistency === 'linearizable')
      validateCommand({ type: 'range', ...request }, this.kv.backend.options);
    return this.raft.read(request, { consistency });
  }

  /** This node's view of the group, with the KV store's position. */
  status(): KvNodeStatus {
    const backend = this.kv.backend;
    return { ...this.raft.status(), kvApplied: backend.appliedIndex, revision: backend.revision };
  }

  /** The local key-value backend (for watches, leases, hashes and backups served locally). */
  get backend(): LmdbKvBackend {
    return this.kv.backend;
  }

  /** Stops the node (see `FlotillaNode.close`) and its lease scan. */
  async stop(): Promise<void> {
    this.stopped = true;
    this.onRole('follower');
    await this.raft.close();
  }

  /**
   * Runs the lease scan on every tick while this node leads (it looks at the table at most
   * every `LEASE_SCAN_INTERVAL_MS`), counting leadership from the moment it began.
   */
  private onRole(role: Role): void {
    const leading = role === 'leader' && !this.stopped;
    if (leading && this.scanTimer === undefined) {
      this.leaderSinceMs = Date.now();
      this.scanTimer = setInterval(() => this.scan(), this.options.tickMs).unref();
    } else if (!leading && this.scanTimer !== undefined) {
      this.leaderSinceMs = 0;
      clearInterval(this.scanTimer);
      this.scanTimer = undefined;
    }
  }

  /** One lease scan, unless the node stopped (removed, failed or closed) meanwhile. */
  private scan(): void {
    if (this.stopped || this.raft.fatalError !== undefined || this.raft.status().role !== 'leader') {
      this.onRole('follower');
      return;
    }
    this.leases.scan();
  }
}
