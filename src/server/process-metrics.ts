/**
 * The process-wide part of `/metrics`: prom-client's default Node.js metrics plus what a
 * node's memory and stalls are judged by (docs/storage.md, "Where the memory goes"):
 *
 * - `flotilla_process_heap_used_bytes`, `flotilla_process_external_bytes`,
 *   `flotilla_process_array_buffers_bytes`: `process.memoryUsage()` (V8 heap in use, memory
 *   held by C++ objects bound to JavaScript ones, of which ArrayBuffers and Buffers);
 * - `flotilla_process_rss_anon_bytes`, `flotilla_process_rss_file_bytes`: `RssAnon` and
 *   `RssFile` of `/proc/self/status` (Linux only; absent where the file cannot be read).
 *   File-backed resident pages are mostly LMDB's memory map: the kernel may drop them under
 *   pressure, anonymous pages it cannot;
 * - `flotilla_event_loop_delay_p99_seconds`, `flotilla_event_loop_delay_max_seconds`: how late
 *   the event loop ran a timer (perf_hooks `monitorEventLoopDelay`, the sampling interval
 *   taken off), over the time since the previous scrape. prom-client's
 *   `nodejs_eventloop_lag_*` include its 10 ms sampling interval; these do not.
 *
 * One registry per process, shared by every node in it (tests run several nodes in one).
 */
import { readFileSync } from 'node:fs';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { collectDefaultMetrics, Gauge, Registry } from 'prom-client';

/** The event-loop delay sampling interval, ms. */
const EVENT_LOOP_RESOLUTION_MS = 10;

/** Resident memory of a process by kind, bytes (Linux's `/proc/PID/status`). */
export interface ResidentMemory {
  /** Anonymous pages: heaps, stacks, malloc'd buffers. */
  readonly anonBytes: number;
  /** File-backed pages: mapped files (LMDB's data file), shared libraries. */
  readonly fileBytes: number;
}

/** `RssAnon` and `RssFile` of process `pid` (default: this one); undefined where /proc cannot tell. */
export function residentMemory(pid: number | 'self' = 'self'): ResidentMemory | undefined {
  let text: string;
  try {
    text = readFileSync(`/proc/${pid}/status`, 'utf8');
  } catch {
    return undefined;
  }
  const kilobytes = (field: string): number | undefined => {
    const match = new RegExp(`^${field}:\\s+(\\d+) kB$`, 'm').exec(text);
    return match === null ? undefined : Number(match[1]) * 1024;
  };
  const anonBytes = kilobytes('RssAnon');
  const fileBytes = kilobytes('RssFile');
  return anonBytes === undefined || fileBytes === undefined ? undefined : { anonBytes, fileBytes };
}

/**
 * Registers gauge `name` in `target`, set to `value()` at every scrape; a gauge whose value
 * is undefined (not measurable here, or not now) has no sample.
 */
export function callbackGauge(
  target: Registry,
  name: string,
  help: string,
  value: () => number | undefined,
): void {
  new Gauge({
    name,
    help,
    registers: [target],
    collect() {
      const current = value();
      if (current === undefined) this.reset();
      else this.set(current);
    },
  });
}

let registry: Registry | undefined;

/** The registry of this process's metrics, created (and its collectors started) once. */
export function processMetrics(): Registry {
  if (registry !== undefined) return registry;
  registry = new Registry();
  collectDefaultMetrics({ register: registry });
  const target = registry;
  const gauge = (name: string, help: string, value: () => number | undefined): void =>
    callbackGauge(target, name, help, value);
  gauge('flotilla_process_heap_used_bytes', 'V8 heap in use.', () => process.memoryUsage().heapUsed);
  gauge('flotilla_process_external_bytes', 'Memory of C++ objects bound to JavaScript objects.', () => {
    return process.memoryUsage().external;
  });
  gauge('flotilla_process_array_buffers_bytes', 'Memory of ArrayBuffers and Buffers.', () => {
    return process.memoryUsage().arrayBuffers;
  });
  gauge('flotilla_process_rss_anon_bytes', 'Resident anonymous memory (RssAnon).', () => {
    return residentMemory()?.anonBytes;
  });
  gauge('flotilla_process_rss_file_bytes', 'Resident file-backed memory (RssFile).', () => {
    return residentMemory()?.fileBytes;
  });
  observeEventLoopDelay(registry);
  return registry;
}

/** The event-loop delay gauges: p99 and max since the previous scrape, the sampling interval taken off. */
function observeEventLoopDelay(target: Registry): void {
  const histogram = monitorEventLoopDelay({ resolution: EVENT_LOOP_RESOLUTION_MS });
  histogram.enable();
  const seconds = (nanoseconds: number): number =>
    histogram.count === 0 ? 0 : Math.max(0, nanoseconds / 1e9 - EVENT_LOOP_RESOLUTION_MS / 1000);
  // Both gauges are read in one scrape; the window restarts once the later one has been read.
  new Gauge({
    name: 'flotilla_event_loop_delay_p99_seconds',
    help: 'Event-loop delay, 99th percentile since the previous scrape.',
    registers: [target],
    collect() {
      this.set(seconds(histogram.percentile(99)));
    },
  });
  new Gauge({
    name: 'flotilla_event_loop_delay_max_seconds',
    help: 'Event-loop delay, maximum since the previous scrape.',
    registers: [target],
    collect() {
      this.set(seconds(histogram.max));
      histogram.reset();
    },
  });
}
