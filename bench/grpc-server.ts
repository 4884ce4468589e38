/**
 * The gRPC server alone: CPU per unary call of Flotilla's server (src/grpc/) against
 * `@grpc/grpc-js`'s, serving the same etcd `KV.Put` handler (it answers from memory on the
 * next turn, so the server is all that is measured) and driven by the same neutral client,
 * etcd-load on etcd's Go client.
 *
 *   npm run bench:grpc [-- --rounds N] [--total N] [--clients C] [--conns K] [--json]
 *
 * Each round runs both servers, one at a time, each in its own process, in alternating
 * order; the server process reports its CPU time (user + system) when the load ends. Medians
 * over the rounds; the ratio is Flotilla's over grpc-js's (below 1: Flotilla's costs less).
 * Last line with `--json`: `{"flotilla":{"us_per_call":..,"rps":..,"p99_ms":..},
 * "grpcjs":{...},"cpu_ratio":..,"rps_ratio":..}`.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { Server, ServerCredentials } from '@grpc/grpc-js';
import { freePort } from '../src/cli/cluster-command.js';
import { RESPONSE_ENCODERS } from '../src/etcd/codec.js';
import { etcdService } from '../src/etcd/index.js';
import { GrpcServer, type UnaryCall, type UnaryCallback } from '../src/grpc/index.js';
import { buildNeutral, runNeutral } from './vs-etcd/clients.js';

type Kind = 'flotilla' | 'grpcjs';
const KINDS: readonly Kind[] = ['flotilla', 'grpcjs'];

interface Args {
  rounds: number;
  total: number;
  clients: number;
  conns: number;
  json: boolean;
}

function parseArgs(argv: readonly string[]): Args {
  const args: Args = { rounds: 5, total: 30_000, clients: 100, conns: 10, json: false };
  for (let i = 0; i < argv.length; i++) {
    const flag = argv[i]!;
    if (flag === '--json') {
      args.json = true;
      continue;
    }
    const key = flag.replace(/^--/, '') as keyof Args;
    const value = Number(argv[++i]);
    if (!['rounds', 'total', 'clients', 'conns'].includes(key) || !Number.isInteger(value) || value <= 0) {
      throw new Error(`bench:grpc: unknown flag or bad value: ${flag} ${argv[i] ?? ''}`);
    }
    (args as unknown as Record<string, number>)[key] = value;
  }
  return args;
}

/** The server side, in its own process: serves Put until SIGTERM, then prints its CPU time. */
async function serve(kind: Kind, port: number): Promise<void> {
  const definition = etcdService('KV').service;
  let revision = 0;
  const put = (_call: unknown, callback: UnaryCallback<unknown>): void => {
    revision++;
    setImmediate(() =>
      callback(null, { header: { cluster_id: 1, member_id: 2, revision, raft_term: 3 }, body: {} }),
    );
  };
  const encodePut = RESPONSE_ENCODERS.KV.Put as (response: unknown) => Buffer;
  const withEncoder = { ...definition, Put: { ...definition['Put']!, responseSerialize: encodePut } };
  let stop: () => void;
  if (kind === 'flotilla') {
    const server = new GrpcServer({ receiveBytesMax: 4 * 1024 * 1024 });
    server.addService(withEncoder, {
      Put: put as (call: UnaryCall<unknown>, cb: UnaryCallback<unknown>) => void,
    });
    await server.listen('127.0.0.1', port);
    stop = () => void server.close();
  } else {
    const server = new Server({ 'grpc.enable_channelz': 0 });
    server.addService(withEncoder, { Put: put });
    await new Promise<void>((resolve, reject) =>
      server.bindAsync(`127.0.0.1:${port}`, ServerCredentials.createInsecure(), (e) =>
        e ? reject(e) : resolve(),
      ),
    );
    stop = () => server.forceShutdown();
  }
  const start = process.cpuUsage();
  process.stdout.write('ready\n');
  process.on('SIGTERM', () => {
    const used = process.cpuUsage(start);
    stop();
    process.stdout.write(`${JSON.stringify({ cpu_us: used.user + used.system, calls: revision })}\n`);
    process.exit(0);
  });
}

