/**
 * The deterministic simulator. One seed decides everything: cluster size, fault rates,
 * workload, every delay and every fault. Nodes run the real core over a simulated disk
 * (what is not yet persisted is lost on crash) and a simulated network (drop, duplicate,
 * delay, reorder, symmetric and asymmetric partitions). Clients run put/get/cas with retries
 * and exactly-once sessions.
 *
 * A run has a safety phase under faults, then a liveness phase with every fault healed in
 * which a leader must be elected and every client operation must complete. Checkers run
 * after every event; the client history is checked for linearizability at the end.
 */
import type { ConfChangeSingle, Message, MutationName, Mutations, NodeId, Ready } from '../raft/index.js';
import {
  AssertionError,
  confStateFromConfig,
  decodeConfChange,
  EMPTY_CONF_STATE,
  isRaftError,
  MemoryStorage,
  mutationsFor,
  NO_MUTATIONS,
  Prng,
  RawNode,
} from '../raft/index.js';
import { SafetyChecker, SafetyViolation } from './checkers.js';
import { EventQueue } from './event-queue.js';
import { decodeCommand, encodeCommand, KvMachine, type KvResult } from './kv-machine.js';
import type { KvInput, KvOutput, Operation } from './linearizability.js';
import { checkLinearizable, describeOperation } from './linearizability.js';

/** What one run is asked to do. */
export interface SimOptions {
  readonly seed: number;
  /** Cluster size; by default chosen by the seed among 3, 5 and 7. */
  readonly nodes?: number | undefined;
  readonly mutation?: MutationName | undefined;
  /** Virtual milliseconds of the safety phase (default 6000). */
  readonly safetyMs?: number | undefined;
  /** Virtual milliseconds the liveness phase may take (default 8000). */
  readonly livenessMs?: number | undefined;
  /** Fixes some of the seed's parameters (targeted runs; the rest still come from the seed). */
  readonly overrides?: Partial<SimParams> | undefined;
  /** Receives a line for each notable event (elections, faults, completed operations). */
  readonly narrate?: ((line: string) => void) | undefined;
}

/** Counters that prove the faults and the workload really happened. */
export interface SimStats {
  nodes: number;
  ops: number;
  reads: number;
  elections: number;
  crashes: number;
  pauses: number;
  partitions: number;
  snapshotsInstalled: number;
  snapshotsTaken: number;
  confChanges: number;
  transfers: number;
  serializableReads: number;
  maxTerm: number;
  messagesDelivered: number;
  messagesDropped: number;
  duplicatesSuppressed: number;
}

/** Every counter at zero. */
export function emptySimStats(): SimStats {
  return {
    nodes: 0,
    ops: 0,
    reads: 0,
    elections: 0,
    crashes: 0,
    pauses: 0,
    partitions: 0,
    snapshotsInstalled: 0,
    snapshotsTaken: 0,
    confChanges: 0,
    transfers: 0,
    serializableReads: 0,
    maxTerm: 0,
    messagesDelivered: 0,
    messagesDropped: 0,
    duplicatesSuppressed: 0,
  };
}

/** The outcome of one seed. */
export interface SimResult {
  readonly seed: number;
  readonly status: 'ok' | 'failed' | 'unknown';
  /** The violated property and what showed it, when failed or unknown. */
  readonly property?: string;
  readonly detail?: string;
  readonly stats: SimStats;
}

const TICK_MS = 10;
const ELECTION_TICKS = 10;
const HEARTBEAT_TICKS = 2;

/** Fault and workload parameters, all drawn from the seed. */
export interface SimParams {
  /** `random`, or the name of the profile that fixed some of the parameters. */
  profile: string;
  nodes: number;
  dropRate: number;
  duplicateRate: number;
  longDelayRate: number;
  latencyMaxMs: number;
  diskLatencyMaxMs: number;
  nemesisIntervalMs: number;
  restartDelayMaxMs: number;
  snapshotEveryEntries: number;
  snapshotKeepEntries: number;
  clients: number;
  keys: number;
  readRate: number;
  casRate: number;
  leaderEarlySend: boolean;
  appendBytesMax: number;
  inflightMessagesMax: number;
  pauseMaxMs: number;
  /**
   * `mixed`: faults of every kind. `leader-churn`: leaders crash or are cut off soon after
   * election (Figure 8). `isolated-leader`: the leader is cut off from its peers while
   * clients still reach it (stale reads). `membership`: voters are replaced in bulk while
   * partitions split old members from new ones (joint consensus).
   */
  nemesis: 'mixed' | 'leader-churn' | 'isolated-leader' | 'membership';
  /** Share of nemesis actions that change membership, and that transfer leadership. */
  membershipRate: number;
  transferRate: number;
  /** Followers serve linearizable reads via the leader's read index. */
  followerReads: boolean;
  /**
   * Clients stay with the node they reach and followers forward their writes to the leader
   * (as etcd clients and members do), instead of redirecting clients to the leader.
   */
  forwarding: boolean;
  /** Share of reads that are serializable (local, possibly stale). */
  serializableRate: number;
  readOnly: 'safe' | 'lease-based';
  /** How long a client waits for an answer before trying another node. */
  clientTimeoutMs: number;
  /** Each node's clock runs up to this fraction fast or slow. */
  driftRate: number;
  checkQuorum: boolean;
  preVote: boolean;
}

/**
 * Named fault profiles a seed may draw, each aimed at one class of bug, as Jepsen pairs a
 * nemesis with the anomaly it provokes. Everything else still comes from the seed.
 */
const PROFILES = {
  /** Leases at the edge of their declared drift bound: a cut-off leader whose clock runs slow. */
  'lease-stress': {
    readOnly: 'lease-based',
    driftRate: 0.4,
    nemesis: 'isolated-leader',
    checkQuorum: true,
    preVote: true,
    forwarding: true,
    latencyMaxMs: 2,
    dropRate: 0,
    duplicateRate: 0,
    longDelayRate: 0,
    clientTimeoutMs: 50,
    keys: 1,
    readRate: 0.6,
    serializableRate: 0,
    clients: 6,
    appendBytesMax: 1 << 20,
    inflightMessagesMax: 64,
    diskLatencyMaxMs: 1,
  },
  /** Bulk voter replacement with the outgoing voters cut off right after the change. */
  'joint-stress': { nemesis: 'membership', forwarding: true, clientTimeoutMs: 50 },
} as const satisfies Record<string, Partial<SimParams>>;

