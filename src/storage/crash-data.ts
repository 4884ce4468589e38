/**
 * Shared by the crash test's parent and its worker process: the deterministic content of
 * every entry and snapshot (so the parent can check any recovered byte without having seen
 * it), the line protocol, and a small seeded PRNG.
 */
import type { Entry, HardState } from '../raft/types.js';

/** An operation the worker announces (`begin`) before it starts and confirms (`ack`) once durable. */
export type CrashOperation =
  /** Entries `[first, last]` of `term`; stored entries from `first` on are replaced. */
  | {
      readonly kind: 'append';
      readonly first: number;
      readonly last: number;
      readonly term: number;
      readonly hardState: HardState;
    }
  /** `createSnapshot(index)` then `compact(index)`. */
  | { readonly kind: 'snapshot'; readonly index: number; readonly term: number }
  | { readonly kind: 'hard-state'; readonly hardState: HardState };

/** One line from the worker, JSON encoded; `group` names the raft group in `--groups` mode. */
export type WorkerMessage =
  | { readonly type: 'ready'; readonly lastIndex: number; readonly snapshotIndex: number }
  | { readonly type: 'begin'; readonly operation: CrashOperation; readonly group?: number }
  | { readonly type: 'ack'; readonly group?: number };

/** The data of entry (`index`, `term`): its length and every byte derive from both. */
export function entryData(index: number, term: number): Uint8Array {
  // Every 40th entry is large, so many writes span many pages: only those can be torn by a kill.
  const data = new Uint8Array(index % 40 === 0 ? 1024 * 1024 : 16 + ((index * 7919) % 241));
  const view = new DataView(data.buffer);
  view.setFloat64(0, index, true);
  view.setFloat64(8, term, true);
  // Byte i (from 16 on) is (index * 31 + term * 17 + i) & 0xff: a 256-byte period, filled natively.
  const period = new Uint8Array(256);
  for (let i = 0; i < 256; i++) period[i] = (index * 31 + term * 17 + 16 + i) & 0xff;
  Buffer.from(data.buffer).fill(period, 16);
  return data;
}

/** Whether `entry` carries exactly the data {@link entryData} gives it. */
export function entryIntact(entry: Entry): boolean {
  return entry.type === 'normal' && bytesEqual(entry.data, entryData(entry.index, entry.term));
}

/** The data of the snapshot at (`index`, `term`). */
export function snapshotData(index: number, term: number): Uint8Array {
  const data = new Uint8Array(4096 + (index % 1024));
  for (let i = 0; i < data.length; i++) data[i] = (index * 13 + term * 7 + i * 3) & 0xff;
  return data;
}

/** Whether two byte arrays are equal. */
export function bytesEqual(a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && Buffer.compare(a, b) === 0;
}

/** A seeded PRNG (mulberry32) returning floats in `[0, 1)`. */
export function seededRandom(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 0x1_0000_0000;
  };
}
