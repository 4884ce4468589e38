/**
 * Encoding a replica's writes as WAL batch records, shared by {@link FileStorage} and the
 * shared WAL's group storages: the same records for the same calls, whichever log holds them.
 */
import { AssertionError, assert } from '../raft/assert.js';
import type { MemoryStorage, StorageUpdate } from '../raft/storage.js';
import type { Entry, HardState, Snapshot } from '../raft/types.js';
import { EMPTY_CONF_STATE } from '../raft/types.js';
import { type CarriedState, FRAME_TYPE, type FrameEncoder } from './codec.js';

/**
 * Encodes `update` as one BATCH frame with the semantics of `MemoryStorage.saveSync` on
 * `cache`: entries at or below the compaction point are skipped, and overwriting stored
 * entries is written as an explicit TRUNCATE record. Undefined when there is nothing to write.
 * `sealed: false` leaves the frame's length and checksum out (its records go inside a frame
 * that has its own: the shared WAL's group commit).
 */
export function encodeUpdate(
  encoder: FrameEncoder,
  cache: MemoryStorage,
  update: StorageUpdate,
  sealed = true,
): { frame: Uint8Array; maxEntryIndex: number } | undefined {
  encoder.begin(FRAME_TYPE.BATCH);
  const emptyBytes = encoder.sizeBytes;
  let compacted = cache.firstIndex() - 1;
  let last = cache.lastIndex();
  if (update.snapshot !== undefined) {
    const { meta } = update.snapshot;
    const current = cache.snapshot().meta.index;
    assert(meta.index > current, `snapshot ${meta.index} is not newer than ${current}`);
    encoder.snapshot('received', meta);
    compacted = last = meta.index;
  }
  const maxEntryIndex = encodeEntries(encoder, update.entries, compacted, last);
  if (update.hardState !== undefined) encoder.hardState(update.hardState);
  if (encoder.sizeBytes === emptyBytes) return undefined;
  return { frame: sealed ? encoder.finish() : encoder.unsealed(), maxEntryIndex };
}

/** Encodes the entries after `compacted`; returns the highest index encoded (0 if none). */
function encodeEntries(
  encoder: FrameEncoder,
  entries: readonly Entry[],
  compacted: number,
  last: number,
): number {
  const first = entries[0];
  if (first === undefined) return 0;
  assert(first.index <= last + 1, `gap: appending ${first.index} after last ${last}`);
  const skip = Math.max(0, compacted + 1 - first.index);
  if (skip >= entries.length) return 0;
  const start = first.index + skip;
  if (start <= last) encoder.truncate(start);
  for (let i = skip; i < entries.length; i++) {
    const entry = entries[i]!;
    // A plain check: an assert() message would be formatted for every entry.
    if (entry.index !== first.index + i)
      throw new AssertionError(`entries not contiguous: ${entry.index} at ${i}`);
    encoder.entry(entry);
  }
  return entries.at(-1)!.index;
}

/** The state a new WAL segment carries, taken from the read cache (which mirrors the WAL). */
export function carriedState(cache: MemoryStorage): CarriedState {
  const snapshot = cache.snapshot().meta;
  const lastIndex = cache.lastIndex();
  const { hardState, confState } = cache.initialState();
  return {
    hardState,
    confState,
    snapshotIndex: snapshot.index,
    snapshotTerm: snapshot.term,
    lastIndex,
    lastTerm: cache.term(lastIndex),
  };
}

/** The snapshot of a replica that has none. */
export function emptySnapshot(): Snapshot {
  return { meta: { index: 0, term: 0, confState: EMPTY_CONF_STATE }, data: new Uint8Array() };
}

/** Whether `update` must be durable before it is acknowledged: anything but a commit-only HardState change. */
export function mustSync(update: StorageUpdate, previous: HardState): boolean {
  if (update.entries.length > 0 || update.snapshot !== undefined) return true;
  const hs = update.hardState;
  return hs === undefined || hs.term !== previous.term || hs.vote !== previous.vote;
}
