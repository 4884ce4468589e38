/**
 * Safety checkers the simulator runs after every event. Each watches one property of the
 * Raft paper (Figure 3) from the outside, using only what nodes expose and persist.
 */
import { createHash } from 'node:crypto';
import type {
  Entry,
  HardState,
  MemoryStorage,
  NodeId,
  RawNode,
  Ready,
  Snapshot,
  SoftState,
} from '../raft/index.js';

/** A violated property; `property` names it (e.g. `election-safety`). */
export class SafetyViolation extends Error {
  override readonly name = 'SafetyViolation';
  constructor(
    readonly property: string,
    message: string,
  ) {
    super(message);
  }
}

function fail(property: string, message: string): never {
  throw new SafetyViolation(property, message);
}

/** An image, as a key (a SHA-256 of its bytes). */
function imageKey(data: Uint8Array): string {
  return createHash('sha256').update(data).digest('base64');
}

function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

/** Tracks what the cluster has decided and fails on any contradiction. */
export class SafetyChecker {
  /** Election safety: the leader of each term. */
  private readonly leaders = new Map<number, NodeId>();
  /** Votes persisted, by `node:term`: at most one per node per term, across restarts. */
  private readonly votes = new Map<string, NodeId>();
  /** State machine safety: the entry applied at each index, by whoever applied it first. */
  private readonly applied = new Map<number, Entry>();
  /** Entries observed committed by a leader: entry term and the term it was committed in. */
  private readonly committed = new Map<number, { term: number; commitTerm: number }>();
  /** Highest commit index observed per leader, by `node:term`. */
  private readonly leaderCommits = new Map<string, number>();
  /** Commit index per node, which must never decrease while the node runs. */
  private readonly commits = new Map<NodeId, number>();
  /** Leaders already checked for completeness, by `node:term`. */
  private readonly checkedLeaders = new Set<string>();
  /** The images nodes took of their state machines, by snapshot index. */
  private readonly images = new Map<number, Set<string>>();
  /** Elections won, for the statistics. */
  elections = 0;

  /** A node booted from its disk. */
  onRestart(id: NodeId, raw: RawNode): void {
    this.commits.set(id, raw.raft.log.committed);
  }

  /** The node's role or leader changed (seen in a Ready). */
  onSoftState(id: NodeId, raw: RawNode, soft: SoftState): void {
    if (soft.role === 'leader') this.onStep(id, raw);
  }

  /** After every step of a node. */
  onStep(id: NodeId, raw: RawNode): void {
    const raft = raw.raft;
    const before = this.commits.get(id) ?? 0;
    if (raft.log.committed < before) {
      fail('commit-monotonic', `node ${id} commit index went back from ${before} to ${raft.log.committed}`);
    }
    this.commits.set(id, raft.log.committed);
    if (raft.role !== 'leader') return;
    const known = this.leaders.get(raft.term);
    if (known !== undefined && known !== id) {
      fail('election-safety', `nodes ${known} and ${id} are both leader in term ${raft.term}`);
    }
    const key = `${id}:${raft.term}`;
    if (!this.checkedLeaders.has(key)) {
      this.checkedLeaders.add(key);
      this.leaders.set(raft.term, id);
      this.elections++;
      this.checkLeaderCompleteness(id, raw);
    }
    this.recordCommits(key, raw);
  }

  /** Records what a leader newly committed, and fails if a committed entry ever changes. */
  private recordCommits(key: string, raw: RawNode): void {
    const log = raw.raft.log;
    const from = Math.max((this.leaderCommits.get(key) ?? 0) + 1, log.firstIndex());
    for (let index = from; index <= log.committed; index++) {
      const term = log.term(index);
      const known = this.committed.get(index);
      if (known === undefined) this.committed.set(index, { term, commitTerm: raw.raft.term });
      else if (known.term !== term) {
        fail(
          'state-machine-safety',
          `index ${index} committed with term ${known.term}, leader ${raw.raft.id} commits term ${term}`,
        );
      }
    }
    this.leaderCommits.set(key, log.committed);
  }

  /**
   * Leader completeness (§5.4): an entry committed in term U is in the log of every leader
   * of a term after U. (A leader of an earlier term may still win late, e.g. after a pause.)
   */
  private checkLeaderCompleteness(id: NodeId, raw: RawNode): void {
    const log = raw.raft.log;
    const leaderTerm = raw.raft.term;
    const first = log.firstIndex();
    for (const [index, entry] of this.committed) {
      if (entry.commitTerm >= leaderTerm || index < first) continue;
      const term = log.term(index);
      if (term !== entry.term) {
        fail(
          'leader-completeness',
          `leader ${id} (term ${leaderTerm}) has term ${term} at ${index}, committed in term ${entry.commitTerm} with term ${entry.term}`,
        );
      }
    }
  }

