/**
 * `flotilla bench put|range|txn-put|watch-latency`: etcd's `benchmark` tool for any etcd v3
 * endpoint (Flotilla's or etcd's), with the same flags, defaults and report (and `mixed`:
 * linearizable reads of one key and puts, at random), plus `--json`
 * (one JSON object on stdout) and a progress bar on stderr (when it is a terminal, or with
 * `--progress`). Bad flags exit 2; a run that cannot connect exits 1. Requests that fail are
 * counted as errors, never as successes, and (as with etcd's tool) do not change the exit
 * code: the report's error distribution and the JSON `errors` say. See docs/benchmarks.md.
 */
import type { Command, CommanderError } from 'commander';
import {
  BenchUsageError,
  benchMixed,
  benchPut,
  benchRange,
  benchTxnPut,
  benchWatchLatency,
  DEFAULTS,
  formatSummary,
  parseMixedOptions,
  parsePutOptions,
  parseRangeOptions,
  parseTxnPutOptions,
  parseWatchLatencyOptions,
  type RawFlags,
  type RunContext,
  type Summary,
  summaryJson,
} from '../benchmark/index.js';

function exitOnUsageError(error: CommanderError): never {
  process.exit(error.exitCode === 0 ? 0 : 2);
}

/** Parses the flags with `parse` (usage errors exit 2), then runs `body` (failures exit 1). */
async function run<T>(
  parse: () => T,
  body: (options: T, context: RunContext) => Promise<void>,
  raw: RawFlags,
) {
  let options: T;
  try {
    options = parse();
  } catch (error) {
    if (!(error instanceof BenchUsageError)) throw error;
    console.error(`error: ${error.message}`);
    process.exit(2);
  }
  const context: RunContext = { progress: raw.progress === true || process.stderr.isTTY === true };
  try {
    await body(options, context);
  } catch (error) {
    console.error(`error: ${error instanceof Error ? error.message : String(error)}`);
    process.exitCode = 1;
  }
}

function printSummary(command: string, raw: RawFlags, options: object, summary: Summary, header = ''): void {
  if (raw.json === true) {
    console.log(JSON.stringify({ command, ...describe(options), ...summaryJson(summary) }));
  } else {
    process.stdout.write(`${header}${formatSummary(summary, raw.precise === true)}\n`);
  }
}

/** The options worth echoing in JSON output (not the timeouts). */
function describe(options: object): Record<string, unknown> {
  const {
    dialTimeoutMs: _d,
    requestTimeoutMs: _r,
    eventTimeoutMs: _e,
    ...rest
  } = options as Record<string, unknown>;
  return rest;
}

/** Registers `bench` and its subcommands. */
export function registerBenchCommand(program: Command): void {
  const bench = registerBenchOptions(program);
  registerPut(bench);
  registerTxnPut(bench);
  registerRange(bench);
  registerMixed(bench);
  registerWatchLatency(bench);
}

/** `bench` with the flags every subcommand shares (etcd's `benchmark` global flags). */
function registerBenchOptions(program: Command): Command {
  return program
    .command('bench')
    .description("benchmark any etcd v3 endpoint: etcd's `benchmark` tool (same flags and report)")
    .option('--endpoints <list>', `gRPC endpoints, host:port,... (default: ${DEFAULTS.endpoints})`)
    .option('--conns <n>', 'total number of gRPC connections (default: 1)')
    .option('--clients <n>', 'total number of concurrent clients (default: 1)')
    .option('--total <n>', 'total number of requests (default: 10000)')
    .option('--key-size <bytes>', 'key size (default: 8; watch-latency: 32)')
    .option('--val-size <bytes>', 'value size (default: 8; watch-latency: 32)')
    .option('--key-space-size <n>', 'maximum possible keys (default: 1)')
    .option('--sequential-keys', 'use sequential keys (put)')
    .option('--rate <n>', 'maximum requests per second, 0 for no limit (default: 0)')
    .option('--dial-timeout <duration>', 'time to wait for every connection, e.g. 5s (default: 5s)')
    .option('--request-timeout <duration>', 'deadline of each request, e.g. 30s (default: 30s)')
    .option(
      '--json',
      'print one JSON object (rps, total, errors, latencies in ms, histogram) instead of the report',
    )
    .option('--progress', 'draw the progress bar on stderr even when it is not a terminal')
    .option('--precise', 'print full floating point precision')
    .exitOverride(exitOnUsageError);
}

