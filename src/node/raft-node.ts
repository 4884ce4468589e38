/**
 * The KV database's node: a {@link Host} (host.ts) whose state machine is the LMDB key-value
 * store (kv-state-machine.ts), plus what the etcd and HTTP servers need of the KV on top of
 * the generic runtime: typed `propose`/`read` with the KV's validation, the backend for
 * watches, leases and hashes, and the leader's lease-expiry scan (lease-keeper.ts), which
 * proposes `leaseRevoke` commands like any client.
 */
import { join } from 'node:path';
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
import { Host, type HostParts, type HostStatus } from './host.js';
import { KvOnDiskStateMachine } from './kv-state-machine.js';
import { LeaseKeeper } from './lease-keeper.js';
import type { RaftNodeInit } from './options.js';

export type { NodeCounters } from './counters.js';
export type { HostStatus } from './host.js';
export type { MemberAddress, MemberClientUrls, MemberUpdate } from './member-table.js';
export type { MemberChange } from './membership.js';
export {
  DEFAULT_RAFT_NODE_OPTIONS,
  type NodeLogger,
  type RaftNodeInit,
  type RaftNodeOptions,
} from './options.js';

/** What this node knows about the cluster, for observers (`/v1/cluster`, `status`). */
export interface NodeStatus extends HostStatus {
  /** The KV store's applied index. */
  readonly kvApplied: number;
  readonly revision: number;
}

/**
 * Settings of the node's LMDB store beyond `kvNoSync` (local, not replicated), and test
 * seams: tests hold its commits to make apply fall behind commit.
 */
export interface KvStoreSettings {
  readonly options?: Partial<LmdbKvOptions>;
  readonly hooks?: LmdbKvTestHooks;
}

/** One raft group with its storage, transport and the KV store. */
export class RaftNode extends Host {
  private readonly leases: LeaseKeeper;

  private constructor(
    parts: HostParts,
    private readonly kv: KvOnDiskStateMachine<LmdbKvBackend>,
  ) {
    super(parts);
    const replica = this.replica;
    this.leases = new LeaseKeeper({
      leaderSinceMs: () => replica.leadership.leaderSinceMs,
      leases: () => kv.backend.leaseList(),
      canPropose: () => replica.canPropose(),
      revoke: (id) => this.propose({ type: 'leaseRevoke', id }),
      logger: this.options.logger,
    });
  }

  /**
   * Opens (or bootstraps) the data directory, recovers storage and the KV store (in
   * `dataDir/kv`), starts the transport and the tick timer. Throws `INVALID_CONFIG` when the
   * data directory belongs to another member or cluster. `store` tunes the LMDB store.
   */
  static start(init: RaftNodeInit, store: KvStoreSettings = {}): Promise<RaftNode> {
    const kvNoSync = init.kvNoSync ?? false;
    const kv = new KvOnDiskStateMachine(() =>
      LmdbKvBackend.open(join(init.dataDir, 'kv'), { ...store.options, noSync: kvNoSync }, store.hooks),
    );
    return Host.launch(init, kv, (parts) => new RaftNode(parts, kv));
  }

  // ------------------------------------------------------------------ client API

  /**
   * Proposes a KV command and resolves with its outcome once it has been applied on this
   * node (a deterministic KV error is an outcome, `{ok: false}`). Rejects like
   * {@link Host.proposeCommand}, or with a `KvError` for an invalid command.
   */
  async propose(command: KvCommand): Promise<KvResult> {
    validateCommand(command, this.kv.backend.options);
    return (await this.proposeCommand(command)) as KvResult;
  }

  /**
   * Reads a range (see {@link Host.readQuery} for the consistencies). Rejects like
   * {@link RaftNode.propose}, or with a `KvError` (`COMPACTED`, `FUTURE_REV`,
   * `INVALID_ARGUMENT`).
   */
  async read(
    request: RangeRequest,
    consistency: 'linearizable' | 'serializable' = 'linearizable',
  ): Promise<RangeResponse> {
    if (consistency === 'linearizable')
      validateCommand({ type: 'range', ...request }, this.kv.backend.options);
    return (await this.readQuery(request, consistency)) as RangeResponse;
  }

  /** This node's view of the group, with the KV store's position. */
  override status(): NodeStatus {
    const backend = this.kv.backend;
    return { ...super.status(), kvApplied: backend.appliedIndex, revision: backend.revision };
  }

  /** The local key-value backend (for watches and lease queries served locally). */
  get backend(): LmdbKvBackend {
    return this.kv.backend;
  }

  /** On the leader: proposes a revoke for every lease whose time is up. */
  protected override onTick(): void {
    this.leases.scan();
  }
}
