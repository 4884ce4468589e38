/**
 * Where a write's time goes, hop by hop, as latency observations per stage (exported as the
 * `flotilla_write_stage_seconds{stage}` histogram, see src/server/metrics.ts). The runtime
 * reports what it does — a Ready started, persisted, messages sent and received, a proposal
 * applied — and this module turns those moments into the stages of one write:
 *
 * | stage | from | to |
 * | --- | --- | --- |
 * | `queue` | the proposal accepted | handed to the core (the next loop pass, a leader known) |
 * | `append` | handed to the core | its entry in a Ready of this node (at a follower: forwarded to the leader and replicated back) |
 * | `wal_encode`, `wal_write`, `wal_sync` | the Ready's save: encoding its frame, the write, the `fdatasync` |
 * | `commit` | the entry durable here | the entry known committed here (a later Ready carries it) |
 * | `apply` | known committed | applied to the state machine, the proposal resolved |
 * | `total` | the proposal accepted | resolved |
 * | `replicate` | a leader sends an append with entries | that follower acknowledges them (per follower) |
 * | `follower_persist` | a follower receives an append with entries | it sends the acknowledgement (after its fsync) |
 *
 * It keeps only what the next observations need: the last {@link TRACE_BATCHES_MAX} Ready
 * batches and, per peer, the appends awaiting an acknowledgement (bounded likewise). With no
 * observer it records nothing.
 */
import type { Entry, Message, Ready } from '../raft/index.js';

/** Every stage, in a write's order. */
export const WRITE_STAGES = [
  'queue',
  'append',
  'wal_encode',
  'wal_write',
  'wal_sync',
  'commit',
  'apply',
  'total',
  'replicate',
  'follower_persist',
] as const;

/** One stage of a write (see the table above). */
export type WriteStage = (typeof WRITE_STAGES)[number];

/** Receives one observation: a stage took `seconds`. */
export type WriteStageObserver = (stage: WriteStage, seconds: number) => void;

/** Where the last save spent its time, in milliseconds (FileStorage's `lastSave`). */
export interface SaveTimings {
  readonly encodeMs: number;
  readonly writeMs: number;
  readonly syncMs: number;
}

/** Ready batches (and per-peer appends awaiting acknowledgement) kept, at most. */
export const TRACE_BATCHES_MAX = 256;

/** The entries of one Ready, and when this node handled them. */
interface TraceBatch {
  readonly first: number;
  readonly last: number;
  readonly readyMs: number;
  persistedMs: number;
}

/** A range of entries known committed at one moment. */
interface TraceCommit {
  readonly first: number;
  readonly last: number;
  readonly ms: number;
}

/** An append sent to a follower, awaiting its acknowledgement. */
interface TraceAppend {
  readonly last: number;
  readonly ms: number;
}

/** Turns the runtime's moments into per-stage write latencies for one raft group. */
export class WriteTrace {
  private readonly batches: TraceBatch[] = [];
  private readonly commits: TraceCommit[] = [];
  private readonly unacked = new Map<number, TraceAppend[]>();
  /** When each append (with entries) this follower received and has not acknowledged arrived. */
  private received: number[] = [];
  private current: TraceBatch | undefined;

  /** Receives the observations; none are recorded while it is undefined. */
  observe: WriteStageObserver | undefined;

  /** Whether observations are wanted (callers skip timing work otherwise). */
  get enabled(): boolean {
    return this.observe !== undefined;
  }

  /** A Ready is being handled: its new entries and its committed entries are noted. */
  readyStarted(rd: Ready, nowMs: number): void {
    this.current = undefined;
    if (this.observe === undefined) return;
    const range = rangeOf(rd.entries);
    if (range !== undefined) {
      this.current = { ...range, readyMs: nowMs, persistedMs: nowMs };
      push(this.batches, this.current);
    }
    const committed = rangeOf(rd.committedEntries);
    if (committed !== undefined) push(this.commits, { ...committed, ms: nowMs });
  }

  /** The current Ready's save finished (`timings` of that save). */
  persisted(timings: SaveTimings, nowMs: number): void {
    const observe = this.observe;
    if (observe === undefined || this.current === undefined) return;
    this.current.persistedMs = nowMs;
    observe('wal_encode', timings.encodeMs / 1000);
    observe('wal_write', timings.writeMs / 1000);
    observe('wal_sync', timings.syncMs / 1000);
  }

  /** Messages handed to the transport. */
  sent(messages: readonly Message[], nowMs: number): void {
    const observe = this.observe;
    if (observe === undefined) return;
    for (const m of messages) {
      if (m.type === 'append' && m.entries.length > 0) {
        let queue = this.unacked.get(m.to);
        if (queue === undefined) {
          queue = [];
          this.unacked.set(m.to, queue);
        }
        push(queue, { last: m.entries[m.entries.length - 1]!.index, ms: nowMs });
      } else if (m.type === 'append-response' && !m.reject && this.received.length > 0) {
        for (const ms of this.received) observe('follower_persist', (nowMs - ms) / 1000);
        this.received = [];
      }
    }
  }

  /** A message arrived from a peer. */
  receivedMessage(m: Message, nowMs: number): void {
    const observe = this.observe;
    if (observe === undefined) return;
    if (m.type === 'append' && m.entries.length > 0) {
      if (this.received.length < TRACE_BATCHES_MAX) this.received.push(nowMs);
    } else if (m.type === 'append-response' && !m.reject) {
      const queue = this.unacked.get(m.from);
      while (queue !== undefined && queue.length > 0 && queue[0]!.last <= m.index) {
        observe('replicate', (nowMs - queue.shift()!.ms) / 1000);
      }
    }
  }

  /**
   * This node's proposal at `index` was applied at `appliedMs`: accepted at `acceptedMs`,
   * handed to the core at `proposedMs`.
   */
  proposalApplied(index: number, acceptedMs: number, proposedMs: number, appliedMs: number): void {
    const observe = this.observe;
    if (observe === undefined) return;
    observe('total', (appliedMs - acceptedMs) / 1000);
    observe('queue', (proposedMs - acceptedMs) / 1000);
    const batch = findRange(this.batches, index);
    const commit = findRange(this.commits, index);
    if (batch === undefined || commit === undefined) return;
    observe('append', (batch.readyMs - proposedMs) / 1000);
    observe('commit', (commit.ms - batch.persistedMs) / 1000);
    observe('apply', (appliedMs - commit.ms) / 1000);
  }
}

function rangeOf(entries: readonly Entry[]): { first: number; last: number } | undefined {
  if (entries.length === 0) return undefined;
  return { first: entries[0]!.index, last: entries[entries.length - 1]!.index };
}

/** Appends `item`, dropping the oldest beyond {@link TRACE_BATCHES_MAX}. */
function push<T>(list: T[], item: T): void {
  list.push(item);
  if (list.length > TRACE_BATCHES_MAX) list.shift();
}

/** The newest range holding `index` (recent ones are searched first: they are the likely ones). */
function findRange<T extends { readonly first: number; readonly last: number }>(
  list: readonly T[],
  index: number,
): T | undefined {
  for (let i = list.length - 1; i >= 0; i--) {
    const item = list[i]!;
    if (item.first <= index && index <= item.last) return item;
  }
  return undefined;
}