function drawParams(prng: Prng, nodes: number | undefined): SimParams {
  const params = drawRandomParams(prng, nodes);
  // One-entry messages with a window of one message move about one entry per round trip and
  // fsync: a configuration nobody runs, under which a backlog of retried writes can take
  // longer to replicate than any liveness bound.
  if (params.appendBytesMax === 1 && params.inflightMessagesMax === 1) params.inflightMessagesMax = 4;
  const roll = prng.float();
  if (roll < 0.1)
    return { ...params, ...PROFILES['lease-stress'], nodes: nodes ?? 3, profile: 'lease-stress' };
  if (roll < 0.16) return { ...params, ...PROFILES['joint-stress'], profile: 'joint-stress' };
  return params;
}

function drawRandomParams(prng: Prng, nodes: number | undefined): SimParams {
  return {
    profile: 'random',
    nodes: nodes ?? prng.pick([3, 3, 5, 5, 5, 7]),
    dropRate: prng.pick([0, 0.01, 0.05, 0.1, 0.2]),
    duplicateRate: prng.pick([0, 0.02, 0.1]),
    longDelayRate: prng.pick([0, 0.02, 0.1]),
    latencyMaxMs: prng.pick([2, 5, 15]),
    diskLatencyMaxMs: prng.pick([1, 4, 15, 40]),
    nemesisIntervalMs: prng.pick([40, 100, 250, 600]),
    restartDelayMaxMs: prng.pick([20, 200, 800]),
    snapshotEveryEntries: prng.pick([8, 20, 60]),
    snapshotKeepEntries: prng.pick([0, 2, 10]),
    clients: prng.range(2, 6),
    keys: prng.range(1, 4),
    readRate: prng.pick([0.2, 0.4, 0.6]),
    casRate: prng.pick([0.1, 0.3]),
    leaderEarlySend: prng.chance(0.5),
    // Small messages make acknowledgements cover part of what a leader holds, which is what
    // exposes commit-rule bugs (Figure 8).
    appendBytesMax: prng.pick([1, 300, 4096, 1 << 20]),
    inflightMessagesMax: prng.pick([1, 4, 64]),
    pauseMaxMs: prng.pick([150, 400, 1000]),
    // Rapid leader churn produces logs that diverge across several terms: Figure 8.
    nemesis: prng.pick([
      'mixed',
      'mixed',
      'mixed',
      'leader-churn',
      'leader-churn',
      'isolated-leader',
      'membership',
    ]),
    membershipRate: prng.pick([0, 0.1, 0.25]),
    transferRate: prng.pick([0, 0.05, 0.15]),
    followerReads: prng.chance(0.5),
    forwarding: prng.chance(0.5),
    serializableRate: prng.pick([0, 0.1]),
    ...leaseParams(prng),
    clientTimeoutMs: prng.pick([50, 120, 250]),
  };
}

function leaseParams(prng: Prng): Pick<SimParams, 'readOnly' | 'driftRate' | 'checkQuorum' | 'preVote'> {
  const preVote = prng.chance(0.8);
  if (prng.chance(0.3)) {
    // Lease reads are only allowed with check-quorum. These seeds stretch clock drift far
    // beyond real clocks to test the lease bound; without pre-vote a node whose clock runs
    // twice as fast keeps bumping the term and legitimately livelocks Raft, so pre-vote is on.
    return {
      readOnly: 'lease-based',
      driftRate: prng.pick([0.02, 0.1, 0.2, 0.4]),
      checkQuorum: true,
      preVote: true,
    };
  }
  return { readOnly: 'safe', driftRate: prng.pick([0, 0.05]), checkQuorum: prng.chance(0.7), preVote };
}

/**
 * The lease drift bound a node declares: how many ticks a follower's clock can gain on the
 * leader's over the election timeout, for clocks off by up to `driftRate` either way.
 */
function leaseDriftTicks(driftRate: number): number {
  return Math.ceil(((ELECTION_TICKS - 1) * 2 * driftRate) / (1 + driftRate));
}

type ClientRequest =
  | { kind: 'write'; client: number; seq: number; attempt: number; command: Uint8Array }
  | { kind: 'read'; client: number; seq: number; attempt: number; key: string; serializable: boolean };

type ClientReply = {
  client: number;
  seq: number;
  attempt: number;
  outcome: { kind: 'ok'; result: KvResult | { value: string | null } } | { kind: 'redirect'; leader: NodeId };
};

type SimEvent =
  | { kind: 'tick'; node: NodeId; incarnation: number }
  | { kind: 'deliver'; message: Message }
  | { kind: 'snapshot-report'; message: Message; ok: boolean }
  | { kind: 'resume'; node: NodeId }
  | { kind: 'partition'; side: NodeId[] }
  | { kind: 'persisted'; node: NodeId; incarnation: number }
  | { kind: 'restart'; node: NodeId }
  | { kind: 'nemesis' }
  | { kind: 'heal' }
  | { kind: 'client-request'; node: NodeId; request: ClientRequest }
  | { kind: 'client-reply'; reply: ClientReply }
  | { kind: 'client-next'; client: number }
  | { kind: 'client-timeout'; client: number; seq: number; attempt: number };

interface SimNode {
  readonly id: NodeId;
  /** Survives crashes: the simulated disk. */
  readonly storage: MemoryStorage;
  incarnation: number;
  alive: boolean;
  /** A paused process (SIGSTOP): its events wait in `deferred` until it resumes. */
  paused: boolean;
  deferred: SimEvent[];
  /** A tick fell due while paused; on resume the missed ticks are delivered first. */
  tickDeferred: boolean;
  pausedAt: number;
  /** This node's tick interval: its clock may drift from the others' (and change rate). */
  tickMs: number;
  raw: RawNode;
  machine: KvMachine;
  /** The Ready being persisted, if any. */
  inflight: Ready | undefined;
  /** Messages of `inflight` still to send once it is durable. */
  held: Message[];
  /** Writes proposed here whose clients wait for an answer: key `client:seq`. */
  pendingWrites: Map<string, { client: number; seq: number; attempt: number }>;
  /** Reads waiting for their read index to be released, by context key. */
  pendingReads: Map<string, { client: number; seq: number; attempt: number; key: string }>;
  /** Reads released and waiting for the applied index to reach `index`. */
  readyReads: { index: number; client: number; seq: number; attempt: number; key: string }[];
}

interface SimClient {
  readonly id: number;
  seq: number;
  attempt: number;
  target: NodeId;
  /** The operation in progress, if any. */
  current: { input: KvInput; call: number; request: ClientRequest } | undefined;
  done: boolean;
}

