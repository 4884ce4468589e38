/**
 * Helpers shared by the scenario tests: manual driving of the {@link Harness} with hooks on
 * every sent message, a safety monitor, and a tiny state machine over the applied payloads
 * (so snapshots can carry real data). Nothing here uses time.
 */
import assert from 'node:assert/strict';
import type {
  ConfChange,
  ConfState,
  Message,
  NodeId,
  RaftErrorCode,
  Snapshot,
} from '../../src/raft/index.js';
import { confStateFromConfig, isRaftError } from '../../src/raft/index.js';
import type { Harness, HarnessNode } from '../../src/sim/harness.js';

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** Encodes text as an entry payload. */
export function bytes(text: string): Uint8Array {
  return encoder.encode(text);
}

/** Decodes an entry payload. */
export function text(data: Uint8Array): string {
  return decoder.decode(data);
}

/** Hooks for {@link settle}: see every message once when it leaves its sender, and rewrite batches. */
export interface Hooks {
  /** Called once for every message taken from the queue, before any cut or filter applies. */
  readonly onSend?: (m: Message) => void;
  /** Rewrites (drops, duplicates, reorders, edits) a batch before it is delivered. */
  readonly transform?: (batch: Message[]) => Message[];
}

/** Ticks the given live nodes (default: every live node) once, delivering nothing. */
export function tickNodes(h: Harness, ids: readonly NodeId[] = [...h.nodes.keys()]): void {
  for (const id of ids) {
    const n = h.node(id);
    if (!n.down) n.raw.tick();
  }
}

/**
 * Like {@link Harness.stabilize}, but every batch passes through `hooks`. Returns the
 * number of rounds it took.
 */
export function settle(h: Harness, hooks: Hooks = {}, roundsMax = 1000): number {
  for (let round = 0; round < roundsMax; round++) {
    const ready = h.processReadies();
    let batch = h.queue;
    h.queue = [];
    if (hooks.onSend !== undefined) for (const m of batch) hooks.onSend(m);
    if (hooks.transform !== undefined) batch = hooks.transform(batch);
    let delivered = 0;
    for (const m of batch) if (h.deliver(m)) delivered++;
    if (!ready && delivered === 0 && h.queue.length === 0) return round;
  }
  assert.fail(`cluster did not settle within ${roundsMax} rounds`);
}

/** Ticks every live node `n` times, settling through `hooks` after each tick. */
export function run(h: Harness, n: number, hooks: Hooks = {}): void {
  for (let i = 0; i < n; i++) {
    tickNodes(h);
    settle(h, hooks);
  }
}

/** Ticks (settling through `hooks`) until `done` holds; fails after `ticksMax`. Returns the ticks taken. */
export function runUntil(h: Harness, done: () => boolean, ticksMax: number, hooks: Hooks = {}): number {
  for (let i = 0; i <= ticksMax; i++) {
    if (done()) return i;
    tickNodes(h);
    settle(h, hooks);
  }
  assert.fail(`condition not reached within ${ticksMax} ticks`);
}

/** The leaders among the given live nodes. */
export function leadersAmong(h: Harness, ids: readonly NodeId[]): NodeId[] {
  return h.leaders().filter((id) => ids.includes(id));
}

/** The unique leader with the highest term among live nodes, or undefined. */
export function currentLeader(h: Harness): NodeId | undefined {
  let best: NodeId | undefined;
  let bestTerm = -1;
  for (const id of h.leaders()) {
    const term = h.node(id).raw.raft.term;
    if (term > bestTerm) {
      best = id;
      bestTerm = term;
    }
  }
  return best;
}

/** Proposes on `id`; returns false when the node refuses (not leader, dropped). */
export function tryPropose(h: Harness, id: NodeId, data: string): boolean {
  try {
    h.node(id).raw.propose(bytes(data));
    return true;
  } catch (error) {
    if (isRaftError(error)) return false;
    throw error;
  }
}

/** Node `id`'s log as `[index, term, payload]` triples over `[firstIndex, lastIndex]`. */
export function logOf(h: Harness, id: NodeId): [number, number, string][] {
  const log = h.node(id).raw.raft.log;
  const first = log.firstIndex();
  const entries = log.slice(first, log.lastIndex() + 1, Number.MAX_SAFE_INTEGER);
  return entries.map((e) => [e.index, e.term, text(e.data)]);
}

/** The persisted log of `id` (what survives a crash), as `[index, term, payload]` triples. */
export function storedLogOf(h: Harness, id: NodeId): [number, number, string][] {
  const s = h.node(id).storage;
  const entries = s.entries(s.firstIndex(), s.lastIndex() + 1, Number.MAX_SAFE_INTEGER);
  return entries.map((e) => [e.index, e.term, text(e.data)]);
}

