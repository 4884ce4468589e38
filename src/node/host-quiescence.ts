/**
 * A multi-raft host's share of quiescence (group-host.ts has a group's): the **active set**,
 * the groups that tick (the host's timer iterates it and nothing else, so a quiesced group
 * costs nothing per tick); the quiesced followers indexed by their leader's host; and the
 * node-level heartbeat (host-beat.ts) that carries quiesce notices and wake requests between
 * hosts and lets each judge its peers alive (host-liveness.ts).
 *
 * Per tick: peers not heard from for an election timeout, or that announced a new epoch, are
 * dead (or restarted): every group quiesced under a leader there wakes and forgets it, and
 * every group this host leads with a member there wakes to heartbeat it (a restarted replica
 * learns its leader at once). Then every active group either quiesces or ticks; then a beat
 * goes to every peer every {@link BEAT_EVERY_TICKS} ticks, or at once when notices wait.
 */
import type { TcpTransport } from '../transport/index.js';
import type { GroupHost, QuiesceCoordinator } from './group-host.js';
import { BeatOutbox, decodeBeat, encodeBeat } from './host-beat.js';
import { HostLiveness } from './host-liveness.js';

/**
 * Ticks between two beats to a peer when no notice waits: a fifth of the default election
 * timeout, so a peer is judged dead only after several beats in a row were not heard.
 */
export const BEAT_EVERY_TICKS = 2;

/** What {@link HostQuiescence} needs from its host. */
export interface HostQuiescenceDeps {
  /** This host's id. */
  readonly selfId: number;
  /** The other hosts. */
  readonly peers: Iterable<number>;
  /** Whether groups quiesce (else every open group is always active). */
  readonly enabled: boolean;
  /** An election timeout, in ms: a peer not heard from for this long is dead. */
  readonly timeoutMs: number;
  readonly transport: Pick<TcpTransport, 'sendHost' | 'peers'>;
  /** The open group `groupId`, if any. */
  readonly group: (groupId: number) => GroupHost | undefined;
  readonly logger: { info(message: string): void };
}

/** The active set, the quiesced followers by leader, liveness and the beats of one host. */
export class HostQuiescence {
  /** Groups that tick. */
  private readonly active = new Set<GroupHost>();
  /** Quiesced groups by their leader's host id (this host's own id for the groups it leads). */
  private readonly quiescedUnder = new Map<number, Set<GroupHost>>();
  private readonly liveness: HostLiveness;
  private readonly outbox = new BeatOutbox(Math.floor(Math.random() * 0xffff_ffff));
  private ticksSinceBeat = 0;
  private flushScheduled = false;
  /** What groups use to quiesce and wake through this host. */
  readonly coordinator: QuiesceCoordinator;

  constructor(private readonly deps: HostQuiescenceDeps) {
    this.liveness = new HostLiveness(deps.timeoutMs, deps.peers);
    this.coordinator = {
      enabled: deps.enabled,
      isLive: (id) => this.liveness.isLive(id),
      quiesced: (group, leader) => this.onQuiesced(group, leader),
      woke: (group) => this.onWoke(group),
      notifyQuiesce: (peer, notice) => this.outbox.quiesce(peer, notice),
      requestWake: (peer, groupId) => {
        this.outbox.wake(peer, groupId);
        this.scheduleFlush();
      },
    };
  }

  /** Groups that tick. */
  get activeCount(): number {
    return this.active.size;
  }

  /** Quiesced groups. */
  get quiescedCount(): number {
    let n = 0;
    for (const set of this.quiescedUnder.values()) n += set.size;
    return n;
  }

  /** A group opened: it ticks. */
  add(group: GroupHost): void {
    this.active.add(group);
  }

  /** A group closed: it is forgotten. */
  remove(group: GroupHost): void {
    this.active.delete(group);
    for (const set of this.quiescedUnder.values()) set.delete(group);
  }

  /** The groups that tick (for reports that only a group with work in flight cares about). */
  activeGroups(): Iterable<GroupHost> {
    return this.active;
  }

  /** Something arrived from host `peer`. */
  heard(peer: number): void {
    this.liveness.heard(peer);
  }

  /** Starts judging a host added after start. */
  watch(peer: number): void {
    this.liveness.watch(peer);
  }

  /** The host's tick: liveness, then each active group quiesces or ticks, then the beats. */
  tick(): void {
    for (const dead of this.liveness.check()) this.onPeerLost(dead, false);
    for (const group of this.active) {
      if (!group.maybeQuiesce()) group.onTimer();
    }
    if (++this.ticksSinceBeat >= BEAT_EVERY_TICKS || this.outbox.hasNotices()) this.beat();
  }

  /** A HOST frame from `from`: its beat (throws for anything else, see host-beat.ts). */
  onHostMessage(from: number, value: unknown): void {
    const beat = decodeBeat(value);
    this.liveness.heard(from);
    if (this.liveness.announced(from, beat.epoch)) this.onPeerLost(from, true);
    for (const q of beat.quiesces) this.deps.group(q.groupId)?.onQuiesceNotice(from, q.term, q.commit);
    for (const g of beat.wakes) this.deps.group(g)?.onWakeRequest();
  }

  private onQuiesced(group: GroupHost, leader: number): void {
    this.active.delete(group);
    const set = this.quiescedUnder.get(leader);
    if (set === undefined) this.quiescedUnder.set(leader, new Set([group]));
    else set.add(group);
  }

  private onWoke(group: GroupHost): void {
    for (const set of this.quiescedUnder.values()) if (set.delete(group)) break;
    this.active.add(group);
  }

  /**
   * Host `peer` died (or `restarted`): the groups quiesced under it wake and forget it; after a
   * restart, the groups this host leads with a replica there wake too, to bring the restarted
   * replica along at once rather than after its election timeout.
   */
  private onPeerLost(peer: number, restarted: boolean): void {
    const followers = [...(this.quiescedUnder.get(peer) ?? [])];
    const led = restarted
      ? [...(this.quiescedUnder.get(this.deps.selfId) ?? [])].filter((g) => g.isMember(peer))
      : [];
    if (followers.length + led.length === 0) return;
    const why = restarted ? 'restarted' : 'not heard from';
    this.deps.logger.info(
      `host ${peer} ${why}: waking ${followers.length} groups it led and ${led.length} led here`,
    );
    for (const group of followers) group.onLeaderHostDead();
    for (const group of led) group.onWakeRequest();
  }

  private scheduleFlush(): void {
    if (this.flushScheduled) return;
    this.flushScheduled = true;
    setImmediate(() => {
      this.flushScheduled = false;
      for (const peer of this.outbox.peersWithNotices()) this.send(peer);
    });
  }

  /** Sends every peer its beat with the notices queued for it. */
  private beat(): void {
    this.ticksSinceBeat = 0;
    for (const peer of this.deps.transport.peers()) this.send(peer);
  }

  private send(peer: number): void {
    this.deps.transport.sendHost(peer, encodeBeat(this.outbox.take(peer)));
  }
}
