/**
 * Proposal tracking: the proposals this node accepted and has not yet seen applied, the queue
 * of those not yet handed to the core, back-pressure, batching into the core, and settling
 * each one when its entry is applied here, it expires, or the node stops.
 *
 * Client proposals that arrive while a Ready is in flight are queued and go into the core
 * together before the next Ready, so one fsync covers all of them. Every entry carries a
 * request id (this process incarnation's origin and a sequence number, see envelope.ts) by
 * which the applier recognises this node's own proposals.
 */
import { performance } from 'node:perf_hooks';
import { isRaftError, type RawNode } from '../raft/index.js';
import type { NodeCounters } from './counters.js';
import { Deadlines } from './deadlines.js';
import { newOrigin, type RequestId } from './envelope.js';
import {
  type FlotillaError,
  NotLeaderError,
  ProposalDroppedError,
  TimeoutError,
  TooManyRequestsError,
} from './errors.js';
import type { RaftNodeOptions } from './options.js';
import type { WriteTrace } from './write-trace.js';

/** What a proposal resolves with: the state machine's result, or undefined for a member update. */
export type ProposalOutcome = unknown;

/** Per-proposal options. */
export interface EnqueueOptions {
  /** How long it may take, including waiting for a leader; the node's `requestTimeoutMs` by default. */
  readonly timeoutMs?: number;
  /**
   * Stops waiting for the outcome: the proposal rejects with the signal's reason. One not yet
   * handed to the core is dropped; one already proposed may still be applied.
   */
  readonly signal?: AbortSignal;
}

interface PendingProposal {
  readonly seq: number;
  readonly data: Uint8Array;
  readonly startedMs: number;
  /** With the state machine's result; with undefined for a member update. */
  readonly resolve: (result: ProposalOutcome) => void;
  readonly reject: (error: Error) => void;
  /** Its timeout in milliseconds (for the error message). */
  readonly timeoutMs: number;
  /** Removes the abort listener, if one was added. */
  unlisten: (() => void) | undefined;
  /** Handed to the core (else still queued, e.g. while no leader is known). */
  proposed: boolean;
  /** When it was handed to the core (for the write trace). */
  proposedMs: number;
}

/** What {@link ProposalTracker} needs from the runtime. */
export interface ProposalDeps {
  /** The group's core: its leader and commit index, and where proposals go. */
  readonly raw: Pick<RawNode, 'leader' | 'commit' | 'proposeBatch'>;
  /** The state machine's applied index (for the apply-lag back-pressure). */
  readonly appliedIndex: () => number;
  readonly options: Pick<
    RaftNodeOptions,
    'pendingProposalsMax' | 'applyLagEntriesMax' | 'proposalBatchBytesMax' | 'requestTimeoutMs'
  >;
  readonly counters: NodeCounters;
  /** Per-stage write latencies: each applied proposal reports its own. */
  readonly trace: WriteTrace;
  /** Schedules the Ready loop (a queued proposal goes into the core on its next pass). */
  readonly wake: () => void;
  /** The clock timeouts are measured on, in milliseconds; performance.now by default. */
  readonly now?: () => number;
}

/** The proposals of one raft group that this node accepted and has not yet seen applied. */
export class ProposalTracker {
  private readonly origin = newOrigin();
  /** This process incarnation's origin, as request ids in entries carry it. */
  readonly originHex = Buffer.from(this.origin).toString('hex');
  private seq = 0;
  private readonly pending = new Map<number, PendingProposal>();
  private queued: PendingProposal[] = [];
  private readonly deadlines: Deadlines;

  constructor(private readonly deps: ProposalDeps) {
    this.deadlines = new Deadlines(
      deps.now ?? (() => performance.now()),
      (seq) => this.pending.has(seq),
      (seq) => this.expire(seq),
    );
  }

  /** How many proposals are accepted and not yet settled. */
  get size(): number {
    return this.pending.size;
  }

  /** A token unique to this process incarnation (for requests tracked outside the log's ids). */
  nextToken(): string {
    return `${this.originHex}-${++this.seq}`;
  }

  /** This node's sequence number of the proposal `id` names; undefined when another made it. */
  ownSeq(id: RequestId): number | undefined {
    return id.origin === this.originHex ? id.seq : undefined;
  }

  /**
   * Throws `TOO_MANY_REQUESTS` when too many proposals are pending or apply lags commit by
   * too much (counted as rejected).
   */
  checkBackPressure(): void {
    const o = this.deps.options;
    if (this.pending.size >= o.pendingProposalsMax) {
      this.deps.counters.proposalsRejected++;
      throw new TooManyRequestsError(
        'TOO_MANY_REQUESTS',
        `too many pending proposals (${o.pendingProposalsMax})`,
      );
    }
    const lag = this.deps.raw.commit - this.deps.appliedIndex();
    if (lag > o.applyLagEntriesMax) {
      this.deps.counters.proposalsRejected++;
      throw new TooManyRequestsError(
        'TOO_MANY_REQUESTS',
        `apply lags commit by ${lag} entries (max ${o.applyLagEntriesMax})`,
      );
    }
  }

