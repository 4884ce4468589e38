/**
 * `/metrics` in the Prometheus text format, with prom-client. Each node has its own
 * {@link Registry} (several nodes may run in one process, in tests): raft and KV gauges and
 * the runtime's and transport's counters are read from the node when scraped; the HTTP
 * request counter and latency histogram are updated per request. The process metrics
 * (CPU, heap, resident memory by kind, event-loop delay, GC, handles: process-metrics.ts)
 * live in one registry per process, shared by every node in it, and are appended to each
 * node's output.
 *
 * Other servers of the node (the etcd gRPC API) register their own metrics in
 * {@link NodeMetrics.registry}.
 */
import { Counter, Gauge, Histogram, Registry } from 'prom-client';
import type { KvNode } from '../db/index.js';
import { type NodeCounters, WRITE_STAGES } from '../index.js';
import { callbackGauge, processMetrics } from './process-metrics.js';
import { StageHistogram } from './stage-histogram.js';

/** Upper bounds of the request latency histogram, in seconds. */
export const LATENCY_BUCKETS_SECONDS = [
  0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10,
] as const;

/**
 * Upper bounds of the per-stage write latency histogram, in seconds: from 20 µs (an encode, a
 * queue hop) to seconds (a stalled fsync).
 */
export const STAGE_BUCKETS_SECONDS = [
  0.00002, 0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5,
] as const;

/** The node's gauges, read when scraped, with their help. */
const GAUGES: readonly [name: string, help: string, value: (node: KvNode) => number | undefined][] = [
  ['flotilla_raft_term', 'Current raft term.', (node) => node.status().term],
  ['flotilla_raft_commit_index', 'Commit index.', (node) => node.status().commit],
  ['flotilla_raft_applied_index', 'Index applied to the KV store.', (node) => node.status().kvApplied],
  ['flotilla_raft_last_index', 'Last log index.', (node) => node.status().lastIndex],
  [
    'flotilla_raft_is_leader',
    '1 if this node is the leader.',
    (node) => (node.status().role === 'leader' ? 1 : 0),
  ],
  ['flotilla_raft_has_leader', '1 if a leader is known.', (node) => (node.status().leader !== 0 ? 1 : 0)],
  ['flotilla_kv_revision', 'Current KV revision.', (node) => node.status().revision],
  // etcd's etcd_debugging_mvcc_watcher_total and (the rest) etcd_debugging_mvcc_slow_watcher_total.
  ['flotilla_kv_watchers', 'Active watchers.', (node) => node.backend.watcherCounts.watchers],
  [
    'flotilla_kv_watchers_synced',
    'Watchers that have every published event (the others are behind, parked or waiting).',
    (node) => node.backend.watcherCounts.synced,
  ],
  // etcd's etcd_mvcc_db_total_size_in_bytes and etcd_mvcc_db_total_size_in_use_in_bytes.
  ['flotilla_kv_db_size_bytes', 'LMDB data file size.', (node) => storageStats(node)?.fileBytes],
  [
    'flotilla_kv_db_size_in_use_bytes',
    'LMDB size up to its last used page.',
    (node) => storageStats(node)?.usedBytes,
  ],
];

/** The counters of {@link NodeCounters} exported as Prometheus counters, with their help. */
const COUNTERS: readonly [name: string, help: string, value: (c: NodeCounters) => number][] = [
  ['flotilla_raft_leader_changes_total', 'Leader changes seen.', (c) => c.leaderChanges],
  ['flotilla_raft_readies_total', 'Ready batches handled.', (c) => c.readies],
  ['flotilla_wal_saves_total', 'Durable saves (one fdatasync each).', (c) => c.saves],
  ['flotilla_wal_save_seconds_total', 'Time spent in durable saves.', (c) => c.saveMsSum / 1000],
  ['flotilla_wal_entries_total', 'Entries persisted.', (c) => c.entriesPersisted],
  ['flotilla_apply_entries_total', 'Entries applied.', (c) => c.entriesApplied],
  ['flotilla_proposals_accepted_total', 'Proposals accepted.', (c) => c.proposalsAccepted],
  ['flotilla_proposals_rejected_total', 'Proposals refused by back-pressure.', (c) => c.proposalsRejected],
  ['flotilla_proposals_applied_total', 'Proposals applied on this node.', (c) => c.proposalsApplied],
  ['flotilla_proposals_timeout_total', 'Proposals that timed out.', (c) => c.proposalTimeouts],
  [
    'flotilla_proposal_seconds_total',
    'Sum of proposal latencies (accept to apply).',
    (c) => c.proposalLatencyMsSum / 1000,
  ],
  ['flotilla_reads_served_total', 'Reads served.', (c) => c.readsServed],
  ['flotilla_reads_timeout_total', 'Reads that timed out.', (c) => c.readTimeouts],
  ['flotilla_snapshots_taken_total', 'Snapshots taken.', (c) => c.snapshotsTaken],
  ['flotilla_snapshots_installed_total', 'Snapshots installed from the leader.', (c) => c.snapshotsInstalled],
  [
    'flotilla_snapshots_streamed_total',
    'State machine state streamed to followers that needed a snapshot (on-disk state machines).',
    (c) => c.snapshotsStreamed,
  ],
  ['flotilla_peer_messages_sent_total', 'Raft messages handed to the transport.', (c) => c.messagesSent],
  ['flotilla_peer_messages_received_total', 'Raft messages received.', (c) => c.messagesReceived],
];

