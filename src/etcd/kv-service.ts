/**
 * etcd's `KV` service: Range, Put, DeleteRange, Txn and Compact, answered as etcd 3.4's
 * v3rpc and applier answer them.
 *
 * - Writes are raft proposals (a follower forwards them); the response is built once this
 *   node has applied the entry, and its header carries the revision after it.
 * - Range is a ReadIndex read (`linearizable`) unless `serializable` asks for this node's
 *   local state; its header carries the store revision the read saw (also when reading at an
 *   older `revision`, as etcd does).
 * - Requests are checked as etcd's `checkRangeRequest` / `checkPutRequest` /
 *   `checkTxnRequest` do before anything else, so the errors and their order are etcd's;
 *   everything that depends on state (leases, compaction, sizes) is the KV layer's, whose
 *   errors carry etcd's messages (errors.ts).
 * - A txn's nested responses carry a header with only `revision` set, like etcd's.
 */
import { status } from '@grpc/grpc-js';
import type { ServiceImplementation } from '../grpc/index.js';
import type {
  Compare,
  DeleteRangeRequest,
  DeleteRangeResponse,
  KvCommand,
  KvResponse,
  KvResult,
  PutRequest,
  PutResponse,
  RangeRequest,
  RangeResponse,
  RequestOp,
  TxnRequest,
  TxnResponse,
} from '../kv/index.js';
import type { KvReply } from './codec.js';
import type { EtcdContext, WireHeader } from './context.js';
import { EtcdGrpcError, etcdError } from './errors.js';
import { quotaRefusal } from './quota.js';
import { unary } from './unary.js';
import {
  enumName,
  type Int64,
  id64,
  int64,
  rangeEndOf,
  requireKey,
  sortOrderOf,
  sortTargetOf,
} from './wire.js';

/** etcd `RangeRequest` as decoded. */
export interface RangeRequestWire {
  readonly key: Uint8Array;
  readonly range_end?: Uint8Array | null;
  readonly limit?: Int64;
  readonly revision?: Int64;
  readonly sort_order?: string | number;
  readonly sort_target?: string | number;
  readonly serializable?: boolean;
  readonly keys_only?: boolean;
  readonly count_only?: boolean;
  readonly min_mod_revision?: Int64;
  readonly max_mod_revision?: Int64;
  readonly min_create_revision?: Int64;
  readonly max_create_revision?: Int64;
}

/** etcd `PutRequest` as decoded. */
export interface PutRequestWire {
  readonly key: Uint8Array;
  readonly value?: Uint8Array | null;
  readonly lease?: Int64;
  readonly prev_kv?: boolean;
  readonly ignore_value?: boolean;
  readonly ignore_lease?: boolean;
}

/** etcd `DeleteRangeRequest` as decoded. */
export interface DeleteRangeRequestWire {
  readonly key: Uint8Array;
  readonly range_end?: Uint8Array | null;
  readonly prev_kv?: boolean;
}

/** etcd `Compare` as decoded (`target_union` names the member that is set). */
export interface CompareWire {
  readonly result?: string | number;
  readonly target?: string | number;
  readonly key: Uint8Array;
  readonly range_end?: Uint8Array | null;
  readonly version?: Int64;
  readonly create_revision?: Int64;
  readonly mod_revision?: Int64;
  readonly value?: Uint8Array | null;
  readonly lease?: Int64;
}

/** etcd `RequestOp` as decoded. */
export interface RequestOpWire {
  readonly request_range?: RangeRequestWire | null;
  readonly request_put?: PutRequestWire | null;
  readonly request_delete_range?: DeleteRangeRequestWire | null;
  readonly request_txn?: TxnRequestWire | null;
}

/** etcd `TxnRequest` as decoded. */
export interface TxnRequestWire {
  readonly compare?: readonly CompareWire[] | null;
  readonly success?: readonly RequestOpWire[] | null;
  readonly failure?: readonly RequestOpWire[] | null;
}

/** etcd `CompactionRequest` as decoded. */
export interface CompactionRequestWire {
  readonly revision?: Int64;
  readonly physical?: boolean;
}

type Mutable<T> = { -readonly [K in keyof T]: T[K] };

