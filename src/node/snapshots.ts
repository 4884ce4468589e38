/**
 * Snapshot policy of one raft group: when to snapshot the state machine (see
 * `SnapshotPolicy`), taking a snapshot in the background and compacting the log behind it,
 * and installing a snapshot received from the leader.
 *
 * A raft snapshot's data is the member table followed by the state machine snapshot's
 * chunks (see member-table.ts), so a member that catches up from a snapshot learns every
 * member too.
 */
import type { Entry, RawNode } from '../raft/index.js';
import { type FileStorage, SnapshotPolicy } from '../storage/index.js';
import type { NodeCounters } from './counters.js';
import { frameChunksAsync } from './envelope.js';
import type { MachineDriver } from './machine-driver.js';
import { raftSnapshotChunks, splitSnapshotData } from './member-table.js';
import type { Membership } from './membership.js';
import type { RaftNodeOptions } from './options.js';

/** What {@link SnapshotScheduler} needs from the runtime. */
export interface SnapshotDeps {
  readonly options: Pick<RaftNodeOptions, 'snapshotPolicy' | 'snapshotKeepEntries' | 'logger'>;
  /** The group's core, whose configuration a snapshot records. */
  readonly raw: Pick<RawNode, 'confState'>;
  /** The group's log storage: snapshot files and compaction. */
  readonly storage: Pick<FileStorage, 'createSnapshot' | 'compact' | 'firstIndex'>;
  /** The group's state machine. */
  readonly machine: Pick<MachineDriver, 'appliedIndex' | 'openSnapshot' | 'sync' | 'restore'>;
  readonly membership: Membership;
  readonly counters: NodeCounters;
  /** Stops the node after a fatal error (a snapshot that could not be written). */
  readonly fail: (error: unknown) => void;
}

/** Decides when one raft group snapshots, takes the snapshots and installs received ones. */
export class SnapshotScheduler {
  private policy: SnapshotPolicy;
  private task: Promise<void> | undefined;

  constructor(private readonly deps: SnapshotDeps) {
    this.policy = new SnapshotPolicy(deps.options.snapshotPolicy, deps.machine.appliedIndex);
  }

  /** The snapshot being taken, if any; it never rejects (a failure is fatal, see `fail`). */
  get pending(): Promise<void> | undefined {
    return this.task;
  }

  /** Tells the policy about applied entries. */
  applied(entries: readonly Entry[]): void {
    this.policy.applied(entries);
  }

  /**
   * Takes a snapshot when the policy says so. The state machine's view (for the KV, a read
   * transaction) and a copy of the membership are taken together, synchronously, so they
   * describe the same applied index (a view that reports another index is abandoned);
   * encoding the state (yielding to the event loop between chunks: a large store
   * would otherwise stall heartbeats for longer than an election timeout), writing the file
   * and compacting the log run in the background (storage serializes them with saves).
   */
  maybeTake(): void {
    if (!this.policy.due() || this.task !== undefined) return;
    const policy = this.policy;
    const index = policy.begin();
    if (index !== this.deps.machine.appliedIndex) {
      policy.abandoned();
      return;
    }
    const confState = this.deps.raw.confState();
    const table = this.deps.membership.snapshotTable();
    const opening = this.deps.machine.openSnapshot();
    this.task = (async () => {
      const { machine, storage, options, counters } = this.deps;
      const view = await opening;
      let data: Uint8Array;
      try {
        if (view.index !== index) {
          policy.abandoned();
          return;
        }
        data = await frameChunksAsync(raftSnapshotChunks(table, view.chunks()));
      } finally {
        view.close();
      }
      await machine.sync();
      await storage.createSnapshot(index, confState, data);
      const compactTo = index - options.snapshotKeepEntries;
      if (compactTo >= storage.firstIndex()) await storage.compact(compactTo);
      if (this.policy === policy) policy.completed(index);
      counters.snapshotsTaken++;
      options.logger.info(`snapshot at index ${index} (${data.length} bytes)`);
    })()
      .catch((error: unknown) => this.deps.fail(error))
      .finally(() => {
        this.task = undefined;
      });
  }

  /**
   * Restores a snapshot received from the leader (already durable in the log storage): the
   * member table, the state machine, the transport's peers; the policy starts over from it.
   */
  async install(index: number, data: Uint8Array): Promise<void> {
    const { machine, membership, options } = this.deps;
    const { members, kvChunks } = splitSnapshotData(data);
    // The table at the snapshot's index is authoritative for the members it lists.
    await membership.installSnapshotTable(members);
    await machine.restore(index, kvChunks);
    membership.syncPeers();
    this.policy = new SnapshotPolicy(options.snapshotPolicy, index);
    this.deps.counters.snapshotsInstalled++;
    options.logger.info(`installed a snapshot at index ${index}`);
  }
}
