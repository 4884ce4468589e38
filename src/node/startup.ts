/**
 * What a member does on start before it runs: checks that the data directory is its own,
 * learns its identity from the cluster when joining with a fresh directory, bootstraps a
 * fresh directory, and recovers storage, the state machine, the membership and the member
 * table into a consistent state to build the raft core on.
 */
import { randomInt } from 'node:crypto';
import { join } from 'node:path';
import {
  type ConfState,
  EMPTY_CONF_STATE,
  type Entry,
  Prng,
  type RaftOptions,
  RawNode,
  replayConfChanges,
} from '../raft/index.js';
import { FileStorage, type ReplicaStorage } from '../storage/index.js';
import type { PeerAddress } from '../transport/index.js';
import { frameChunksAsync } from './envelope.js';
import { NodeError } from './errors.js';
import { discoverCluster } from './join.js';
import type { MachineDriver } from './machine-driver.js';
import { type MemberFile, readMemberFile, writeMemberFile } from './member-file.js';
import {
  loadMemberTable,
  type MemberAddress,
  raftSnapshotChunks,
  readMembersFile,
  splitSnapshotData,
  writeMembersFile,
} from './member-table.js';
import type { NodeLogger, RaftNodeOptions } from './options.js';
import { ClientSessions } from './sessions.js';
import { SnapshotSpool } from './snapshot-spool.js';

/** A member recovered from its data directory, ready to run. */
export interface RecoveredMember {
  /** The options with the member's real id and cluster id (from `member.json` or the cluster). */
  readonly options: RaftNodeOptions;
  readonly storage: ReplicaStorage;
  /** The state machine, opened and brought up to at least the raft snapshot. */
  readonly machine: MachineDriver;
  /** The raft core, built on the recovered storage at the state machine's applied index. */
  readonly raw: RawNode;
  /** The member table (see {@link loadMemberTable}). */
  readonly members: Map<number, MemberAddress>;
  /** Received state waiting for its restore (empty once recovered). */
  readonly spool: SnapshotSpool;
  /** The client sessions as of the state machine's applied index. */
  readonly sessions: ClientSessions;
}

/** Opens a member's log storage: by default its own WAL in `<dataDir>/raft`. */
export type StorageOpener = (options: RaftNodeOptions) => Promise<ReplicaStorage>;

/** A single-group member's log: a {@link FileStorage} of its own in `<dataDir>/raft`. */
export const ownStorage: StorageOpener = (options) => FileStorage.open(join(options.dataDir, 'raft'));

/** How {@link recoverMember} opens a member. */
export interface RecoverOptions {
  /** Opens the log storage; default {@link ownStorage}. */
  readonly openStorage?: StorageOpener;
  /**
   * Whether a member joining a running cluster (`initialClusterState: 'existing'`, no data
   * yet) asks a running member for its ids and the member table (default true). A multi-raft
   * host's group knows them already: its member ids are host ids.
   */
  readonly discover?: boolean;
}

/**
 * Opens (or bootstraps) the data directory, which the caller has locked, and recovers
 * storage (the member's own WAL, or its group's part of a host's shared one: see
 * {@link RecoverOptions}), the state machine, the membership and the member table. Throws
 * `INVALID_CONFIG` when the data directory belongs to another member or cluster.
 */
export async function recoverMember(
  options: RaftNodeOptions,
  machine: MachineDriver,
  { openStorage = ownStorage, discover = true }: RecoverOptions = {},
): Promise<RecoveredMember> {
  const member = await checkMemberFile(options);
  if (member !== undefined) {
    options = { ...options, id: member.id, clusterId: member.clusterId };
  } else if (options.initialClusterState === 'existing' && discover) {
    options = await joinOptions(options);
  }
  const storage = await openStorage(options);
  try {
    await machine.open();
    if (member === undefined) await bootstrap(options, storage, machine);
    const spool = new SnapshotSpool(options.dataDir);
    await recoverMachine(storage, machine, spool, options.logger);
    await spool.clear();
    const replayed = await deriveMembership(storage, machine.appliedIndex);
    const members = await loadMemberTable(
      options.dataDir,
      options.members,
      storage.snapshot().data,
      replayed.entries,
    );
    const sessions = new ClientSessions(options.sessionsMax);
    sessions.load(splitSnapshotData(storage.snapshot().data).sessions);
    // What an on-disk state machine applied beyond the snapshot is not replayed: its sessions are.
    sessions.replay(replayed.entries);
    const raw = new RawNode(storage, raftOptions(options, machine.appliedIndex));
    return { options, storage, machine, raw, members, spool, sessions };
  } catch (error) {
    // The caller closes the state machine; the log storage is ours to close.
    await storage.close().catch(() => {});
    throw error;
  }
}

