/**
 * etcd's `Maintenance` service, answered as etcd 3.4's v3rpc/maintenance.go answers it:
 *
 * - Status: this member's view — version, store size, leader, raft term, committed and
 *   applied index, learner or not; `errors` holds etcd's `no leader` when none is known.
 * - Hash / HashKV: 32 bits of the SHA-256 of the whole replicated KV state / of the MVCC
 *   history up to a revision (with the compacted revision). Members at the same revision
 *   answer the same HashKV, as etcd's do (`etcdctl endpoint hashkv --cluster`).
 * - Snapshot: a consistent copy of this member's KV store (one LMDB read transaction),
 *   streamed as blobs; the stream ends with a SHA-256 as etcd's does, so `etcdctl snapshot
 *   save` accepts it, and `flotilla snapshot restore` restores the file (node/backup.ts).
 * - MoveLeader: on the leader only (etcdctl finds it through Status); answers once the target
 *   leads, or etcd's timeout error.
 * - Alarm: the replicated alarms (quota.ts): GET lists them, ACTIVATE / DEACTIVATE of
 *   NOSPACE go through raft. Defragment: LMDB reuses the pages compaction frees, so the size
 *   in use drops without it; it answers success and changes nothing (the file keeps its size).
 */
import { status } from '@grpc/grpc-js';
import type { ServiceImplementation, StreamingCall } from '../grpc/index.js';
import { isFlotillaError } from '../index.js';
import { encodeEtcdBackup } from '../kv/index.js';
import { drained } from '../server/drained.js';
import type { EtcdContext, WireHeader } from './context.js';
import { EtcdGrpcError, etcdError, toGrpcError } from './errors.js';
import { type AlarmRequestWire, answerAlarm } from './quota.js';
import { unary } from './unary.js';
import { type Int64, id64, int64 } from './wire.js';

/**
 * The version Status reports: the etcd API version Flotilla speaks, with Flotilla named in
 * the semver build metadata (clients that parse it read 3.4.0; etcdctl prints it as is).
 */
export const ETCD_VERSION = '3.4.0+flotilla';

/** Bytes per Snapshot blob (etcd sends 32 KiB). */
const SNAPSHOT_BLOB_BYTES = 64 * 1024;

/** etcd's errors of MoveLeader (not in errors.ts: only this service sends them). */
const BAD_LEADER_TRANSFEREE = (): EtcdGrpcError =>
  new EtcdGrpcError(status.FAILED_PRECONDITION, 'etcdserver: bad leader transferee');
const LEADER_TRANSFER_TIMEOUT = (): EtcdGrpcError =>
  new EtcdGrpcError(status.UNAVAILABLE, 'etcdserver: request timed out, leader transfer took too long');

interface HashKvRequestWire {
  readonly revision?: Int64;
}

interface MoveLeaderRequestWire {
  readonly targetID?: Int64;
}

interface StatusResponseWire {
  readonly header: WireHeader;
  readonly version: string;
  readonly dbSize: number;
  readonly leader: string;
  readonly raftIndex: number;
  readonly raftTerm: number;
  readonly raftAppliedIndex: number;
  readonly errors: string[];
  readonly dbSizeInUse: number;
  readonly isLearner: boolean;
}

interface SnapshotResponseWire {
  readonly header: WireHeader;
  readonly remaining_bytes: number;
  readonly blob: Uint8Array;
}

/** The first 32 bits of a hex digest, as etcd's uint32 hashes. */
function hash32(hex: string): number {
  return Number.parseInt(hex.slice(0, 8), 16);
}

/** The `Maintenance` service of one node. */
export function maintenanceService(ctx: EtcdContext): ServiceImplementation {
  const node = ctx.node;
  return {
    Status: unary(async () => memberStatus(ctx)),

    Hash: unary(async () => ({ header: ctx.header(), hash: hash32(node.backend.hash()) })),

    HashKV: unary(async (request: HashKvRequestWire) => {
      const revision = int64(request.revision);
      if (revision < 0) throw etcdError('futureRev');
      const result = await node.backend.hashKvAsync(revision);
      return {
        header: ctx.header(),
        hash: hash32(result.hash),
        compact_revision: result.compactRevision,
      };
    }),

    Defragment: unary(async () => ({ header: ctx.header() })),

    Alarm: unary(async (request: AlarmRequestWire) => {
      const alarms = await answerAlarm(ctx, request);
      return { header: ctx.header(), alarms };
    }),

    MoveLeader: unary((request: MoveLeaderRequestWire) => moveLeader(ctx, request)),

    Snapshot: (call: StreamingCall<unknown, SnapshotResponseWire>) => {
      void streamSnapshot(ctx, call).catch((error: unknown) => {
        if (!call.destroyed) call.destroy(toGrpcError(error));
      });
    },
  };
}

/** Status: this member's view of the cluster and the size of its store. */
function memberStatus(ctx: EtcdContext): StatusResponseWire {
  const node = ctx.node;
  const st = node.status();
  const { fileBytes, usedBytes } = node.backend.storageStats();
  const errors: string[] = [];
  if (st.leader === 0) errors.push('etcdserver: no leader');
  if (node.raft.fatalError !== undefined) errors.push('etcdserver: server stopped');
  const learners = new Set([...st.confState.learners, ...st.confState.learnersNext]);
  const voters = new Set([...st.confState.voters, ...st.confState.votersOutgoing]);
  return {
    header: ctx.header(),
    version: ETCD_VERSION,
    dbSize: fileBytes,
    leader: String(st.leader),
    raftIndex: st.commit,
    raftTerm: st.term,
    raftAppliedIndex: st.kvApplied,
    errors,
    dbSizeInUse: usedBytes,
    isLearner: learners.has(st.id) && !voters.has(st.id),
  };
}

/** MoveLeader, on the leader only: hands leadership to voter `targetID` and answers once it leads. */
async function moveLeader(ctx: EtcdContext, request: MoveLeaderRequestWire): Promise<{ header: WireHeader }> {
  const node = ctx.node;
  const st = node.status();
  if (st.leader !== st.id) throw etcdError('notLeader');
  const target = id64(request.targetID);
  const voters = new Set([...st.confState.voters, ...st.confState.votersOutgoing]);
  if (!voters.has(target)) throw BAD_LEADER_TRANSFEREE();
  if (target !== st.id) {
    try {
      await node.raft.transferLeadership(target, { timeoutMs: node.options.requestTimeoutMs });
    } catch (error) {
      throw isFlotillaError(error, 'TIMEOUT') ? LEADER_TRANSFER_TIMEOUT() : toGrpcError(error);
    }
    ctx.logger.info(`etcd MoveLeader: leadership moved to ${target}`);
  }
  return { header: ctx.header() };
}

/** Streams a consistent backup of this member's KV store (see src/kv/backup.ts). */
async function streamSnapshot(
  ctx: EtcdContext,
  call: StreamingCall<unknown, SnapshotResponseWire>,
): Promise<void> {
  const snapshot = ctx.node.backend.snapshot();
  const header = ctx.header(snapshot.meta.revision);
  const data = encodeEtcdBackup(snapshot);
  ctx.logger.info(`etcd Snapshot: sending ${data.length} bytes at revision ${snapshot.meta.revision}`);
  for (let offset = 0; offset < data.length; offset += SNAPSHOT_BLOB_BYTES) {
    if (call.cancelled || call.destroyed) return;
    const blob = data.subarray(offset, offset + SNAPSHOT_BLOB_BYTES);
    const more = call.write({ header, remaining_bytes: data.length - offset - blob.length, blob });
    if (!more) await drained(call);
  }
  call.end();
}
