/**
 * Leader placement. Which member leads changes what a row measures: a client connected to
 * the leader skips the forward to it and the wait for the commit index to come back; watchers
 * on the leader see an event before a follower's client sees its put answered. An election
 * picks the leader at random, so without placement a ratio can flip between runs on luck.
 * Before every run both systems' leadership is on the same member — by etcd's MoveLeader,
 * which Flotilla serves too — and the report says which.
 *
 * The default is the last member: the one-connection clients (`put_1`, the watch rows'
 * watchers and puts) then talk to followers, as two clients in three do when an etcd client
 * picks an endpoint. `--leader any` leaves it to the elections (the old behaviour).
 */
import { etcdMethod } from '../../src/benchmark/connections.js';
import { type Cluster, unaryOnce } from './clusters.js';
import { log } from './processes.js';

/** Which member (1-based, as `--leader` names it) should lead; 'any' for no placement. */
export type LeaderPlacement = number | 'any';

interface StatusWire {
  readonly header?: { readonly member_id?: string } | null;
  readonly leader?: string;
}

const STATUS = etcdMethod<StatusWire>('Maintenance', 'Status');
const MOVE_LEADER_PATH = etcdMethod('Maintenance', 'MoveLeader').path;

/**
 * `MoveLeaderRequest{targetID}` by hand: etcd's member ids use all 64 bits, which the proto
 * loader's encoder would round through a double.
 */
function moveLeaderRequest(targetId: string): Uint8Array {
  const bytes = [0x08];
  let v = BigInt(targetId);
  while (v > 0x7fn) {
    bytes.push(Number(v & 0x7fn) | 0x80);
    v >>= 7n;
  }
  bytes.push(Number(v));
  return Uint8Array.from(bytes);
}

/** Each member's id and the leader each one reports, by endpoint. */
async function statuses(cluster: Cluster, timeoutMs: number): Promise<{ ids: string[]; leaders: string[] }> {
  const replies = await Promise.all(
    cluster.endpoints.map(async (endpoint) =>
      STATUS.deserialize(await unaryOnce(endpoint, STATUS.path, STATUS.serialize({}), timeoutMs)),
    ),
  );
  return {
    ids: replies.map((r) => r.header?.member_id ?? '0'),
    leaders: replies.map((r) => r.leader ?? '0'),
  };
}

/**
 * Makes member `placement` (1-based) of `cluster` its leader (nothing to do when it already is, or for
 * 'any'); throws if it does not lead within `timeoutMs`.
 */
export async function placeLeader(
  cluster: Cluster,
  placement: LeaderPlacement,
  timeoutMs: number,
): Promise<void> {
  if (placement === 'any') return;
  const member = placement - 1;
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const { ids, leaders } = await statuses(cluster, 3000);
    const target = ids[member]!;
    if (leaders.every((leader) => leader === target)) return;
    const current = ids.indexOf(leaders[member]!);
    if (Date.now() > deadline) {
      throw new Error(
        `${cluster.system}: member ${placement} does not lead (leaders seen: ${leaders.join(', ')})`,
      );
    }
    if (current >= 0 && current !== member) {
      log(`${cluster.system}: moving the leadership from member ${current + 1} to member ${placement}`);
      await unaryOnce(cluster.endpoints[current]!, MOVE_LEADER_PATH, moveLeaderRequest(target), 10_000).catch(
        (error: Error) => log(`${cluster.system}: MoveLeader failed: ${error.message}`),
      );
    }
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

/** How the report names a placement. */
export function describePlacement(placement: LeaderPlacement, members: number): string {
  return placement === 'any'
    ? 'wherever the elections put it'
    : `on member ${placement} of ${members} in both systems (moved there before every run)`;
}
