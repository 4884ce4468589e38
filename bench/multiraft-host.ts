/**
 * One host process of `bench:multiraft` (bench/multiraft.ts forks three): a multi-raft host
 * whose groups are counters, driven by the parent over IPC. Requests, each answered by one
 * reply of the same `type`:
 *
 * - `open {groups}`: opens those groups (members: every host), or with `groups: 'stored'`
 *   every group on disk; answers when opened.
 * - `status`: how many open groups know a leader, the ids of those this host leads, and how
 *   many groups tick (are not quiesced).
 * - `sample`: the process's CPU time (µs), the transport's bytes sent and received, and the
 *   shared log's records written and fdatasyncs.
 * - `load {assign, durationMs}`: for each `[groupId, clients]`, that many clients proposing
 *   one after another to the group for `durationMs`; answers with the count and latencies.
 * - `close`: closes the host (the data stays) and exits.
 */
import { performance } from 'node:perf_hooks';
import { Counter } from '../examples/counter-machine.js';
import { createHost, type FlotillaHost, type FlotillaNode, type HostConfig } from '../src/index.js';

type CounterNode = FlotillaNode<{ op: 'add'; n: number }, number, null, number>;

/** A request from the parent. */
export type HostRequest =
  | { readonly type: 'open'; readonly groups: readonly number[] | 'stored' }
  | { readonly type: 'status' }
  | { readonly type: 'sample' }
  | { readonly type: 'load'; readonly assign: readonly [number, number][]; readonly durationMs: number }
  | { readonly type: 'close' };

const config = JSON.parse(process.env['FLOTILLA_BENCH_HOST'] ?? '{}') as HostConfig;
const members = Object.keys(config.peers).map(Number);
const nodes = new Map<number, CounterNode>();
let host: FlotillaHost | undefined;

async function open(groups: readonly number[] | 'stored'): Promise<object> {
  host ??= await createHost(config);
  const ids = groups === 'stored' ? await host.storedGroups() : groups;
  const started = performance.now();
  for (let i = 0; i < ids.length; i += 64) {
    const batch = ids.slice(i, i + 64);
    const opened = await Promise.all(
      batch.map((g) => host!.openGroup(g, { stateMachine: new Counter(), members })),
    );
    for (const [j, g] of batch.entries()) nodes.set(g, opened[j]!);
  }
  return { opened: ids.length, ms: performance.now() - started };
}

function status(): object {
  let led = 0;
  const leading: number[] = [];
  for (const [g, node] of nodes) {
    const s = node.status();
    if (s.leader !== 0) led++;
    if (s.role === 'leader') leading.push(g);
  }
  return { groups: nodes.size, led, leading, active: host?.stats().activeGroups ?? 0 };
}

function sample(): object {
  const cpu = process.cpuUsage();
  let bytesSent = 0;
  let bytesReceived = 0;
  for (const peer of host?.stats().peers.values() ?? []) {
    bytesSent += peer.bytesSent;
    bytesReceived += peer.bytesReceived;
  }
  const log = host?.stats().log;
  return {
    cpuMicros: cpu.user + cpu.system,
    bytesSent,
    bytesReceived,
    rss: process.memoryUsage().rss,
    logRecords: log?.records ?? 0,
    logSyncs: log?.syncs ?? 0,
  };
}

async function load(assign: readonly [number, number][], durationMs: number): Promise<object> {
  const deadline = performance.now() + durationMs;
  const latencies: number[] = [];
  let errors = 0;
  const client = async (node: CounterNode): Promise<void> => {
    while (performance.now() < deadline) {
      const started = performance.now();
      try {
        await node.propose({ op: 'add', n: 1 });
        latencies.push(performance.now() - started);
      } catch {
        errors++;
      }
    }
  };
  const clients: Promise<void>[] = [];
  for (const [g, count] of assign) for (let i = 0; i < count; i++) clients.push(client(nodes.get(g)!));
  await Promise.all(clients);
  return { writes: latencies.length, errors, latencies };
}

async function handle(request: HostRequest): Promise<object> {
  switch (request.type) {
    case 'open':
      return open(request.groups);
    case 'status':
      return status();
    case 'sample':
      return sample();
    case 'load':
      return load(request.assign, request.durationMs);
    case 'close':
      await host?.close();
      return {};
  }
}

process.on('message', (request: HostRequest) => {
  handle(request).then(
    (reply) => {
      process.send?.({ type: request.type, ...reply }, () => {
        if (request.type === 'close') process.exit(0);
      });
    },
    (error: unknown) => {
      process.send?.({ type: 'error', message: error instanceof Error ? error.stack : String(error) });
    },
  );
});
process.send?.({ type: 'ready' });
