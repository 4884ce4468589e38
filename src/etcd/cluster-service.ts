/**
 * etcd's `Cluster` service: MemberList, MemberAdd, MemberRemove, MemberUpdate and
 * MemberPromote, answered as etcd 3.4's v3rpc/member.go and etcdserver answer them.
 *
 * - Members are the applied configuration (voters and learners). Each shows its name and
 *   client URLs once it has started and published them (see node/member-table.ts): a member
 *   added through `MemberAdd` and not started yet has an empty name and no client URLs, as in
 *   etcd. `clientURLs` is the member's etcd gRPC endpoint (`http://host:port`), the URL
 *   `etcdctl --cluster` dials.
 * - MemberAdd carries only peer URLs; the server picks the id (random below 2^48, never one
 *   known or removed). The new member finds its id by its peer URL when it starts with
 *   `--initial-cluster-state existing` (see node/join.ts).
 * - Adding, removing and promoting are raft conf changes, which only the leader proposes; a
 *   follower forwards the request to the leader's gRPC endpoint (etcd's followers forward
 *   conf changes too), then answers once it has applied the change itself, so a MemberList it
 *   serves next shows it. Removing the leader first moves leadership to another voter.
 * - MemberUpdate (new peer URLs) is a replicated member update any member can propose.
 * - etcd's strict reconfiguration checks apply: a voter is added, removed or promoted only if
 *   a quorum of the resulting voters would be started (have published), and there is at most
 *   one learner.
 */
import {
  type CallOptions,
  type Client,
  credentials,
  Metadata,
  type ServiceError,
  status,
} from '@grpc/grpc-js';
import type { KvNode } from '../db/index.js';
import type { ServiceImplementation, UnaryCall } from '../grpc/index.js';
import { NotLeaderError, RefusedError } from '../index.js';
import type { RangeRequest } from '../kv/index.js';
import { type MemberWire, memberList, memberWire, parsePeerUrls, peerUrl } from './cluster-members.js';
import type { EtcdContext, WireHeader } from './context.js';
import { EtcdGrpcError, etcdError } from './errors.js';
import { etcdService } from './proto.js';
import { unary } from './unary.js';
import { type Int64, id64 } from './wire.js';

interface MemberAddRequestWire {
  readonly peerURLs?: string[];
  readonly isLearner?: boolean;
}

interface MemberIdRequestWire {
  readonly ID?: Int64;
}

interface MemberUpdateRequestWire {
  readonly ID?: Int64;
  readonly peerURLs?: string[];
}

interface MemberListRequestWire {
  readonly linearizable?: boolean;
}

interface MembersResponseWire {
  header: WireHeader;
  members: MemberWire[];
  member?: MemberWire;
}

/** Member ids the server picks are below this (like Flotilla's name-derived ids). */
export const MEMBER_ID_MAX = 2 ** 48;
/** Learners allowed at once (etcd 3.4's `maxLearners`). */
export const LEARNERS_MAX = 1;
/**
 * Metadata key of a request a member forwarded to the leader: how many times it was
 * forwarded. Twice at most (a follower to the leader, which hands leadership off before
 * removing itself, to the next), so a request cannot loop while leadership moves.
 */
const FORWARDED = 'flotilla-forwarded';
const FORWARDS_MAX = 2;
/** A linearizable barrier: reading one key waits until this node has applied everything committed before. */
const BARRIER: RangeRequest = Object.freeze({ key: Uint8Array.of(0) });
/** How often a conf change refused as "another one is in progress" is retried. */
const RETRY_MS = 50;

/** The `Cluster` service of one node. */
export function clusterService(ctx: EtcdContext): ServiceImplementation {
  return {
    MemberList: unary((request: MemberListRequestWire) => listMembers(ctx, request)),
    MemberAdd: unary((request: MemberAddRequestWire, call) =>
      onLeader(ctx, 'MemberAdd', request, call, () => addMember(ctx, request)),
    ),
    MemberRemove: unary((request: MemberIdRequestWire, call) => removeMember(ctx, request, call)),
    MemberPromote: unary((request: MemberIdRequestWire, call) =>
      onLeader(ctx, 'MemberPromote', request, call, () => promoteMember(ctx, request)),
    ),
    MemberUpdate: unary((request: MemberUpdateRequestWire) => updateMember(ctx, request)),
  };
}

/** A response listing this node's members. */
function membersResponse(ctx: EtcdContext): MembersResponseWire {
  return { header: ctx.header(), members: memberList(ctx.node) };
}

/** The member `id` of the configuration, or etcd's `member not found`. */
function configured(node: KvNode, id: number): { isLearner: boolean } {
  const found = memberList(node).find((m) => m.ID === String(id));
  if (found === undefined) throw etcdError('memberNotFound');
  return { isLearner: found.isLearner };
}

/**
 * Runs `change` on the leader: here if this node leads, else forwarded to the leader's
 * gRPC endpoint; then waits until this node has applied everything the leader had
 * committed, so its own member list shows the change — unless the change removes this
 * node, which may never learn of it (the leader stops replicating to a removed member):
 * then the leader's member list is the answer.
 */
