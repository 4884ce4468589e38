/**
 * Proposing a KV command through raft for a write route, in the request's client session if
 * it has one, and unwrapping the response of the expected type (or throwing its error).
 */

import type { KvNode } from '../db/index.js';
import type { ClientSession, KvCommand, KvResult } from '../kv/index.js';
import { HttpError } from './errors.js';

/** The response of a successful KV command. */
export type KvResponseOf = (KvResult & { ok: true })['response'];
/** The type tag of a KV command's response. */
export type KvResponseType = KvResponseOf['type'];

/** Proposes `command` (in `session`, if any) and returns its response of `type`. */
export async function write<K extends KvResponseType>(
  node: KvNode,
  command: KvCommand,
  type: K,
  session: ClientSession | undefined,
): Promise<Extract<KvResponseOf, { type: K }>> {
  const result = await node.propose(session === undefined ? command : { ...command, session });
  return expect(result, type, session);
}

/**
 * The response of a successful command of `type`, or the command's KV error thrown. In a
 * session, a response of another type is the cached outcome of an earlier request that
 * used the same sequence number: 409 `SEQUENCE_REUSED`.
 */
function expect<K extends KvResponseType>(
  result: KvResult,
  type: K,
  session?: ClientSession,
): Extract<KvResponseOf, { type: K }> {
  if (!result.ok) throw result.error;
  if (result.response.type !== type) {
    if (session !== undefined) {
      throw new HttpError(
        409,
        'SEQUENCE_REUSED',
        `seq ${session.seq} of client ${session.clientId} was used for a ${result.response.type} request, ` +
          `not a ${type}: a retry must repeat its request, a new request needs a new seq`,
      );
    }
    throw new Error(`expected a ${type} response, got ${result.response.type}`);
  }
  return result.response as Extract<KvResponseOf, { type: K }>;
}
