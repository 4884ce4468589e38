/**
 * Validation of a command before it touches any state. Everything that can be checked from
 * the command alone is checked here (shapes, sizes, limits, duplicate keys in a txn), so
 * that execution only fails for reasons that depend on state (a missing lease, a compacted
 * revision), and then on an uncommitted overlay. Commands decoded from the log are only
 * shaped like their types, so every field's type is checked too.
 */

import { inKeyRange, type KeyRange, parseKeyRange } from './bytes.js';
import { invalidArgument, KvError } from './errors.js';
import type { Compare, KeyRangeRequest, KvCommand, RangeRequest, RequestOp, TxnRequest } from './types.js';

/** Limits that shape what a command may do. They must be equal on every replica. */
export interface KvLimits {
  /** Largest sum of key, range end and value bytes in one command (etcd `--max-request-bytes`). */
  readonly requestBytesMax: number;
  /** Most compares, and most ops per branch, in one txn level (etcd `--max-txn-ops`). */
  readonly txnOpsMax: number;
  /** Deepest nesting of txns inside txns (1: no nesting). */
  readonly txnDepthMax: number;
  /** Longest lease TTL (etcd's `MaxLeaseTTL`). */
  readonly leaseTtlSecondsMax: number;
}

/** The defaults: etcd's where etcd has one. */
export const DEFAULT_KV_LIMITS: KvLimits = Object.freeze({
  requestBytesMax: 1.5 * 1024 * 1024,
  txnOpsMax: 128,
  txnDepthMax: 16,
  leaseTtlSecondsMax: 9_000_000_000,
});

const SORT_ORDERS: ReadonlySet<unknown> = new Set(['NONE', 'ASCEND', 'DESCEND']);
const SORT_TARGETS: ReadonlySet<unknown> = new Set(['KEY', 'VERSION', 'CREATE', 'MOD', 'VALUE']);
const COMPARE_RESULTS: ReadonlySet<unknown> = new Set(['EQUAL', 'GREATER', 'LESS', 'NOT_EQUAL']);
const NUMERIC_TARGETS: ReadonlySet<unknown> = new Set(['VERSION', 'CREATE', 'MOD', 'LEASE']);

/** Throws the {@link KvError} `command` deserves, if any; returns normally for a valid command. */
export function validateCommand(command: KvCommand, limits: KvLimits): void {
  if (command.session !== undefined) {
    const { clientId, seq } = command.session as { clientId: unknown; seq: unknown };
    if (!isPositive(clientId) || !isPositive(seq)) throw invalidArgument('invalid client session');
  }
  validateOperation(command, limits);
  if (payloadBytes(command) > limits.requestBytesMax) throw new KvError('REQUEST_TOO_LARGE');
}

function validateOperation(command: KvCommand, limits: KvLimits): void {
  switch (command.type) {
    case 'range':
    case 'put':
    case 'deleteRange':
    case 'txn':
      validateRequestOp(command, limits, 1);
      if (command.type === 'txn') {
        // The two top-level branches never both run, so each is checked on its own.
        checkIntervals(command.success);
        checkIntervals(command.failure);
      }
      break;
    case 'compact':
      expectCount(command.revision, 'revision');
      break;
    case 'leaseGrant':
      expectId(command.id);
      if (!isPositive(command.ttlSeconds)) throw invalidArgument('lease TTL must be positive');
      if (command.ttlSeconds > limits.leaseTtlSecondsMax) throw new KvError('LEASE_TTL_TOO_LARGE');
      expectCount(command.nowMs, 'nowMs');
      break;
    case 'leaseRevoke':
      expectId(command.id);
      break;
    case 'leaseCheckpoint':
      expectId(command.id);
      expectCount(command.remainingTtlSeconds, 'remainingTtlSeconds');
      expectCount(command.nowMs, 'nowMs');
      break;
    case 'alarm':
      if (!isPositive(command.memberId)) throw invalidArgument('alarm member id must be a positive integer');
      if (command.action !== 'activate' && command.action !== 'deactivate')
        throw invalidArgument('bad alarm action');
      if (command.alarm !== 'NOSPACE') throw invalidArgument('unknown alarm type');
      break;
    default:
      throw invalidArgument(`unknown command type ${JSON.stringify((command as { type: unknown }).type)}`);
  }
}

function validateRequestOp(op: RequestOp, limits: KvLimits, depth: number): void {
  switch (op.type) {
    case 'range':
      validateRange(op);
      break;
    case 'put':
      validatePut(op);
      break;
    case 'deleteRange':
      expectRange(op);
      expectFlags(op.prevKv);
      break;
    case 'txn':
      validateTxn(op, limits, depth);
      break;
    default:
      throw invalidArgument(`unknown operation type ${JSON.stringify((op as { type: unknown }).type)}`);
  }
}

function validateRange(op: RangeRequest): void {
  expectRange(op);
  const counts = [
    'limit',
    'revision',
    'minModRevision',
    'maxModRevision',
    'minCreateRevision',
    'maxCreateRevision',
  ] as const;
  for (const name of counts) expectOptionalCount(op[name], name);
  if (op.sortOrder !== undefined && !SORT_ORDERS.has(op.sortOrder))
    throw invalidArgument('invalid sort order');
  if (op.sortTarget !== undefined && !SORT_TARGETS.has(op.sortTarget))
    throw invalidArgument('invalid sort target');
  expectFlags(op.serializable, op.keysOnly, op.countOnly);
}