async function onLeader<Req>(
  ctx: EtcdContext,
  method: string,
  request: Req,
  call: UnaryCall<Req>,
  change: () => Promise<MembersResponseWire>,
  removesSelf = false,
): Promise<MembersResponseWire> {
  const node = ctx.node;
  const timeoutMs = node.options.requestTimeoutMs;
  const leader = await node.raft.waitForLeader({ timeoutMs }).catch(() => 0);
  if (leader === 0) throw etcdError('noLeader');
  if (leader === node.options.id) return change();
  const hops = Number(call.metadata.get(FORWARDED)[0] ?? 0) || 0;
  if (hops >= FORWARDS_MAX) throw etcdError('notLeader');
  const forwarded = (await forward(
    node,
    leader,
    method,
    request,
    hops + 1,
    timeoutMs,
  )) as MembersResponseWire;
  if (removesSelf) return { ...forwarded, header: ctx.header() };
  await node.read(BARRIER);
  return { ...forwarded, header: ctx.header(), members: memberList(node) };
}

/** MemberList, after a linearizable barrier when asked. */
async function listMembers(ctx: EtcdContext, request: MemberListRequestWire): Promise<MembersResponseWire> {
  if (request.linearizable === true) await ctx.node.read(BARRIER);
  return membersResponse(ctx);
}

/** MemberAdd on the leader: a new voter or learner at a peer URL no member has. */
async function addMember(ctx: EtcdContext, request: MemberAddRequestWire): Promise<MembersResponseWire> {
  const node = ctx.node;
  const address = parsePeerUrls(request.peerURLs);
  const current = memberList(node);
  const url = peerUrl(address);
  if (current.some((m) => m.peerURLs.includes(url))) throw etcdError('peerUrlExist');
  const isLearner = request.isLearner === true;
  if (isLearner && current.filter((m) => m.isLearner).length >= LEARNERS_MAX) {
    throw etcdError('tooManyLearners');
  }
  if (!isLearner && !quorumStarted(current, { add: true })) throw etcdError('memberNotEnoughStarted');
  const id = newMemberId(node);
  // Unnamed until it starts and publishes its name, as in etcd.
  const added = { id, name: '', address: url.slice('http://'.length) } as const;
  await confChange(node.options.requestTimeoutMs, () =>
    isLearner
      ? node.raft.addLearner(id, added.address, { name: '' })
      : node.raft.addVoter(id, added.address, { name: '' }),
  );
  ctx.logger.info(`etcd MemberAdd: added ${isLearner ? 'learner' : 'voter'} ${id} at ${url}`);
  return { ...membersResponse(ctx), member: memberWire({ ...added, role: isLearner ? 'learner' : 'voter' }) };
}

/** MemberRemove: a leader removing itself first hands leadership off, then the new leader removes it. */
async function removeMember(
  ctx: EtcdContext,
  request: MemberIdRequestWire,
  call: UnaryCall<MemberIdRequestWire>,
): Promise<MembersResponseWire> {
  const node = ctx.node;
  const timeoutMs = node.options.requestTimeoutMs;
  const id = id64(request.ID);
  configured(node, id);
  if (id === node.status().leader && id === node.options.id) {
    await handOffLeadership(node, timeoutMs);
  }
  const change = async (): Promise<MembersResponseWire> => {
    const { isLearner } = configured(node, id);
    if (id === node.options.id) {
      // Leadership came back here (or moved here) meanwhile: the client retries.
      throw etcdError('leaderChanged');
    }
    if (!isLearner && !quorumStarted(memberList(node), { remove: id })) {
      throw etcdError('memberNotEnoughStarted');
    }
    await confChange(timeoutMs, () => node.raft.remove(id));
    ctx.logger.info(`etcd MemberRemove: removed ${id}`);
    return membersResponse(ctx);
  };
  return onLeader(ctx, 'MemberRemove', request, call, change, id === node.options.id);
}

/** MemberPromote on the leader: a learner becomes a voter. */
async function promoteMember(ctx: EtcdContext, request: MemberIdRequestWire): Promise<MembersResponseWire> {
  const node = ctx.node;
  const id = id64(request.ID);
  const { isLearner } = configured(node, id);
  if (!isLearner) throw etcdError('memberNotLearner');
  if (!quorumStarted(memberList(node), { promote: id })) throw etcdError('memberNotEnoughStarted');
  await confChange(node.options.requestTimeoutMs, () => node.raft.promote(id));
  ctx.logger.info(`etcd MemberPromote: promoted ${id}`);
  return membersResponse(ctx);
}

