/**
 * The growth benchmark's report: a Markdown table per system (one row per tenth of the
 * load, resident memory per member), a summary against etcd when both ran, and the last
 * line's JSON.
 */
import type { System } from '../vs-etcd/processes.js';
import type { GrowthArgs } from './args.js';
import type { SystemResult } from './load.js';
import type { MemberSample } from './members.js';

/** The last line of `--json`. */
export interface GrowthJson {
  readonly keys: number;
  readonly value_size: number;
  readonly clients: number;
  /** Flotilla's over etcd's (null unless both ran): put/s, worst-tenth p99, peak RSS, final disk. */
  readonly rps_ratio: number | null;
  readonly p99_ratio: number | null;
  readonly rss_ratio: number | null;
  readonly disk_ratio: number | null;
  /** Flotilla's failed requests (etcd's when Flotilla did not run). */
  readonly errors: number;
  /** Flotilla's last tenth's rate over its first's (etcd's when Flotilla did not run). */
  readonly last_decile_over_first: number;
  /** Seconds until a member killed with SIGKILL and started again serves, per system. */
  readonly restart_s: Partial<Record<System, number>>;
  /** Seconds until a member added with an empty data directory has the data, per system. */
  readonly catchup_s: Partial<Record<System, number>>;
  readonly systems: Partial<Record<System, SystemResult>>;
}

function ratio(ours: number | undefined, theirs: number | undefined): number | null {
  if (ours === undefined || theirs === undefined || theirs === 0) return null;
  return Math.round((ours / theirs) * 100) / 100;
}

function maxOf(values: readonly (number | null)[]): number {
  return Math.max(0, ...values.map((v) => v ?? 0));
}

function perSystem(
  systems: Partial<Record<System, SystemResult>>,
  pick: (result: SystemResult) => number,
): Partial<Record<System, number>> {
  const out: Partial<Record<System, number>> = {};
  for (const [system, result] of Object.entries(systems) as [System, SystemResult][])
    out[system] = pick(result);
  return out;
}

/** The summary JSON of a run. */
export function growthJson(args: GrowthArgs, systems: Partial<Record<System, SystemResult>>): GrowthJson {
  const { flotilla, etcd } = systems;
  const main = flotilla ?? etcd!;
  const finalDisk = (r: SystemResult | undefined): number | undefined =>
    r === undefined ? undefined : maxOf(r.steps[r.steps.length - 1]!.members.map((m) => m.disk_mb));
  return {
    keys: args.keys,
    value_size: args.valueSize,
    clients: args.clients,
    rps_ratio: ratio(flotilla?.rps, etcd?.rps),
    p99_ratio: ratio(flotilla?.p99_ms, etcd?.p99_ms),
    rss_ratio: ratio(
      flotilla === undefined ? undefined : maxOf(flotilla.peak_rss_mb),
      etcd === undefined ? undefined : maxOf(etcd.peak_rss_mb),
    ),
    disk_ratio: ratio(finalDisk(flotilla), finalDisk(etcd)),
    errors: main.errors,
    last_decile_over_first: main.last_decile_over_first,
    restart_s: perSystem(systems, (r) => r.rejoin.restart_s),
    catchup_s: perSystem(systems, (r) => r.rejoin.catchup_s),
    systems,
  };
}

function memberCell(members: readonly MemberSample[], pick: (m: MemberSample) => number | null): string {
  return members.map((m) => (pick(m) === null ? '-' : String(Math.round(pick(m)!)))).join(' / ');
}

function systemTable(system: System, result: SystemResult): string[] {
  const errors = Object.entries(result.error_kinds).map(([kind, n]) => `${n} × \`${kind}\``);
  return [
    `**${system}**: ${Math.round(result.rps)} put/s, worst-tenth p99 ${result.p99_ms} ms, max ${result.max_ms} ms, ` +
      `${result.errors} failed${errors.length > 0 ? ` (${errors.join(', ')})` : ''}; last tenth at ` +
      `${result.last_decile_over_first}x the first's rate; peak RSS per member ${result.peak_rss_mb.join(' / ')} MB; ` +
      `a member killed with SIGKILL serves again ${result.rejoin.restart_s} s after its start; a new member ` +
      `has the data after ${result.rejoin.catchup_s} s (peak RSS ${result.rejoin.catchup_peak_rss_mb} MB, ` +
      `${result.rejoin.catchup_written_mb} MB written)`,
    '',
    '| keys | put/s | p99 ms | max ms | failed | RSS anon MB | RSS file MB | heap MB | disk MB |',
    '| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |',
    ...result.steps
      .map((s) =>
        [
          s.keys.toLocaleString('en-US'),
          Math.round(s.rps),
          s.p99_ms,
          s.max_ms,
          s.errors,
          memberCell(s.members, (m) => m.rss_anon_mb),
          memberCell(s.members, (m) => m.rss_file_mb),
          memberCell(s.members, (m) => m.heap_mb),
          memberCell(s.members, (m) => m.disk_mb),
        ].join(' | '),
      )
      .map((row) => `| ${row} |`),
    '',
  ];
}

/** The report as Markdown: what ran, a table per system, the JSON. */
export function growthMarkdown(args: GrowthArgs, json: GrowthJson, heading: string): string {
  const lines = [
    heading,
    '',
    `${args.keys.toLocaleString('en-US')} distinct keys × ${args.valueSize} B values, put by etcd-load ` +
      `(etcd's Go client; ${args.clients} clients over ${args.conns} connections spread over the 3 members), ` +
      'one system at a time. Members per cell in member order; memory and disk after each tenth of the load.',
    '',
  ];
  for (const [system, result] of Object.entries(json.systems) as [System, SystemResult][]) {
    lines.push(...systemTable(system, result));
  }
  lines.push('```json', JSON.stringify({ ...json, systems: undefined }), '```');
  return lines.join('\n');
}