/**
 * The node's state machine: the payloads restored from its newest snapshot followed by the
 * non-empty payloads it applied after the snapshot index.
 */
export function machineState(n: HarnessNode): string[] {
  const snap = n.storage.snapshot();
  // A bootstrap snapshot (index 1, no data) carries membership only.
  const base: string[] = snap.data.length > 0 ? (JSON.parse(text(snap.data)) as string[]) : [];
  const tail = n.applied
    .filter((e) => e.index > snap.meta.index && e.data.length > 0)
    .map((e) => text(e.data));
  return [...base, ...tail];
}

/**
 * Takes a snapshot of node `id` at its applied index (data: its state machine as JSON) and
 * compacts its log up to there, as an application would.
 */
export function snapshotAndCompact(h: Harness, id: NodeId, compact = true): Snapshot {
  const n = h.node(id);
  const index = n.raw.status().applied;
  const state = machineState(n);
  // The membership as of the applied index, removed ids included (they are never reused).
  const confState = n.raw.confState();
  const snap = n.storage.createSnapshotSync(index, confState, bytes(JSON.stringify(state)));
  if (compact) n.storage.compactSync(index);
  return snap;
}

/** Node `id`'s current membership (without the removed ids), sorted. */
export function confOf(h: Harness, id: NodeId): ConfState {
  return confStateFromConfig(h.node(id).raw.raft.tracker.config);
}

/**
 * Proposes a membership change on `id` and returns the refusal code, or undefined when the
 * change was appended. Other errors propagate.
 */
export function tryConfChange(h: Harness, id: NodeId, cc: ConfChange): RaftErrorCode | undefined {
  try {
    h.node(id).raw.proposeConfChange(cc);
    return undefined;
  } catch (error) {
    if (isRaftError(error)) return error.code;
    throw error;
  }
}

/** Runs `action` and asserts it throws a RaftError with `code`; returns the error's message. */
export function raftErrorOf(action: () => void, code: RaftErrorCode): string {
  try {
    action();
  } catch (error) {
    assert.ok(isRaftError(error), `expected a RaftError ${code}, got ${String(error)}`);
    assert.equal(error.code, code, error.message);
    return error.message;
  }
  assert.fail(`expected a RaftError ${code}, but nothing was thrown`);
}

/**
 * Checks the safety properties over a run: at most one leader per term (from roles and from
 * every append/heartbeat/snapshot sent), and one command per applied index across nodes.
 */
export class SafetyMonitor {
  readonly leaderOfTerm = new Map<number, NodeId>();
  private readonly appliedAt = new Map<number, string>();
  /** The highest commit index each node has ever persisted. */
  private readonly persistedCommit = new Map<NodeId, number>();

  constructor(private readonly h: Harness) {}

  /** Hooks that record every leader message, then run `extra` (its `onSend` and `transform`). */
  hooks(extra: Hooks = {}): Hooks {
    return {
      onSend: (m) => {
        this.message(m);
        extra.onSend?.(m);
      },
      ...(extra.transform === undefined ? {} : { transform: extra.transform }),
    };
  }

  /** Records the sender of a leader-only message as the leader of its term. */
  message(m: Message): void {
    if (m.type === 'append' || m.type === 'heartbeat' || m.type === 'snapshot') this.claim(m.term, m.from);
  }

  private claim(term: number, id: NodeId): void {
    const known = this.leaderOfTerm.get(term);
    assert.ok(known === undefined || known === id, `two leaders in term ${term}: ${known} and ${id}`);
    this.leaderOfTerm.set(term, id);
  }

  /** Checks the current roles, applied entries and persisted commit indexes. */
  observe(): void {
    for (const n of this.h.nodes.values()) {
      if (!n.down && n.raw.raft.role === 'leader') this.claim(n.raw.raft.term, n.id);
      const confChanges = n.confChanges.map((e) => ({ ...e, data: bytes(`conf:${[...e.data]}`) }));
      for (const e of [...n.applied, ...confChanges]) {
        const value = `${e.term}:${text(e.data)}`;
        const known = this.appliedAt.get(e.index);
        assert.ok(
          known === undefined || known === value,
          `node ${n.id} applied ${value} at ${e.index}, another applied ${known}`,
        );
        this.appliedAt.set(e.index, value);
      }
      const commit = n.storage.initialState().hardState.commit;
      const before = this.persistedCommit.get(n.id) ?? 0;
      assert.ok(commit >= before, `node ${n.id} persisted commit went back from ${before} to ${commit}`);
      this.persistedCommit.set(n.id, commit);
    }
  }
}

/** The ids of every node of the harness. */
export function ids(h: Harness): NodeId[] {
  return [...h.nodes.keys()];
}

/** The commit index node `id` knows. */
export function commitOf(h: Harness, id: NodeId): number {
  return h.node(id).raw.raft.log.committed;
}
