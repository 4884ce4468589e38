/**
 * Membership routes of the HTTP API (runtime reconfiguration). Conf changes are accepted by
 * the leader only: elsewhere they fail with 503 `NOT_LEADER` naming the leader.
 *
 * | route | what |
 * | --- | --- |
 * | `GET /v1/members` | `{members: [{id, name, peerUrl, role, clientUrl?, grpcUrl?}]}`, role `voter` or `learner`; the URLs once the member has published them |
 * | `POST /v1/members` `{name, peerUrl, learner?}` | adds a member (id derived from the name); 201 |
 * | `POST /v1/members/{id}/promote` | makes a learner a voter (409 `LEARNER_NOT_READY` while it lags) |
 * | `DELETE /v1/members/{id}` | removes a member; the leader itself: 409 `MEMBER_IS_LEADER` (move leadership first) |
 * | `POST /v1/leader` `{id}` | transfers leadership to voter `id`, resolves once it leads |
 */
import type { KvNode } from '../db/index.js';
import { NotLeaderError, nodeIdFromName, parseHostPort, RefusedError, TimeoutError } from '../index.js';
import { HttpError } from './errors.js';
import { asObject, badRequest, boolField } from './json.js';
import { methodNotAllowed } from './reply.js';

/** One member as the API shows it. */
export interface MemberJson {
  readonly id: number;
  readonly name: string;
  readonly peerUrl: string;
  readonly role: 'voter' | 'learner';
  /** Its HTTP API and etcd gRPC API, once it has started and published them. */
  readonly clientUrl?: string;
  readonly grpcUrl?: string;
}

/** The current members as this node knows them (its applied configuration). */
export function listMembers(node: KvNode): MemberJson[] {
  const out: MemberJson[] = node.raft.members().map((m) => ({
    id: m.id,
    name: m.name,
    peerUrl: m.address === '' ? '' : `http://${m.address}`,
    role: m.role,
    ...(m.clientUrls?.http === undefined ? {} : { clientUrl: m.clientUrls.http }),
    ...(m.clientUrls?.grpc === undefined ? {} : { grpcUrl: m.clientUrls.grpc }),
  }));
  return out.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : a.id - b.id));
}

function memberOrNotFound(node: KvNode, text: string): MemberJson {
  const id = /^\d{1,16}$/.test(text) ? Number(text) : Number.NaN;
  const member = listMembers(node).find((m) => m.id === id || m.name === text);
  if (member === undefined) throw new HttpError(404, 'MEMBER_NOT_FOUND', `no member ${text}`);
  return member;
}

/** Maps a refusal of the core to its HTTP error; other errors pass through. */
function mapRaftError(node: KvNode, error: unknown): never {
  if (error instanceof NotLeaderError && error.code === 'NOT_LEADER') {
    const id = error.leaderId;
    const m = node.raft.members().find((member) => member.id === id);
    const leader = id === 0 ? undefined : { id, name: m?.name ?? '' };
    throw new HttpError(503, 'NOT_LEADER', error.message, true, leader);
  }
  if (!(error instanceof RefusedError)) throw error;
  switch (error.reason) {
    case 'CONF_CHANGE_IN_PROGRESS':
    case 'TRANSFER_IN_PROGRESS':
      throw new HttpError(409, error.reason, error.message, true);
    case 'LEARNER_NOT_READY':
      throw new HttpError(409, error.reason, error.message, true);
    case 'NODE_ID_REUSED':
      throw new HttpError(409, error.reason, error.message, false);
    case 'INVALID_CONF_CHANGE':
    case 'INVALID_TRANSFER_TARGET':
      throw new HttpError(400, error.reason, error.message, false);
    default:
      throw new HttpError(500, 'INTERNAL', error.message);
  }
}