  /** A Ready is about to become durable on `id`'s disk. */
  onPersist(id: NodeId, storage: MemoryStorage, rd: Ready): void {
    const hs: HardState | undefined = rd.hardState;
    if (hs === undefined) return;
    const old = storage.initialState().hardState;
    if (hs.term < old.term) fail('term-monotonic', `node ${id} persists term ${hs.term} after ${old.term}`);
    if (hs.vote !== 0) {
      const key = `${id}:${hs.term}`;
      const previous = this.votes.get(key);
      if (previous !== undefined && previous !== hs.vote) {
        fail('vote-once', `node ${id} voted for ${previous} and then ${hs.vote} in term ${hs.term}`);
      }
      this.votes.set(key, hs.vote);
    }
  }

  /** State machine safety: every node applies the same entry at each index. */
  onApply(id: NodeId, entry: Entry): void {
    const first = this.applied.get(entry.index);
    if (first === undefined) {
      this.applied.set(entry.index, entry);
      return;
    }
    if (first.term !== entry.term || !sameBytes(first.data, entry.data)) {
      fail(
        'state-machine-safety',
        `node ${id} applied (term ${entry.term}) at ${entry.index}, another node applied (term ${first.term})`,
      );
    }
  }

  /** A node took a snapshot of its state machine: an image of the state at its index. */
  onSnapshotTaken(snapshot: Snapshot): void {
    const { index } = snapshot.meta;
    let images = this.images.get(index);
    if (images === undefined) {
      images = new Set();
      this.images.set(index, images);
    }
    images.add(imageKey(snapshot.data));
  }

  /**
   * A node's state machine is about to be replaced by a snapshot while the node has applied up
   * to `applied`: a replica's state never goes back, so the snapshot must lie past it.
   */
  onRestoring(id: NodeId, snapshot: Snapshot, applied: number): void {
    const { index } = snapshot.meta;
    if (index <= applied) {
      fail(
        'state-machine-safety',
        `node ${id} restored its state machine to the snapshot at ${index}, behind its applied index ${applied}`,
      );
    }
  }

  /**
   * A node's state machine jumped to a snapshot: its last entry must be the one applied at
   * that index, and its image one that a node took at that index (not, say, the part of one
   * that a cut stream carried).
   */
  onSnapshotRestored(id: NodeId, snapshot: Snapshot): void {
    const { index, term } = snapshot.meta;
    const entry = this.applied.get(index);
    if (entry !== undefined && entry.term !== term) {
      fail(
        'state-machine-safety',
        `node ${id} restored a snapshot at ${index} of term ${term}, applied entry has ${entry.term}`,
      );
    }
    const images = this.images.get(index);
    if (images !== undefined && !images.has(imageKey(snapshot.data))) {
      fail(
        'state-machine-safety',
        `node ${id} restored an image at ${index} (${snapshot.data.length} bytes) that no node took at that index`,
      );
    }
  }

  /** Log matching: logs that agree on an entry's term agree on every entry up to it (§5.3). */
  checkLogMatching(raws: readonly RawNode[]): void {
    for (let a = 0; a < raws.length; a++) {
      for (let b = a + 1; b < raws.length; b++) this.checkPair(raws[a]!, raws[b]!);
    }
  }

  private checkPair(x: RawNode, y: RawNode): void {
    const lx = x.raft.log;
    const ly = y.raft.log;
    const lo = Math.max(lx.firstIndex(), ly.firstIndex());
    const hi = Math.min(lx.lastIndex(), ly.lastIndex());
    let top = hi;
    while (top >= lo && lx.term(top) !== ly.term(top)) top--;
    if (top < lo) return;
    const ex = lx.slice(lo, top + 1, Number.MAX_SAFE_INTEGER);
    const ey = ly.slice(lo, top + 1, Number.MAX_SAFE_INTEGER);
    for (let i = 0; i < ex.length; i++) {
      const p = ex[i]!;
      const q = ey[i]!;
      if (p.term !== q.term || !sameBytes(p.data, q.data)) {
        fail('log-matching', `nodes ${x.raft.id} and ${y.raft.id} agree at ${top} but differ at ${p.index}`);
      }
    }
  }
}
