/**
 * The rows of the comparison: each workload's arguments for our client (`flotilla bench`)
 * and for the neutral one (etcd-load, on etcd's Go client), sized by `--scale` or `--quick`.
 */

export type WorkloadKey =
  | 'put_1'
  | 'put_100'
  | 'put_1000'
  | 'range_l_100'
  | 'range_s_100'
  | 'txn_put_100'
  | 'mixed_100'
  | 'watch_latency'
  | 'put_100_with_10k_watchers'
  | 'put_100_with_100k_watchers'
  | 'watch_fanout';

/** Picks a run's size: `total(normal, quick)` is `normal` times --scale, or `quick` with --quick. */
export interface Sizing {
  readonly quick: boolean;
  total(normal: number, quick: number): number;
}

export interface Workload {
  readonly key: WorkloadKey;
  readonly label: string;
  /** `flotilla bench` arguments (without --endpoints and --json). */
  ours(size: Sizing): string[];
  /** etcd-load arguments (without -endpoints); undefined where etcd-load has no counterpart. */
  neutral?(size: Sizing): string[];
  /** Why the row has no neutral counterpart. */
  readonly noNeutral?: string;
  /** Whether `--breakdown` scrapes Flotilla's per-stage write histograms around its runs. */
  readonly breakdown?: boolean;
  /** Idle watchers (on keys no row writes) held by a child process around each run. */
  idleWatchers?(size: Sizing): number;
  /** The row of the same runs without watchers, for `watch_slowdown`. */
  readonly baseline?: WorkloadKey;
  /** Our client is this script of bench/vs-etcd/ (the `ours` arguments are its) instead of `flotilla bench`. */
  readonly script?: string;
  /** Run only with `--watchers-100k` (too slow for a default run). */
  readonly optIn?: boolean;
}

/** The puts' keys and values, for `flotilla bench` and for etcd-load. */
export const PUT = ['--key-size', '8', '--val-size', '256', '--key-space-size', '100000'];
const NEUTRAL_PUT = ['-key-size', '8', '-val-size', '256', '-key-space', '100000'];
/** The key the range and mixed workloads read (written with a 256-byte value before them). */
export const RANGE_KEY = 'foo';

/** `flotilla bench` arguments: `clients` clients over `conns` connections, `total` requests. */
function ours(command: readonly string[], clients: number, conns: number, total: number): string[] {
  return [...command, '--clients', String(clients), '--conns', String(conns), '--total', String(total)];
}

/** etcd-load arguments for operation `op`, as {@link ours}. */
function neutral(
  op: string,
  clients: number,
  conns: number,
  total: number,
  extra: readonly string[],
): string[] {
  return ['-op', op, '-clients', String(clients), '-conns', String(conns), '-total', String(total), ...extra];
}

/** A put workload: `clients` clients over `conns` connections. */
function put(key: WorkloadKey, clients: number, conns: number, normal: number, quick: number): Workload {
  return {
    key,
    label: `put, ${clients} client${clients === 1 ? '' : 's'} / ${conns} conn${conns === 1 ? '' : 's'}`,
    ours: (s) => [...ours(['put'], clients, conns, s.total(normal, quick)), ...PUT],
    neutral: (s) => neutral('put', clients, conns, s.total(normal, quick), NEUTRAL_PUT),
    breakdown: key !== 'put_1000',
  };
}

/** put_100 while `normal` (`quick` with --quick) idle watchers exist. */
function putWithWatchers(key: WorkloadKey, label: string, normal: number, quick: number): Workload {
  const base = put(key, 100, 10, 15_000, 300);
  return {
    ...base,
    label: `put, 100 clients / 10 conns, with ${label} idle watchers on other keys (etcd3 npm client, 10 conns)`,
    breakdown: false,
    idleWatchers: (s) => (s.quick ? quick : normal),
    baseline: 'put_100',
  };
}

/** A range of {@link RANGE_KEY}, 100 clients over 10 connections. */
function range(consistency: 'l' | 's'): Workload {
  return {
    key: consistency === 'l' ? 'range_l_100' : 'range_s_100',
    label: `range (${consistency === 'l' ? 'linearizable' : 'serializable'}), 100 clients / 10 conns`,
    ours: (s) => ours(['range', RANGE_KEY, '--consistency', consistency], 100, 10, s.total(20_000, 300)),
    neutral: (s) => neutral(`range-${consistency}`, 100, 10, s.total(20_000, 300), ['-range-key', RANGE_KEY]),
  };
}

export const WORKLOADS: readonly Workload[] = [
  put('put_1', 1, 1, 1000, 30),
  put('put_100', 100, 10, 15_000, 300),
  put('put_1000', 1000, 100, 20_000, 1000),
  range('l'),
  range('s'),
  {
    key: 'txn_put_100',
    label: 'txn of one put, 100 clients / 10 conns',
    ours: (s) => [...ours(['txn-put'], 100, 10, s.total(15_000, 300)), ...PUT],
    neutral: (s) => neutral('txn-put', 100, 10, s.total(15_000, 300), NEUTRAL_PUT),
  },
  {
    key: 'mixed_100',
    label: '90% linearizable range / 10% put, 100 clients / 10 conns',
    ours: (s) => [
      ...ours(['mixed', RANGE_KEY, '--read-percent', '90'], 100, 10, s.total(20_000, 300)),
      ...PUT,
    ],
    neutral: (s) =>
      neutral('mixed', 100, 10, s.total(20_000, 300), [
        ...NEUTRAL_PUT,
        '-range-key',
        RANGE_KEY,
        '-read-percent',
        '90',
      ]),
  },
  {
    key: 'watch_latency',
    label: 'watch latency, 10 streams x 10 watchers, 100 puts/s',
    ours: (s) => [
      'watch-latency',
      '--put-total',
      String(s.total(500, 20)),
      '--put-rate',
      '100',
      '--streams',
      s.quick ? '2' : '10',
      '--watchers-per-stream',
      s.quick ? '2' : '10',
    ],
    noNeutral: 'etcd-load does not watch',
  },
  putWithWatchers('put_100_with_10k_watchers', '10,000', 10_000, 500),
  { ...putWithWatchers('put_100_with_100k_watchers', '100,000', 100_000, 1000), optIn: true },
  {
    key: 'watch_fanout',
    label: 'watch fan-out: 1,000 watchers of one key over 10 conns (etcd3 npm client), puts one at a time',
    script: 'watch-fanout',
    ours: (s) => ['--watchers', s.quick ? '100' : '1000', '--conns', '10', '--puts', String(s.total(100, 5))],
    noNeutral: 'etcd-load does not watch',
  },
];

/** The rows a run makes: every row, and the opt-in ones only when asked for. */
export function activeWorkloads(watchers100k: boolean): Workload[] {
  return WORKLOADS.filter((w) => w.optIn !== true || watchers100k);
}
