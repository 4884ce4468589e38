/**
 * Loaded into each `flotilla serve` process by `bench/profile.ts`, through
 * `NODE_OPTIONS=--import=<this file>` (Node 20 refuses `--cpu-prof` in NODE_OPTIONS, and
 * `cluster start` passes its environment to the servers it spawns). In a `serve` process
 * with FLOTILLA_PROFILE_DIR set, the first SIGUSR2 starts V8's sampling profiler through
 * the in-process inspector and the second stops it and writes the profile, so the profile
 * covers the measured load and not start-up, warm-up or shutdown. A process that exits
 * while profiling writes its profile on the way out. Anywhere else it does nothing.
 */
import { renameSync, writeFileSync } from 'node:fs';
import { Session } from 'node:inspector';
import {
  cpuFile,
  PROFILE_DIR_ENV,
  PROFILE_INTERVAL_ENV,
  PROFILE_SIGNAL,
  type ProcessCpu,
  profileFile,
  startedFile,
} from './files.js';

/** Posts to the in-process inspector, whose replies arrive before `post` returns. */
function post(session: Session, method: string, params: object = {}): unknown {
  const reply: { error: Error | null; result: unknown } = { error: null, result: undefined };
  session.post(method, params, (error, result) => {
    reply.error = error;
    reply.result = result;
  });
  if (reply.error !== null) throw reply.error;
  return reply.result;
}

function install(dir: string, intervalUs: number): void {
  const session = new Session();
  session.connect();
  let started: { cpu: NodeJS.CpuUsage; at: number } | undefined;
  const start = (): void => {
    post(session, 'Profiler.enable');
    post(session, 'Profiler.setSamplingInterval', { interval: intervalUs });
    post(session, 'Profiler.start');
    started = { cpu: process.cpuUsage(), at: performance.now() };
    writeFileSync(startedFile(dir, process.pid), `${JSON.stringify({ pid: process.pid })}\n`);
  };
  const stop = (): void => {
    if (started === undefined) return;
    const cpu = process.cpuUsage(started.cpu);
    const usage: ProcessCpu = {
      user_ms: cpu.user / 1000,
      system_ms: cpu.system / 1000,
      wall_ms: performance.now() - started.at,
    };
    const { profile } = post(session, 'Profiler.stop') as { profile: unknown };
    started = undefined;
    writeFileSync(cpuFile(dir, process.pid), `${JSON.stringify(usage)}\n`);
    const file = profileFile(dir, process.pid);
    writeFileSync(`${file}.tmp`, JSON.stringify(profile));
    renameSync(`${file}.tmp`, file);
  };
  process.on(PROFILE_SIGNAL, () => (started === undefined ? start() : stop()));
  process.on('exit', stop);
}

const dir = process.env[PROFILE_DIR_ENV];
if (dir !== undefined && dir !== '' && process.argv[2] === 'serve') {
  install(dir, Number(process.env[PROFILE_INTERVAL_ENV] ?? 1000) || 1000);
}
