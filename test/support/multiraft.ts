/**
 * Multi-raft hosts on loopback for tests and the benchmark: hosts with real sockets and data
 * directories, every group a counter (examples/counter-machine.ts).
 */

import { type Command, Counter } from '../../examples/counter-machine.js';
import { freePorts } from '../../src/cli/cluster-command.js';
import { createHost, type FlotillaHost, type FlotillaNode, type HostConfig } from '../../src/index.js';

/** A counter group's handle. */
export type CounterGroup = FlotillaNode<Command, number, null, number>;

/** The configs of `count` hosts (ids 1..count) with data directories under `root`. */
export async function planHosts(
  root: string,
  count: number,
  options: Partial<HostConfig> = {},
): Promise<HostConfig[]> {
  const ports = await freePorts(count);
  const peers: Record<number, string> = {};
  for (const [i, port] of ports.entries()) peers[i + 1] = `127.0.0.1:${port}`;
  return ports.map((port, i) => ({
    tickMs: 50,
    ...options,
    id: i + 1,
    dataDir: `${root}/host-${i + 1}`,
    listen: `127.0.0.1:${port}`,
    peers,
  }));
}

/** Opens counter groups `groupIds` on `host`, each with members `members`, a few at a time. */
export async function openCounters(
  host: FlotillaHost,
  groupIds: readonly number[],
  members: readonly number[],
): Promise<Map<number, CounterGroup>> {
  const groups = new Map<number, CounterGroup>();
  const parallel = 16;
  for (let i = 0; i < groupIds.length; i += parallel) {
    const batch = groupIds.slice(i, i + parallel);
    const opened = await Promise.all(
      batch.map((g) => host.openGroup(g, { stateMachine: new Counter(), members })),
    );
    for (const [j, g] of batch.entries()) groups.set(g, opened[j]!);
  }
  return groups;
}

/** Starts every host of `configs`. */
export function startHosts(configs: readonly HostConfig[]): Promise<FlotillaHost[]> {
  return Promise.all(configs.map((config) => createHost(config)));
}

/** The ids 1..count. */
export function range(count: number, from = 1): number[] {
  return Array.from({ length: count }, (_, i) => from + i);
}
