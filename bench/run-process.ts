/** Runs a child process to its end, collecting its output (the benchmark scripts share it). */
import { type ChildProcess, spawn } from 'node:child_process';

/** How a child process ended and what it printed. */
export interface Finished {
  /** The exit code; null when killed by a signal or when it could not start. */
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
  readonly stdout: string;
  /** Its stderr, or why it could not start. */
  readonly stderr: string;
}

export interface RunOptions {
  /** Called with the child as soon as it is spawned (to kill it on cleanup). */
  readonly onSpawn?: (child: ChildProcess) => void;
  /** Sends `timeoutSignal` (default SIGKILL) after this long. */
  readonly timeoutMs?: number;
  readonly timeoutSignal?: NodeJS.Signals;
}

/** Runs `command args` with stdin closed; never rejects. */
export function runProcess(
  command: string,
  args: readonly string[],
  options: RunOptions = {},
): Promise<Finished> {
  return new Promise((resolve) => {
    const child = spawn(command, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    options.onSpawn?.(child);
    let stdout = '';
    let stderr = '';
    child.stdout?.on('data', (d: Buffer) => {
      stdout += d.toString();
    });
    child.stderr?.on('data', (d: Buffer) => {
      stderr += d.toString();
    });
    const timer =
      options.timeoutMs === undefined
        ? undefined
        : setTimeout(() => child.kill(options.timeoutSignal ?? 'SIGKILL'), options.timeoutMs);
    let settled = false;
    const settle = (finished: Finished): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      resolve(finished);
    };
    child.on('error', (error) => settle({ code: null, signal: null, stdout, stderr: error.message }));
    child.on('close', (code, signal) => settle({ code, signal, stdout, stderr }));
  });
}
