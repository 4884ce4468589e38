/**
 * Node-level liveness of a multi-raft host's peers, judged from what it hears (a beat or any
 * raft message, host-beat.ts) rather than from per-group heartbeats: a peer not heard from for
 * `timeoutMs` (an election timeout) is dead, and one that announces a new epoch restarted.
 * Either tells the host that the quiesced groups that peer led must wake and elect again.
 *
 * Hearing is recorded as a flag per message (cheap on the hot path) and turned into a time at
 * each check, once per tick. A check that comes more than `timeoutMs` after the previous one
 * means this process itself was paused (SIGSTOP, a long GC): it then judges no peer dead and
 * starts every peer's window afresh, so a paused host does not wake every group it follows.
 */
import { performance } from 'node:perf_hooks';

/** The peers of one host, as alive or dead. */
export class HostLiveness {
  /** When each peer was last heard from (as of the last check). */
  private readonly heardMs = new Map<number, number>();
  /** Peers heard from since the last check. */
  private readonly heardSinceCheck = new Set<number>();
  /** Each peer's last announced epoch. */
  private readonly epochs = new Map<number, number>();
  /** Peers judged dead and not heard from since. */
  private readonly dead = new Set<number>();
  private lastCheckMs: number;

  /** `peers`: every other host, each given a full window from now. */
  constructor(
    private readonly timeoutMs: number,
    peers: Iterable<number>,
    private readonly now: () => number = () => performance.now(),
  ) {
    this.lastCheckMs = now();
    for (const peer of peers) this.heardMs.set(peer, this.lastCheckMs);
  }

  /** Something arrived from `peer`. */
  heard(peer: number): void {
    this.heardSinceCheck.add(peer);
  }

  /**
   * `peer` announced `epoch`: returns true when it announced another one before (it restarted
   * since), false for its first or the same epoch.
   */
  announced(peer: number, epoch: number): boolean {
    const before = this.epochs.get(peer);
    this.epochs.set(peer, epoch);
    return before !== undefined && before !== epoch;
  }

  /** Whether `peer` was heard from within the timeout as of the last check. */
  isLive(peer: number): boolean {
    const heard = this.heardMs.get(peer);
    return heard !== undefined && !this.dead.has(peer) && this.lastCheckMs - heard < this.timeoutMs;
  }

  /** Updates what was heard; returns the peers that are newly judged dead (see the module comment). */
  check(): number[] {
    const now = this.now();
    const paused = now - this.lastCheckMs > this.timeoutMs;
    this.lastCheckMs = now;
    for (const peer of this.heardSinceCheck) {
      this.heardMs.set(peer, now);
      this.dead.delete(peer);
    }
    this.heardSinceCheck.clear();
    if (paused) {
      for (const peer of this.heardMs.keys()) this.heardMs.set(peer, now);
      return [];
    }
    const died: number[] = [];
    for (const [peer, heard] of this.heardMs) {
      if (now - heard >= this.timeoutMs && !this.dead.has(peer)) {
        this.dead.add(peer);
        died.push(peer);
      }
    }
    return died;
  }

  /** Starts watching a peer added after start (a full window from now). */
  watch(peer: number): void {
    if (!this.heardMs.has(peer)) this.heardMs.set(peer, this.now());
  }
}
