/**
 * What `bench/profile/hook.ts` (inside each profiled server) and `bench/profile.ts` (the
 * tool) agree on: the environment that turns the hook on, the signal that starts and stops
 * profiling, and the files the hook writes into the profile directory.
 */
import { join } from 'node:path';

/** The directory the hook writes to; without it the hook does nothing. */
export const PROFILE_DIR_ENV = 'FLOTILLA_PROFILE_DIR';
/** The sampling interval in microseconds (default 1000, as `node --cpu-prof`). */
export const PROFILE_INTERVAL_ENV = 'FLOTILLA_PROFILE_INTERVAL_US';
/** The first one starts profiling; the second stops it and writes the profile. */
export const PROFILE_SIGNAL = 'SIGUSR2';

/** Written when profiling has started: `{ "pid": ... }`. */
export function startedFile(dir: string, pid: number): string {
  return join(dir, `CPU.${pid}.started`);
}

/** The process's CPU time over the profiled window (see `ProcessCpu`); written before the profile. */
export function cpuFile(dir: string, pid: number): string {
  return join(dir, `CPU.${pid}.cpu.json`);
}

/** The V8 CPU profile, written last (by a rename, so it appears whole). */
export function profileFile(dir: string, pid: number): string {
  return join(dir, `CPU.${pid}.cpuprofile`);
}

/** `process.cpuUsage()` (all of the process's threads) and wall time over the profiled window. */
export interface ProcessCpu {
  readonly user_ms: number;
  readonly system_ms: number;
  readonly wall_ms: number;
}
