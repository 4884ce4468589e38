/**
 * The Ready loop: one sequential loop handles each Ready of a raft group in the order the
 * core's contract requires:
 *
 * 1. a leader sends its `append` and `heartbeat` messages at once (thesis §10.2.1);
 * 2. `hardState`, `entries` and a received `snapshot` are made durable with one
 *    `FileStorage.save` (one fdatasync: group commit per Ready);
 * 3. every other message (votes, acknowledgements) is sent;
 * 4. a received snapshot is restored into the state machine, then committed entries are
 *    applied in order (its `apply`; conf changes through the core and `saveConfState`);
 * 5. read barriers (`readStates`) are recorded and reads served once applied reaches them;
 * 6. `advance`.
 *
 * Steps 2 and 4 overlap: the committed entries that were already in the durable log before
 * this Ready are applied while its write and fdatasync are in flight (etcd applies in
 * parallel with its WAL write too); only those among this Ready's own new entries wait for
 * the write. Applying a durable, committed entry early is safe: the state machine never gets
 * ahead of the local log, and its applied index may get ahead of the *persisted* commit
 * index only, which the core raises on restart (raft.ts: entries applied were committed).
 *
 * This module owns the I/O steps (1-3: persist and send), `advance` and the scheduling: wakes
 * in one event-loop turn share one pass, so one fsync covers everything queued meanwhile. What
 * a Ready means for the group's state machine (4-5) is its {@link ReadyHandler}'s: `install`
 * and `applyEntries` before `advance`, then `advanced` (serving reads, a snapshot when due).
 *
 * A storage failure is fatal: the loop stops before sending or applying anything that
 * depended on the failed write.
 */
import { performance } from 'node:perf_hooks';
import type { Entry, Message, RawNode, ReadState, Ready, Snapshot, SnapshotRequest } from '../raft/index.js';
import type { ReplicaStorage } from '../storage/index.js';
import type { TcpTransport } from '../transport/index.js';
import type { NodeCounters } from './counters.js';
import type { WriteTrace } from './write-trace.js';

/** The group-specific steps around each Ready. */
export interface ReadyHandler {
  /**
   * Feeds what is queued into the core before it is asked for a Ready (due ticks, proposals,
   * read barriers) and notices a leader change.
   */
  prepare(): void;
  /** Resolves when the state machine may be replaced by a received snapshot (none is being taken). */
  snapshotSettled(): Promise<void> | undefined;
  /** Restores the state machine from a received snapshot, already durable. */
  install(snapshot: Snapshot): Promise<void>;
  /**
   * Applies committed entries in log order; called once or twice per Ready (the entries
   * already durable, possibly while the Ready's write is in flight; then the rest).
   */
  applyEntries(entries: readonly Entry[]): Promise<void>;
  /** Records the read barriers a Ready released, once its entries are applied. */
  released(readStates: readonly ReadState[]): void;
  /** Runs after `advance`: serves reads that became ready, takes a snapshot when due. */
  advanced(): void;
}

/** What {@link ReadyLoop} needs from the runtime. */
export interface ReadyLoopDeps {
  readonly raw: Pick<RawNode, 'hasReady' | 'ready' | 'advance'>;
  /** The group's log storage. */
  readonly storage: Pick<ReplicaStorage, 'save' | 'lastSave'>;
  readonly transport: Pick<TcpTransport, 'send'>;
  readonly counters: NodeCounters;
  /** Per-stage write latencies: told when a Ready starts, is persisted, and what is sent. */
  readonly trace: WriteTrace;
  readonly handler: ReadyHandler;
  /** Sends a snapshot message (a state machine's state may follow it as a stream). */
  readonly sendSnapshot: (m: SnapshotRequest) => void;
  /** Whether the node has stopped (the loop does no more). */
  readonly stopped: () => boolean;
  /** Stops the node after a fatal error. */
  readonly fail: (error: unknown) => void;
}

/** Drives one raft group's Readies. */
export class ReadyLoop {
  private driving = false;
  private driveScheduled = false;
  private drivePromise: Promise<void> = Promise.resolve();

  constructor(private readonly deps: ReadyLoopDeps) {}

  /** Whether no pass runs nor is scheduled. */
  get idle(): boolean {
    return !this.driving && !this.driveScheduled;
  }

  /** The pass in progress (resolved when none is); it rejects only if the fatal path throws. */
  get current(): Promise<void> {
    return this.drivePromise;
  }