/** Runs one seed to completion. */
export function runSimulation(options: SimOptions): SimResult {
  return new Simulation(options).run();
}

class Simulation {
  private readonly prng: Prng;
  private readonly params: SimParams;
  private readonly mutations: Mutations;
  private readonly queue = new EventQueue<SimEvent>();
  private readonly nodes = new Map<NodeId, SimNode>();
  private readonly clients: SimClient[] = [];
  private readonly history: Operation[] = [];
  private readonly checker: SafetyChecker;
  /** Directed links that drop everything: `"from->to"`. */
  private readonly blocked = new Set<string>();
  private now = 0;
  /** The next id for a node added by a membership change (ids are never reused). */
  private nextNodeId = 0;
  /** A partition armed to fire when a leader commits a bulk voter replacement. */
  private jointTrap: { leader: NodeId; index: number; out: NodeId[] } | undefined;
  /** Conf-change entries applied somewhere, by index (each counted once). */
  private readonly confChangesApplied = new Set<number>();
  /** Every value a write ever tried to store, for checking serializable reads. */
  private readonly written = new Set<string>();
  private phase: 'safety' | 'liveness' = 'safety';
  private readonly safetyMs: number;
  private readonly livenessMs: number;
  private readonly stats: SimStats;

  constructor(private readonly options: SimOptions) {
    this.prng = new Prng(options.seed);
    this.params = { ...drawParams(this.prng, options.nodes), ...options.overrides };
    this.mutations = options.mutation === undefined ? NO_MUTATIONS : mutationsFor(options.mutation);
    this.safetyMs = options.safetyMs ?? 10_000;
    this.livenessMs = options.livenessMs ?? 8000;
    this.stats = { ...emptySimStats(), nodes: this.params.nodes };
    this.checker = new SafetyChecker();
    this.narrate = options.narrate;
  }

  private readonly narrate: ((line: string) => void) | undefined;

  private say(text: string): void {
    if (this.narrate === undefined) return;
    this.narrate(`${(this.now / 1000).toFixed(3).padStart(7)}s  ${text}`);
  }

  run(): SimResult {
    try {
      this.setup();
      this.loop();
      this.checkLiveness();
      this.checker.checkLogMatching(this.liveRaws());
    } catch (error) {
      return this.failure(error);
    }
    return this.checkHistory();
  }

  private failure(error: unknown): SimResult {
    if (error instanceof SafetyViolation) {
      return {
        seed: this.options.seed,
        status: 'failed',
        property: error.property,
        detail: error.message,
        stats: this.stats,
      };
    }
    if (error instanceof AssertionError) {
      return {
        seed: this.options.seed,
        status: 'failed',
        property: 'invariant',
        detail: error.message,
        stats: this.stats,
      };
    }
    throw error;
  }

  private checkHistory(): SimResult {
    const verdict = checkLinearizable(this.history);
    this.say(
      `checks: election safety, vote-once, log matching, leader completeness, state machine safety, ` +
        `liveness ok; linearizability of ${this.history.length} operations: ${verdict.result}`,
    );
    if (verdict.result === 'ok') return { seed: this.options.seed, status: 'ok', stats: this.stats };
    if (verdict.result === 'unknown') {
      return {
        seed: this.options.seed,
        status: 'unknown',
        property: 'linearizability',
        detail: verdict.reason,
        stats: this.stats,
      };
    }
    return {
      seed: this.options.seed,
      status: 'failed',
      property: 'linearizability',
      detail: `key ${verdict.key}: ${verdict.detail}`,
      stats: this.stats,
    };
  }

  // ------------------------------------------------------------------ setup and loop

  private setup(): void {
    const p = this.params;
    this.say(
      `seed ${this.options.seed}: ${p.nodes} nodes, ${p.clients} clients on ${p.keys} keys, ` +
        `drop ${p.dropRate * 100}%, duplicate ${p.duplicateRate * 100}%, nemesis ${p.nemesis} every <=${p.nemesisIntervalMs} ms, ` +
        `profile ${p.profile}, reads ${p.readOnly}`,
    );
    const voters = Array.from({ length: this.params.nodes }, (_, i) => i + 1);
    for (const id of voters) {
      const storage = new MemoryStorage();
      // The initial membership is a snapshot at index 1, so a node added later (with an empty
      // log) always starts from a snapshot that carries the membership it applies changes to.
      storage.applySnapshot({
        meta: { index: 1, term: 1, confState: { ...EMPTY_CONF_STATE, voters } },
        data: new Uint8Array(),
      });
      storage.setHardState({ term: 1, vote: 0, commit: 1 });
      this.addNode(id, storage);
    }
    this.nextNodeId = this.params.nodes + 1;
    for (let c = 1; c <= this.params.clients; c++) {
      this.clients.push({
        id: c,
        seq: 0,
        attempt: 0,
        target: this.anyNodeId(),
        current: undefined,
        done: false,
      });
      this.queue.push(this.prng.range(0, 50), { kind: 'client-next', client: c });
    }
    this.queue.push(this.params.nemesisIntervalMs, { kind: 'nemesis' });
    this.queue.push(this.safetyMs, { kind: 'heal' });
  }

  private addNode(id: NodeId, storage: MemoryStorage): SimNode {
    // Lease seeds put every clock at an edge of the declared bound, the worst case for leases.
    const spread =
      this.params.readOnly === 'lease-based' ? this.prng.pick([-1, 1]) : this.prng.float() * 2 - 1;
    const drift = spread * this.params.driftRate;
    const node: SimNode = {
      id,
      storage,
      incarnation: 0,
      alive: false,
      paused: false,
      deferred: [],
      tickDeferred: false,
      pausedAt: 0,
      tickMs: Math.round(TICK_MS * (1 + drift)),
      raw: undefined as unknown as RawNode,
      machine: new KvMachine(),
      inflight: undefined,
      held: [],
      pendingWrites: new Map(),
      pendingReads: new Map(),
      readyReads: [],
    };
    this.nodes.set(id, node);
    this.start(node);
    return node;
  }

  /** A node id picked uniformly from every node that exists. */
  private anyNodeId(): NodeId {
    return this.prng.pick([...this.nodes.keys()]);
  }

