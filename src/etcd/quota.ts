/**
 * etcd's space quota (`--quota-backend-bytes`) and its `NOSPACE` alarm, as etcd 3.4's
 * v3rpc/quota.go, etcdserver/quota.go and the alarm applier do them:
 *
 * - Before proposing a put, a txn with a put, or a lease grant, the member checks that the
 *   store's size in use plus the request's cost (etcd's estimate) stays within the quota.
 *   If not, it raises `NOSPACE` for itself through raft and the request fails with
 *   `etcdserver: mvcc: database space exceeded` (RESOURCE_EXHAUSTED): nothing is proposed.
 * - The alarm is replicated state (src/kv/alarms.ts): while it is raised every member's
 *   state machine refuses such commands with the same error, also once space was freed,
 *   until `etcdctl alarm disarm` clears it. Reads, deletes and compactions go on.
 *
 * etcd 3.4 compares the file size; Flotilla compares the size in use, because LMDB reuses
 * the pages compaction frees (there is no defragmentation to give them back first).
 */
import { performance } from 'node:perf_hooks';
import { status } from '@grpc/grpc-js';
import type { KvAlarm, KvCommand, RequestOp } from '../kv/index.js';
import { growsStore, payloadBytes } from '../kv/index.js';
import type { EtcdContext } from './context.js';
import { EtcdGrpcError, etcdError } from './errors.js';
import { enumName, type Int64, id64 } from './wire.js';

/** etcd's estimate of a key's metadata (its `kvOverhead`). */
const KV_OVERHEAD_BYTES = 256;
/** etcd's estimate of a lease (its `leaseOverhead`). */
const LEASE_OVERHEAD_BYTES = 64;

/** What `command` may add to the store, by etcd's estimate (0 when it cannot grow it). */
export function quotaCost(command: KvCommand | RequestOp): number {
  switch (command.type) {
    case 'put':
      return KV_OVERHEAD_BYTES + payloadBytes(command);
    case 'leaseGrant':
      return LEASE_OVERHEAD_BYTES;
    case 'txn': {
      // One branch runs: the costlier one counts.
      const branch = (ops: readonly RequestOp[]) => ops.reduce((sum, op) => sum + quotaCost(op), 0);
      return Math.max(branch(command.success), branch(command.failure));
    }
    default:
      return 0;
  }
}

/**
 * Rejects with etcd's `NOSPACE` error, after raising this member's alarm, when `command` would
 * take the store past the quota; resolves otherwise.
 */
export function checkQuota(ctx: EtcdContext, command: KvCommand): Promise<void> {
  return quotaRefusal(ctx, command) ?? Promise.resolve();
}

/**
 * Undefined when `command` is within the quota (decided at once: the write path awaits
 * nothing then); otherwise a promise that rejects with `NOSPACE` once the alarm is raised.
 */
export function quotaRefusal(ctx: EtcdContext, command: KvCommand): Promise<never> | undefined {
  if (!growsStore(command)) return undefined;
  const quotaBytes = ctx.node.options.quotaBackendBytes;
  if (ctx.space.admit(quotaCost(command), quotaBytes, performance.now())) return undefined;
  return refuse(ctx, quotaBytes);
}

async function refuse(ctx: EtcdContext, quotaBytes: number): Promise<never> {
  const usedBytes = ctx.space.usedBytes;
  const raised = ctx.node.backend
    .alarmList()
    .some((a) => a.memberId === ctx.memberId && a.alarm === 'NOSPACE');
  if (!raised) {
    ctx.logger.warn(`space quota exceeded (${usedBytes} of ${quotaBytes} bytes in use): raising NOSPACE`);
    await proposeAlarm(ctx, 'activate', { memberId: ctx.memberId, alarm: 'NOSPACE' }).catch(
      (error: unknown) =>
        ctx.logger.warn(
          `raising the NOSPACE alarm failed: ${error instanceof Error ? error.message : String(error)}`,
        ),
    );
  }
  throw etcdError('noSpace');
}

/** Raises or clears `alarm` through raft; resolves with the alarms changed. */
export async function proposeAlarm(
  ctx: EtcdContext,
  action: 'activate' | 'deactivate',
  alarm: KvAlarm,
): Promise<KvAlarm[]> {
  const result = await ctx.node.propose({ type: 'alarm', action, ...alarm });
  if (!result.ok) throw result.error;
  if (result.response.type !== 'alarm')
    throw new Error(`expected an alarm response, got ${result.response.type}`);
  return [...result.response.alarms];
}

/** etcd `AlarmRequest` as decoded (enums by name or number). */
export interface AlarmRequestWire {
  readonly action?: string | number;
  readonly memberID?: Int64;
  readonly alarm?: string | number;
}

/** etcd `AlarmMember` as encoded (the enum by number: the encoder takes no names here). */
interface AlarmMemberWire {
  readonly memberID: number;
  readonly alarm: number;
}

const ALARM_ACTIONS = ['GET', 'ACTIVATE', 'DEACTIVATE'] as const;
const ALARM_TYPES = ['NONE', 'NOSPACE', 'CORRUPT'] as const;

/**
 * Maintenance.Alarm as etcd answers it: GET lists the raised alarms (of one type, or all for
 * NONE) after a linearizable read barrier; ACTIVATE and DEACTIVATE go through raft and answer
 * the alarm changed. Flotilla raises only NOSPACE (a corrupt store stops the node).
 */
export async function answerAlarm(ctx: EtcdContext, request: AlarmRequestWire): Promise<AlarmMemberWire[]> {
  const action = enumName(request.action, ALARM_ACTIONS);
  const type = enumName(request.alarm, ALARM_TYPES);
  let alarms: KvAlarm[];
  if (action === 'GET') {
    await ctx.node.read({ key: ALARM_BARRIER_KEY, countOnly: true }, 'linearizable');
    alarms = ctx.node.backend.alarmList().filter((a) => type === 'NONE' || a.alarm === type);
  } else if (action === 'ACTIVATE' || action === 'DEACTIVATE') {
    if (type !== 'NOSPACE') {
      throw new EtcdGrpcError(status.UNIMPLEMENTED, `etcdserver: Flotilla raises no ${type} alarm`);
    }
    const memberId = id64(request.memberID);
    alarms = await proposeAlarm(ctx, action === 'ACTIVATE' ? 'activate' : 'deactivate', {
      memberId,
      alarm: type,
    });
  } else {
    throw new EtcdGrpcError(status.INVALID_ARGUMENT, `etcdserver: unknown alarm action ${action}`);
  }
  return alarms.map((a) => ({ memberID: a.memberId, alarm: ALARM_TYPES.indexOf(a.alarm) }));
}

/** The key of GET's read barrier (any key: only the read index matters). */
const ALARM_BARRIER_KEY = Uint8Array.of(0);