/** The `KV` service of one node. Its answers are in the shapes codec.ts encodes. */
export function kvService(ctx: EtcdContext): ServiceImplementation {
  const node = ctx.node;
  return {
    Range: unary(async (request: RangeRequestWire): Promise<KvReply<RangeResponse>> => {
      const range = rangeRequest(request);
      const response = await node.read(
        range,
        request.serializable === true ? 'serializable' : 'linearizable',
      );
      return { header: ctx.header(response.revision), body: response };
    }),
    Put: unary(async (request: PutRequestWire): Promise<KvReply<PutResponse>> => {
      const command = putCommand(request);
      const refused = quotaRefusal(ctx, command);
      if (refused !== undefined) await refused;
      const response = expect(await node.propose(command), 'put');
      return { header: ctx.header(response.revision), body: response };
    }),
    DeleteRange: unary(async (request: DeleteRangeRequestWire): Promise<KvReply<DeleteRangeResponse>> => {
      const response = expect(await node.propose(deleteCommand(request)), 'deleteRange');
      return { header: ctx.header(response.revision), body: response };
    }),
    Txn: unary(async (request: TxnRequestWire): Promise<KvReply<TxnResponse>> => {
      const txn = txnRequest(request, ctx.node.backend.options.txnOpsMax);
      const command: KvCommand = { type: 'txn', ...txn };
      const refused = quotaRefusal(ctx, command);
      if (refused !== undefined) await refused;
      const response = expect(await node.propose(command), 'txn');
      return { header: ctx.header(response.revision), body: response };
    }),
    Compact: unary(async (request: CompactionRequestWire): Promise<{ header: WireHeader }> => {
      // Compaction is applied synchronously, so `physical` (wait until it is done) always holds.
      const revision = Math.max(0, int64(request.revision));
      const response = expect(await node.propose({ type: 'compact', revision }), 'compact');
      return { header: ctx.header(response.revision) };
    }),
  };
}

/** The response of a successful command of `type`, or the command's KV error thrown. */
export function expect<K extends KvResponse['type']>(
  result: KvResult,
  type: K,
): Extract<KvResponse, { type: K }> {
  if (!result.ok) throw result.error;
  if (result.response.type !== type) {
    throw new Error(`expected a ${type} response, got ${result.response.type}`);
  }
  return result.response as Extract<KvResponse, { type: K }>;
}

function nonNegative(value: Int64 | undefined): number {
  const n = int64(value);
  return Math.max(n, 0);
}

/** A top-level Range: every field set (one object shape for the read path). */
function rangeRequest(request: RangeRequestWire): RangeRequest {
  const key = requireKey(request.key);
  return {
    key,
    rangeEnd: rangeEndOf(key, request.range_end),
    limit: nonNegative(request.limit),
    revision: nonNegative(request.revision),
    sortOrder: sortOrderOf(request.sort_order),
    sortTarget: sortTargetOf(request.sort_target),
    keysOnly: request.keys_only === true,
    countOnly: request.count_only === true,
    minModRevision: nonNegative(request.min_mod_revision),
    maxModRevision: nonNegative(request.max_mod_revision),
    minCreateRevision: nonNegative(request.min_create_revision),
    maxCreateRevision: nonNegative(request.max_create_revision),
  };
}

/** A Range inside a txn: only the fields that differ from their defaults (it goes into the log). */
function rangeOp(request: RangeRequestWire): RequestOp {
  const key = requireKey(request.key);
  const op: Mutable<RangeRequest> & { type: 'range' } = { type: 'range', key };
  const rangeEnd = rangeEndOf(key, request.range_end);
  if (rangeEnd.length > 0) op.rangeEnd = rangeEnd;
  const sortOrder = sortOrderOf(request.sort_order);
  const sortTarget = sortTargetOf(request.sort_target);
  if (sortOrder !== 'NONE') op.sortOrder = sortOrder;
  if (sortTarget !== 'KEY') op.sortTarget = sortTarget;
  const numbers = [
    ['limit', request.limit],
    ['revision', request.revision],
    ['minModRevision', request.min_mod_revision],
    ['maxModRevision', request.max_mod_revision],
    ['minCreateRevision', request.min_create_revision],
    ['maxCreateRevision', request.max_create_revision],
  ] as const;
  for (const [name, value] of numbers) {
    const n = nonNegative(value);
    if (n !== 0) op[name] = n;
  }
  if (request.keys_only === true) op.keysOnly = true;
  if (request.count_only === true) op.countOnly = true;
  return op;
}