  /** Boots a node from its disk: a fresh core and a state machine restored from the snapshot. */
  private start(node: SimNode): void {
    if (this.mutations.forgetVoteOnRestart && node.incarnation > 0) {
      node.storage.setHardState({ ...node.storage.initialState().hardState, vote: 0 });
    }
    const snapshot = node.storage.snapshot();
    node.incarnation++;
    node.alive = true;
    node.machine = new KvMachine();
    node.machine.restore(snapshot.data);
    node.inflight = undefined;
    node.held = [];
    node.pendingWrites = new Map();
    node.pendingReads = new Map();
    node.readyReads = [];
    node.raw = new RawNode(node.storage, {
      id: node.id,
      random: this.prng.fork(),
      electionTicks: ELECTION_TICKS,
      heartbeatTicks: HEARTBEAT_TICKS,
      applied: snapshot.meta.index,
      appendBytesMax: this.params.appendBytesMax,
      inflightMessagesMax: this.params.inflightMessagesMax,
      readOnly: this.params.readOnly,
      checkQuorum: this.params.checkQuorum,
      preVote: this.params.preVote,
      leaseDriftTicks: leaseDriftTicks(this.params.driftRate),
      mutations: this.mutations,
    });
    this.checker.onRestart(node.id, node.raw);
    this.queue.push(this.now + this.prng.range(1, node.tickMs), {
      kind: 'tick',
      node: node.id,
      incarnation: node.incarnation,
    });
  }

  private loop(): void {
    const end = this.safetyMs + this.livenessMs;
    for (;;) {
      const next = this.queue.pop();
      if (next === undefined || next.time > end) return;
      this.now = next.time;
      this.handle(next.item);
      if (this.phase === 'liveness' && this.livenessDone()) return;
    }
  }

  /** The node an event happens on, for pausing. */
  private target(event: SimEvent): SimNode | undefined {
    switch (event.kind) {
      case 'tick':
      case 'persisted':
      case 'client-request':
        return this.nodes.get(event.node);
      case 'deliver':
        return this.nodes.get(event.message.to);
      case 'snapshot-report':
        return this.nodes.get(event.message.from);
      default:
        return undefined;
    }
  }

  private handle(event: SimEvent): void {
    const node = this.target(event);
    if (node?.paused === true) {
      if (event.kind === 'tick') node.tickDeferred = true;
      else node.deferred.push(event);
      return;
    }
    switch (event.kind) {
      case 'tick':
        this.onTick(event.node, event.incarnation);
        return;
      case 'deliver':
        this.onDeliver(event.message);
        return;
      case 'snapshot-report':
        this.reportSnapshot(this.nodes.get(event.message.from)!, event.message, event.ok);
        return;
      case 'partition':
        this.partition(new Set(event.side));
        return;
      case 'resume':
        this.onResume(event.node);
        return;
      case 'persisted':
        this.onPersisted(event.node, event.incarnation);
        return;
      case 'restart':
        this.onRestart(event.node);
        return;
      case 'nemesis':
        this.onNemesis();
        return;
      case 'heal':
        this.onHeal();
        return;
      case 'client-request':
        this.onClientRequest(event.node, event.request);
        return;
      case 'client-reply':
        this.onClientReply(event.reply);
        return;
      case 'client-next':
        this.onClientNext(event.client);
        return;
      case 'client-timeout':
        this.onClientTimeout(event.client, event.seq, event.attempt);
        return;
    }
  }

  // ------------------------------------------------------------------ nodes

  private onTick(id: NodeId, incarnation: number): void {
    const node = this.nodes.get(id)!;
    if (!node.alive || node.incarnation !== incarnation) return;
    node.raw.tick();
    this.drive(node);
    this.queue.push(this.now + node.tickMs, { kind: 'tick', node: id, incarnation });
  }

  private onDeliver(message: Message): void {
    const to = this.nodes.get(message.to)!;
    const from = this.nodes.get(message.from);
    if (message.type === 'snapshot' && from !== undefined) {
      const ok = to.alive && !this.blocked.has(`${message.from}->${message.to}`);
      this.queue.push(this.now, { kind: 'snapshot-report', message, ok });
    }
    if (!to.alive || this.blocked.has(`${message.from}->${message.to}`)) {
      this.stats.messagesDropped++;
      return;
    }
    this.stats.messagesDelivered++;
    to.raw.step(message);
    this.drive(to);
  }

  /** The transport tells the leader how a snapshot send ended, as a real one would. */
  private reportSnapshot(from: SimNode, message: Message, ok: boolean): void {
    if (!from.alive || from.raw.raft.term !== message.term) return;
    from.raw.reportSnapshot(message.to, ok);
    this.drive(from);
  }

  /** Takes the node's next Ready, if any, and starts persisting it. */
  private drive(node: SimNode): void {
    this.afterStep(node);
    if (!node.alive || node.inflight !== undefined || !node.raw.hasReady()) return;
    const rd = node.raw.ready();
    node.inflight = rd;
    if (rd.softState !== undefined) {
      this.checker.onSoftState(node.id, node.raw, rd.softState);
      if (rd.softState.role === 'leader') this.say(`node ${node.id} is leader of term ${node.raw.raft.term}`);
    }
    if (this.mutations.ackBeforePersist) {
      // Deliberate bug: acknowledge before the disk has the data.
      node.held = [];
      for (const m of rd.messages) this.send(m);
    } else if (this.params.leaderEarlySend) {
      // A leader's appends and heartbeats need no local durability (thesis §10.2.1).
      node.held = [];
      for (const m of rd.messages) {
        if (m.type === 'append' || m.type === 'heartbeat') this.send(m);
        else node.held.push(m);
      }
    } else {
      node.held = [...rd.messages];
    }
    const latency = this.prng.range(0, this.params.diskLatencyMaxMs);
    this.queue.push(this.now + latency, { kind: 'persisted', node: node.id, incarnation: node.incarnation });
  }

  private onPersisted(id: NodeId, incarnation: number): void {
    const node = this.nodes.get(id)!;
    // A crash in between lost this write: the Ready was never durable.
    if (!node.alive || node.incarnation !== incarnation || node.inflight === undefined) return;
    const rd = node.inflight;
    this.checker.onPersist(id, node.storage, rd);
    node.storage.saveSync({ hardState: rd.hardState, entries: rd.entries, snapshot: rd.snapshot });
    for (const m of node.held) this.send(m);
    node.held = [];
    this.apply(node, rd);
    node.inflight = undefined;
    node.raw.advance(rd);
    this.maybeSnapshot(node);
    this.drive(node);
  }

