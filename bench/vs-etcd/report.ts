/**
 * The comparison as Markdown (printed, and written to bench/RESULTS.md between its markers):
 * the run's circumstances, the physical limits, both clients' verdicts side by side, the
 * figures per client, the CPU accounting, the raw runs, and with --breakdown the per-stage
 * tables.
 */
import { readFile, writeFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import type { Args } from './args.js';
import type { Breakdown } from './breakdown.js';
import { CLIENT_NAMES, type Client } from './clients.js';
import { describePlacement } from './leader.js';
import type { Limits } from './limits.js';
import type { System } from './processes.js';
import type { ClientSummary, Figures, WorkloadSummary } from './summary.js';
import { watchFields } from './watch-rows.js';
import { WORKLOADS, type Workload, type WorkloadKey } from './workloads.js';

const RESULTS = fileURLToPath(new URL('../../../bench/RESULTS.md', import.meta.url));
const CLIENTS: readonly Client[] = ['ours', 'neutral'];

export interface Meta {
  date: string;
  machine: string;
  versions: string;
  disk: string;
  args: Args;
  cores: number;
  durationS: number;
  loadBefore: string;
  loadAfter: string;
  /** How the neutral client was got (built, or skipped and why). */
  neutral: string;
}

/** What the report is made of. */
export interface ReportInput {
  readonly meta: Meta;
  readonly limits: Limits;
  readonly summaries: ReadonlyMap<WorkloadKey, WorkloadSummary>;
  /** Each workload's arguments, per client ('' where the client does not run it). */
  readonly commands: ReadonlyMap<WorkloadKey, Record<Client, string>>;
  readonly breakdown: Breakdown | undefined;
  readonly json: string;
}

export const fmt = (value: number | null, digits = 0): string =>
  value === null
    ? 'n/a'
    : value.toLocaleString('en-US', { minimumFractionDigits: digits, maximumFractionDigits: digits });
const fmtRatio = (value: number | null): string => (value === null ? 'n/a' : `${value.toFixed(2)}x`);
const fmtShare = (value: number | null): string => (value === null ? 'n/a' : `${(value * 100).toFixed(0)}%`);

/** Each workload that has a summary, with it. */
function rows(input: ReportInput): [Workload, WorkloadSummary][] {
  return WORKLOADS.flatMap((w) => {
    const s = input.summaries.get(w.key);
    return s === undefined ? [] : [[w, s] as [Workload, WorkloadSummary]];
  });
}

/** Each client that ran `s`, with its figures. */
function clientsOf(s: WorkloadSummary): [Client, ClientSummary][] {
  return CLIENTS.flatMap((c) => {
    const summary = c === 'ours' ? s.ours : s.neutral;
    return summary === null ? [] : [[c, summary] as [Client, ClientSummary]];
  });
}

function header(meta: Meta, limits: Limits): string[] {
  return [
    '## Flotilla vs etcd',
    '',
    '`npm run bench:vs-etcd [-- --rounds N] [--scale X] [--json] [--no-neutral] [--breakdown] [--leader N|any]` (bench/vs-etcd/):',
    'a 3-node etcd and a 3-node Flotilla on loopback, data on the same disk, both syncing to disk, each',
    "workload driven by two clients: ours (`flotilla bench`) and a neutral one (etcd-load, on etcd's own Go",
    'client, bench/etcd-load/), one child process per run. Runs alternate between the systems and between',
    'the clients (which goes first swaps every round); each figure is the median over the rounds. Everything',
    "shares the machine's CPU: the servers, the idle other cluster and the client. See docs/benchmarks.md.",
    '',
    `Run: ${meta.date}, ${meta.args.rounds} round(s), scale ${meta.args.scale}, ${Math.round(meta.durationS)} s in all; ` +
      `load average ${meta.loadBefore} before, ${meta.loadAfter} after (other work on the machine counts too).`,
    `Machine: ${meta.machine}. Data disk: ${meta.disk}.`,
    `Versions: ${meta.versions}. Neutral client: ${meta.neutral}.`,
    `Leader: ${describePlacement(meta.args.leader, 3)} ` + '(see bench/vs-etcd/leader.ts).',
    '',
    `Physical limits (same run): 4 KiB write + fdatasync on the data disk ${fmt(limits.fdatasync_per_s)}/s ` +
      `(${limits.fdatasync_ms.toFixed(2)} ms each); loopback TCP 1-byte ping-pong between two processes ` +
      `${fmt(limits.tcp_round_trips_per_s)} round trips/s (mean ${fmt(limits.tcp_rtt_us)} µs, p99 ${fmt(limits.tcp_rtt_p99_us)} µs).`,
    '',
  ];
}

/** Both clients' verdicts, side by side. */
function verdicts(input: ReportInput): string[] {
  const lines = [
    '| workload | req/s ratio: flotilla bench | req/s ratio: etcd-load | p99 ratio: flotilla bench | p99 ratio: etcd-load | server CPU/req ratio: flotilla bench | server CPU/req ratio: etcd-load |',
    '| --- | ---: | ---: | ---: | ---: | ---: | ---: |',
  ];
  for (const [w, s] of rows(input)) {
    const n = s.neutral;
    const none = n === null ? (w.noNeutral ?? 'not run') : '';
    const cell = (value: number | null): string => (n === null ? none : fmtRatio(value));
    lines.push(
      `| ${w.key} | ${fmtRatio(s.ours.rpsRatio)} | ${cell(n?.rpsRatio ?? null)} | ${fmtRatio(s.ours.p99Ratio)} | ` +
        `${cell(n?.p99Ratio ?? null)} | ${fmtRatio(s.ours.cpuRatio)} | ${cell(n?.cpuRatio ?? null)} |`,
    );
  }
  lines.push(
    '',
    'Ratios are Flotilla / etcd: above 1 is better for req/s, worse for p99 and for server CPU per request.',
    '',
  );
  return lines;
}

/**
 * A table with a row per workload and client: `head` (the columns after workload and
 * client), the cells of each row from `cells`, then `notes`.
 */
function perClientTable(
  input: ReportInput,
  head: readonly string[],
  cells: (f: Figures, e: Figures) => string[],
  notes: readonly string[],
): string[] {
  const lines = [
    `| workload | client | ${head.join(' | ')} |`,
    `| --- | --- |${' ---: |'.repeat(head.length)}`,
  ];
  for (const [w, s] of rows(input)) {
    for (const [client, c] of clientsOf(s)) {
      lines.push(`| ${w.key} | ${CLIENT_NAMES[client]} | ${cells(c.flotilla, c.etcd).join(' | ')} |`);
    }
  }
  return [...lines, '', ...notes, ''];
}

/** Requests/sec, latencies and errors per workload and client. */
function throughput(input: ReportInput): string[] {
  return perClientTable(
    input,
    [
      'Flotilla req/s',
      'etcd req/s',
      'Flotilla p50 / p99 ms',
      'etcd p50 / p99 ms',
      'errors (Flotilla / etcd)',
    ],
    (f, e) => [
      fmt(f.rps),
      fmt(e.rps),
      `${fmt(f.p50, 2)} / ${fmt(f.p99, 2)}`,
      `${fmt(e.p50, 2)} / ${fmt(e.p99, 2)}`,
      `${fmt(f.errors)} / ${fmt(e.errors)}`,
    ],
    [
      'Requests/sec counts successful requests only; latencies are of successful requests; errors are failed',
      'requests summed over the rounds.',
    ],
  );
}

const perMember = (f: Figures): string =>
  f.reqPerCpuSPerProcess === null
    ? fmt(f.reqPerCpuS)
    : `${fmt(f.reqPerCpuS)} (${f.reqPerCpuSPerProcess.map((v) => fmt(v)).join(' / ')})`;

/** Server CPU per request, requests per CPU-second, and the client's share of the cores. */
function cpu(input: ReportInput): string[] {
  const cores = input.meta.cores;
  return perClientTable(
    input,
    [
      'Flotilla CPU ms/req',
      'etcd CPU ms/req',
      'Flotilla req per CPU-s: all (each member)',
      'etcd req per CPU-s: all (each member)',
      `client CPU, share of ${cores} cores (Flotilla run / etcd run)`,
    ],
    (f, e) => [
      fmt(f.cpuMsPerReq, 3),
      fmt(e.cpuMsPerReq, 3),
      perMember(f),
      perMember(e),
      `${fmtShare(f.clientCpuShare)} / ${fmtShare(e.clientCpuShare)}`,
    ],
    [
      "Server CPU is the user + system time of the system under test's three member processes",
      '(/proc/<pid>/stat) from just before the client starts to just after it exits, over its successful',
      'requests (watch_latency: over the watch events received); it includes whatever the members do',
      "meanwhile (heartbeats, the client's connecting). The client's CPU is its process's own user + system",
      `time, start-up included, shown as a share of the ${cores} cores over its wall time.`,
    ],
  );
}

function workloadList(input: ReportInput): string[] {
  const lines = ['Workloads (`flotilla bench` arguments; etcd-load arguments):', ''];
  for (const w of WORKLOADS) {
    const command = input.commands.get(w.key);
    if (command === undefined) continue;
    const neutral =
      command.neutral === '' ? `no etcd-load run (${w.noNeutral ?? 'skipped'})` : `\`${command.neutral}\``;
    lines.push(`- \`${w.key}\`: ${w.label}: \`${command.ours}\`; ${neutral}`);
  }
  lines.push(
    '',
    'watch_latency: req/s is watch events received per second (puts are paced at 100/s), latencies',
    'are from the end of each put to the arrival of its event at each watcher. etcd-load does not watch,',
    'so this row has no neutral figures.',
    '',
    'put_100_with_*_watchers: put_100 while a child process holds that many idle watchers (one key each,',
    'keys no row writes) over 10 connections; watch_fanout: req/s is puts per second, latencies are from',
    'the start of each put until all 1,000 watchers have its event. Both use the etcd3 npm client.',
    '',
  );
  return lines;
}

/** The idle-watcher rows: each system's put_100 rate over its rate with the watchers, and RSS per watcher. */
function watchRows(input: ReportInput): string[] {
  const lines = [
    "| workload | watch_slowdown Flotilla / etcd (flotilla bench) | (etcd-load) | members' RSS growth per watcher, bytes: Flotilla / etcd |",
    '| --- | ---: | ---: | ---: |',
  ];
  for (const [w] of rows(input)) {
    const f = watchFields(w, input.summaries);
    if (f === undefined) continue;
    const pair = (
      a: number | null | undefined,
      b: number | null | undefined,
      show: (v: number | null) => string,
    ) => `${show(a ?? null)} / ${show(b ?? null)}`;
    lines.push(
      `| ${w.key} | ${pair(f.flotilla_watch_slowdown, f.etcd_watch_slowdown, fmtRatio)} | ` +
        `${pair(f.neutral_flotilla_watch_slowdown, f.neutral_etcd_watch_slowdown, fmtRatio)} | ` +
        `${pair(f.flotilla_rss_bytes_per_watcher, f.etcd_rss_bytes_per_watcher, (v) => fmt(v))} |`,
    );
  }
  if (lines.length === 2) return [];
  lines.push(
    '',
    'watch_slowdown is the put_100 rate over the rate with the watchers: 1.00x means no slowdown.',
    '',
  );
  return lines;
}

function perRound(input: ReportInput): string[] {
  const lines = [
    'Per round (req/s, p50 / p99 ms, server CPU ms/req):',
    '',
    '| workload | round | client | Flotilla | etcd |',
    '| --- | ---: | --- | ---: | ---: |',
  ];
  for (const [w, s] of rows(input)) {
    for (let r = 1; r <= input.meta.args.rounds; r++) {
      for (const client of CLIENTS) {
        const cell = (system: System): string => {
          const run = s.records.find((x) => x.round === r && x.system === system && x.client === client);
          if (run === undefined) return '';
          if (run.failure !== undefined) return `failed: ${run.failure.slice(0, 60)}`;
          const errors = run.errors > 0 ? `, ${run.errors} errors` : '';
          const cpuMs = run.serverCpuMs === null ? null : run.serverCpuMs.reduce((a, b) => a + b, 0);
          const perReq = cpuMs === null || run.succeeded === 0 ? null : cpuMs / run.succeeded;
          return `${fmt(run.rps)} (${fmt(run.p50, 2)} / ${fmt(run.p99, 2)}${errors}; ${fmt(perReq, 3)})`;
        };
        const f = cell('flotilla');
        const e = cell('etcd');
        if (f !== '' || e !== '') lines.push(`| ${w.key} | ${r} | ${CLIENT_NAMES[client]} | ${f} | ${e} |`);
      }
    }
  }
  return lines;
}

/** The per-stage tables of --breakdown. */
function breakdownTables(input: ReportInput): string[] {
  const breakdown = input.breakdown;
  if (breakdown === undefined) return [];
  const lines = ['', '### Where a Flotilla write spends its time (--breakdown)', ''];
  for (const w of WORKLOADS.filter((x) => x.breakdown === true)) {
    for (const client of CLIENTS) {
      if (!breakdown.has(w.key, client)) continue;
      lines.push(`${w.key}, ${CLIENT_NAMES[client]} (all rounds):`, '');
      const table = breakdown.rows(w.key, client);
      if (table.length === 0) {
        lines.push(
          breakdown.exposed(w.key, client)
            ? 'per-stage metrics exposed, but no write observed during these runs'
            : 'no per-stage metrics exposed (`flotilla_write_stage_seconds` is not on /metrics)',
          '',
        );
        continue;
      }
      lines.push(
        '| stage | role | count | mean ms | p50 ms | p99 ms |',
        '| --- | --- | ---: | ---: | ---: | ---: |',
      );
      for (const row of table) {
        lines.push(
          `| ${row.stage} | ${row.role} | ${fmt(row.count)} | ${fmt(row.mean_ms, 3)} | ${fmt(row.p50_ms, 3)} | ${fmt(row.p99_ms, 3)} |`,
        );
      }
      lines.push('');
    }
  }
  lines.push(
    'Each member scraped just before and after each Flotilla run; followers are the two followers added up',
    '(a write sent to a follower is timed on that follower from its arrival to its answer, see the stages',
    'in src/node/write-trace.ts); a stage a role did not observe during the runs has no row;',
    'p50 / p99 are estimated from the histogram buckets as histogram_quantile does. The stages are in the',
    'order the members first observed them.',
  );
  return lines;
}

export function report(input: ReportInput): string {
  return [
    ...header(input.meta, input.limits),
    ...verdicts(input),
    ...throughput(input),
    ...cpu(input),
    ...workloadList(input),
    ...watchRows(input),
    ...perRound(input),
    ...breakdownTables(input),
    '',
    '```json',
    input.json,
    '```',
  ].join('\n');
}

/**
 * Replaces the section between the markers `<!-- name:start -->` and `<!-- name:end -->` of
 * bench/RESULTS.md (appends it if they are missing).
 */
export async function writeResults(section: string, name = 'vs-etcd'): Promise<string> {
  const START_MARKER = `<!-- ${name}:start -->`;
  const END_MARKER = `<!-- ${name}:end -->`;
  let text = '';
  try {
    text = await readFile(RESULTS, 'utf8');
  } catch {
    text = '# Benchmark results\n';
  }
  const block = `${START_MARKER}\n${section}\n${END_MARKER}`;
  const start = text.indexOf(START_MARKER);
  const end = text.indexOf(END_MARKER);
  if (start >= 0 && end > start) {
    text = text.slice(0, start) + block + text.slice(end + END_MARKER.length);
  } else {
    text = `${text.trimEnd()}\n\n${block}\n`;
  }
  await writeFile(RESULTS, text);
  return RESULTS;
}