function validatePut(op: RequestOp & { type: 'put' }): void {
  expectBytes(op.key, 'key');
  if (op.key.length === 0) throw invalidArgument('key is not provided');
  expectBytes(op.value, 'value');
  expectOptionalCount(op.lease, 'lease');
  expectFlags(op.prevKv, op.ignoreValue, op.ignoreLease);
  if (op.ignoreValue === true && op.value.length > 0) throw invalidArgument('value is provided');
  if (op.ignoreLease === true && (op.lease ?? 0) !== 0) throw invalidArgument('lease is provided');
}

function validateTxn(txn: TxnRequest, limits: KvLimits, depth: number): void {
  if (depth > limits.txnDepthMax) throw invalidArgument('txn nested too deeply');
  if (!Array.isArray(txn.compare) || !Array.isArray(txn.success) || !Array.isArray(txn.failure)) {
    throw invalidArgument('txn needs compare, success and failure lists');
  }
  const opsMax = limits.txnOpsMax;
  if (txn.compare.length > opsMax || txn.success.length > opsMax || txn.failure.length > opsMax) {
    throw new KvError('TOO_MANY_OPS');
  }
  for (const compare of txn.compare) validateCompare(compare);
  for (const op of txn.success) validateRequestOp(op, limits, depth + 1);
  for (const op of txn.failure) validateRequestOp(op, limits, depth + 1);
}

function validateCompare(compare: Compare): void {
  expectRange(compare);
  if (!COMPARE_RESULTS.has(compare.result)) throw invalidArgument('invalid compare result');
  if (compare.target === 'VALUE') {
    expectBytes(compare.value, 'compare value');
  } else {
    if (!NUMERIC_TARGETS.has(compare.target)) throw invalidArgument('invalid compare target');
    if (!Number.isSafeInteger(compare.value)) throw invalidArgument('compare value must be an integer');
  }
}

/** The puts and deletes of one txn branch, as etcd's `checkIntervals` collects them. */
interface Intervals {
  readonly puts: Set<string>;
  readonly deletes: KeyRange[];
}

/**
 * Rejects a branch that writes a key twice (etcd `checkIntervals`): two puts of one key, or
 * a put inside a deleted range, at any nesting depth. The two branches of a nested txn are
 * exclusive, so a key both of them put counts once.
 */
function checkIntervals(ops: readonly RequestOp[]): Intervals {
  const deletes: KeyRange[] = [];
  for (const op of ops) if (op.type === 'deleteRange') deletes.push(parseKeyRange(op));
  const collected: Intervals = { puts: new Set(), deletes };
  for (const op of ops) {
    if (op.type !== 'txn') continue;
    const success = checkIntervals(op.success);
    const failure = checkIntervals(op.failure);
    for (const key of success.puts) addPut(collected, key, false);
    for (const key of failure.puts) addPut(collected, key, success.puts.has(key));
    deletes.push(...success.deletes, ...failure.deletes);
  }
  for (const op of ops) {
    if (op.type === 'put') addPut(collected, keyOf(op), false);
  }
  return collected;
}

function addPut(collected: Intervals, key: string, alreadyFromOtherBranch: boolean): void {
  if (collected.puts.has(key) && !alreadyFromOtherBranch) throw new KvError('DUPLICATE_KEY');
  if (collected.deletes.some((range) => inKeyRange(key, range))) throw new KvError('DUPLICATE_KEY');
  collected.puts.add(key);
}

function keyOf(op: { readonly key: Uint8Array }): string {
  return parseKeyRange({ key: op.key }).start;
}

/** The bytes a command carries (keys, range ends, values), the measure of its request size. */
export function payloadBytes(command: KvCommand | RequestOp): number {
  switch (command.type) {
    case 'range':
    case 'deleteRange':
      return rangeBytes(command);
    case 'put':
      return command.key.length + command.value.length;
    case 'txn': {
      let total = 0;
      for (const compare of command.compare) {
        total += rangeBytes(compare) + (compare.target === 'VALUE' ? compare.value.length : 0);
      }
      for (const op of command.success) total += payloadBytes(op);
      for (const op of command.failure) total += payloadBytes(op);
      return total;
    }
    default:
      return 0;
  }
}

function rangeBytes(request: KeyRangeRequest): number {
  return request.key.length + (request.rangeEnd?.length ?? 0);
}

function expectRange(request: KeyRangeRequest): void {
  expectBytes(request.key, 'key');
  if (request.rangeEnd !== undefined) expectBytes(request.rangeEnd, 'rangeEnd');
  parseKeyRange(request);
}

function expectBytes(value: unknown, name: string): void {
  if (!(value instanceof Uint8Array)) throw invalidArgument(`${name} must be bytes`);
}

function expectFlags(...flags: unknown[]): void {
  for (const flag of flags) {
    if (flag !== undefined && typeof flag !== 'boolean') throw invalidArgument('flags must be booleans');
  }
}

function isPositive(value: unknown): value is number {
  return Number.isSafeInteger(value) && (value as number) > 0;
}

function expectId(value: unknown): void {
  if (!isPositive(value)) throw invalidArgument('lease id must be a positive integer');
}

function expectCount(value: unknown, name: string): void {
  if (!Number.isSafeInteger(value) || (value as number) < 0) {
    throw invalidArgument(`${name} must be a non-negative integer`);
  }
}

function expectOptionalCount(value: unknown, name: string): void {
  if (value !== undefined) expectCount(value, name);
}