  private apply(node: SimNode, rd: Ready): void {
    if (rd.snapshot !== undefined) {
      node.machine.restore(rd.snapshot.data);
      this.stats.snapshotsInstalled++;
      this.say(`node ${node.id} installed a snapshot at index ${rd.snapshot.meta.index}`);
      this.checker.onSnapshotRestored(node.id, rd.snapshot);
    }
    for (const entry of rd.committedEntries) {
      this.checker.onApply(node.id, entry);
      if (entry.type === 'conf-change') {
        const cc = decodeConfChange(entry.data);
        const confState = node.raw.applyConfChange(cc);
        this.say(
          `node ${node.id} applies conf change at ${entry.index}: voters [${confState.voters}], outgoing [${confState.votersOutgoing}], learners [${confState.learners}]`,
        );
        this.confChangesApplied.add(entry.index);
        this.stats.confChanges = this.confChangesApplied.size;
        continue;
      }
      const command = decodeCommand(entry.data);
      if (command === undefined) continue;
      const result = node.machine.apply(command);
      const key = `${command.client}:${command.seq}`;
      const waiting = node.pendingWrites.get(key);
      if (waiting !== undefined && result !== undefined) {
        node.pendingWrites.delete(key);
        this.reply({
          client: waiting.client,
          seq: waiting.seq,
          attempt: waiting.attempt,
          outcome: { kind: 'ok', result },
        });
      }
    }
    this.stats.duplicatesSuppressed = Math.max(this.stats.duplicatesSuppressed, node.machine.duplicates);
    for (const rs of rd.readStates) {
      const key = new TextDecoder().decode(rs.context);
      const read = node.pendingReads.get(key);
      if (read === undefined) continue;
      node.pendingReads.delete(key);
      node.readyReads.push({ index: rs.index, ...read });
    }
    this.serveReads(node, rd);
  }

  /** Serves released reads whose index the state machine has reached. */
  private serveReads(node: SimNode, rd: Ready): void {
    const last = rd.committedEntries[rd.committedEntries.length - 1];
    const applied = Math.max(node.raw.raft.log.applied, last?.index ?? 0, rd.snapshot?.meta.index ?? 0);
    const keep: SimNode['readyReads'] = [];
    for (const read of node.readyReads) {
      if (read.index > applied) {
        keep.push(read);
        continue;
      }
      const value = node.machine.get(read.key);
      this.reply({
        client: read.client,
        seq: read.seq,
        attempt: read.attempt,
        outcome: { kind: 'ok', result: { value } },
      });
    }
    node.readyReads = keep;
  }

  private maybeSnapshot(node: SimNode): void {
    const applied = node.raw.raft.log.applied;
    const snapIndex = node.storage.snapshot().meta.index;
    if (applied - snapIndex < this.params.snapshotEveryEntries) return;
    const confState = node.raw.confState();
    node.storage.createSnapshotSync(applied, confState, node.machine.snapshot());
    const compactTo = Math.max(applied - this.params.snapshotKeepEntries, node.storage.firstIndex() - 1);
    node.storage.compactSync(compactTo);
    this.stats.snapshotsTaken++;
  }

  private afterStep(node: SimNode): void {
    if (!node.alive) return;
    this.checkJointTrap(node);
    node.raw.checkInvariants();
    this.checker.onStep(node.id, node.raw);
    this.stats.maxTerm = Math.max(this.stats.maxTerm, node.raw.raft.term);
    this.stats.elections = this.checker.elections;
  }

  // ------------------------------------------------------------------ network

  private send(m: Message): void {
    const p = this.params;
    if (this.phase === 'safety' && this.prng.chance(p.dropRate)) {
      this.stats.messagesDropped++;
      if (m.type === 'snapshot')
        this.queue.push(this.now + 1, { kind: 'snapshot-report', message: m, ok: false });
      return;
    }
    const copies = this.phase === 'safety' && this.prng.chance(p.duplicateRate) ? 2 : 1;
    for (let i = 0; i < copies; i++)
      this.queue.push(this.now + this.latency(), { kind: 'deliver', message: m });
  }

  private latency(): number {
    const base = this.prng.range(1, this.params.latencyMaxMs);
    if (this.phase === 'safety' && this.prng.chance(this.params.longDelayRate))
      return base + this.prng.range(50, 400);
    return base;
  }

  // ------------------------------------------------------------------ faults

  private onNemesis(): void {
    if (this.phase !== 'safety') return;
    if (this.params.nemesis === 'leader-churn') {
      this.churnLeader();
      this.queue.push(this.now + this.prng.range(5, 60), { kind: 'nemesis' });
      return;
    }
    if (this.params.nemesis === 'isolated-leader') {
      this.isolateLeaderFromPeers();
      return;
    }
    if (this.params.nemesis === 'membership') {
      this.membershipNemesis();
      return;
    }
    const p = this.params;
    const admin = this.prng.float();
    if (admin < p.membershipRate) this.changeMembership();
    else if (admin < p.membershipRate + p.transferRate) this.transferLeadership();
    const roll = this.prng.float();
    if (roll < 0.22) this.crashSomeone();
    else if (roll < 0.27) this.powerFailure();
    else if (roll < 0.4) this.pauseSomeone();
    else if (roll < 0.52) this.partitionRandom();
    else if (roll < 0.6) this.isolateOne(false);
    else if (roll < 0.68) this.isolateOne(true);
    else if (roll < 0.8) this.blocked.clear();
    this.queue.push(this.now + this.prng.range(1, this.params.nemesisIntervalMs), { kind: 'nemesis' });
  }

  private crashSomeone(): void {
    const live = [...this.nodes.values()].filter((n) => n.alive);
    if (live.length === 0) return;
    // Leaders are crashed more often: that is where the interesting bugs hide (Figure 8).
    const leaders = live.filter((n) => n.raw.raft.role === 'leader');
    const victim =
      leaders.length > 0 && this.prng.chance(0.5) ? this.prng.pick(leaders) : this.prng.pick(live);
    this.crash(victim);
  }

  private liveLeader(): SimNode | undefined {
    return [...this.nodes.values()].find((n) => n.alive && !n.paused && n.raw.raft.role === 'leader');
  }