/** The peers the transport starts with: every known member but this one and removed ones. */
export function initialPeers(
  selfId: number,
  members: ReadonlyMap<number, MemberAddress>,
  confState: ConfState,
): Map<number, PeerAddress> {
  const removed = new Set(confState.removed ?? []);
  const peers = new Map<number, PeerAddress>();
  for (const [id, m] of members)
    if (id !== selfId && !removed.has(id)) peers.set(id, { host: m.host, port: m.port });
  return peers;
}

function raftOptions(
  options: RaftNodeOptions,
  applied: number,
): Partial<RaftOptions> & Pick<RaftOptions, 'id' | 'random'> {
  return {
    id: options.id,
    groupId: options.groupId,
    random: new Prng(randomInt(2 ** 31)),
    electionTicks: options.electionTicks,
    heartbeatTicks: options.heartbeatTicks,
    applied,
  };
}

/**
 * Checks the data directory's member file against the flags; undefined for a fresh
 * directory. The file's id is this member's (a member that joined through etcd's `MemberAdd`
 * has an id the cluster chose, not its name's). With `new` the cluster id from the flags must
 * be the file's; with `existing` the file's is taken (a member that joined later cannot
 * derive it from its flags, see join.ts).
 */
async function checkMemberFile(options: RaftNodeOptions): Promise<MemberFile | undefined> {
  const member = await readMemberFile(options.dataDir);
  if (member === undefined) return undefined;
  if (member.name !== options.name) {
    throw new NodeError(
      'INVALID_CONFIG',
      `data directory ${options.dataDir} belongs to member ${member.name} (${member.id}), not ${options.name}`,
    );
  }
  if (options.initialClusterState === 'new' && member.clusterId !== options.clusterId) {
    throw new NodeError(
      'INVALID_CONFIG',
      `data directory ${options.dataDir} belongs to cluster ${hex(member.clusterId)} (--initial-cluster ` +
        `'${member.initialCluster}'), not ${hex(options.clusterId)} (a member that joined a running ` +
        'cluster restarts with --initial-cluster-state existing)',
    );
  }
  return member;
}

/**
 * The options of a member joining a running cluster with a fresh data directory: the
 * cluster's id, this member's id and the member table, learned from a running member (see
 * join.ts). The peers to ask are the other members of `options.members` (the flags).
 */
async function joinOptions(options: RaftNodeOptions): Promise<RaftNodeOptions> {
  const self = [...options.members.values()].find((m) => m.name === options.name) ?? options.listenPeer;
  const peers = [...options.members.values()]
    .filter((m) => m.name !== options.name && !(m.host === self.host && m.port === self.port))
    .map((m) => ({ host: m.host, port: m.port }));
  const joined = await discoverCluster({
    name: options.name,
    self: { host: self.host, port: self.port },
    peers,
    timeoutMs: options.joinTimeoutMs,
    logger: options.logger,
  });
  options.logger.info(
    `joining cluster ${hex(joined.clusterId)} as member ${joined.id} (learned from ${joined.from})`,
  );
  return { ...options, id: joined.id, clusterId: joined.clusterId, members: joined.members };
}

function hex(n: number): string {
  return `0x${n.toString(16).padStart(8, '0')}`;
}

/**
 * Bootstraps a fresh data directory. With `new`, the initial membership becomes a snapshot
 * at index 1 (term 1) whose data is the state machine after applying an empty entry 1, exactly
 * as the simulator does: a node added later with an empty log then starts from a snapshot
 * that carries the membership. Every step is idempotent, so a crash midway is redone.
 */