/** The LMDB environment's sizes; undefined once the store is closed or failed. */
function storageStats(node: KvNode): { fileBytes: number; usedBytes: number } | undefined {
  try {
    return node.backend.storageStats();
  } catch {
    return undefined;
  }
}

/** The metrics of one node: its registry and the HTTP request instruments. */
export class NodeMetrics {
  /** This node's registry (not prom-client's global one). */
  readonly registry = new Registry();
  private readonly requests: Counter<'method' | 'code'>;
  private readonly latency: Histogram;

  constructor(node: KvNode) {
    // Starts the process's collectors now: event-loop delay is measured from the node's start.
    processMetrics();
    const registers = [this.registry];
    for (const [name, help, value] of GAUGES) callbackGauge(this.registry, name, help, () => value(node));
    for (const [name, help, value] of COUNTERS) {
      new Counter({
        name,
        help,
        registers,
        // The runtime keeps the totals; a scrape copies them.
        collect() {
          this.reset();
          this.inc(value(node.raft.stats().counters));
        },
      });
    }
    new Gauge({
      name: 'flotilla_peer_connected',
      help: '1 if the outbound connection to the peer is up.',
      labelNames: ['peer'],
      registers,
      collect() {
        this.reset();
        for (const [id, p] of node.raft.stats().transport.peers)
          this.set({ peer: String(id) }, p.connected ? 1 : 0);
      },
    });
    new Counter({
      name: 'flotilla_peer_messages_dropped_total',
      help: 'Messages to the peer dropped by the transport.',
      labelNames: ['peer'],
      registers,
      collect() {
        this.reset();
        for (const [id, p] of node.raft.stats().transport.peers)
          this.inc({ peer: String(id) }, p.messagesDropped);
      },
    });
    this.observeWriteStages(node);
    this.requests = new Counter({
      name: 'flotilla_http_requests_total',
      help: 'HTTP requests by method and status.',
      labelNames: ['method', 'code'],
      registers,
    });
    this.latency = new Histogram({
      name: 'flotilla_http_request_duration_seconds',
      help: 'HTTP request latency.',
      buckets: [...LATENCY_BUCKETS_SECONDS],
      registers,
    });
  }

  /**
   * `flotilla_write_stage_seconds{stage}`: where this node's writes spend their time, hop by
   * hop (the runtime's `WRITE_STAGES`), fed by the runtime as writes happen.
   */
  private observeWriteStages(node: KvNode): void {
    const histogram = new StageHistogram({
      name: 'flotilla_write_stage_seconds',
      help: 'Latency of each stage of a write on this node (see src/node/write-trace.ts).',
      stages: WRITE_STAGES,
      buckets: STAGE_BUCKETS_SECONDS,
    });
    histogram.register(this.registry);
    node.raft.observeWriteStages((stage, seconds) => histogram.observe(stage, seconds));
  }

  /** Records one finished HTTP request. */
  observeHttp(method: string, status: number, durationMs: number): void {
    this.requests.inc({ method, code: String(status) });
    this.latency.observe(durationMs / 1000);
  }

  /** The content type of {@link NodeMetrics.render}'s output. */
  get contentType(): string {
    return this.registry.contentType;
  }

  /** The whole `/metrics` body: this node's metrics, then the process's. */
  async render(): Promise<string> {
    const own = await this.registry.metrics();
    return `${own}${await processMetrics().metrics()}`;
  }
}