  /**
   * Asks the leader for a random membership change: add a learner (a new node), promote a
   * learner, remove a follower, remove the leader, replace the leader, or change several
   * voters at once (joint consensus). Refusals (not ready, change in progress) are expected.
   */
  private changeMembership(): void {
    const leader = this.liveLeader();
    if (leader === undefined) return;
    const config = leader.raw.raft.tracker.config;
    const voters = [...config.voters.incoming];
    const learners = [...config.learners];
    const followers = voters.filter((v) => v !== leader.id);
    const changes: ConfChangeSingle[] = [];
    const roll = this.prng.int(6);
    if (roll === 0 || (learners.length === 0 && roll !== 2 && roll !== 3)) {
      if (this.nextNodeId > this.params.nodes + 6) return;
      const id = this.nextNodeId++;
      this.addNode(id, new MemoryStorage());
      changes.push({ type: 'add-learner', node: id });
    } else if (roll === 1) {
      changes.push({ type: 'add-voter', node: this.prng.pick(learners) });
    } else if (roll === 2 && followers.length >= 2) {
      changes.push({ type: 'remove', node: this.prng.pick(followers) });
    } else if (roll === 3 && voters.length >= 3) {
      changes.push({ type: 'remove', node: leader.id });
    } else if (roll === 4) {
      changes.push(
        { type: 'add-voter', node: this.prng.pick(learners) },
        { type: 'remove', node: leader.id },
      );
    } else if (followers.length >= 2) {
      for (const id of learners.slice(0, 2)) changes.push({ type: 'add-voter', node: id });
      changes.push({ type: 'remove', node: this.prng.pick(followers) });
    }
    if (changes.length === 0) return;
    this.proposeChanges(leader, changes);
  }

  private proposeChanges(leader: SimNode, changes: ConfChangeSingle[]): boolean {
    let proposed = false;
    try {
      leader.raw.proposeConfChange({ changes });
      proposed = true;
      this.say(`leader ${leader.id} proposes ${changes.map((c) => `${c.type} ${c.node}`).join(', ')}`);
    } catch (error) {
      if (!isRaftError(error)) throw error;
      this.say(
        `leader ${leader.id} refuses ${changes.map((c) => `${c.type} ${c.node}`).join(', ')}: ${error.code}`,
      );
    }
    this.drive(leader);
    return proposed;
  }

  private transferLeadership(): void {
    const leader = this.liveLeader();
    if (leader === undefined) return;
    const others = [...leader.raw.raft.tracker.config.voters.incoming].filter((v) => v !== leader.id);
    if (others.length === 0) return;
    const target = this.prng.pick(others);
    try {
      leader.raw.transferLeadership(target);
      this.stats.transfers++;
      this.say(`leader ${leader.id} transfers leadership to ${target}`);
    } catch (error) {
      if (!isRaftError(error)) throw error;
    }
    this.drive(leader);
  }

  /** Cuts the leader off from its peers (clients still reach it), then heals. */
  private isolateLeaderFromPeers(): void {
    const leader = this.liveLeader();
    if (this.blocked.size > 0 || leader === undefined) {
      this.blocked.clear();
    } else {
      for (const other of this.nodes.keys()) {
        if (other === leader.id) continue;
        this.blocked.add(`${other}->${leader.id}`);
        this.blocked.add(`${leader.id}->${other}`);
      }
      this.stats.partitions++;
      this.say(`leader ${leader.id} is cut off from its peers; clients still reach it`);
      if (this.params.readOnly === 'lease-based') this.skewClocksAgainst(leader);
    }
    this.queue.push(this.now + this.prng.range(100, 500), { kind: 'nemesis' });
  }

  /**
   * Clock nemesis for leases: the leader's clock runs at the slow edge of the declared drift
   * bound and every other clock at the fast edge, the worst case a lease must survive.
   */
  private skewClocksAgainst(leader: SimNode): void {
    const rate = this.params.driftRate;
    for (const node of this.nodes.values()) {
      node.tickMs = Math.round(TICK_MS * (node === leader ? 1 + rate : 1 - rate));
    }
    this.say(`clocks skewed: leader ${leader.id} ticks every ${leader.tickMs} ms, the others faster`);
  }

  /** Bulk voter replacement, partitions between old and new members, and crashes. */
  private membershipNemesis(): void {
    const roll = this.prng.float();
    if (roll < 0.45) this.replaceVoters();
    else if (roll < 0.7) this.partitionOldFromNew();
    else if (roll < 0.8) this.crashSomeone();
    else this.blocked.clear();
    this.queue.push(this.now + this.prng.range(20, 200), { kind: 'nemesis' });
  }

  /** Adds learners until there are two, then swaps a majority of the followers for them. */
  private replaceVoters(): void {
    const leader = this.liveLeader();
    if (leader === undefined) return;
    const config = leader.raw.raft.tracker.config;
    const learners = [...config.learners];
    if (learners.length < 2) {
      this.changeMembership();
      return;
    }
    const followers = [...config.voters.incoming].filter((v) => v !== leader.id);
    const out = followers.slice(0, Math.min(followers.length, learners.length));
    const changes: ConfChangeSingle[] = [
      ...learners.slice(0, out.length).map((id) => ({ type: 'add-voter' as const, node: id })),
      ...out.map((id) => ({ type: 'remove' as const, node: id })),
    ];
    if (changes.length < 2) return;
    if (!this.proposeChanges(leader, changes)) return;
    // Cut the outgoing voters off the moment the leader commits the change, while the news
    // of that commit is still in flight: they may then never learn that the joint
    // configuration was entered, the situation joint quorums exist for.
    this.jointTrap = { leader: leader.id, index: leader.raw.raft.log.lastIndex(), out };
  }

  /** Springs the trap set by `replaceVoters` once its leader commits the change. */
  private checkJointTrap(node: SimNode): void {
    const trap = this.jointTrap;
    if (trap === undefined || trap.leader !== node.id) return;
    const raft = node.raw.raft;
    if (raft.role !== 'leader') {
      this.jointTrap = undefined;
      return;
    }
    if (raft.log.committed < trap.index) return;
    this.jointTrap = undefined;
    this.partition(new Set(trap.out));
  }

  /** Splits the cluster into `side` and everyone else. */
  private partition(side: ReadonlySet<NodeId>): void {
    this.blocked.clear();
    for (const a of this.nodes.keys()) {
      for (const b of this.nodes.keys()) if (side.has(a) !== side.has(b)) this.blocked.add(`${a}->${b}`);
    }
    this.stats.partitions++;
    this.say(`partition: [${[...side]}] | everyone else`);
  }

  /** Separates the members of the outgoing configuration from the incoming ones. */
  private partitionOldFromNew(): void {
    const leader = this.liveLeader();
    const config = leader?.raw.raft.tracker.config;
    if (config === undefined || config.voters.outgoing.size === 0) {
      this.partitionRandom();
      return;
    }
    this.partition(new Set([...config.voters.outgoing].filter((id) => !config.voters.incoming.has(id))));
  }

