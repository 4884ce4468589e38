/**
 * The JSON line of `npm run bench:vs-etcd --json`, as test/bench-tool.test.ts reads it: one
 * workload's fields, and the checks of the neutral client's (etcd-load's) fields.
 */
import assert from 'node:assert/strict';

const NEUTRAL_FIELDS = [
  'neutral_rps_ratio',
  'neutral_p99_ratio',
  'neutral_flotilla_rps',
  'neutral_etcd_rps',
  'neutral_flotilla_p99_ms',
  'neutral_etcd_p99_ms',
  'neutral_flotilla_errors',
  'neutral_etcd_errors',
  'neutral_flotilla_cpu_ms_per_req',
  'neutral_etcd_cpu_ms_per_req',
  'neutral_cpu_ratio',
] as const;

/**
 * The neutral client's fields: all null for the watch rows (etcd-load does not watch), with a
 * note saying so; numbers elsewhere, both systems served it, and the servers' CPU was counted
 * (etcd's can be under one clock tick, 10 ms, in a run this small, so only >= 0).
 */
export function assertNeutral(key: string, w: WorkloadJson): void {
  if (key === 'watch_latency' || key === 'watch_fanout') {
    for (const field of NEUTRAL_FIELDS) assert.equal(w[field], null, `${key}.${field}`);
    assert.match(w.neutral_note ?? '', /etcd-load does not watch/);
    return;
  }
  for (const field of NEUTRAL_FIELDS.filter((f) => f !== 'neutral_cpu_ratio')) {
    assert.equal(typeof w[field], 'number', `${key}.${field} = ${w[field]}`);
  }
  assert.ok((w.neutral_flotilla_rps ?? 0) > 0 && (w.neutral_etcd_rps ?? 0) > 0, `${key}: etcd-load ran`);
  assert.ok((w.neutral_flotilla_cpu_ms_per_req ?? 0) > 0, `${key}.neutral_flotilla_cpu_ms_per_req`);
  assert.ok((w.neutral_etcd_cpu_ms_per_req ?? -1) >= 0, `${key}.neutral_etcd_cpu_ms_per_req`);
  const clients = new Set(w.rounds.map((r) => `${r.system}/${r.client}`));
  assert.equal(clients.size, 4, `${key}: both clients against both systems: ${[...clients]}`);
}

export interface WorkloadJson {
  flotilla_rps: number;
  etcd_rps: number;
  flotilla_watch_slowdown?: number | null;
  etcd_watch_slowdown?: number | null;
  flotilla_rss_bytes_per_watcher?: number | null;
  etcd_rss_bytes_per_watcher?: number | null;
  flotilla_p99_ms: number;
  etcd_p99_ms: number;
  rps_ratio: number;
  p99_ratio: number | null;
  flotilla_ok: number;
  etcd_ok: number;
  flotilla_cpu_ms_per_req: number | null;
  etcd_cpu_ms_per_req: number | null;
  cpu_ratio: number | null;
  flotilla_client_cpu_share: number | null;
  etcd_client_cpu_share: number | null;
  neutral_rps_ratio: number | null;
  neutral_p99_ratio: number | null;
  neutral_flotilla_rps: number | null;
  neutral_etcd_rps: number | null;
  neutral_flotilla_p99_ms: number | null;
  neutral_etcd_p99_ms: number | null;
  neutral_flotilla_errors: number | null;
  neutral_etcd_errors: number | null;
  neutral_flotilla_cpu_ms_per_req: number | null;
  neutral_etcd_cpu_ms_per_req: number | null;
  neutral_cpu_ratio: number | null;
  neutral_note?: string;
  rounds: { system: string; client: string }[];
}
