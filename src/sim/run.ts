/** Runs many simulator seeds and summarizes them. */
import type { MutationName } from '../raft/index.js';
import { emptySimStats, type SimResult, type SimStats } from './report.js';
import { runSimulation } from './simulator.js';

/** `camelCase` to `snake_case`, the style of the summary's JSON keys. */
type Snake<S extends string> = S extends `${infer H}${infer T}`
  ? `${H extends Lowercase<H> ? H : `_${Lowercase<H>}`}${Snake<T>}`
  : S;

/** Per-seed counters left out of the summary: added up over seeds they mean nothing. */
const NOT_SUMMED = ['nodes', 'duplicatesSuppressed'] as const;
type SummedStat = Exclude<keyof SimStats, (typeof NOT_SUMMED)[number]>;

/**
 * Aggregate over a set of seeds: every counter of {@link SimStats} (in snake_case) added up,
 * `max_term` as a maximum. The counters prove the faults really happened.
 */
export type SimSummary = {
  seeds: number;
  /** How many seeds drew each profile (`random`: none), by name. */
  profiles: Record<string, number>;
  failed: number;
  unknown: number;
  failures: { seed: number; property: string; detail: string }[];
} & { [K in SummedStat as Snake<K>]: number };

function snake(key: string): string {
  return key.replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`);
}

/** Options of a multi-seed run. */
export interface RunSeedsOptions {
  /** First seed; seeds are `first, first + 1, ...`. */
  readonly first: number;
  readonly count: number;
  readonly nodes?: number | undefined;
  readonly mutation?: MutationName | undefined;
  /** Stop at the first failing seed (mutation checks want only to know it is caught). */
  readonly stopOnFailure?: boolean;
  /** Called after each seed (progress output). */
  readonly onResult?: (result: SimResult) => void;
  /** Narrates every seed's notable events. */
  readonly narrate?: ((line: string) => void) | undefined;
}

/** Runs `count` seeds, one after another, and returns the summary. */
export async function runSeeds(options: RunSeedsOptions): Promise<SimSummary> {
  const summary = { seeds: 0, profiles: {}, failed: 0, unknown: 0, failures: [] } as unknown as SimSummary;
  const counters = summary as unknown as Record<string, number>;
  for (const key of SUMMED_STATS) counters[snake(key)] = 0;
  for (let i = 0; i < options.count; i++) {
    const seed = options.first + i;
    const result = await runSimulation({
      seed,
      nodes: options.nodes,
      mutation: options.mutation,
      narrate: options.narrate,
    });
    add(summary, result);
    options.onResult?.(result);
    if (options.stopOnFailure === true && result.status === 'failed') break;
  }
  return summary;
}

/** The {@link SimStats} keys the summary adds up, in declaration order. */
const SUMMED_STATS = (Object.keys(emptySimStats()) as (keyof SimStats)[]).filter(
  (key): key is SummedStat => !(NOT_SUMMED as readonly string[]).includes(key),
);

function add(summary: SimSummary, result: SimResult): void {
  summary.seeds++;
  summary.profiles[result.profile] = (summary.profiles[result.profile] ?? 0) + 1;
  if (result.status === 'failed') summary.failed++;
  if (result.status === 'unknown') summary.unknown++;
  if (result.status !== 'ok') {
    summary.failures.push({
      seed: result.seed,
      property: result.property ?? '',
      detail: result.detail ?? '',
    });
  }
  const counters = summary as unknown as Record<string, number>;
  for (const key of SUMMED_STATS) {
    const name = snake(key);
    const value = result.stats[key];
    counters[name] = key === 'maxTerm' ? Math.max(counters[name] ?? 0, value) : (counters[name] ?? 0) + value;
  }
}
