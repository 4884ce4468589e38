/** Two TCP transports on loopback that know each other, recording what they receive. */
import assert from 'node:assert/strict';
import type { Message, NodeId } from '../../src/raft/types.js';
import type { TcpTransportOptions } from '../../src/transport/options.js';
import { TcpTransport } from '../../src/transport/tcp-transport.js';

const HOST = '127.0.0.1';

/** One started transport and what it received. */
export interface Endpoint {
  readonly transport: TcpTransport;
  readonly port: number;
  readonly received: { message: Message; at: number }[];
  readonly snapshotStatus: [NodeId, boolean][];
}

/** Transports started here, for the test file's `afterEach` to stop. */
export const running: TcpTransport[] = [];

/** Starts a transport for node `id` listening on a free loopback port. */
export async function start(id: NodeId, options: Partial<TcpTransportOptions> = {}): Promise<Endpoint> {
  const received: { message: Message; at: number }[] = [];
  const snapshotStatus: [NodeId, boolean][] = [];
  const transport = new TcpTransport({
    nodeId: id,
    clusterId: 1,
    listen: { host: HOST, port: 0 },
    peers: new Map(),
    onMessage: (message) => received.push({ message, at: performance.now() }),
    onSnapshotStatus: (peer, ok) => snapshotStatus.push([peer, ok]),
    ...options,
  });
  running.push(transport);
  const { port } = await transport.start();
  return { transport, port, received, snapshotStatus };
}

/** Nodes 1 and 2, each a peer of the other; `receiver` are node 2's extra options. */
export async function pair(receiver: Partial<TcpTransportOptions> = {}): Promise<[Endpoint, Endpoint]> {
  const a = await start(1);
  const b = await start(2, receiver);
  a.transport.addPeer(2, { host: HOST, port: b.port });
  b.transport.addPeer(1, { host: HOST, port: a.port });
  return [a, b];
}

/** Polls `condition` every 2 ms; fails the test after `timeoutMs`. */
export async function waitFor(what: string, condition: () => boolean, timeoutMs = 4000): Promise<void> {
  const deadline = performance.now() + timeoutMs;
  while (!condition()) {
    if (performance.now() > deadline) assert.fail(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 2));
  }
}
