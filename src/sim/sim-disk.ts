/**
 * The simulated disk. Each node's storage survives its crashes; a Ready becomes durable only
 * when its `persisted` event fires, after a latency drawn from the seed, and a crash before then
 * loses it (see `NodeRuntime` in sim-node.ts). Here: a node's first disk, and snapshots taken
 * and the log compacted behind them.
 */
import type { NodeId, RawNode } from '../raft/index.js';
import { EMPTY_CONF_STATE, MemoryStorage } from '../raft/index.js';

/** The disk of an initial member, holding the initial membership `voters` (written to `storage`). */
export function bootstrapStorage(voters: NodeId[], storage = new MemoryStorage()): MemoryStorage {
  // The initial membership is a snapshot at index 1, so a node added later (with an empty
  // log) always starts from a snapshot that carries the membership it applies changes to.
  storage.applySnapshot({
    meta: { index: 1, term: 1, confState: { ...EMPTY_CONF_STATE, voters } },
    data: new Uint8Array(),
  });
  storage.setHardState({ term: 1, vote: 0, commit: 1 });
  return storage;
}

/** When and how much a node snapshots: every `everyEntries` applied, keeping `keepEntries`. */
export interface SnapshotPolicy {
  readonly snapshotEveryEntries: number;
  readonly snapshotKeepEntries: number;
}

/**
 * Snapshots `storage` at what `raw` has applied and compacts the log behind it, once
 * `policy.snapshotEveryEntries` entries were applied since the last snapshot; `data` gives the
 * state machine's image. Reports whether it did.
 */
export function snapshotIfDue(
  storage: MemoryStorage,
  raw: RawNode,
  data: () => Uint8Array,
  policy: SnapshotPolicy,
): boolean {
  const applied = raw.raft.log.applied;
  const snapIndex = storage.snapshot().meta.index;
  if (applied - snapIndex < policy.snapshotEveryEntries) return false;
  const confState = raw.confState();
  storage.createSnapshotSync(applied, confState, data());
  const compactTo = Math.max(applied - policy.snapshotKeepEntries, storage.firstIndex() - 1);
  storage.compactSync(compactTo);
  return true;
}
