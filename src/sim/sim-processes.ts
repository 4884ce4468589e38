/**
 * The processes of a multi-group run. Each process hosts one replica of every group, and what
 * happens to a process happens to all of them: a crash kills every group at once (some writes
 * in flight on the process's shared log may have reached the disk, the last one torn), a
 * restart rebuilds every group's disk from that one log, a pause stops every group. The
 * processes share one network; each has one clock that every group it hosts ticks on, and one
 * log that commits the writes of all its groups together.
 */
import type { GroupId, NodeId } from '../raft/index.js';
import type { GroupRun } from './group-run.js';
import { drawTickMs } from './sim-clock.js';
import type { SimContext } from './sim-context.js';
import type { SimNetwork } from './sim-network.js';
import type { SimNode } from './sim-node.js';
import { readyRecord, SimWal, WalStorage } from './sim-wal.js';
import type { SimWorldOptions } from './sim-world.js';

/** Chance that a write in flight at a crash reached the disk whole. */
const WRITTEN_RATE = 0.5;
/** Chance that a write in flight that did not reach the disk whole left a torn record. */
const TORN_RECORD_RATE = 0.5;

/** The processes, their shared logs and clocks, and what happens to a whole process. */
export class SimProcesses {
  private readonly wals = new Map<NodeId, SimWal>();
  private readonly clocks = new Map<NodeId, number>();
  /** Each process's shared log: when its write in progress ends, and the next one, if any joined it. */
  private readonly writes = new Map<NodeId, { current: number; next: number | undefined }>();
  private groups: readonly GroupRun[] = [];

  constructor(
    private readonly ctx: SimContext,
    readonly network: SimNetwork,
  ) {}

  /** How group `group`'s world sits on the processes: their network, clocks and shared logs. */
  worldOptions(group: GroupId): SimWorldOptions {
    return {
      network: this.network,
      tickMs: (id) => this.clock(id),
      newStorage: (id) => new WalStorage(group).attach(this.wal(id)),
      persistDelay: (id) => this.persistDelay(id),
    };
  }

  /**
   * Group commit: how long a Ready that one of process `id`'s groups writes now takes to be
   * durable. An idle log starts writing it at once; a Ready that arrives while a write is in
   * progress joins the next write, which starts when that one ends and makes every Ready that
   * joined it durable together (one fdatasync for all of them). A write takes up to half the
   * seed's disk latency, so that waiting for the write in progress included, a Ready is durable
   * within the same bound as a single group's.
   */
  private persistDelay(id: NodeId): number {
    const { now, prng } = this.ctx;
    const writeMsMax = Math.floor(this.ctx.params.diskLatencyMaxMs / 2);
    const writes = this.writes.get(id) ?? { current: -1, next: undefined };
    this.writes.set(id, writes);
    if (writes.next !== undefined && now >= writes.current) {
      // The write that was next began when the one before it ended.
      writes.current = writes.next;
      writes.next = undefined;
    }
    if (now >= writes.current) {
      writes.current = now + prng.range(0, writeMsMax);
      return writes.current - now;
    }
    writes.next ??= writes.current + prng.range(0, writeMsMax);
    return writes.next - now;
  }

  /** The groups the processes host, in group id order (1, 2, ...). Done once, before they boot. */
  host(groups: readonly GroupRun[]): void {
    this.groups = groups;
  }

  /** Every process, by id. */
  ids(): NodeId[] {
    return [...this.groups[0]!.world.nodes.keys()];
  }

  /** The replicas process `id` hosts, one per group in group order. */
  replicas(id: NodeId): SimNode[] {
    return this.groups.map((g) => g.world.nodes.get(id)!);
  }

  /** Whether process `id` runs (its replicas live and die together). */
  alive(id: NodeId): boolean {
    return this.replicas(id)[0]!.alive;
  }

  /** Whether process `id` is stopped. */
  paused(id: NodeId): boolean {
    return this.replicas(id)[0]!.paused;
  }

  /** Whether process `id` runs and leads at least one group. */
  leads(id: NodeId): boolean {
    return this.replicas(id).some((n) => n.alive && n.raw.raft.role === 'leader');
  }

  /** Process `id` crashes: every group it hosts stops, and what was not yet durable is lost. */
  crash(id: NodeId): void {
    const { ctx } = this;
    if (!this.alive(id)) return;
    ctx.say(`process ${id} crashes with its ${this.groups.length} groups (unpersisted writes are lost)`);
    this.writeInFlight(id);
    this.writes.delete(id);
    for (const group of this.groups) group.world.kill(group.world.nodes.get(id)!);
    ctx.stats.crashes++;
    ctx.after(ctx.prng.range(1, ctx.params.restartDelayMaxMs), { kind: 'restart', node: id });
  }

  /**
   * What of the writes in flight on `id`'s shared log reached the disk before the crash: in
   * order, each group's Ready being persisted, whole, until the first that did not make it,
   * which may have left a torn record.
   */
  private writeInFlight(id: NodeId): void {
    const { prng } = this.ctx;
    const wal = this.wal(id);
    for (const group of this.groups) {
      const node = group.world.nodes.get(id)!;
      const rd = node.inflight;
      if (rd === undefined) continue;
      if (!prng.chance(WRITTEN_RATE)) {
        if (prng.chance(TORN_RECORD_RATE)) wal.appendTorn();
        return;
      }
      group.ctx.checker.onPersist(id, node.storage, rd);
      wal.append(readyRecord(group.ctx.group!, rd));
      this.ctx.stats.inFlightWritesKept++;
    }
  }

  /** A crashed process boots: every group's disk is rebuilt from the shared log, split by group. */
  onRestart(id: NodeId): void {
    if (this.alive(id)) return;
    const wal = this.wal(id);
    const ids = this.groups.map((g) => g.ctx.group!);
    this.ctx.stats.tornRecordsCut += wal.cutTornTail();
    const storages = wal.recover(ids, this.ctx.mutations.walMixesGroups);
    this.ctx.say(
      `process ${id} restarts: ${wal.length} records of its shared log split into ${ids.length} groups`,
    );
    for (const group of this.groups) group.world.onRestart(id, storages.get(group.ctx.group!));
  }

  /** Process `id` stops (SIGSTOP) for a while drawn from the seed. */
  pause(id: NodeId): void {
    const { ctx } = this;
    for (const group of this.groups) group.world.stop(group.world.nodes.get(id)!);
    ctx.say(`process ${id} is paused (SIGSTOP)`);
    ctx.stats.pauses++;
    ctx.after(ctx.prng.range(50, ctx.params.pauseMaxMs), { kind: 'resume', node: id });
  }

  /** A paused process continues, every group with it. */
  onResume(id: NodeId): void {
    for (const group of this.groups) group.world.onResume(id);
  }

  /** Every link restored, every crashed process restarted, every paused one resumed. */
  heal(): void {
    this.network.heal();
    for (const id of this.ids()) {
      if (!this.alive(id)) this.onRestart(id);
      else if (this.paused(id)) this.onResume(id);
    }
  }

  private wal(id: NodeId): SimWal {
    let wal = this.wals.get(id);
    if (wal === undefined) {
      wal = new SimWal();
      this.wals.set(id, wal);
    }
    return wal;
  }

  private clock(id: NodeId): number {
    let tickMs = this.clocks.get(id);
    if (tickMs === undefined) {
      tickMs = drawTickMs(this.ctx.prng, this.ctx.params);
      this.clocks.set(id, tickMs);
    }
    return tickMs;
  }
}