  /** Crashes or cuts off the leader, keeping a majority of nodes running (MIT Figure8). */
  private churnLeader(): void {
    const live = [...this.nodes.values()].filter((n) => n.alive);
    const leader = live.find((n) => n.raw.raft.role === 'leader');
    if (leader === undefined || live.length <= Math.floor(this.params.nodes / 2) + 1) return;
    if (this.prng.chance(0.5)) {
      this.crash(leader);
      return;
    }
    this.blocked.clear();
    for (const other of this.nodes.keys()) {
      if (other === leader.id) continue;
      this.blocked.add(`${other}->${leader.id}`);
      this.blocked.add(`${leader.id}->${other}`);
    }
    this.stats.partitions++;
    this.say(`leader ${leader.id} is cut off from everyone`);
  }

  /** Everything not yet persisted is lost; pending events of the process die with it. */
  private crash(node: SimNode): void {
    this.say(`node ${node.id} crashes (unpersisted writes are lost)`);
    node.alive = false;
    node.paused = false;
    node.deferred = [];
    node.tickDeferred = false;
    this.stats.crashes++;
    this.queue.push(this.now + this.prng.range(1, this.params.restartDelayMaxMs), {
      kind: 'restart',
      node: node.id,
    });
  }

  /** Every node loses power at once (FAULTS 14, 21). */
  private powerFailure(): void {
    for (const node of this.nodes.values()) if (node.alive) this.crash(node);
  }

  /** Stops a process, leader preferred, as SIGSTOP would (FAULTS 23). */
  private pauseSomeone(): void {
    const live = [...this.nodes.values()].filter((n) => n.alive && !n.paused);
    if (live.length === 0) return;
    const leaders = live.filter((n) => n.raw.raft.role === 'leader');
    const victim =
      leaders.length > 0 && this.prng.chance(0.6) ? this.prng.pick(leaders) : this.prng.pick(live);
    victim.paused = true;
    victim.pausedAt = this.now;
    this.say(`node ${victim.id} is paused (SIGSTOP)`);
    this.stats.pauses++;
    this.queue.push(this.now + this.prng.range(50, this.params.pauseMaxMs), {
      kind: 'resume',
      node: victim.id,
    });
  }

  private onResume(id: NodeId): void {
    const node = this.nodes.get(id)!;
    if (!node.alive || !node.paused) return;
    node.paused = false;
    this.say(`node ${id} resumes with ${node.deferred.length} queued events`);
    // The runtime catches up on the ticks it missed (by a monotonic clock) before any other
    // input: a resumed leader must see that its lease has run out before it serves a read.
    const missed = Math.min(Math.floor((this.now - node.pausedAt) / node.tickMs), 3 * ELECTION_TICKS);
    for (let i = 0; i < missed; i++) node.raw.tick();
    this.drive(node);
    // What queued up while stopped is handled now, in arrival order.
    for (const event of node.deferred) this.queue.push(this.now, event);
    node.deferred = [];
    if (node.tickDeferred) {
      this.queue.push(this.now + node.tickMs, { kind: 'tick', node: id, incarnation: node.incarnation });
    }
    node.tickDeferred = false;
  }

  private onRestart(id: NodeId): void {
    const node = this.nodes.get(id)!;
    if (node.alive) return;
    this.start(node);
    this.say(
      `node ${id} restarts from disk (term ${node.raw.raft.term}, commit ${node.raw.raft.log.committed})`,
    );
  }

  private partitionRandom(): void {
    const ids = [...this.nodes.keys()];
    const side = new Set(ids.filter(() => this.prng.chance(0.5)));
    this.blocked.clear();
    for (const a of ids) for (const b of ids) if (side.has(a) !== side.has(b)) this.blocked.add(`${a}->${b}`);
    this.stats.partitions++;
    this.say(`partition: [${[...side].join(',')}] | [${ids.filter((i) => !side.has(i)).join(',')}]`);
  }

  /** Cuts one node off; `asymmetric` cuts only what it receives (it can still send). */
  private isolateOne(asymmetric: boolean): void {
    const ids = [...this.nodes.keys()];
    const leader = ids.find((id) => this.nodes.get(id)!.raw.raft.role === 'leader');
    const victim = leader !== undefined && this.prng.chance(0.5) ? leader : this.prng.pick(ids);
    for (const other of ids) {
      if (other === victim) continue;
      this.blocked.add(`${other}->${victim}`);
      if (!asymmetric) this.blocked.add(`${victim}->${other}`);
    }
    this.stats.partitions++;
    this.say(`node ${victim} is cut off${asymmetric ? ' (it can still send)' : ''}`);
  }

  private onHeal(): void {
    this.say('safety phase over: every fault healed; liveness phase begins');
    this.phase = 'liveness';
    this.blocked.clear();
    for (const node of this.nodes.values()) {
      if (!node.alive) this.start(node);
      else if (node.paused) this.onResume(node.id);
    }
  }

  // ------------------------------------------------------------------ clients

  private onClientNext(id: number): void {
    const client = this.clients[id - 1]!;
    if (this.phase === 'liveness') {
      client.done = true;
      return;
    }
    client.seq++;
    client.attempt = 0;
    const key = `k${this.prng.int(this.params.keys)}`;
    const value = `${id}.${client.seq}`;
    const roll = this.prng.float();
    let input: KvInput;
    let request: ClientRequest;
    if (roll < this.params.readRate) {
      input = { kind: 'get', key };
      const serializable = this.prng.chance(this.params.serializableRate);
      request = { kind: 'read', client: id, seq: client.seq, attempt: 0, key, serializable };
      this.stats.reads++;
    } else {
      const cas = roll < this.params.readRate + this.params.casRate;
      const expected = cas
        ? this.prng.chance(0.3)
          ? null
          : `${1 + this.prng.int(this.params.clients)}.${1 + this.prng.int(client.seq)}`
        : undefined;
      input = cas ? { kind: 'cas', key, expected: expected ?? null, value } : { kind: 'put', key, value };
      this.written.add(value);
      const command = encodeCommand({
        client: id,
        seq: client.seq,
        op: cas ? 'cas' : 'put',
        key,
        value,
        ...(cas ? { expected: expected ?? null } : {}),
      });
      request = { kind: 'write', client: id, seq: client.seq, attempt: 0, command };
    }
    this.stats.ops++;
    client.current = { input, call: this.now, request };
    this.sendRequest(client);
  }

  private sendRequest(client: SimClient): void {
    const current = client.current!;
    const request = { ...current.request, attempt: client.attempt };
    this.queue.push(this.now + this.latency(), { kind: 'client-request', node: client.target, request });
    this.queue.push(this.now + this.params.clientTimeoutMs, {
      kind: 'client-timeout',
      client: client.id,
      seq: client.seq,
      attempt: client.attempt,
    });
  }