/** MemberUpdate: a replicated change of a member's peer URL, proposed by any member. */
async function updateMember(
  ctx: EtcdContext,
  request: MemberUpdateRequestWire,
): Promise<MembersResponseWire> {
  const node = ctx.node;
  const id = id64(request.ID);
  configured(node, id);
  const address = parsePeerUrls(request.peerURLs);
  const url = peerUrl(address);
  if (memberList(node).some((m) => m.ID !== String(id) && m.peerURLs.includes(url))) {
    throw etcdError('peerUrlExist');
  }
  await node.raft.updateMemberAddress(id, url.slice('http://'.length));
  ctx.logger.info(`etcd MemberUpdate: member ${id} now at ${url}`);
  return membersResponse(ctx);
}

/**
 * etcd's strict reconfiguration check (`IsReadyToAddVotingMember`,
 * `IsReadyToRemoveVotingMember`, `IsReadyToPromoteMember`): after the change, a quorum of
 * the voters must have started (a member has started once it published its name).
 */
function quorumStarted(
  current: readonly MemberWire[],
  change: { add: true } | { remove: number } | { promote: number },
): boolean {
  const voters = current.filter((m) => !m.isLearner);
  let members = voters.length;
  let started = voters.filter((m) => m.name !== '').length;
  if ('add' in change) {
    members++;
    // Adding a second member to a one-member cluster (restoring one) is allowed.
    if (started === 1 && members === 2) return true;
  } else if ('remove' in change) {
    members--;
    if (voters.some((m) => m.ID === String(change.remove) && m.name !== '')) started--;
  } else {
    members++;
    started++;
  }
  return started >= Math.floor(members / 2) + 1;
}

/** A random id below 2^48 that no member has or had. */
function newMemberId(node: KvNode): number {
  const known = new Set([
    ...node.raft.members().map((m) => m.id),
    ...(node.status().confState.removed ?? []),
  ]);
  for (;;) {
    const id = Math.floor(Math.random() * (MEMBER_ID_MAX - 1)) + 1;
    if (!known.has(id)) return id;
  }
}

/**
 * Proposes a conf change on this (leader) node, retrying while another change is still being
 * applied (e.g. a joint configuration's automatic leave), and maps the core's refusals to
 * etcd's errors.
 */
async function confChange(timeoutMs: number, propose: () => Promise<void>): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      await propose();
      return;
    } catch (error) {
      if (error instanceof NotLeaderError && error.code === 'NOT_LEADER') throw etcdError('notLeader');
      if (!(error instanceof RefusedError)) throw error;
      switch (error.reason) {
        case 'CONF_CHANGE_IN_PROGRESS':
        case 'TRANSFER_IN_PROGRESS':
          if (Date.now() + RETRY_MS > deadline) throw etcdError('timeout');
          await new Promise((resolve) => setTimeout(resolve, RETRY_MS));
          continue;
        case 'LEARNER_NOT_READY':
          throw etcdError('learnerNotReady');
        case 'NODE_ID_REUSED':
          throw etcdError('memberExist');
        default:
          throw new EtcdGrpcError(status.FAILED_PRECONDITION, `etcdserver: ${error.message}`);
      }
    }
  }
}

/**
 * Moves leadership away from this leader before it is removed, to another voter that has
 * started (the core catches it up, then sends it `timeout-now`), waiting until it leads.
 */
async function handOffLeadership(node: KvNode, timeoutMs: number): Promise<void> {
  const others = node.status().confState.voters.filter((id) => id !== node.options.id);
  const names = new Map(node.raft.members().map((m) => [m.id, m.name]));
  const target = others.find((id) => (names.get(id) ?? '') !== '') ?? others[0];
  if (target === undefined) throw etcdError('memberNotEnoughStarted');
  // The transfer is asked for until another member leads (a refusal is not an answer here).
  const handedOff = new AbortController();
  node.raft.transferLeadership(target, { timeoutMs, signal: handedOff.signal }).catch(() => {});
  try {
    const deadline = Date.now() + timeoutMs;
    while (node.raft.status().leader === node.options.id) {
      if (Date.now() > deadline) throw etcdError('timeout');
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
  } finally {
    handedOff.abort();
  }
}

/**
 * Sends `request` to `method` of the leader's `Cluster` service (its published gRPC URL),
 * marked as forwarded so the leader never forwards it again.
 */
async function forward(
  node: KvNode,
  leader: number,
  method: string,
  request: unknown,
  hops: number,
  timeoutMs: number,
): Promise<unknown> {
  const url = node.raft.members().find((m) => m.id === leader)?.clientUrls?.grpc;
  if (url === undefined) throw etcdError('notLeader');
  const Cluster = etcdService('Cluster');
  const client: Client = new Cluster(url.replace(/^https?:\/\//, ''), credentials.createInsecure());
  const metadata = new Metadata();
  metadata.set(FORWARDED, String(hops));
  const options: CallOptions = { deadline: Date.now() + 2 * timeoutMs };
  try {
    return await new Promise((resolve, reject) => {
      const fn = (client as unknown as Record<string, (...args: unknown[]) => unknown>)[method]!;
      fn.call(client, request, metadata, options, (error: ServiceError | null, response: unknown) => {
        if (error === null) resolve(response);
        else reject(new EtcdGrpcError(error.code, error.details));
      });
    });
  } finally {
    client.close();
  }
}
