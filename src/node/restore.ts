/**
 * Backups: a KV snapshot file (`flotilla snapshot save`, from `GET /v1/snapshot`) restored
 * into a fresh data directory (`flotilla snapshot restore`) as the first state of a new
 * cluster. Every member of the new cluster is restored from the same file with the same
 * `--initial-cluster`, so all start identical: the KV store at the snapshot's applied index
 * and a raft snapshot at that index (term 1) carrying the new membership.
 *
 * The file is the KV snapshot's chunks, each as `[length u32 BE][chunk]` (see envelope.ts),
 * so it is checked end to end (the chunks carry a SHA-256) before anything is written; a file
 * saved by `etcdctl snapshot save` has etcd's trailing SHA-256 besides (see src/kv/backup.ts).
 */
import { mkdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { decodeBackup, LmdbKvBackend } from '../kv/index.js';
import { EMPTY_CONF_STATE } from '../raft/index.js';
import { FileStorage } from '../storage/index.js';
import { acquireLock } from './data-dir-lock.js';
import { frameChunks } from './envelope.js';
import { NodeError } from './errors.js';
import { type ClusterMember, clusterIdFrom } from './identity.js';
import { readMemberFile, writeMemberFile } from './member-file.js';
import { type MemberAddress, snapshotChunks } from './member-table.js';

/** What {@link restoreDataDir} needs. */
export interface RestoreOptions {
  readonly snapshotFile: string;
  readonly name: string;
  readonly dataDir: string;
  readonly initialCluster: string;
  readonly members: readonly ClusterMember[];
}

/** Restores a snapshot file into an empty data directory; returns the restored applied index and revision. */
export async function restoreDataDir(options: RestoreOptions): Promise<{ index: number; revision: number }> {
  const self = options.members.find((m) => m.name === options.name);
  if (self === undefined)
    throw new NodeError('INVALID_CONFIG', `${options.name} is not in the initial cluster`);
  if ((await readMemberFile(options.dataDir)) !== undefined) {
    throw new NodeError('INVALID_CONFIG', `data directory ${options.dataDir} is not empty`);
  }
  const data = new Uint8Array(await readFile(options.snapshotFile));
  await mkdir(options.dataDir, { recursive: true });
  const lock = await acquireLock(options.dataDir);
  const storage = await FileStorage.open(join(options.dataDir, 'raft'));
  const kv = LmdbKvBackend.open(join(options.dataDir, 'kv'));
  try {
    if (storage.lastIndex() !== 0 || storage.snapshot().meta.index !== 0 || kv.appliedIndex !== 0) {
      throw new NodeError('INVALID_CONFIG', `data directory ${options.dataDir} is not empty`);
    }
    const chunks = decodeBackup(data);
    await kv.restore(chunks);
    await kv.sync();
    const index = kv.appliedIndex;
    const voters = options.members.map((m) => m.id).sort((a, b) => a - b);
    const table = new Map<number, MemberAddress>(
      options.members.map((m) => [m.id, { name: m.name, host: m.host, port: m.port }]),
    );
    await storage.save({
      snapshot: {
        meta: { index, term: 1, confState: { ...EMPTY_CONF_STATE, voters } },
        // The KV store is an on-disk state machine: its raft snapshot is metadata only.
        data: frameChunks(snapshotChunks(table, [])),
      },
      hardState: { term: 1, vote: 0, commit: index },
      entries: [],
    });
    await writeMemberFile(options.dataDir, {
      name: self.name,
      id: self.id,
      clusterId: clusterIdFrom(options.members),
      initialCluster: options.initialCluster,
    });
    return { index, revision: kv.revision };
  } finally {
    await storage.close();
    await kv.close();
    await lock.release();
  }
}