  /**
   * Queues the entry `encode` builds for the next proposal number; resolves with its outcome
   * once applied here (the state machine's result, or undefined for a member update), or
   * rejects when it expires, is aborted or the node stops.
   */
  enqueue(
    encode: (origin: Uint8Array, seq: number) => Uint8Array,
    options: EnqueueOptions = {},
  ): Promise<ProposalOutcome> {
    const { signal } = options;
    signal?.throwIfAborted();
    const seq = ++this.seq;
    const data = encode(this.origin, seq);
    const timeoutMs = options.timeoutMs ?? this.deps.options.requestTimeoutMs;
    return new Promise((resolve, reject) => {
      const pending: PendingProposal = {
        seq,
        data,
        startedMs: performance.now(),
        resolve,
        reject,
        timeoutMs,
        unlisten: undefined,
        proposed: false,
        proposedMs: 0,
      };
      if (signal !== undefined) {
        const onAbort = (): void => this.failed(seq, signal.reason as Error);
        signal.addEventListener('abort', onAbort, { once: true });
        pending.unlisten = () => signal.removeEventListener('abort', onAbort);
      }
      this.pending.set(seq, pending);
      this.deadlines.add(seq, timeoutMs);
      this.queued.push(pending);
      this.deps.counters.proposalsAccepted++;
      this.deps.wake();
    });
  }

  /** Hands queued proposals to the core in batches; keeps them queued while no leader is known. */
  flush(): void {
    if (this.queued.length === 0 || this.deps.raw.leader === 0) return;
    const queue = this.queued.filter((p) => this.pending.has(p.seq));
    this.queued = [];
    let start = 0;
    while (start < queue.length) {
      const end = this.batchEnd(queue, start);
      const slice = queue.slice(start, end);
      try {
        this.deps.raw.proposeBatch(slice.map((p) => p.data));
        const now = this.deps.trace.enabled ? performance.now() : 0;
        for (const p of slice) {
          p.proposed = true;
          p.proposedMs = now;
        }
      } catch (error) {
        if (isRaftError(error, 'NOT_LEADER')) {
          this.queued = queue.slice(start);
          return;
        }
        const refused = new ProposalDroppedError(
          'PROPOSAL_DROPPED',
          `proposal refused: ${(error as Error).message}`,
          {
            cause: error,
          },
        );
        for (const p of slice) this.settle(p.seq, (q) => q.reject(refused));
        if (!isRaftError(error)) throw error;
      }
      start = end;
    }
  }

  /** Where the batch starting at `start` ends: at least one proposal, then up to the byte budget. */
  private batchEnd(queue: readonly PendingProposal[], start: number): number {
    let end = start;
    let bytes = 0;
    while (
      end < queue.length &&
      (end === start || bytes + queue[end]!.data.length <= this.deps.options.proposalBatchBytesMax)
    ) {
      bytes += queue[end]!.data.length;
      end++;
    }
    return end;
  }

  /**
   * Resolves this node's proposal `seq`, applied here at log `index` with the state
   * machine's `result` (counted with its latency).
   */
  applied(seq: number, index: number, result: unknown): void {
    this.settle(seq, (p) => {
      const counters = this.deps.counters;
      const now = performance.now();
      counters.proposalsApplied++;
      counters.proposalLatencyMsSum += now - p.startedMs;
      counters.proposalLatencyCount++;
      if (this.deps.trace.enabled) this.deps.trace.proposalApplied(index, p.startedMs, p.proposedMs, now);
      p.resolve(result);
    });
  }

  /** Resolves this node's member-update proposal `seq`, applied here. */
  appliedMemberUpdate(seq: number): void {
    this.settle(seq, (p) => p.resolve(undefined));
  }

  /** Rejects this node's proposal `seq` with `error`. */
  failed(seq: number, error: Error): void {
    this.settle(seq, (p) => p.reject(error));
  }

  /** Rejects every pending proposal with `error` and empties the queue. */
  failAll(error: FlotillaError): void {
    for (const seq of [...this.pending.keys()]) this.failed(seq, error);
    this.queued = [];
  }

  private expire(seq: number): void {
    const leaderHint = this.deps.raw.leader;
    this.settle(seq, (p) => {
      this.deps.counters.proposalTimeouts++;
      const ms = p.timeoutMs;
      p.reject(
        p.proposed
          ? new TimeoutError('TIMEOUT', `proposal not applied within ${ms} ms; outcome unknown`, {
              leaderHint,
            })
          : new NotLeaderError('NO_LEADER', `no leader within ${ms} ms; nothing was written`, { leaderHint }),
      );
    });
  }

  private settle(seq: number, settle: (p: PendingProposal) => void): void {
    const pending = this.pending.get(seq);
    if (pending === undefined) return;
    this.pending.delete(seq);
    if (this.pending.size === 0) this.deadlines.clear();
    pending.unlisten?.();
    settle(pending);
  }
}
