/**
 * Linearizable read serving (ReadIndex, thesis §6.4): reads are queued, every read queued
 * since the last barrier shares one `readIndex` barrier, and a batch is served once the
 * leader has released its index (a `readState` in a Ready) and this node has applied up to
 * it. Followers ask the leader. A barrier that gets no answer within an election timeout, or
 * that went to a leader that has since changed, is issued again: a fresh barrier is as good
 * as the old one. A lease read (`consistency: 'lease'`) skips the barrier on a leader that
 * holds a lease: it is served once this node has applied up to the leader's commit index.
 */
import { isRaftError, type RawNode, type ReadState } from '../raft/index.js';
import type { NodeCounters } from './counters.js';
import { type FlotillaError, NotLeaderError, TimeoutError, TooManyRequestsError } from './errors.js';
import type { MachineDriver } from './machine-driver.js';
import type { RaftNodeOptions } from './options.js';

interface PendingRead {
  readonly query: unknown;
  readonly resolve: (answer: unknown) => void;
  readonly reject: (error: Error) => void;
  readonly timer: NodeJS.Timeout;
  done: boolean;
}

interface ReadBatch {
  readonly reads: PendingRead[];
  readonly issuedTick: number;
  /** The read index released by the leader, once known. */
  index: number;
}

/** What {@link ReadTracker} needs from the runtime. */
export interface ReadDeps {
  /** The group's core: whether a leader is known, and where barriers go. */
  readonly raw: Pick<RawNode, 'leader' | 'readIndex'>;
  /** The state machine reads are served from. */
  readonly machine: Pick<MachineDriver, 'query' | 'appliedIndex'>;
  readonly options: Pick<RaftNodeOptions, 'pendingReadsMax' | 'requestTimeoutMs' | 'electionTicks'>;
  readonly counters: NodeCounters;
  /** The group's tick count (see ticker.ts), which barriers are aged by. */
  readonly ticks: () => number;
  /** Schedules the Ready loop (a queued read gets its barrier on its next pass). */
  readonly wake: () => void;
}

/** The linearizable reads of one raft group waiting for a barrier or for apply to reach it. */
export class ReadTracker {
  private queued: PendingRead[] = [];
  private readonly batches = new Map<string, ReadBatch>();
  private batchSeq = 0;
  private pendingCount = 0;

  constructor(private readonly deps: ReadDeps) {}

  /** Reads waiting: queued, waiting for a barrier or for apply. */
  get pending(): number {
    return this.pendingCount;
  }

  /**
   * Queues a (validated) linearizable read; resolves with the state machine's answer to
   * `query` once it is served. Throws `TOO_MANY_REQUESTS` when too many reads wait.
   */
  enqueue(query: unknown): Promise<unknown> {
    return this.track(query, (read) => {
      this.queued.push(read);
      this.deps.wake();
    });
  }

  /**
   * Queues a read already confirmed at `index` (a leader's lease read): served once this
   * node has applied up to `index`, at once if it has. Throws like {@link ReadTracker.enqueue}.
   */
  enqueueAt(query: unknown, index: number): Promise<unknown> {
    return this.track(query, (read) => {
      const key = `lease-${++this.batchSeq}`;
      this.batches.set(key, { reads: [read], issuedTick: this.deps.ticks(), index });
      this.serve();
    });
  }

  /** A pending read of `query`, counted and timed, handed to `place`. */
  private track(query: unknown, place: (read: PendingRead) => void): Promise<unknown> {
    const { pendingReadsMax, requestTimeoutMs } = this.deps.options;
    if (this.pendingCount >= pendingReadsMax) {
      throw new TooManyRequestsError('TOO_MANY_REQUESTS', `too many pending reads (${pendingReadsMax})`);
    }
    return new Promise<unknown>((resolve, reject) => {
      const read: PendingRead = {
        query,
        resolve,
        reject,
        done: false,
        timer: setTimeout(() => this.expire(read), requestTimeoutMs),
      };
      this.pendingCount++;
      place(read);
    });
  }

  /** Starts one ReadIndex barrier for every read queued since the last. */
  flush(): void {
    const reads = this.queued.filter((r) => !r.done);
    this.queued = [];
    if (reads.length === 0) return;
    if (this.deps.raw.leader === 0) {
      this.queued = reads;
      return;
    }
    const context = new Uint8Array(8);
    new DataView(context.buffer).setBigUint64(0, BigInt(++this.batchSeq));
    try {
      this.deps.raw.readIndex(context);
    } catch (error) {
      if (!isRaftError(error)) throw error;
      this.queued = reads;
      return;
    }
    this.batches.set(Buffer.from(context).toString('hex'), {
      reads,
      issuedTick: this.deps.ticks(),
      index: 0,
    });
  }

  /** Records the read indexes the leader released (a Ready's `readStates`). */
  released(readStates: readonly ReadState[]): void {
    for (const rs of readStates) {
      const batch = this.batches.get(Buffer.from(rs.context).toString('hex'));
      if (batch !== undefined) batch.index = rs.index;
    }
  }

  /** Serves released reads whose index this node has applied. */
  serve(): void {
    const machine = this.deps.machine;
    const applied = machine.appliedIndex;
    for (const [key, batch] of this.batches) {
      if (batch.index === 0 || batch.index > applied) continue;
      this.batches.delete(key);
      for (const read of batch.reads) this.finish(read, () => read.resolve(machine.query(read.query)));
    }
  }

  /**
   * Re-issues read barriers that got no answer within an election timeout (the request or
   * its answer was lost, or the leader changed): a fresh barrier is as good as the old one.
   */
  reissueStale(): void {
    const now = this.deps.ticks();
    for (const [key, batch] of this.batches) {
      if (batch.index !== 0 || now - batch.issuedTick < this.deps.options.electionTicks) continue;
      this.batches.delete(key);
      this.queued.push(...batch.reads.filter((r) => !r.done));
    }
  }

  /** After a leader change: barriers sent to the old leader will not be answered, so ask the new one. */
  reissueUnreleased(): void {
    for (const [key, batch] of this.batches) {
      if (batch.index !== 0) continue;
      this.batches.delete(key);
      this.queued.push(...batch.reads);
    }
  }

  /** Fails every waiting read with `error`. */
  failAll(error: FlotillaError): void {
    const reads = [...this.queued];
    for (const batch of this.batches.values()) reads.push(...batch.reads);
    this.queued = [];
    this.batches.clear();
    for (const read of reads) {
      this.finish(read, () => {
        throw error;
      });
    }
  }

  private finish(read: PendingRead, serve: () => void): void {
    if (read.done) return;
    read.done = true;
    this.pendingCount--;
    clearTimeout(read.timer);
    try {
      serve();
      this.deps.counters.readsServed++;
    } catch (error) {
      read.reject(error as Error);
    }
  }

  private expire(read: PendingRead): void {
    if (read.done) return;
    this.deps.counters.readTimeouts++;
    const timeoutMs = this.deps.options.requestTimeoutMs;
    const leaderHint = this.deps.raw.leader;
    const error =
      leaderHint === 0
        ? new NotLeaderError('NO_LEADER', `no leader within ${timeoutMs} ms`)
        : new TimeoutError('TIMEOUT', `read not confirmed within ${timeoutMs} ms`, { leaderHint });
    this.finish(read, () => {
      throw error;
    });
  }
}