async function bootstrap(
  options: RaftNodeOptions,
  storage: ReplicaStorage,
  machine: MachineDriver,
): Promise<void> {
  const empty = storage.lastIndex() === 0 && storage.snapshot().meta.index === 0;
  if (options.initialClusterState === 'new' && empty) {
    if (machine.appliedIndex === 0) await machine.apply([{ index: 1, command: null }]);
    if (machine.appliedIndex !== 1) {
      throw new NodeError(
        'INVALID_CONFIG',
        `fresh raft log but the state machine is at index ${machine.appliedIndex}`,
      );
    }
    await machine.sync();
    const voters = [...options.members.keys()].sort((a, b) => a - b);
    // An on-disk state machine is its own snapshot: the raft snapshot is metadata only.
    const view = machine.onDisk ? undefined : await machine.openSnapshot();
    let data: Uint8Array;
    try {
      data = await frameChunksAsync(raftSnapshotChunks(options.members, view?.chunks() ?? []));
    } finally {
      view?.close();
    }
    await storage.save({
      snapshot: {
        meta: { index: 1, term: 1, confState: { ...EMPTY_CONF_STATE, voters } },
        data,
      },
      hardState: { term: 1, vote: 0, commit: 1 },
      entries: [],
    });
    options.logger.info(`bootstrapped cluster ${hex(options.clusterId)} with voters [${voters.join(',')}]`);
  }
  if ((await readMembersFile(options.dataDir)) === undefined) {
    await writeMembersFile(options.dataDir, options.members);
  }
  await writeMemberFile(options.dataDir, {
    name: options.name,
    id: options.id,
    clusterId: options.clusterId,
    initialCluster: options.initialCluster,
  });
}

/**
 * Brings the state machine up to the raft snapshot if it is behind it: always for an
 * in-memory one, which starts empty, from the snapshot's data. An on-disk one is behind only
 * after a crash between saving a snapshot received from the leader and restoring it: its
 * state is then in the spool (see snapshot-spool.ts), or inline in a snapshot written before
 * on-disk state was kept out of raft snapshots.
 */
async function recoverMachine(
  storage: ReplicaStorage,
  machine: MachineDriver,
  spool: SnapshotSpool,
  logger: NodeLogger,
): Promise<void> {
  const snapshot = storage.snapshot();
  const index = snapshot.meta.index;
  if (machine.appliedIndex >= index) return;
  logger.info(`state machine at ${machine.appliedIndex} is behind the snapshot at ${index}: restoring it`);
  const inline = [...splitSnapshotData(snapshot.data).kvChunks];
  if (!machine.onDisk || inline.length > 0) {
    await machine.restore(index, inline);
    return;
  }
  const received = await spool.chunks(index);
  if (received === undefined) {
    throw new NodeError(
      'FATAL',
      `the state machine is at index ${machine.appliedIndex}, behind the raft snapshot at ${index}, and the ` +
        `state received with that snapshot is missing from ${spool.directory}: this member cannot recover; ` +
        'remove it from the cluster and add it again with an empty data directory',
    );
  }
  await machine.restore(index, received);
  await machine.sync();
}

/**
 * Sets the stored membership to the one the state machine's applied index implies: the
 * snapshot's membership plus every conf change in the log up to that index. The membership
 * saved when a change was applied cannot be trusted alone: a crash between saving it and the
 * state machine recording the same entry as applied would apply that change twice on restart.
 */
async function deriveMembership(
  storage: ReplicaStorage,
  applied: number,
): Promise<{ entries: readonly Entry[] }> {
  const snapshot = storage.snapshot();
  const from = snapshot.meta.index;
  const to = Math.min(applied, storage.lastIndex());
  const entries = to > from ? storage.entries(from + 1, to + 1, Number.MAX_SAFE_INTEGER) : [];
  await storage.saveConfState(replayConfChanges(snapshot.meta.confState, entries));
  return { entries };
}
