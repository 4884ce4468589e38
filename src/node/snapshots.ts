/**
 * Snapshot policy of one raft group: when to snapshot the state machine (see
 * `SnapshotPolicy`), taking a snapshot in the background and compacting the log behind it,
 * sending the state to a follower that needs it, and installing a snapshot received from the
 * leader.
 *
 * A raft snapshot's data starts with the member table (see member-table.ts), so a member
 * that catches up from a snapshot learns every member too. What follows depends on the
 * state machine's kind (docs/runtime-design.md, "Snapshots by kind"):
 *
 * - in-memory: the state machine's snapshot chunks, stored in the snapshot file and sent as
 *   the snapshot message's data;
 * - on-disk: nothing. The state machine's own durable state is the snapshot: taking one is
 *   `sync()` and a small file, whatever the data size, and the log is compacted behind it.
 *   Only when a follower needs the state does the leader pin a view (`openSnapshot`) and
 *   stream it (`stream`); the message then describes the view's index, not the stored
 *   snapshot's (as etcd's merged snapshot message does): the view is the applied state, which
 *   is committed and at or after the stored snapshot. The follower's transport writes the
 *   stream to its {@link SnapshotSpool} before it delivers the message, and `install`
 *   restores from there.
 */
import type { Entry, RawNode, SnapshotRequest } from '../raft/index.js';
import { type ReplicaStorage, SnapshotPolicy } from '../storage/index.js';
import { framedPayload, type SnapshotPayload } from '../transport/index.js';
import type { NodeCounters } from './counters.js';
import { frameChunks, frameChunksAsync } from './envelope.js';
import type { MachineDriver } from './machine-driver.js';
import { raftSnapshotChunks, snapshotChunks, splitSnapshotData } from './member-table.js';
import type { Membership } from './membership.js';
import type { RaftNodeOptions } from './options.js';
import type { ClientSessions } from './sessions.js';
import type { SnapshotSpool } from './snapshot-spool.js';

/** A snapshot message to a follower with the state that follows it (see {@link SnapshotScheduler.stream}). */
export interface OutgoingState {
  readonly message: SnapshotRequest;
  readonly payload: SnapshotPayload;
}

