/** `flotilla sim`: runs simulator seeds and reports failures with the command that reproduces them. */
import type { Command } from 'commander';
import { InvalidArgumentError } from 'commander';
import { isMutationName, MUTATION_NAMES, type MutationName } from '../raft/index.js';
import { runSeeds } from '../sim/index.js';

function positiveInt(value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 0)
    throw new InvalidArgumentError(`expected a non-negative integer, got "${value}"`);
  return n;
}

function clusterSize(value: string): number {
  const n = positiveInt(value);
  if (![1, 3, 5, 7].includes(n))
    throw new InvalidArgumentError(`cluster size must be 1, 3, 5 or 7, got ${n}`);
  return n;
}

function mutationName(value: string): MutationName {
  if (!isMutationName(value)) {
    throw new InvalidArgumentError(
      `unknown mutation "${value}"; known: ${Object.keys(MUTATION_NAMES).join(', ')}`,
    );
  }
  return value;
}

interface SimFlags {
  seeds: number;
  seed?: number;
  nodes?: number;
  mutate?: MutationName;
  json?: boolean;
  narrate?: boolean;
}

/** Registers the `sim` command. */
export function registerSimCommand(program: Command): void {
  program
    .command('sim')
    .description('run the deterministic simulator: faults, invariant checks, linearizability')
    .option('--seeds <n>', 'number of seeds to run', positiveInt, 100)
    .option('--seed <s>', 'run this one seed (or start here with --seeds)', positiveInt)
    .option('--nodes <k>', 'cluster size (default: chosen by each seed)', clusterSize)
    .option('--mutate <name>', 'switch on a deliberate bug the checkers must catch', mutationName)
    .option('--json', 'print a JSON summary as the last line')
    .option('--narrate', 'print each notable event: elections, faults, client operations')
    .action(async (opts: SimFlags) => {
      const single = opts.seed !== undefined && process.argv.every((a) => !a.startsWith('--seeds'));
      const first = opts.seed ?? 1;
      const count = single ? 1 : opts.seeds;
      const started = Date.now();
      const summary = await runSeeds({
        first,
        count,
        nodes: opts.nodes,
        mutation: opts.mutate,
        narrate: opts.narrate === true ? (line: string) => console.log(line) : undefined,
        onResult: (r) => {
          if (r.status === 'ok') return;
          const flags = `${opts.nodes !== undefined ? ` --nodes ${opts.nodes}` : ''}${opts.mutate !== undefined ? ` --mutate ${opts.mutate}` : ''}`;
          console.log(`seed ${r.seed}: ${r.status.toUpperCase()} ${r.property}: ${r.detail}`);
          console.log(`  reproduce: npx flotilla sim --seed ${r.seed}${flags}`);
        },
      });
      const seconds = ((Date.now() - started) / 1000).toFixed(1);
      const { failures, ...counters } = summary;
      if (!opts.json) {
        console.log(
          `${summary.seeds} seeds in ${seconds}s: ${summary.failed} failed, ${summary.unknown} unknown; ` +
            `${summary.ops} ops, ${summary.elections} elections, ${summary.crashes} crashes, ` +
            `${summary.partitions} partitions, ${summary.snapshots_installed} snapshots installed, max term ${summary.max_term}; ` +
            `profiles: ${Object.entries(summary.profiles)
              .map(([name, seeds]) => `${name} ${seeds}`)
              .join(', ')}`,
        );
      } else {
        console.log(JSON.stringify({ ...counters, failing_seeds: failures.map((f) => f.seed) }));
      }
      if (summary.failed > 0 || summary.unknown > 0) process.exitCode = opts.mutate !== undefined ? 0 : 1;
      if (opts.mutate !== undefined && summary.failed === 0) process.exitCode = 1;
    });
}
