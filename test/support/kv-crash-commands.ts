/**
 * A deterministic stream of KV commands for crash tests: the command of entry `index` and
 * the size of the batch starting there depend on `index` alone, so a replay to any index
 * reproduces the state exactly. It mixes puts (some with leases, some with sessions),
 * deletes, txns, lease grants and revokes, compactions and entries without a command.
 */
import { keyBytes } from '../../src/kv/bytes.js';
import type { KvCommand, KvEntry } from '../../src/kv/types.js';

/** A 32-bit hash of `index` and `salt` (splitmix-like). */
function mix(index: number, salt: number): number {
  let x = (index * 0x9e3779b1 + salt * 0x85ebca6b) >>> 0;
  x = Math.imul(x ^ (x >>> 16), 0x7feb352d) >>> 0;
  x = Math.imul(x ^ (x >>> 15), 0x846ca68b) >>> 0;
  return (x ^ (x >>> 16)) >>> 0;
}

/** The command of entry `index` (null: an entry without a command). */
export function commandAt(index: number): KvCommand | null {
  const choice = mix(index, 1) % 100;
  const key = keyBytes(`k${mix(index, 2) % 24}`);
  const value = keyBytes(`v${index}-${'x'.repeat(mix(index, 3) % 200)}`);
  const session = { clientId: 1 + (index % 3), seq: index };
  if (choice < 5) return null;
  if (choice < 45) return { type: 'put', key, value };
  if (choice < 55) return { type: 'put', key, value, session };
  if (choice < 62) return { type: 'put', key, value, lease: 1_000_000 + (index - (index % 16)) };
  if (choice < 72) return { type: 'deleteRange', key };
  if (choice < 80) {
    const compare = [{ key, target: 'VERSION', result: 'GREATER', value: 1 }] as const;
    const success = [{ type: 'put', key, value }] as const;
    const failure = [{ type: 'deleteRange', key: keyBytes('k0'), rangeEnd: keyBytes('k5') }] as const;
    return { type: 'txn', compare, success, failure, session };
  }
  if (choice < 86) return { type: 'leaseGrant', id: 1_000_000 + index, ttlSeconds: 60, nowMs: index };
  if (choice < 91) return { type: 'leaseRevoke', id: 1_000_000 + (index - (index % 16)) - 16 };
  if (choice < 96) return { type: 'compact', revision: Math.max(1, Math.floor(index * 0.6)) };
  return { type: 'range', key: keyBytes('k'), rangeEnd: keyBytes('l') };
}

/** The entries of the batch that starts at entry `first` (1 to 6 entries). */
export function batchAt(first: number): KvEntry[] {
  const size = 1 + (mix(first, 4) % 6);
  const entries: KvEntry[] = [];
  for (let index = first; index < first + size; index++) entries.push({ index, command: commandAt(index) });
  return entries;
}
