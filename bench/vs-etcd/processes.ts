/**
 * The processes of one `bench:vs-etcd` run: every child is tracked so that an error, the
 * end of the run or a signal (Ctrl-C, SIGTERM, SIGHUP) stops them all and removes the
 * run's directory; plus the small waiting helpers the other modules share.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { rm } from 'node:fs/promises';
import { createServer, type Server } from 'node:net';
import { runProcess } from '../run-process.js';
import { reapedChildrenCpuMs } from './cpu.js';

export type System = 'flotilla' | 'etcd';
export const SYSTEMS: readonly System[] = ['flotilla', 'etcd'];

/** What the run knows about its processes; shared by every module of the harness. */
export const run: {
  /** The run's temporary directory, once made. */
  root: string | undefined;
  /** Set once cleanup has begun: nothing new starts after it. */
  cleaning: Promise<void> | undefined;
  /** Why each cluster stopped before the end of the run, once it did (the run is then void). */
  stopped: Partial<Record<System, string>>;
  /** Why a process could not be started (the `etcd` binary missing, say), once one could not. */
  spawnFailure: Error | undefined;
} = { root: undefined, cleaning: undefined, stopped: {}, spawnFailure: undefined };

const children = new Set<ChildProcess>();
const pidsToKill = new Set<number>();

export function log(message: string): void {
  console.error(message);
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** Tracks `child`: it is stopped at cleanup, and a failure to spawn it is remembered. */
export function track(child: ChildProcess): ChildProcess {
  children.add(child);
  child.on('exit', () => children.delete(child));
  child.on('error', (error) => {
    children.delete(child);
    run.spawnFailure ??= new Error(`cannot start ${child.spawnfile}: ${error.message}`);
  });
  return child;
}

/** A tracked child `file args` whose stdout and stderr are collected together into `output()`. */
export function spawnCollecting(
  file: string,
  args: readonly string[],
): { child: ChildProcess; output(): string } {
  const child = track(spawn(file, args, { stdio: ['ignore', 'pipe', 'pipe'] }));
  let output = '';
  const collect = (d: Buffer): void => {
    output += d.toString();
  };
  child.stdout?.on('data', collect);
  child.stderr?.on('data', collect);
  return { child, output: () => output };
}

/** A process that is not a child of this one (a cluster member), to kill at cleanup. */
export function killAtCleanup(pid: number): void {
  pidsToKill.add(pid);
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

export async function waitFor(condition: () => boolean, timeoutMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (condition()) return true;
    await sleep(50);
  }
  return condition();
}

/**
 * Stops the processes `pids` of a cluster this run started (SIGTERM, then SIGKILL after 5 s)
 * and waits until they are gone; the run goes on.
 */
export async function stopMembers(pids: readonly number[]): Promise<void> {
  const signal = (name: NodeJS.Signals): void => {
    for (const pid of pids) {
      try {
        process.kill(pid, name);
      } catch {
        // gone already
      }
    }
  };
  signal('SIGTERM');
  if (!(await waitFor(() => pids.every((p) => !alive(p)), 5000))) signal('SIGKILL');
  await waitFor(() => pids.every((p) => !alive(p)), 5000);
}

/** Stops everything this run started and removes its directory (once). */
export function cleanup(): Promise<void> {
  run.cleaning ??= (async () => {
    for (const child of children) child.kill('SIGTERM');
    await waitFor(() => children.size === 0, 5000);
    for (const child of children) child.kill('SIGKILL');
    for (const pid of pidsToKill) {
      if (alive(pid)) {
        try {
          process.kill(pid, 'SIGKILL');
        } catch {
          // gone meanwhile
        }
      }
    }
    await waitFor(() => children.size === 0 && [...pidsToKill].every((p) => !alive(p)), 3000);
    if (run.root !== undefined) await rm(run.root, { recursive: true, force: true });
  })();
  return run.cleaning;
}

/** On Ctrl-C, SIGTERM or SIGHUP: cleans up, then exits 130 (SIGINT) or 143. */
export function cleanupOnSignals(): void {
  for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
    process.on(signal, () => {
      log(`\n${signal}: stopping the clusters and removing ${run.root ?? 'the data'}`);
      void cleanup().finally(() => process.exit(signal === 'SIGINT' ? 130 : 143));
    });
  }
}

/** Throws if the run is being stopped. */
export function checkInterrupted(): void {
  if (run.cleaning !== undefined) throw new Error('interrupted');
}

/** `count` distinct free TCP ports on 127.0.0.1 (all held open together, then released). */
export async function freePorts(count: number): Promise<number[]> {
  const servers: Server[] = [];
  const ports: number[] = [];
  for (let i = 0; i < count; i++) {
    const server = createServer();
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(0, '127.0.0.1', () => resolve());
    });
    servers.push(server);
    const address = server.address();
    ports.push(typeof address === 'object' && address !== null ? address.port : 0);
  }
  await Promise.all(servers.map((s) => new Promise((resolve) => s.close(resolve))));
  return ports;
}

/** How a child process ran: its exit code, output, wall time and CPU time. */
export interface ChildRun {
  readonly code: number | null;
  readonly stdout: string;
  readonly stderr: string;
  /** From spawn to exit, ms. */
  readonly wallMs: number;
  /**
   * Its user + system CPU time, ms (with any children it waited for): the growth of this
   * process's `cutime + cstime` (/proc/self/stat) across the run, which the kernel adds the
   * child's rusage to when it is reaped. Nothing else this harness starts exits meanwhile.
   */
  readonly cpuMs: number | null;
}

/** Runs `file args` to its exit (SIGKILL after `timeoutMs`), capturing its output. */
export async function runChild(file: string, args: readonly string[], timeoutMs: number): Promise<ChildRun> {
  checkInterrupted();
  const cpuBefore = reapedChildrenCpuMs();
  const started = performance.now();
  const { code, stdout, stderr } = await runProcess(file, args, { onSpawn: track, timeoutMs });
  const wallMs = performance.now() - started;
  const cpuAfter = reapedChildrenCpuMs();
  const cpuMs = cpuBefore === null || cpuAfter === null ? null : cpuAfter - cpuBefore;
  return { code, stdout, stderr, wallMs, cpuMs };
}

/**
 * Runs a benchmark's `main` as the whole process: cleans up on signals, reports an error
 * as `error: ...` with exit code 1, and always stops what the run started.
 */
export async function runBench(main: () => Promise<void>): Promise<void> {
  cleanupOnSignals();
  try {
    await main();
  } catch (error) {
    console.error(`error: ${(error as Error).message}`);
    process.exitCode = 1;
  } finally {
    await cleanup();
  }
}
