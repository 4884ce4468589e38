/**
 * etcd's `Lease` service, answered as etcd 3.4's v3rpc/lease.go and lessor answer it.
 *
 * - LeaseGrant: ID 0 lets the server pick (random below 2^48, so any node can pick without
 *   coordination); a TTL below etcd's minimum (1.5 election timeouts) is raised to it.
 * - LeaseKeepAlive: a stream answered one request at a time; each renewal is a replicated
 *   `leaseCheckpoint` resetting the countdown to the granted TTL (the leader decides expiry,
 *   see node/lease-keeper.ts). An unknown (expired, revoked) lease gets TTL 0, not an error.
 * - LeaseTimeToLive and LeaseLeases answer after a linearizable barrier, so a lease granted
 *   through any member is seen; an unknown lease has TTL -1, as in etcd.
 */
import { randomInt } from 'node:crypto';
import type { ServiceImplementation, StreamingCall } from '../grpc/index.js';
import { isKvError, type RangeRequest } from '../kv/index.js';
import { drained } from '../server/drained.js';
import type { EtcdContext, WireHeader } from './context.js';
import { etcdError, toGrpcError } from './errors.js';
import { expect } from './kv-service.js';
import { checkQuota } from './quota.js';
import { unary } from './unary.js';
import { type Int64, id64, int64 } from './wire.js';

/** Lease ids the server picks are below this (the HTTP API picks the same way). */
export const LEASE_ID_MAX = 2 ** 48;

/** A linearizable barrier: reading one key waits until this node has applied everything committed before. */
const BARRIER: RangeRequest = Object.freeze({ key: Uint8Array.of(0) });

interface LeaseGrantRequestWire {
  readonly TTL?: Int64;
  readonly ID?: Int64;
}

interface LeaseIdRequestWire {
  readonly ID?: Int64;
}

interface LeaseTimeToLiveRequestWire {
  readonly ID?: Int64;
  readonly keys?: boolean;
}

interface LeaseKeepAliveResponseWire {
  readonly header: WireHeader;
  readonly ID: Int64;
  readonly TTL: number;
}

/** The `Lease` service of one node. */
export function leaseService(ctx: EtcdContext): ServiceImplementation {
  const node = ctx.node;
  return {
    LeaseGrant: unary(async (request: LeaseGrantRequestWire) => {
      const ttlSeconds = Math.max(int64(request.TTL), ctx.minLeaseTtlSeconds);
      const asked = int64(request.ID);
      if (asked !== 0 && id64(request.ID) <= 0) {
        throw etcdError('invalidLeaseId');
      }
      for (let attempt = 1; ; attempt++) {
        const id = asked !== 0 ? asked : randomInt(1, LEASE_ID_MAX);
        const grant = { type: 'leaseGrant', id, ttlSeconds, nowMs: Date.now() } as const;
        await checkQuota(ctx, grant);
        const result = await node.propose(grant);
        // A server-picked id that happens to be taken: pick again.
        if (!result.ok && asked === 0 && isKvError(result.error, 'LEASE_EXISTS') && attempt < 5) continue;
        const response = expect(result, 'leaseGrant');
        return {
          header: ctx.header(response.revision),
          ID: response.id,
          TTL: response.ttlSeconds,
          error: '',
        };
      }
    }),

    LeaseRevoke: unary(async (request: LeaseIdRequestWire) => {
      const id = id64(request.ID);
      if (id <= 0) throw etcdError('leaseNotFound');
      const response = expect(await node.propose({ type: 'leaseRevoke', id }), 'leaseRevoke');
      return { header: ctx.header(response.revision) };
    }),

    LeaseKeepAlive: (call: StreamingCall<LeaseIdRequestWire, LeaseKeepAliveResponseWire>) => {
      void keepAlive(ctx, call);
    },

    LeaseTimeToLive: unary(async (request: LeaseTimeToLiveRequestWire) => {
      await node.read(BARRIER);
      const id = id64(request.ID);
      const header = ctx.header(node.backend.revision);
      const requestId = request.ID ?? 0;
      if (id <= 0) return { header, ID: requestId, TTL: -1, grantedTTL: 0, keys: [] };
      const info = node.backend.leaseTimeToLive(id, Date.now(), request.keys === true);
      return {
        header,
        ID: requestId,
        TTL: info.ttlSeconds,
        grantedTTL: info.grantedTtlSeconds,
        keys: info.keys,
      };
    }),

    LeaseLeases: unary(async () => {
      await node.read(BARRIER);
      const leases = node.backend.leaseList().map((lease) => ({ ID: lease.id }));
      return { header: ctx.header(node.backend.revision), leases };
    }),
  };
}

/**
 * Serves one keep-alive stream like etcd's `leaseKeepAlive`: each request renews its lease
 * and is answered before the next is read; the header is taken before the renewal (so its
 * revision is never past a revoke the renewal raced with). The stream ends when the client
 * half-closes; a runtime error (no leader, timeout) ends it with that error.
 */
async function keepAlive(
  ctx: EtcdContext,
  call: StreamingCall<LeaseIdRequestWire, LeaseKeepAliveResponseWire>,
): Promise<void> {
  try {
    // Not destroyed when the loop ends: the status still has to be sent.
    const requests = call.iterator({ destroyOnReturn: false }) as AsyncIterable<LeaseIdRequestWire>;
    for await (const request of requests) {
      const header = ctx.header(ctx.node.backend.revision);
      const ttl = await renew(ctx, id64(request.ID));
      if (call.cancelled || call.destroyed) return;
      if (!call.write({ header, ID: request.ID ?? 0, TTL: ttl })) await drained(call);
    }
    if (!call.cancelled && !call.destroyed) call.end();
  } catch (error) {
    if (call.cancelled || call.destroyed) return;
    call.emit('error', toGrpcError(error));
  }
}

/** Renews lease `id` to its granted TTL; 0 for a lease that does not exist (etcd's answer). */
async function renew(ctx: EtcdContext, id: number): Promise<number> {
  if (id <= 0) return 0;
  const { node } = ctx;
  let info = node.backend.leaseTimeToLive(id, Date.now());
  if (info.ttlSeconds === -1) {
    // This member may not have applied the grant yet.
    await node.read(BARRIER);
    info = node.backend.leaseTimeToLive(id, Date.now());
    if (info.ttlSeconds === -1) return 0;
  }
  const ttl = info.grantedTtlSeconds;
  const result = await node.propose({
    type: 'leaseCheckpoint',
    id,
    remainingTtlSeconds: ttl,
    nowMs: Date.now(),
  });
  if (!result.ok) {
    if (isKvError(result.error, 'LEASE_NOT_FOUND')) return 0;
    throw result.error;
  }
  return ttl;
}