/** A Put command: only the fields that differ from their defaults. */
function putCommand(request: PutRequestWire): PutRequest & { type: 'put' } {
  const key = requireKey(request.key);
  const value = request.value ?? EMPTY;
  const lease = int64(request.lease);
  const {
    prev_kv: prevKv = false,
    ignore_value: ignoreValue = false,
    ignore_lease: ignoreLease = false,
  } = request;
  if (lease === 0 && !prevKv && !ignoreValue && !ignoreLease) return { type: 'put', key, value };
  // etcd's checkPutRequest, in its order.
  if (ignoreValue && value.length !== 0) throw etcdError('valueProvided');
  if (ignoreLease && lease !== 0) throw etcdError('leaseProvided');
  const command: Mutable<PutRequest> & { type: 'put' } = { type: 'put', key, value };
  if (lease !== 0) {
    // An id no Flotilla lease can have (beyond 2^53) names no lease.
    if (id64(request.lease) <= 0) throw etcdError('leaseNotFound');
    command.lease = lease;
  }
  if (prevKv) command.prevKv = true;
  if (ignoreValue) command.ignoreValue = true;
  if (ignoreLease) command.ignoreLease = true;
  return command;
}

/** A DeleteRange command: only the fields that differ from their defaults. */
function deleteCommand(request: DeleteRangeRequestWire): DeleteRangeRequest & { type: 'deleteRange' } {
  const key = requireKey(request.key);
  const rangeEnd = rangeEndOf(key, request.range_end);
  const command: Mutable<DeleteRangeRequest> & { type: 'deleteRange' } = { type: 'deleteRange', key };
  if (rangeEnd.length > 0) command.rangeEnd = rangeEnd;
  if (request.prev_kv === true) command.prevKv = true;
  return command;
}

const EMPTY = new Uint8Array(0);
const COMPARE_RESULTS = ['EQUAL', 'GREATER', 'LESS', 'NOT_EQUAL'] as const;
const COMPARE_TARGETS = ['VERSION', 'CREATE', 'MOD', 'VALUE', 'LEASE'] as const;

/** etcd's checkTxnRequest, then the txn in the KV model. */
function txnRequest(request: TxnRequestWire, txnOpsMax: number): TxnRequest {
  const compares = request.compare ?? [];
  const success = request.success ?? [];
  const failure = request.failure ?? [];
  if (Math.max(compares.length, success.length, failure.length) > txnOpsMax) throw etcdError('tooManyOps');
  for (const compare of compares) requireKey(compare.key);
  return {
    compare: compares.map(compareOf),
    success: success.map((op) => requestOp(op, txnOpsMax)),
    failure: failure.map((op) => requestOp(op, txnOpsMax)),
  };
}

function compareOf(compare: CompareWire): Compare {
  const result = enumName(compare.result, COMPARE_RESULTS);
  const target = enumName(compare.target, COMPARE_TARGETS);
  if (!(COMPARE_RESULTS as readonly string[]).includes(result)) {
    throw new EtcdGrpcError(status.INVALID_ARGUMENT, 'etcdserver: invalid compare result');
  }
  const key = compare.key;
  const rangeEnd = rangeEndOf(key, compare.range_end);
  const base = rangeEnd.length > 0 ? { key, rangeEnd } : { key };
  const r = result as Compare['result'];
  switch (target) {
    case 'VALUE':
      return { ...base, result: r, target: 'VALUE', value: compare.value ?? EMPTY };
    case 'VERSION':
      return { ...base, result: r, target: 'VERSION', value: int64(compare.version) };
    case 'CREATE':
      return { ...base, result: r, target: 'CREATE', value: int64(compare.create_revision) };
    case 'MOD':
      return { ...base, result: r, target: 'MOD', value: int64(compare.mod_revision) };
    case 'LEASE':
      return { ...base, result: r, target: 'LEASE', value: int64(compare.lease) };
    default:
      throw new EtcdGrpcError(status.INVALID_ARGUMENT, 'etcdserver: invalid compare target');
  }
}

/** etcd's checkRequestOp, then the op in the KV model. */
function requestOp(op: RequestOpWire, txnOpsMax: number): RequestOp {
  if (op.request_range !== undefined && op.request_range !== null) return rangeOp(op.request_range);
  if (op.request_put !== undefined && op.request_put !== null) return putCommand(op.request_put);
  if (op.request_delete_range !== undefined && op.request_delete_range !== null) {
    return deleteCommand(op.request_delete_range);
  }
  if (op.request_txn !== undefined && op.request_txn !== null) {
    return { type: 'txn', ...txnRequest(op.request_txn, txnOpsMax) };
  }
  // An empty op: etcd answers `key not found`.
  throw etcdError('keyNotFound');
}