  private onClientTimeout(id: number, seq: number, attempt: number): void {
    const client = this.clients[id - 1]!;
    if (client.current === undefined || client.seq !== seq || client.attempt !== attempt) return;
    // A client that stays with its node (as etcd clients keep their connection) retries there
    // mostly; otherwise it tries any node.
    const stay = this.params.forwarding && this.prng.chance(0.7);
    this.retry(client, stay ? client.target : this.anyNodeId());
  }

  private retry(client: SimClient, target: NodeId): void {
    client.attempt++;
    client.target = target;
    this.sendRequest(client);
  }

  private onClientRequest(id: NodeId, request: ClientRequest): void {
    const node = this.nodes.get(id)!;
    if (!node.alive) return;
    const raft = node.raw.raft;
    if (request.kind === 'read' && request.serializable) {
      // A serializable read is answered from local state at once: possibly stale, by request.
      const value = node.machine.get(request.key);
      this.reply({
        client: request.client,
        seq: request.seq,
        attempt: request.attempt,
        outcome: { kind: 'ok', result: { value } },
      });
      return;
    }
    if (!raft.tracker.isMember(raft.id)) {
      // A removed node (or one not yet given the membership) serves no clients: it sends them
      // to a voter of the newest configuration it knows, as a removed etcd member refuses.
      const voters = raft.tracker.voterIds();
      const leader = voters.length > 0 ? this.prng.pick(voters) : this.anyNodeId();
      const outcome = { kind: 'redirect' as const, leader };
      this.reply({ client: request.client, seq: request.seq, attempt: request.attempt, outcome });
      return;
    }
    const forward =
      raft.leader !== 0 && (this.params.forwarding || (request.kind === 'read' && this.params.followerReads));
    if (raft.role !== 'leader' && !forward) {
      const leader = raft.leader !== 0 ? raft.leader : this.anyNodeId();
      this.reply({
        client: request.client,
        seq: request.seq,
        attempt: request.attempt,
        outcome: { kind: 'redirect', leader },
      });
      return;
    }
    try {
      if (request.kind === 'write') {
        node.pendingWrites.set(`${request.client}:${request.seq}`, request);
        node.raw.propose(request.command);
      } else {
        const context = `${request.client}:${request.seq}:${request.attempt}`;
        node.pendingReads.set(context, request);
        node.raw.readIndex(new TextEncoder().encode(context));
      }
    } catch (error) {
      if (!isRaftError(error)) throw error;
      // Refused (e.g. a transfer in progress): the client's timeout retries.
    }
    this.drive(node);
  }

  private reply(reply: ClientReply): void {
    // Replies cross the same unreliable network.
    if (this.phase === 'safety' && this.prng.chance(this.params.dropRate)) return;
    this.queue.push(this.now + this.latency(), { kind: 'client-reply', reply });
  }

  private onClientReply(reply: ClientReply): void {
    const client = this.clients[reply.client - 1]!;
    const current = client.current;
    if (current === undefined || client.seq !== reply.seq) return;
    if (reply.outcome.kind === 'redirect') {
      // A redirect only matters for the attempt in progress. Any answer, though, completes
      // the operation: a client takes the first answer to any of its attempts.
      if (client.attempt !== reply.attempt) return;
      const leader = reply.outcome.leader;
      this.queue.push(this.now + this.prng.range(1, 20), {
        kind: 'client-timeout',
        client: client.id,
        seq: client.seq,
        attempt: client.attempt,
      });
      client.target = leader;
      return;
    }
    const output = toOutput(current.input, reply.outcome.result);
    client.current = undefined;
    this.queue.push(this.now + this.prng.range(0, 30), { kind: 'client-next', client: client.id });
    if (current.request.kind === 'read' && current.request.serializable) {
      this.checkSerializableRead(current.input.key, output);
      return;
    }
    this.history.push({
      clientId: client.id,
      input: current.input,
      call: current.call,
      return: this.now,
      output,
    });
    this.say(describeOperation(this.history[this.history.length - 1]!));
  }

  /**
   * A serializable read may be stale, so it is not part of the linearizable history; it must
   * still return a value some client wrote (never invented or corrupted data).
   */
  private checkSerializableRead(key: string, output: KvOutput): void {
    this.stats.serializableReads++;
    if (output.kind !== 'get' || output.value === null || this.written.has(output.value)) return;
    throw new SafetyViolation(
      'serializable-read',
      `a serializable read of ${key} returned "${output.value}", never written`,
    );
  }

  // ------------------------------------------------------------------ liveness

  private livenessDone(): boolean {
    return (
      this.clients.every((c) => c.done || c.current === undefined) &&
      this.liveRaws().some((r) => r.raft.role === 'leader')
    );
  }

  private checkLiveness(): void {
    const pending = this.clients.filter((c) => c.current !== undefined);
    for (const c of pending) {
      this.history.push({
        clientId: c.id,
        input: c.current!.input,
        call: c.current!.call,
        return: undefined,
        output: undefined,
      });
    }
    if (!this.liveRaws().some((r) => r.raft.role === 'leader')) {
      throw new SafetyViolation(
        'liveness',
        `no leader ${this.livenessMs} ms after every fault was healed (at ${this.now} ms); ${this.describeNodes()}`,
      );
    }
    if (pending.length > 0) {
      throw new SafetyViolation(
        'liveness',
        `${pending.length} client operations still pending ${this.livenessMs} ms after healing; ${this.describeNodes()}`,
      );
    }
  }

  /** One line per node for failure reports. */
  private describeNodes(): string {
    return [...this.nodes.values()]
      .map((n) => {
        const st = n.raw.status();
        const cs = confStateFromConfig(n.raw.raft.tracker.config);
        const members = `voters [${cs.voters}]${cs.votersOutgoing.length > 0 ? ` outgoing [${cs.votersOutgoing}]` : ''} learners [${cs.learners}]`;
        return `node ${n.id}${n.alive ? '' : ' (down)'}: ${st.role} term ${st.term} leader ${st.leader} commit ${st.commit} applied ${st.applied} last ${st.lastIndex} ${members}`;
      })
      .join('; ');
  }

  private liveRaws(): RawNode[] {
    return [...this.nodes.values()].filter((n) => n.alive).map((n) => n.raw);
  }
}

function toOutput(input: KvInput, result: KvResult | { value: string | null }): KvOutput {
  switch (input.kind) {
    case 'get':
      return { kind: 'get', value: (result as { value: string | null }).value };
    case 'put':
      return { kind: 'put' };
    case 'cas':
      return { kind: 'cas', ok: (result as KvResult).ok };
  }
}