/** `bench put`. */
function registerPut(bench: Command): void {
  bench
    .command('put')
    .description('benchmark put')
    .action(async (_flags: RawFlags, command: Command) => {
      const raw = command.optsWithGlobals<RawFlags>();
      await run(
        () => parsePutOptions(raw),
        async (options, context) => printSummary('put', raw, options, await benchPut(options, context)),
        raw,
      );
    });
}

/** `bench txn-put`. */
function registerTxnPut(bench: Command): void {
  bench
    .command('txn-put')
    .description('benchmark txn-put')
    .option('--txn-ops <n>', 'number of puts per txn (default: 1)')
    .action(async (_flags: RawFlags, command: Command) => {
      const raw = command.optsWithGlobals<RawFlags>();
      await run(
        () => parseTxnPutOptions(raw),
        async (options, context) =>
          printSummary('txn-put', raw, options, await benchTxnPut(options, context)),
        raw,
      );
    });
}

/** `bench range <key> [end]`. */
function registerRange(bench: Command): void {
  bench
    .command('range <key> [end]')
    .description('benchmark range')
    .option('--consistency <l|s>', 'linearizable (l) or serializable (s) (default: l)')
    .action(async (key: string, end: string | undefined, _flags: RawFlags, command: Command) => {
      const raw = command.optsWithGlobals<RawFlags>();
      await run(
        () => parseRangeOptions(raw, key, end),
        async (options, context) => {
          const header = `bench with ${options.consistency === 'l' ? 'linearizable' : 'serializable'} range\n`;
          printSummary('range', raw, options, await benchRange(options, context), header);
        },
        raw,
      );
    });
}

/** `bench mixed <key>`: linearizable reads of the key and puts, at random, `--read-percent` reads. */
function registerMixed(bench: Command): void {
  bench
    .command('mixed <key>')
    .description("benchmark a mix of linearizable ranges of <key> and puts (not in etcd's tool)")
    .option('--read-percent <n>', 'percent of requests that are ranges of <key>, the rest puts (default: 90)')
    .action(async (key: string, _flags: RawFlags, command: Command) => {
      const raw = command.optsWithGlobals<RawFlags>();
      await run(
        () => parseMixedOptions(raw, key),
        async (options, context) => printSummary('mixed', raw, options, await benchMixed(options, context)),
        raw,
      );
    });
}

/** `bench watch-latency`: a summary of the puts and one of the watch events. */
function registerWatchLatency(bench: Command): void {
  bench
    .command('watch-latency')
    .description('benchmark the latency from a put to the watch events it causes')
    .option('--put-total <n>', 'total number of put requests (default: 1000; etcd 3.4 called it --total)')
    .option('--put-rate <n>', 'number of keys to put per second (default: 100)')
    .option('--streams <n>', 'total watch streams (default: 10)')
    .option('--watchers-per-stream <n>', 'total watchers per stream (default: 10)')
    .option('--prevkv', 'PrevKV enabled on watch requests')
    .option('--event-timeout <duration>', 'how long to wait for a missing watch event (default: 10s)')
    .action(async (_flags: RawFlags, command: Command) => {
      const raw = command.optsWithGlobals<RawFlags>();
      await run(
        () => parseWatchLatencyOptions(raw),
        async (options, context) => {
          const result = await benchWatchLatency(options, context);
          if (raw.json === true) {
            console.log(
              JSON.stringify({
                command: 'watch-latency',
                ...describe(options),
                ...summaryJson(result.watch),
                put: summaryJson(result.put),
              }),
            );
          } else {
            const precise = raw.precise === true;
            process.stdout.write(`\nPut summary:\n${formatSummary(result.put, precise)}`);
            process.stdout.write(`\nWatch events summary:\n${formatSummary(result.watch, precise)}\n`);
          }
        },
        raw,
      );
    });
}
