/**
 * Membership of one raft group as the runtime handles it: the member table (name, peer
 * address and client URLs of every member, see member-table.ts), proposing conf changes and
 * waiting for them to be applied here, applying conf changes and member updates to the table,
 * `members.json` and the transport's peers, and publishing this member's own attributes after
 * every start.
 */
import type { ConfChange, ConfState, RawNode } from '../raft/index.js';
import type { TcpTransport } from '../transport/index.js';
import { TimeoutError } from './errors.js';
import {
  applyMemberUpdate,
  type MemberAddress,
  type MemberChangeContext,
  type MemberUpdate,
  parseMemberContext,
  recordMemberContext,
  writeMembersFile,
} from './member-table.js';
import type { NodeLogger } from './options.js';

/** A membership change for `Host.proposeMemberChange`. */
export interface MemberChange {
  readonly type: 'add-voter' | 'add-learner' | 'remove';
  readonly id: number;
  /** Name and peer address; required to add a member the cluster has never known. */
  readonly member?: MemberAddress;
}

/** The transport's list of peers, which membership changes edit. */
export type PeerDirectory = Pick<TcpTransport, 'hasPeer' | 'addPeer' | 'updatePeer' | 'removePeer'>;

/** What {@link Membership} needs from the runtime. */
export interface MembershipDeps {
  /** This node's id. */
  readonly selfId: number;
  /** The data directory, where `members.json` is kept. */
  readonly dataDir: string;
  /** The group's core: its configuration, and where conf changes are proposed. */
  readonly raw: Pick<RawNode, 'confState' | 'proposeConfChange'>;
  readonly peers: PeerDirectory;
  /** How long a proposed conf change may take to be applied here. */
  readonly requestTimeoutMs: number;
  readonly logger: NodeLogger;
}

/** The member table of one raft group and the conf changes proposed by this node. */
export class Membership {
  /** Node id → name and peer address of every member ever known (initial, file, conf changes). */
  private readonly table: Map<number, MemberAddress>;
  /** Conf changes proposed here, by token, waiting to be applied. */
  private readonly waiters = new Map<string, (error?: Error) => void>();

  /** `table` is the member table recovered on start (see `loadMemberTable`). */
  constructor(
    private readonly deps: MembershipDeps,
    table: ReadonlyMap<number, MemberAddress>,
  ) {
    this.table = new Map(table);
  }

  /** Every member this node knows of, removed ones included (the live table). */
  get members(): ReadonlyMap<number, MemberAddress> {
    return this.table;
  }

  /** A member's name for logs (its id when unknown). */
  nameOf(id: number): string {
    return this.table.get(id)?.name ?? String(id);
  }

  /** Whether `id` is in the applied configuration (a voter or a learner, joint halves included). */
  isMember(id: number): boolean {
    const cs = this.deps.raw.confState();
    return (
      cs.voters.includes(id) ||
      cs.learners.includes(id) ||
      cs.votersOutgoing.includes(id) ||
      cs.learnersNext.includes(id)
    );
  }

  /** The configured members with their addresses, as a joining member's cluster query is answered. */
  configuredMembers(): unknown[] {
    const cs = this.deps.raw.confState();
    const voters = new Set([...cs.voters, ...cs.votersOutgoing]);
    const ids = new Set([...voters, ...cs.learners, ...cs.learnersNext]);
    const members: unknown[] = [];
    for (const id of ids) {
      const m = this.table.get(id);
      if (m === undefined) continue;
      members.push({
        id,
        name: m.name,
        host: m.host,
        port: m.port,
        ...(m.clientUrls === undefined ? {} : { clientUrls: m.clientUrls }),
        learner: !voters.has(id),
      });
    }
    return members;
  }

  /**
   * Proposes `change` to the core and resolves once this node has applied it. The entry's
   * context carries the member's name and peer address (JSON) and `token`, so every node
   * learns the address when it applies the change and this one recognises its own. Throws
   * the core's `RaftError` when it refuses; rejects with `TIMEOUT` when the change is not
   * applied within the request timeout.
   */
  propose(change: MemberChange, token: string): Promise<void> {
    const member = change.member ?? this.table.get(change.id);
    const context: MemberChangeContext = {
      token,
      id: change.id,
      ...(member === undefined ? {} : { name: member.name, host: member.host, port: member.port }),
    };
    const done = this.waitApplied(token);
    try {
      this.deps.raw.proposeConfChange({
        changes: [{ type: change.type, node: change.id }],
        context: Buffer.from(JSON.stringify(context)),
      });
    } catch (error) {
      this.waiters.get(token)?.();
      throw error;
    }
    return done;
  }

