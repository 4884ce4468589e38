/**
 * `/metrics` in the Prometheus text exposition format (version 0.0.4), written by hand so
 * the server needs no metrics library: runtime counters, raft gauges, transport counters and
 * HTTP request counts and latency.
 */
import type { RaftNode } from '../node/index.js';

/** Upper bounds of the request latency histogram, in milliseconds. */
const LATENCY_BUCKETS_MS = [1, 2, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10_000];

/** HTTP request counters and a latency histogram. */
export class HttpMetrics {
  private readonly requests = new Map<string, number>();
  private readonly buckets = LATENCY_BUCKETS_MS.map(() => 0);
  private count = 0;
  private sumMs = 0;

  /** Records one finished request. */
  observe(method: string, status: number, durationMs: number): void {
    const key = `method="${method}",code="${status}"`;
    this.requests.set(key, (this.requests.get(key) ?? 0) + 1);
    this.count++;
    this.sumMs += durationMs;
    for (let i = 0; i < LATENCY_BUCKETS_MS.length; i++)
      if (durationMs <= LATENCY_BUCKETS_MS[i]!) this.buckets[i]!++;
  }

  /** The lines of these metrics. */
  lines(): string[] {
    const out = ['# HELP flotilla_http_requests_total HTTP requests by method and status.'];
    out.push('# TYPE flotilla_http_requests_total counter');
    for (const [labels, n] of this.requests) out.push(`flotilla_http_requests_total{${labels}} ${n}`);
    out.push('# HELP flotilla_http_request_duration_seconds HTTP request latency.');
    out.push('# TYPE flotilla_http_request_duration_seconds histogram');
    LATENCY_BUCKETS_MS.forEach((le, i) => {
      out.push(`flotilla_http_request_duration_seconds_bucket{le="${le / 1000}"} ${this.buckets[i]}`);
    });
    out.push(`flotilla_http_request_duration_seconds_bucket{le="+Inf"} ${this.count}`);
    out.push(`flotilla_http_request_duration_seconds_sum ${this.sumMs / 1000}`);
    out.push(`flotilla_http_request_duration_seconds_count ${this.count}`);
    return out;
  }
}

function metric(out: string[], name: string, type: 'counter' | 'gauge', help: string, value: number): void {
  out.push(`# HELP ${name} ${help}`, `# TYPE ${name} ${type}`, `${name} ${value}`);
}

/** The whole `/metrics` body. */
export function renderMetrics(node: RaftNode, http: HttpMetrics): string {
  const out: string[] = [];
  const s = node.status();
  const c = node.counters;
  metric(out, 'flotilla_raft_term', 'gauge', 'Current raft term.', s.term);
  metric(out, 'flotilla_raft_commit_index', 'gauge', 'Commit index.', s.commit);
  metric(out, 'flotilla_raft_applied_index', 'gauge', 'Index applied to the KV store.', s.kvApplied);
  metric(out, 'flotilla_raft_last_index', 'gauge', 'Last log index.', s.lastIndex);
  metric(
    out,
    'flotilla_raft_is_leader',
    'gauge',
    '1 if this node is the leader.',
    s.role === 'leader' ? 1 : 0,
  );
  metric(out, 'flotilla_raft_has_leader', 'gauge', '1 if a leader is known.', s.leader !== 0 ? 1 : 0);
  metric(out, 'flotilla_kv_revision', 'gauge', 'Current KV revision.', s.revision);
  metric(out, 'flotilla_raft_leader_changes_total', 'counter', 'Leader changes seen.', c.leaderChanges);
  metric(out, 'flotilla_raft_readies_total', 'counter', 'Ready batches handled.', c.readies);
  metric(out, 'flotilla_wal_saves_total', 'counter', 'Durable saves (one fdatasync each).', c.saves);
  metric(
    out,
    'flotilla_wal_save_seconds_total',
    'counter',
    'Time spent in durable saves.',
    c.saveMsSum / 1000,
  );
  metric(out, 'flotilla_wal_entries_total', 'counter', 'Entries persisted.', c.entriesPersisted);
  metric(out, 'flotilla_apply_entries_total', 'counter', 'Entries applied.', c.entriesApplied);
  metric(out, 'flotilla_proposals_accepted_total', 'counter', 'Proposals accepted.', c.proposalsAccepted);
  metric(
    out,
    'flotilla_proposals_rejected_total',
    'counter',
    'Proposals refused by back-pressure.',
    c.proposalsRejected,
  );
  metric(
    out,
    'flotilla_proposals_applied_total',
    'counter',
    'Proposals applied on this node.',
    c.proposalsApplied,
  );
  metric(out, 'flotilla_proposals_timeout_total', 'counter', 'Proposals that timed out.', c.proposalTimeouts);
  metric(
    out,
    'flotilla_proposal_seconds_total',
    'counter',
    'Sum of proposal latencies (accept to apply).',
    c.proposalLatencyMsSum / 1000,
  );
  metric(out, 'flotilla_reads_served_total', 'counter', 'Reads served.', c.readsServed);
  metric(out, 'flotilla_reads_timeout_total', 'counter', 'Reads that timed out.', c.readTimeouts);
  metric(out, 'flotilla_snapshots_taken_total', 'counter', 'Snapshots taken.', c.snapshotsTaken);
  metric(
    out,
    'flotilla_snapshots_installed_total',
    'counter',
    'Snapshots installed from the leader.',
    c.snapshotsInstalled,
  );
  metric(
    out,
    'flotilla_peer_messages_sent_total',
    'counter',
    'Raft messages handed to the transport.',
    c.messagesSent,
  );
  metric(
    out,
    'flotilla_peer_messages_received_total',
    'counter',
    'Raft messages received.',
    c.messagesReceived,
  );
  const peers = node.transportStats().peers;
  out.push('# HELP flotilla_peer_connected 1 if the outbound connection to the peer is up.');
  out.push('# TYPE flotilla_peer_connected gauge');
  for (const [id, p] of peers) out.push(`flotilla_peer_connected{peer="${id}"} ${p.connected ? 1 : 0}`);
  out.push('# HELP flotilla_peer_messages_dropped_total Messages to the peer dropped by the transport.');
  out.push('# TYPE flotilla_peer_messages_dropped_total counter');
  for (const [id, p] of peers)
    out.push(`flotilla_peer_messages_dropped_total{peer="${id}"} ${p.messagesDropped}`);
  out.push(...http.lines());
  return `${out.join('\n')}\n`;
}
