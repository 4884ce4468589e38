/**
 * Joining a running cluster (`--initial-cluster-state existing` with a fresh data directory):
 * learning the cluster's id, this member's id and the member table from a member that is
 * already running, as etcd does (it asks the peers in `--initial-cluster` for the member list
 * and finds itself by its peer URL).
 *
 * Why: a member added at runtime cannot derive either id from its flags. Its
 * `--initial-cluster` lists the members as they are now (etcdctl prints it after `member
 * add`), not the founding list the cluster id was derived from; and a member added through
 * etcd's `MemberAdd` got an id the server chose (the request names no member, only its peer
 * URL), not one derived from its name. Its peer URL is the one thing both sides know, so the
 * joining node asks a member over the peer port (transport: CLUSTER_QUERY) and looks itself
 * up by it. The answer also gives the member table with the right ids — names in the flags
 * would give wrong ids for members that were themselves added through etcd.
 */
import { queryClusterInfo } from '../transport/index.js';
import { NodeError } from './errors.js';
import { type MemberAddress, type MemberJson, membersFromJson } from './member-table.js';

/** A member's answer to a cluster query. */
export interface ClusterInfo {
  readonly clusterId: number;
  /** The configured members (voters and learners), this one included once it was added. */
  readonly members: readonly (MemberJson & { readonly learner: boolean })[];
}

/** What a joining node learned. */
export interface JoinResult {
  readonly id: number;
  readonly clusterId: number;
  readonly members: Map<number, MemberAddress>;
  /** The member that answered (`host:port`). */
  readonly from: string;
}

/** Options of {@link discoverCluster}. */
export interface JoinOptions {
  readonly name: string;
  /** This member's peer address as the cluster knows it (its `--initial-cluster` entry). */
  readonly self: { readonly host: string; readonly port: number };
  /** Where to ask: the other members' peer addresses. */
  readonly peers: readonly { readonly host: string; readonly port: number }[];
  /** How long to keep asking before giving up. */
  readonly timeoutMs: number;
  readonly logger: { info(message: string): void; warn(message: string): void };
}

/** Parses a cluster query answer; undefined when malformed. */
export function parseClusterInfo(text: string): ClusterInfo | undefined {
  try {
    const value = JSON.parse(text) as { clusterId?: unknown; members?: unknown };
    if (typeof value.clusterId !== 'number' || !Array.isArray(value.members)) return undefined;
    const table = membersFromJson(value.members);
    const learners = new Set(
      (value.members as { id?: unknown; learner?: unknown }[])
        .filter((m) => m.learner === true)
        .map((m) => m.id),
    );
    return {
      clusterId: value.clusterId,
      members: [...table].map(([id, m]) => ({
        id,
        name: m.name,
        host: m.host,
        port: m.port,
        ...(m.clientUrls === undefined ? {} : { clientUrls: m.clientUrls }),
        learner: learners.has(id),
      })),
    };
  } catch {
    return undefined;
  }
}

const ROUND_INTERVAL_MS = 500;

/**
 * Asks the peers, round after round, until one answers with a member list that holds this
 * member's peer address. Throws `INVALID_CONFIG` when the member found there has another
 * name, when another member already has this name, or when no answer listed this member
 * within the timeout (it was not added, or no peer could be reached).
 */
export async function discoverCluster(options: JoinOptions): Promise<JoinResult> {
  const deadline = Date.now() + options.timeoutMs;
  const selfUrl = `http://${options.self.host}:${options.self.port}`;
  let lastProblem = 'no peer to ask in --initial-cluster';
  while (true) {
    const answers = await Promise.all(
      options.peers.map(async (peer) => {
        const where = `${peer.host}:${peer.port}`;
        try {
          const info = parseClusterInfo(await queryClusterInfo(peer, 2000));
          if (info === undefined) return { where, problem: `${where} sent a malformed answer` };
          return { where, info };
        } catch (error) {
          return { where, problem: (error as Error).message };
        }
      }),
    );
    for (const answer of answers) {
      if (answer.info === undefined) {
        lastProblem = answer.problem ?? lastProblem;
        continue;
      }
      const { info, where } = answer;
      const self = info.members.find((m) => m.host === options.self.host && m.port === options.self.port);
      if (self === undefined) {
        lastProblem = `cluster 0x${info.clusterId.toString(16)} (asked ${where}) has no member with peer URL ${selfUrl}`;
        continue;
      }
      if (self.name !== '' && self.name !== options.name) {
        throw new NodeError(
          'INVALID_CONFIG',
          `the member with peer URL ${selfUrl} was added as '${self.name}', not '${options.name}'`,
        );
      }
      const clash = info.members.find((m) => m.id !== self.id && m.name === options.name);
      if (clash !== undefined) {
        throw new NodeError(
          'INVALID_CONFIG',
          `member ${clash.id.toString(16)} (peer URL http://${clash.host}:${clash.port}) is already named '${options.name}'`,
        );
      }
      const members = new Map<number, MemberAddress>();
      for (const m of info.members) {
        members.set(m.id, {
          name: m.name,
          host: m.host,
          port: m.port,
          ...(m.clientUrls === undefined ? {} : { clientUrls: m.clientUrls }),
        });
      }
      return { id: self.id, clusterId: info.clusterId, members, from: where };
    }
    if (Date.now() >= deadline) {
      throw new NodeError(
        'INVALID_CONFIG',
        `cannot join: ${lastProblem}. Add this member first (etcdctl member add, flotilla member add) ` +
          'and list at least one running member in --initial-cluster',
      );
    }
    options.logger.warn(`waiting to join: ${lastProblem}`);
    await new Promise((resolve) => setTimeout(resolve, ROUND_INTERVAL_MS));
  }
}
