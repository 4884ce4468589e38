/**
 * The lease routes of the HTTP API: `POST /v1/lease/grant` `{ttl, id?}`, `/revoke` `{id}`,
 * `/keepalive` `{id}` (exactly-once writes like the KV ones) and `GET /v1/lease/{id}`
 * (time to live). The leader revokes expired leases.
 */
import { randomInt } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import type { KvNode } from '../db/index.js';
import type { ClientSession } from '../kv/index.js';
import { HttpError } from './errors.js';
import { asObject, badRequest, intField, render } from './json.js';
import { write } from './propose.js';
import { methodNotAllowed, noRoute, ok } from './reply.js';
import { readJson, sessionOf } from './request.js';

/** Lease ids the server picks are below this (random, so any node can pick one without coordination). */
export const LEASE_ID_MAX = 2 ** 48;

/** Routes `/v1/lease/...` (the caller matched the prefix). */
export async function routeLease(
  node: KvNode,
  req: IncomingMessage,
  method: string,
  path: string,
): Promise<{ status: number; body: unknown }> {
  const action = path.slice('/v1/lease/'.length);
  if (action === 'grant' || action === 'revoke' || action === 'keepalive') {
    if (method !== 'POST') throw methodNotAllowed(method, path);
    const session = sessionOf(req);
    const body = asObject(await readJson(req), 'body');
    if (action === 'grant') return ok(await leaseGrant(node, body, session));
    const id = intField(body, 'id', 0);
    if (id === 0) throw badRequest('id is required');
    if (action === 'revoke') {
      return ok({
        revision: (await write(node, { type: 'leaseRevoke', id }, 'leaseRevoke', session)).revision,
      });
    }
    return ok(await leaseKeepAlive(node, id, session));
  }
  if (method !== 'GET') throw methodNotAllowed(method, path);
  if (!/^\d{1,16}$/.test(action)) throw noRoute(method, path);
  return ok(await leaseTimeToLive(node, Number(action)));
}

/** A retry in the same session answers the first grant, with the id picked then. */
async function leaseGrant(
  node: KvNode,
  body: Record<string, unknown>,
  session: ClientSession | undefined,
): Promise<unknown> {
  const ttlSeconds = intField(body, 'ttl', 0);
  if (ttlSeconds === 0) throw badRequest('ttl (seconds, positive) is required');
  const id = intField(body, 'id', 0) || randomInt(1, LEASE_ID_MAX);
  const response = await write(
    node,
    { type: 'leaseGrant', id, ttlSeconds, nowMs: Date.now() },
    'leaseGrant',
    session,
  );
  return { id: response.id, ttl: response.ttlSeconds, revision: response.revision };
}

/** A keep-alive resets the lease's countdown to its granted TTL, replicated as a checkpoint. */
async function leaseKeepAlive(
  node: KvNode,
  id: number,
  session: ClientSession | undefined,
): Promise<unknown> {
  const current = await leaseTimeToLive(node, id);
  await write(
    node,
    { type: 'leaseCheckpoint', id, remainingTtlSeconds: current.grantedTtl, nowMs: Date.now() },
    'leaseCheckpoint',
    session,
  );
  return { id, ttl: current.grantedTtl };
}

/** etcd `LeaseTimeToLive` after a linearizable barrier; 404 `LEASE_NOT_FOUND` for an unknown lease. */
async function leaseTimeToLive(
  node: KvNode,
  id: number,
): Promise<{ id: number; ttl: number; grantedTtl: number; keys: string[] }> {
  await node.read({ key: Uint8Array.of(0) });
  const info = node.backend.leaseTimeToLive(id, Date.now(), true);
  if (info.ttlSeconds === -1) throw new HttpError(404, 'LEASE_NOT_FOUND', `lease ${id} not found`);
  return {
    id,
    ttl: info.ttlSeconds,
    grantedTtl: info.grantedTtlSeconds,
    keys: info.keys.map((k) => render(k, 'utf8')),
  };
}
