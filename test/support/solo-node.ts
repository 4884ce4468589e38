/** A real single-node cluster in this process (fast ticks, no KV fsync), for API-level tests. */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort } from '../../src/cli/cluster-command.js';
import { KvNode, type KvNodeInit, type KvStoreSettings } from '../../src/db/index.js';
import { clusterIdFrom, parseInitialCluster } from '../../src/node/index.js';
import { until } from './http.js';

/** A started node that leads its one-member cluster, and how to remove it. */
export interface SoloNode {
  readonly node: KvNode;
  /** Stops the node and deletes its data directory. */
  destroy(): Promise<void>;
}

/**
 * Starts member `solo` of a one-node cluster in a temporary directory and waits until it
 * leads; `options` override the node's options, `store` tunes its LMDB store.
 */
export async function startSoloNode(
  prefix: string,
  options: Partial<KvNodeInit> = {},
  store: KvStoreSettings = {},
): Promise<SoloNode> {
  const root = await mkdtemp(join(tmpdir(), prefix));
  const initialCluster = `solo=127.0.0.1:${await freePort()}`;
  const members = parseInitialCluster(initialCluster);
  const self = members[0]!;
  const node = await KvNode.start(
    {
      name: 'solo',
      id: self.id,
      clusterId: clusterIdFrom(members),
      initialCluster,
      members: new Map(members.map((m) => [m.id, { name: m.name, host: m.host, port: m.port }])),
      dataDir: join(root, 'solo'),
      listenPeer: { host: self.host, port: self.port },
      tickMs: 20,
      kvNoSync: true,
      ...options,
    },
    store,
  );
  await until('a leader', 5000, () => (node.status().role === 'leader' ? true : undefined));
  return {
    node,
    destroy: async () => {
      await node.stop();
      await rm(root, { recursive: true, force: true });
    },
  };
}