interface Run {
  readonly usPerCall: number;
  readonly rps: number;
  readonly p99: number;
}

async function runOnce(kind: Kind, binary: string, args: Args): Promise<Run> {
  const port = await freePort();
  const script = fileURLToPath(import.meta.url);
  const child: ChildProcess = spawn(process.execPath, [script, '--serve', kind, String(port)], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  let out = '';
  child.stdout!.on('data', (d: Buffer) => {
    out += d.toString();
  });
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  while (!out.includes('ready\n')) await new Promise((resolve) => setTimeout(resolve, 20));
  const load = await runNeutral(
    binary,
    [`127.0.0.1:${port}`],
    [
      '-op',
      'put',
      '-clients',
      String(args.clients),
      '-conns',
      String(args.conns),
      '-total',
      String(args.total),
    ],
    300_000,
  );
  child.kill('SIGTERM');
  await exited;
  const report = JSON.parse(out.trim().split('\n').pop()!) as { cpu_us: number; calls: number };
  if (load.errors > 0 || report.calls !== args.total) {
    throw new Error(
      `bench:grpc: ${kind}: ${load.errors} errors, ${report.calls} of ${args.total} calls served`,
    );
  }
  return { usPerCall: report.cpu_us / report.calls, rps: load.rps, p99: load.p99 };
}

function median(values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 === 1 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}

async function main(): Promise<void> {
  const argv = process.argv.slice(2);
  if (argv[0] === '--serve') return serve(argv[1] as Kind, Number(argv[2]));
  const args = parseArgs(argv);
  const binary = await buildNeutral();
  const runs: Record<Kind, Run[]> = { flotilla: [], grpcjs: [] };
  for (let round = 1; round <= args.rounds; round++) {
    const order = round % 2 === 1 ? KINDS : [...KINDS].reverse();
    for (const kind of order) {
      const run = await runOnce(kind, binary, args);
      runs[kind].push(run);
      console.error(
        `[round ${round}/${args.rounds}] ${kind}: ${run.usPerCall.toFixed(1)} µs CPU per call, ${Math.round(run.rps)} calls/s, p99 ${run.p99.toFixed(2)} ms`,
      );
    }
  }
  const summary = (kind: Kind) => ({
    us_per_call: Number(median(runs[kind].map((r) => r.usPerCall)).toFixed(1)),
    rps: Math.round(median(runs[kind].map((r) => r.rps))),
    p99_ms: Number(median(runs[kind].map((r) => r.p99)).toFixed(2)),
  });
  const flotilla = summary('flotilla');
  const grpcjs = summary('grpcjs');
  const result = {
    flotilla,
    grpcjs,
    cpu_ratio: Number((flotilla.us_per_call / grpcjs.us_per_call).toFixed(3)),
    rps_ratio: Number((flotilla.rps / grpcjs.rps).toFixed(3)),
  };
  console.log(`| server | CPU per call (µs) | calls/s | p99 (ms) |`);
  console.log(`| --- | ---: | ---: | ---: |`);
  console.log(`| Flotilla (src/grpc) | ${flotilla.us_per_call} | ${flotilla.rps} | ${flotilla.p99_ms} |`);
  console.log(`| @grpc/grpc-js | ${grpcjs.us_per_call} | ${grpcjs.rps} | ${grpcjs.p99_ms} |`);
  console.log(
    `CPU per call ratio ${result.cpu_ratio}, calls/s ratio ${result.rps_ratio} (medians of ${args.rounds})`,
  );
  if (args.json) console.log(JSON.stringify(result));
}

main().catch((error: unknown) => {
  console.error(error instanceof Error ? error.message : error);
  process.exit(1);
});
