/**
 * `flotilla demo`: the classic Raft scenarios on a real local 5-node cluster, narrated.
 *
 * It spawns five `serve` processes on loopback (as `cluster start` does, in a temporary
 * directory unless `--data-dir` is given) and then, step by step, printing `✔` or `✘` for
 * every check: (a) normal replication, (b) a follower SIGKILLed, (c) the leader SIGKILLed and
 * a new one elected with no acknowledged write lost, (d) only 3 of 5 alive still commit (then
 * the two killed nodes restart and catch up), (e) a minority of 2 (the leader and a follower)
 * SIGSTOPped: the majority elects a leader and commits, the minority resumes, catches up and
 * serves no stale read, (f) a counter incremented concurrently through every node by
 * compare-and-swap transactions ends exact. Every process is stopped at the end; the exit
 * code is 1 if any check failed.
 *
 * The cluster and its checks are in demo-cluster.ts, the scenarios in demo-scenarios.ts and
 * demo-counter.ts; this file runs them in order and prints the summary.
 */
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import type { Command } from 'commander';
import { type CheckResult, DEMO_NODES, DEMO_TICK_MS, DemoCluster, ELECTION_MS_MAX } from './demo-cluster.js';
import { counter } from './demo-counter.js';
import {
  followerKilled,
  leaderKilled,
  minorityPartition,
  normalReplication,
  threeOfFive,
} from './demo-scenarios.js';

export {
  DEMO_COUNTER_INCREMENTS,
  DEMO_ELECTION_TICKS,
  DEMO_NODES,
  DEMO_TICK_MS,
} from './demo-cluster.js';

interface DemoFlags {
  dataDir?: string;
  keep?: boolean;
}

/** Runs the demo in `dataDir`; resolves with true when every check passed. */
export async function runDemo(dataDir: string): Promise<boolean> {
  const demo = new DemoCluster(dataDir);
  const onSignal = (): void => {
    demo.killAllNow();
    process.exit(130);
  };
  const onExit = (): void => demo.killAllNow();
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  process.on('exit', onExit);
  const started = Date.now();
  try {
    await demo.plan();
    for (const node of demo.nodes) demo.start(node);
    await demo.writeClusterFile();
    console.log(
      `flotilla demo: ${DEMO_NODES} nodes on loopback, tick ${DEMO_TICK_MS} ms, election timeout ${ELECTION_MS_MAX / 2}–${ELECTION_MS_MAX} ms`,
    );
    console.log(`data, logs and cluster.json in ${dataDir}`);
    for (const n of demo.nodes)
      console.log(`   ${n.info.name}  pid ${n.info.pid}  client ${n.info.clientUrl}`);
    const scenarios: [string, () => Promise<void>][] = [
      ['a', () => normalReplication(demo)],
      ['b', () => followerKilled(demo)],
      ['c', () => leaderKilled(demo)],
      ['d', () => threeOfFive(demo)],
      ['e', () => minorityPartition(demo)],
      ['f', () => counter(demo)],
    ];
    for (const [, run] of scenarios) {
      try {
        await run();
      } catch (error) {
        demo.check(false, `unexpected error: ${(error as Error).message}`);
      }
    }
  } finally {
    await demo.stopAll();
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
    process.off('exit', onExit);
  }
  return printSummary(demo.results, started);
}

/** Prints one line per scenario and the total; true when every scenario made checks and all passed. */
function printSummary(results: readonly CheckResult[], started: number): boolean {
  const titles: Record<string, string> = {
    a: 'normal replication',
    b: 'follower killed, writes continue',
    c: 'leader killed, new leader, no acknowledged write lost',
    d: '3 of 5 alive still commit; restarted nodes catch up',
    e: 'minority paused: majority commits, minority heals, no stale read',
    f: 'concurrent compare-and-swap counter is exact',
  };
  console.log(`\nsummary (${((Date.now() - started) / 1000).toFixed(1)} s):`);
  let allOk = true;
  for (const [name, title] of Object.entries(titles)) {
    const checks = results.filter((r) => r.scenario === name);
    const failed = checks.filter((r) => !r.ok).length;
    const ok = checks.length > 0 && failed === 0;
    allOk &&= ok;
    console.log(`${ok ? '✔' : '✘'} ${name}) ${title} (${checks.length - failed}/${checks.length} checks)`);
  }
  const failedAll = results.filter((r) => !r.ok).length;
  console.log(failedAll === 0 && allOk ? 'all checks passed' : `${failedAll} check(s) failed`);
  return failedAll === 0 && allOk;
}

/** Registers `demo`. */
export function registerDemoCommand(program: Command): void {
  program
    .command('demo')
    .description('run the classic Raft scenarios on a real local 5-node cluster, narrated and checked')
    .option(
      '--data-dir <dir>',
      'where the nodes’ data and logs go (must be empty or absent; default: a temp dir)',
    )
    .option('--keep', 'keep the data directory (logs, cluster.json, node data) afterwards')
    .action(async (flags: DemoFlags) => {
      let dataDir: string;
      if (flags.dataDir === undefined) {
        dataDir = await mkdtemp(join(tmpdir(), 'flotilla-demo-'));
      } else {
        dataDir = resolve(flags.dataDir);
        if (existsSync(dataDir) && (await readdir(dataDir)).length > 0) {
          console.error(`error: --data-dir ${dataDir} is not empty`);
          process.exit(2);
        }
        await mkdir(dataDir, { recursive: true });
      }
      const ok = await runDemo(dataDir);
      if (flags.keep === true) console.log(`kept ${dataDir}`);
      else await rm(dataDir, { recursive: true, force: true });
      process.exit(ok ? 0 : 1);
    });
}
