/**
 * CPU time of processes, from Linux's /proc/<pid>/stat: `utime` and `stime` (fields 14 and
 * 15) of a running process, and `cutime` and `cstime` (16 and 17: children it has reaped),
 * in clock ticks of `getconf CLK_TCK` (normally 100 a second, so 10 ms resolution).
 */
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';

let ticksPerSecond: number | undefined;

/** `getconf CLK_TCK` (100 if it cannot be read). */
export function clockTicksPerSecond(): number {
  if (ticksPerSecond === undefined) {
    try {
      ticksPerSecond = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;
    } catch {
      ticksPerSecond = 100;
    }
  }
  return ticksPerSecond;
}

/**
 * Fields 14-17 of /proc/<pid>/stat (utime, stime, cutime, cstime), in ticks; null when the
 * process is gone or /proc is not Linux's. The command name (field 2) may hold spaces and
 * parentheses, so fields are counted from the last ')'.
 */
export function statTimes(pid: number | 'self'): [number, number, number, number] | null {
  let text: string;
  try {
    text = readFileSync(`/proc/${pid}/stat`, 'utf8');
  } catch {
    return null;
  }
  // After ") " comes field 3 (state); field n is at index n - 3.
  const fields = text.slice(text.lastIndexOf(')') + 2).split(' ');
  const times = [11, 12, 13, 14].map((i) => Number(fields[i]));
  if (times.some((t) => !Number.isFinite(t))) return null;
  return times as [number, number, number, number];
}

/** User + system CPU time of a running process, ms; null if it cannot be read. */
export function processCpuMs(pid: number): number | null {
  const times = statTimes(pid);
  return times === null ? null : ((times[0] + times[1]) * 1000) / clockTicksPerSecond();
}

/** User + system CPU time of every child this process has reaped so far, ms. */
export function reapedChildrenCpuMs(): number | null {
  const times = statTimes('self');
  return times === null ? null : ((times[2] + times[3]) * 1000) / clockTicksPerSecond();
}

/** CPU time of each of `pids`, ms (null for one that cannot be read). */
export function cpuOf(pids: readonly number[]): (number | null)[] {
  return pids.map(processCpuMs);
}

/** The CPU each process used between two samples, ms; null if a sample is missing. */
export function cpuBetween(
  before: readonly (number | null)[],
  after: readonly (number | null)[],
): number[] | null {
  const used: number[] = [];
  for (let i = 0; i < before.length; i++) {
    const a = before[i];
    const b = after[i];
    if (a === null || a === undefined || b === null || b === undefined) return null;
    used.push(b - a);
  }
  return used;
}