function parsePeerUrl(text: string): { host: string; port: number } {
  const bare = text.replace(/^https?:\/\//, '').replace(/\/$/, '');
  try {
    return parseHostPort(bare, 'peerUrl');
  } catch (error) {
    throw badRequest(error instanceof Error ? error.message : String(error));
  }
}

/** What a membership route answers. */
type MembersReply = { status: number; body: unknown };

/** Routes `/v1/members...` and `/v1/leader`; undefined when the path is not one of them. */
export async function routeMembers(
  node: KvNode,
  method: string,
  path: string,
  body: () => Promise<unknown>,
): Promise<MembersReply | undefined> {
  if (path === '/v1/members') {
    if (method === 'GET') return { status: 200, body: { members: listMembers(node) } };
    if (method !== 'POST') throw methodNotAllowed(method, path);
    return addMember(node, await body());
  }
  const promote = /^\/v1\/members\/([^/]+)\/promote$/.exec(path);
  if (promote?.[1] !== undefined) {
    if (method !== 'POST') throw methodNotAllowed(method, path);
    return promoteMember(node, promote[1]);
  }
  const one = /^\/v1\/members\/([^/]+)$/.exec(path);
  if (one?.[1] !== undefined) {
    if (method !== 'DELETE') throw methodNotAllowed(method, path);
    return removeMember(node, one[1]);
  }
  if (path === '/v1/leader') {
    if (method !== 'POST') throw methodNotAllowed(method, path);
    return moveLeader(node, await body());
  }
  return undefined;
}

/** `POST /v1/members` `{name, peerUrl, learner?}`: 201 with the new member and the cluster id. */
async function addMember(node: KvNode, body: unknown): Promise<MembersReply> {
  const o = asObject(body, 'body');
  const { name, peerUrl } = o;
  if (typeof name !== 'string' || !/^[A-Za-z0-9._-]{1,64}$/.test(name)) {
    throw badRequest('name must be 1-64 characters of [A-Za-z0-9._-]');
  }
  if (typeof peerUrl !== 'string') throw badRequest('peerUrl must be a string (http://host:port)');
  const address = parsePeerUrl(peerUrl);
  const learner = boolField(o, 'learner');
  const id = nodeIdFromName(name);
  if (listMembers(node).some((m) => m.id === id || m.name === name)) {
    throw new HttpError(409, 'MEMBER_EXISTS', `${name} is already a member`);
  }
  const peer = `${address.host.includes(':') ? `[${address.host}]` : address.host}:${address.port}`;
  await (learner ? node.raft.addLearner(id, peer, { name }) : node.raft.addVoter(id, peer, { name })).catch(
    (error: unknown) => mapRaftError(node, error),
  );
  const member = listMembers(node).find((m) => m.id === id);
  return {
    status: 201,
    body: { member, clusterId: `0x${node.status().clusterId.toString(16).padStart(8, '0')}` },
  };
}

/** `POST /v1/members/{id}/promote`: a learner becomes a voter (a voter stays one). */
async function promoteMember(node: KvNode, text: string): Promise<MembersReply> {
  const member = memberOrNotFound(node, text);
  if (member.role === 'voter') return { status: 200, body: { member } };
  await node.raft.promote(member.id).catch((error: unknown) => mapRaftError(node, error));
  return { status: 200, body: { member: listMembers(node).find((m) => m.id === member.id) } };
}

/** `DELETE /v1/members/{id}`: removes a member other than the leader. */
async function removeMember(node: KvNode, text: string): Promise<MembersReply> {
  const member = memberOrNotFound(node, text);
  if (member.id === node.status().leader) {
    throw new HttpError(
      409,
      'MEMBER_IS_LEADER',
      `${member.name} (${member.id}) is the leader: move leadership to another voter first (POST /v1/leader)`,
    );
  }
  await node.raft.remove(member.id).catch((error: unknown) => mapRaftError(node, error));
  return { status: 200, body: { removed: member } };
}

/** `POST /v1/leader` `{id}`: transfers leadership and answers once the target leads (504 after the request timeout). */
async function moveLeader(node: KvNode, body: unknown): Promise<MembersReply> {
  const o = asObject(body, 'body');
  const { id } = o;
  const target = memberOrNotFound(node, String(id));
  try {
    await node.raft.transferLeadership(target.id, { timeoutMs: node.options.requestTimeoutMs });
  } catch (error) {
    if (error instanceof TimeoutError) {
      throw new HttpError(504, 'TIMEOUT', `${target.name} did not take over leadership in time`, true);
    }
    mapRaftError(node, error);
  }
  return { status: 200, body: { leader: { id: target.id, name: target.name } } };
}