/** What {@link SnapshotScheduler} needs from the runtime. */
export interface SnapshotDeps {
  readonly options: Pick<RaftNodeOptions, 'snapshotPolicy' | 'snapshotKeepEntries' | 'logger'>;
  /** The group's core, whose configuration a snapshot records. */
  readonly raw: Pick<RawNode, 'confState'>;
  /** The group's log storage: snapshot files and compaction. */
  readonly storage: Pick<ReplicaStorage, 'createSnapshot' | 'compact' | 'firstIndex' | 'term' | 'snapshot'>;
  /** The group's state machine. */
  readonly machine: Pick<MachineDriver, 'appliedIndex' | 'onDisk' | 'openSnapshot' | 'sync' | 'restore'>;
  /** Where an on-disk state machine's state received from the leader waits for its restore. */
  readonly spool: Pick<SnapshotSpool, 'chunks' | 'clear'>;
  /** The client sessions, which every snapshot carries. */
  readonly sessions: Pick<ClientSessions, 'encode' | 'load'>;
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
    const sessions = this.deps.sessions.encode();
    const onDisk = this.deps.machine.onDisk;
    // Asked for by a shared log to free its oldest file: compact everything the snapshot covers.
    const keep = policy.isRequested ? 0 : this.deps.options.snapshotKeepEntries;
    const opening = onDisk ? undefined : this.deps.machine.openSnapshot();
    this.task = (async () => {
      const { machine, storage, options, counters } = this.deps;
      let data: Uint8Array;
      if (opening === undefined) {
        data = frameChunks(snapshotChunks(table, [], sessions));
      } else {
        const view = await opening;
        try {
          if (view.index !== index) {
            policy.abandoned();
            return;
          }
          data = await frameChunksAsync(raftSnapshotChunks(table, view.chunks(), sessions));
        } finally {
          view.close();
        }
      }
      await machine.sync();
      await storage.createSnapshot(index, confState, data);
      const compactTo = index - keep;
      if (compactTo >= storage.firstIndex()) await storage.compact(compactTo);
      if (this.policy === policy) policy.completed(index);
      counters.snapshotsTaken++;
      options.logger.info(
        `snapshot at index ${index} (${data.length} bytes${onDisk ? ', metadata only' : ''})`,
      );
    })()
      .catch((error: unknown) => this.deps.fail(error))
      .finally(() => {
        this.task = undefined;
      });
  }

  /**
   * Frees the log up to the state machine's applied state, for a shared log whose oldest file
   * this group's entries keep alive: takes a snapshot now when anything was applied since the
   * last one and compacts behind it entirely (no entries kept for slow followers, which
   * then catch up from a snapshot); with nothing new applied, compacts up to the last one.
   */
  releaseLog(): void {
    if (this.task !== undefined) return;
    if (this.policy.sinceSnapshot().entries > 0) {
      this.policy.request();
      this.maybeTake();
      return;
    }
    const { storage } = this.deps;
    const snapshotIndex = storage.snapshot().meta.index;
    if (snapshotIndex < storage.firstIndex()) return;
    this.task = storage
      .compact(snapshotIndex)
      .catch((error: unknown) => this.deps.fail(error))
      .finally(() => {
        this.task = undefined;
      });
  }

  /**
   * The state of an on-disk state machine for a follower that needs a snapshot (`m`, from
   * the core): a message describing the applied index, its term, the configuration and the
   * member table, all taken now, together with a payload streaming a view pinned now. A view
   * that reports another index (a state machine whose `openSnapshot` is asynchronous and
   * applied meanwhile) is refused: undefined, and the caller reports the snapshot failed so
   * the core tries again.
   */
  async stream(m: SnapshotRequest): Promise<OutgoingState | undefined> {
    const { machine, raw, storage, membership } = this.deps;
    const index = machine.appliedIndex;
    if (index < m.snapshot.meta.index) return undefined;
    const meta = { index, term: storage.term(index), confState: raw.confState() };
    const data = frameChunks(snapshotChunks(membership.snapshotTable(), [], this.deps.sessions.encode()));
    // Pinned before anything else can run (an apply would move the state past `meta`).
    const opening = machine.openSnapshot();
    const view = opening instanceof Promise ? await opening : opening;
    if (view.index !== index) {
      view.close();
      return undefined;
    }
    this.deps.counters.snapshotsStreamed++;
    return {
      message: { ...m, snapshot: { meta, data } },
      payload: framedPayload(view.chunks(), () => view.close()),
    };
  }

  /**
   * Restores a snapshot received from the leader (already durable in the log storage): the
   * member table, the state machine, the transport's peers; the policy starts over from it.
   */
  async install(index: number, data: Uint8Array): Promise<void> {
    const { machine, membership, options, spool } = this.deps;
    const { members, sessions, kvChunks } = splitSnapshotData(data);
    // The table at the snapshot's index is authoritative for the members it lists.
    await membership.installSnapshotTable(members);
    this.deps.sessions.load(sessions);
    if (!machine.onDisk) {
      await machine.restore(index, kvChunks);
    } else {
      const inline = [...kvChunks];
      // A snapshot from a member that still copied the state into raft snapshots carries it inline.
      const chunks = inline.length > 0 ? inline : await spool.chunks(index);
      if (chunks === undefined)
        throw new Error(`snapshot at index ${index}: its state is missing from the spool`);
      await machine.restore(index, chunks);
      await machine.sync();
      await spool.clear();
    }
    membership.syncPeers();
    this.policy = new SnapshotPolicy(options.snapshotPolicy, index);
    this.deps.counters.snapshotsInstalled++;
    options.logger.info(`installed a snapshot at index ${index}`);
  }
}
