/**
 * `--breakdown`: where a write's time goes inside Flotilla. The runtime exports a histogram
 * `flotilla_write_stage_seconds{stage="..."}` on each node's /metrics; every node is scraped
 * just before and just after each Flotilla run of the breakdown workloads (put_1, put_100;
 * both clients), and the difference, added up per node role (leader, followers) and over the
 * rounds, gives per stage: how many, the mean, and p50 / p99 estimated from the buckets.
 * Stage names are the runtime's, shown in its order of first appearance (the leader's first).
 */
import type { Client } from './clients.js';
import type { Cluster } from './clusters.js';
import {
  type Histogram,
  histogramDelta,
  histogramQuantile,
  histogramSum,
  parseHistograms,
} from './prom-histogram.js';
import type { WorkloadKey } from './workloads.js';

export const STAGE_METRIC = 'flotilla_write_stage_seconds';

/** One node's stage histograms and its role at the time of a scrape. */
export interface NodeScrape {
  readonly role: string;
  readonly stages: ReadonlyMap<string, Histogram>;
}

/** One row of a breakdown table: a stage on the nodes of one role. */
export interface BreakdownRow {
  readonly stage: string;
  readonly role: string;
  readonly count: number;
  readonly mean_ms: number | null;
  readonly p50_ms: number | null;
  readonly p99_ms: number | null;
}

async function getText(url: string): Promise<string> {
  const response = await fetch(url, { signal: AbortSignal.timeout(5000) });
  if (!response.ok) throw new Error(`GET ${url}: HTTP ${response.status}`);
  return response.text();
}

/** Scrapes one node: /metrics for the stage histograms, /v1/cluster for its role. */
async function scrapeNode(clientUrl: string): Promise<NodeScrape> {
  const [metrics, cluster] = await Promise.all([
    getText(`${clientUrl}/metrics`).catch(() => ''),
    getText(`${clientUrl}/v1/cluster`).catch(() => '{}'),
  ]);
  let role = 'unknown';
  try {
    role = String((JSON.parse(cluster) as { role?: unknown }).role ?? 'unknown');
  } catch {
    // not JSON: the role stays unknown
  }
  return { role, stages: parseHistograms(metrics, STAGE_METRIC, 'stage') };
}

/** Scrapes every member of a Flotilla cluster, in member order. */
export function scrapeCluster(cluster: Cluster): Promise<NodeScrape[]> {
  return Promise.all(cluster.clientUrls.map(scrapeNode));
}

const ROLE_ORDER = ['leader', 'follower'];
const roleRank = (role: string): number => {
  const at = ROLE_ORDER.indexOf(role);
  return at < 0 ? ROLE_ORDER.length : at;
};

/** The stage histograms of the breakdown workloads, added up per role and over the rounds. */
export class Breakdown {
  /** By `workload/client`, then stage (in order of first appearance), then role. */
  private readonly tables = new Map<string, Map<string, Map<string, Histogram>>>();

  /** Adds what each node observed between `before` and `after` (scrapes of the same nodes). */
  add(
    workload: WorkloadKey,
    client: Client,
    before: readonly NodeScrape[],
    after: readonly NodeScrape[],
  ): void {
    const key = `${workload}/${client}`;
    const table = this.tables.get(key) ?? new Map<string, Map<string, Histogram>>();
    this.tables.set(key, table);
    const nodes = after.map((node, i) => ({ after: node, before: before[i] }));
    nodes.sort((a, b) => roleRank(a.after.role) - roleRank(b.after.role));
    for (const node of nodes) {
      const was = node.before?.role ?? node.after.role;
      const role = was === node.after.role ? was : `${was}→${node.after.role}`;
      for (const [stage, histogram] of node.after.stages) {
        const delta = histogramDelta(histogram, node.before?.stages.get(stage));
        const byRole = table.get(stage) ?? new Map<string, Histogram>();
        table.set(stage, byRole);
        const sofar = byRole.get(role);
        byRole.set(role, sofar === undefined ? delta : histogramSum(sofar, delta));
      }
    }
  }

  /** Whether any run of `workload` with `client` was scraped. */
  has(workload: WorkloadKey, client: Client): boolean {
    return this.tables.has(`${workload}/${client}`);
  }

  /** Whether the scrapes of `workload` with `client` found the metric at all. */
  exposed(workload: WorkloadKey, client: Client): boolean {
    return (this.tables.get(`${workload}/${client}`)?.size ?? 0) > 0;
  }

  /**
   * The rows of one table: stages in order of first appearance, leader before followers;
   * a stage a role saw nothing of during the runs has no row.
   */
  rows(workload: WorkloadKey, client: Client): BreakdownRow[] {
    const rows: BreakdownRow[] = [];
    for (const [stage, byRole] of this.tables.get(`${workload}/${client}`) ?? []) {
      const roles = [...byRole].sort(([a], [b]) => roleRank(a) - roleRank(b));
      for (const [role, h] of roles.filter(([, x]) => x.count > 0)) {
        const ms = (seconds: number | null): number | null =>
          seconds === null ? null : Math.round(seconds * 1e6) / 1000;
        rows.push({
          stage,
          role,
          count: h.count,
          mean_ms: h.count > 0 ? ms(h.sum / h.count) : null,
          p50_ms: ms(histogramQuantile(0.5, h)),
          p99_ms: ms(histogramQuantile(0.99, h)),
        });
      }
    }
    return rows;
  }

  /** Every table as JSON: by workload, then client. */
  json(): Record<string, Record<string, BreakdownRow[]>> {
    const out: Record<string, Record<string, BreakdownRow[]>> = {};
    for (const key of this.tables.keys()) {
      const [workload, client] = key.split('/') as [WorkloadKey, Client];
      const byClient = out[workload] ?? {};
      byClient[client] = this.rows(workload, client);
      out[workload] = byClient;
    }
    return out;
  }
}