  /** Resolves when the conf change with `token` is applied here; rejects with `TIMEOUT`. */
  private waitApplied(token: string): Promise<void> {
    const timeoutMs = this.deps.requestTimeoutMs;
    return new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.waiters.delete(token);
        reject(new TimeoutError('TIMEOUT', `membership change not applied within ${timeoutMs} ms`));
      }, timeoutMs);
      this.waiters.set(token, (error) => {
        clearTimeout(timer);
        this.waiters.delete(token);
        if (error === undefined) resolve();
        else reject(error);
      });
    });
  }

  /**
   * Updates the member table and the transport's peers after a conf change, and records the
   * table in `members.json` (durably). The file is a cache: on restart the conf changes
   * still in the log after the snapshot are folded in again (see `loadMemberTable`).
   */
  async applyConfChange(cc: ConfChange, confState: ConfState): Promise<void> {
    const context = parseMemberContext(cc.context);
    if (context !== undefined) {
      recordMemberContext(this.table, context);
      await writeMembersFile(this.deps.dataDir, this.table);
    }
    const removed = new Set(confState.removed ?? []);
    const peers = this.deps.peers;
    for (const change of cc.changes) {
      if (change.node === this.deps.selfId) continue;
      if (change.type === 'remove' || removed.has(change.node)) {
        peers.removePeer(change.node);
        continue;
      }
      this.upsertPeer(change.node);
    }
    if (context !== undefined) this.waiters.get(context.token)?.();
  }

  /**
   * Applies a replicated member update: the table, `members.json` (before the KV applied
   * index moves past the entry, like conf changes) and the transport's address of the peer.
   */
  async applyUpdate(update: MemberUpdate): Promise<void> {
    const next = applyMemberUpdate(this.table, update);
    if (next === undefined) return;
    await writeMembersFile(this.deps.dataDir, this.table);
    if (update.op === 'peer') {
      this.deps.logger.info(`member ${update.id} now has peer address ${update.host}:${update.port}`);
      if (update.id !== this.deps.selfId && this.deps.peers.hasPeer(update.id)) {
        this.deps.peers.updatePeer(update.id, { host: update.host, port: update.port });
      }
    }
  }

  /**
   * Takes the table a received snapshot carries (authoritative at its index for the members
   * it lists) and records it in `members.json`; the transport follows in
   * {@link Membership.syncPeers}, once the state machine is restored.
   */
  async installSnapshotTable(members: ReadonlyMap<number, MemberAddress> | undefined): Promise<void> {
    if (members === undefined) return;
    for (const [id, m] of members) this.table.set(id, m);
    await writeMembersFile(this.deps.dataDir, this.table);
  }

  /**
   * Points the transport at every configured member with a known address (after a snapshot
   * brought a new configuration and member table).
   */
  syncPeers(): void {
    const cs = this.deps.raw.confState();
    const removed = new Set(cs.removed ?? []);
    for (const id of new Set([...cs.voters, ...cs.learners, ...cs.votersOutgoing, ...cs.learnersNext])) {
      if (id === this.deps.selfId || removed.has(id)) continue;
      this.upsertPeer(id);
    }
    for (const id of removed) if (this.deps.peers.hasPeer(id)) this.deps.peers.removePeer(id);
  }

  /** Adds member `id` to the transport's peers, or updates its address; nothing when unknown. */
  private upsertPeer(id: number): void {
    const m = this.table.get(id);
    if (m === undefined) return;
    const address = { host: m.host, port: m.port };
    if (this.deps.peers.hasPeer(id)) this.deps.peers.updatePeer(id, address);
    else this.deps.peers.addPeer(id, address);
  }

  /** A copy of the table, for a snapshot taken at the current applied index. */
  snapshotTable(): Map<number, MemberAddress> {
    return new Map(this.table);
  }

  /** Fails every waiting conf change with `error`. */
  failAll(error: Error): void {
    for (const waiter of [...this.waiters.values()]) waiter(error);
  }
}

/** How often a member retries publishing its client URLs. */
const PUBLISH_RETRY_MS = 500;

/** What {@link publishUntilApplied} needs from the runtime. */
export interface PublishDeps {
  /** Whether the node has stopped (publishing gives up). */
  readonly stopped: () => boolean;
  /** Whether publishing can succeed now: this member is configured and a leader is known. */
  readonly canPublish: () => boolean;
  /** Proposes the update and resolves once it is applied here. */
  readonly propose: (update: MemberUpdate) => Promise<void>;
  readonly logger: NodeLogger;
}

/**
 * Publishes this member's name and client URLs once it is in the configuration and a
 * leader is known, retrying until it is applied or the node stops. Unconditional on every
 * start (as etcd's `publish`): a member that just restarted may not have applied its own
 * latest publish yet, so comparing with its table could skip a needed one.
 */
export async function publishUntilApplied(
  update: Extract<MemberUpdate, { op: 'publish' }>,
  deps: PublishDeps,
): Promise<void> {
  while (!deps.stopped()) {
    if (deps.canPublish()) {
      try {
        await deps.propose(update);
        deps.logger.info(
          `published name ${update.name} and client URLs ${JSON.stringify(update.clientUrls)}`,
        );
        return;
      } catch (error) {
        if (deps.stopped()) return;
        deps.logger.warn(`publishing client URLs: ${(error as Error).message}; retrying`);
      }
    }
    await new Promise((resolve) => setTimeout(resolve, PUBLISH_RETRY_MS).unref());
  }
}