  /** Schedules the loop; calls in one event-loop turn share one pass (one Ready, one fsync). */
  wake(): void {
    if (this.deps.stopped() || this.driving || this.driveScheduled) return;
    this.driveScheduled = true;
    setImmediate(() => {
      this.driveScheduled = false;
      if (this.deps.stopped() || this.driving) return;
      this.driving = true;
      this.drivePromise = this.drive().finally(() => {
        this.driving = false;
      });
    });
  }

  /** Sends `messages` through the transport (counted). */
  private send(messages: readonly Message[]): void {
    if (messages.length === 0) return;
    this.deps.counters.messagesSent += messages.length;
    this.deps.transport.send(messages);
    if (this.deps.trace.enabled) this.deps.trace.sent(messages, performance.now());
  }

  /** Sends snapshot messages (a state machine's state may follow each as a stream), counted. */
  private sendSnapshots(snapshots: readonly SnapshotRequest[]): void {
    this.deps.counters.messagesSent += snapshots.length;
    for (const m of snapshots) this.deps.sendSnapshot(m);
  }

  private async drive(): Promise<void> {
    const { raw, handler } = this.deps;
    try {
      while (!this.deps.stopped()) {
        handler.prepare();
        if (!raw.hasReady()) break;
        await this.handleReady(raw.ready());
      }
    } catch (error) {
      this.deps.fail(error);
    }
  }

  private async handleReady(rd: Ready): Promise<void> {
    this.deps.counters.readies++;
    if (this.deps.trace.enabled) this.deps.trace.readyStarted(rd, performance.now());
    const held: Message[] = [];
    const early: Message[] = [];
    const snapshots: SnapshotRequest[] = [];
    for (const m of rd.messages) {
      if (m.type === 'snapshot') snapshots.push(m);
      else (m.type === 'append' || m.type === 'heartbeat' ? early : held).push(m);
    }
    this.send(early);
    const { handler } = this.deps;
    if (rd.snapshot !== undefined) {
      await handler.snapshotSettled();
      await this.persist(rd);
      if (this.deps.stopped()) return;
      this.send(held);
      this.sendSnapshots(snapshots);
      await handler.install(rd.snapshot);
      await handler.applyEntries(rd.committedEntries);
    } else {
      if (!(await this.persistWhileApplying(rd))) return;
      this.send(held);
      this.sendSnapshots(snapshots);
    }
    handler.released(rd.readStates);
    this.deps.raw.advance(rd);
    handler.advanced();
  }

  /**
   * Persists the Ready while applying its committed entries that were durable before it;
   * then applies the rest (this Ready's own entries, once durable). False when the node
   * stopped meanwhile (nothing more may be done for this Ready).
   */
  private async persistWhileApplying(rd: Ready): Promise<boolean> {
    const committed = rd.committedEntries;
    const firstNew = rd.entries[0]?.index ?? Number.POSITIVE_INFINITY;
    let split = committed.findIndex((e) => e.index >= firstNew);
    if (split < 0) split = committed.length;
    const persisting = this.persist(rd);
    // With new entries, after one event-loop turn, so their write and fdatasync are handed to
    // the disk before apply takes the CPU. Without any (a Ready that only moves the commit
    // index: a follower learning of a commit, the leader counting an acknowledgement) there
    // is no fsync to start first, so apply goes on at once: a turn less between a commit and
    // the client's answer.
    const applying =
      split === 0
        ? undefined
        : (rd.entries.length === 0
            ? Promise.resolve()
            : new Promise<void>((resolve) => setImmediate(resolve))
          ).then(() =>
            this.deps.handler.applyEntries(
              split === committed.length ? committed : committed.slice(0, split),
            ),
          );
    // Awaited below; this keeps a persist failure (an early exit) from leaving it unobserved.
    applying?.catch(() => {});
    try {
      await persisting;
    } catch (error) {
      await applying?.catch(() => {});
      throw error;
    }
    await applying;
    if (this.deps.stopped()) return false;
    if (split < committed.length) await this.deps.handler.applyEntries(committed.slice(split));
    return true;
  }

  /** Makes the Ready's hard state, entries and snapshot durable with one save. */
  private async persist(rd: Ready): Promise<void> {
    if (rd.hardState === undefined && rd.entries.length === 0 && rd.snapshot === undefined) return;
    const counters = this.deps.counters;
    const started = performance.now();
    await this.deps.storage.save({ hardState: rd.hardState, entries: rd.entries, snapshot: rd.snapshot });
    const finished = performance.now();
    counters.saves++;
    counters.saveMsSum += finished - started;
    if (this.deps.trace.enabled) this.deps.trace.persisted(this.deps.storage.lastSave, finished);
    counters.entriesPersisted += rd.entries.length;
  }
}
