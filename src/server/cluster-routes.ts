/**
 * This node's view of the cluster over HTTP: `GET /v1/cluster` (this member with its process
 * id, members, leader, term, commit, applied) and `GET /health` (200 when a leader is known and the node has not
 * failed, else 503).
 */
import type { KvNode } from '../db/index.js';

/** The `/v1/cluster` body: this node's status and the members of its configuration. */
export function clusterView(node: KvNode): unknown {
  const status = node.status();
  const voters = new Set(status.confState.voters);
  const members = node.raft
    .members()
    .sort((a, b) => a.id - b.id)
    .map((m) => ({
      id: m.id,
      name: m.name,
      peerUrl: `http://${m.address}`,
      voter: voters.has(m.id),
      ...(m.clientUrls?.http === undefined ? {} : { clientUrl: m.clientUrls.http }),
      ...(m.clientUrls?.grpc === undefined ? {} : { grpcUrl: m.clientUrls.grpc }),
    }));
  return {
    clusterId: status.clusterId,
    // The pid lets a local operator signal the process (`flotilla status --leader-pid`).
    member: { id: status.id, name: status.name, pid: process.pid },
    role: status.role,
    leader: status.leader === 0 ? null : (leaderOf(node, status.leader) ?? { id: status.leader, name: '' }),
    term: status.term,
    commit: status.commit,
    applied: status.kvApplied,
    revision: status.revision,
    members,
  };
}

/** The `/health` answer. */
export function health(node: KvNode): { status: number; body: unknown } {
  const status = node.status();
  const healthy = status.leader !== 0 && node.raft.fatalError === undefined;
  return {
    status: healthy ? 200 : 503,
    body: { health: healthy, role: status.role, leader: status.leader, term: status.term },
  };
}

/** Member `id` as errors and `/v1/cluster` name a leader; undefined when it is not in the member table. */
export function leaderOf(node: KvNode, id: number): { id: number; name: string } | undefined {
  const member = node.raft.members().find((m) => m.id === id);
  return member === undefined ? undefined : { id, name: member.name };
}
