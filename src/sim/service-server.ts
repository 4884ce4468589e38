/**
 * The service each simulated node runs on top of Raft: its replica of the run's state machine,
 * driven only through the public state machine interface (`SimMachineDriver`), client requests
 * (writes proposed as the codec's bytes, linearizable reads by read index, serializable reads
 * from local state, redirects), and the answers, which cross the same unreliable network.
 */

import type { CommandCodec, StateMachineEntry } from '../node/state-machine.js';
import type { Entry, NodeId, Ready } from '../raft/index.js';
import { isRaftError } from '../raft/index.js';
import type { SimContext } from './sim-context.js';
import type { ClientReply, ClientRequest } from './sim-events.js';
import { SimMachineDriver, type SimStateMachine } from './sim-machine-driver.js';
import type { NodeApplication, SimNode } from './sim-node.js';
import type { SimService } from './sim-service.js';
import type { SimWorld } from './sim-world.js';

/** Who is waiting for an answer: one attempt of one client operation. */
type Waiting = { client: number; seq: number; attempt: number };

/** One node's service state: lost with the process on a crash, rebuilt from the disk on restart. */
interface Replica {
  machine: SimStateMachine & { readonly duplicates: number };
  driver: SimMachineDriver;
  /** Writes proposed here whose clients wait for an answer: key `client:seq`. */
  pendingWrites: Map<string, Waiting>;
  /** Reads waiting for their read index to be released, by context key. */
  pendingReads: Map<string, Waiting & { query: unknown }>;
  /** Reads released and waiting for the applied index to reach `index`. */
  readyReads: (Waiting & { index: number; query: unknown })[];
}

/** The service of every node. */
export class ServiceServer implements NodeApplication {
  private readonly replicas = new Map<NodeId, Replica>();

  constructor(
    private readonly ctx: SimContext,
    private readonly world: SimWorld,
    private readonly service: SimService,
  ) {}

  start(id: NodeId, index: number, image: Uint8Array): Promise<void> {
    const machine = this.service.createMachine();
    const driver = new SimMachineDriver(machine);
    this.replicas.set(id, {
      machine,
      driver,
      pendingWrites: new Map(),
      pendingReads: new Map(),
      readyReads: [],
    });
    return driver.restore(index, image);
  }

  restore(id: NodeId, index: number, image: Uint8Array): Promise<void> {
    return this.replica(id).driver.restore(index, image);
  }

  snapshot(id: NodeId): Uint8Array {
    return this.replica(id).driver.snapshot();
  }

  /** Applies every committed entry; the ones Raft uses itself reach the machine as `command: null`. */
  applyEntries(node: SimNode, entries: readonly Entry[]): void {
    const replica = this.replica(node.id);
    const codec = replica.machine.codec;
    const batch: StateMachineEntry<unknown>[] = entries.map((entry) => ({
      index: entry.index,
      command:
        entry.type === 'conf-change' || entry.data.length === 0 ? null : decodeOrNull(codec, entry.data),
    }));
    const results = replica.driver.apply(batch);
    batch.forEach((entry, i) => {
      const result = results[i];
      if (entry.command === null || result === null) return;
      const { client, seq } = this.service.session(entry.command);
      const key = `${client}:${seq}`;
      const waiting = replica.pendingWrites.get(key);
      if (waiting === undefined) return;
      replica.pendingWrites.delete(key);
      this.answer(waiting, { kind: 'ok', result });
    });
  }

  afterApply(node: SimNode, rd: Ready): void {
    const replica = this.replica(node.id);
    const { stats } = this.ctx;
    stats.duplicatesSuppressed = Math.max(stats.duplicatesSuppressed, replica.machine.duplicates);
    for (const rs of rd.readStates) {
      const key = new TextDecoder().decode(rs.context);
      const read = replica.pendingReads.get(key);
      if (read === undefined) continue;
      replica.pendingReads.delete(key);
      replica.readyReads.push({ index: rs.index, ...read });
    }
    this.serveReads(replica);
  }

  /** Serves released reads whose index the state machine has reached. */
  private serveReads(replica: Replica): void {
    const applied = replica.driver.appliedIndex;
    const keep: Replica['readyReads'] = [];
    for (const read of replica.readyReads) {
      if (read.index > applied) keep.push(read);
      else this.answer(read, { kind: 'ok', result: replica.driver.query(read.query) });
    }
    replica.readyReads = keep;
  }

  /** A client request reaches node `id`: answered, redirected, or submitted to Raft. */
  onClientRequest(id: NodeId, request: ClientRequest): void {
    const node = this.world.nodes.get(id)!;
    if (!node.alive) return;
    const raft = node.raw.raft;
    const { params, prng } = this.ctx;
    if (request.kind === 'read' && request.serializable) {
      // A serializable read is answered from local state at once: possibly stale, by request.
      this.answer(request, { kind: 'ok', result: this.replica(id).driver.query(request.query) });
      return;
    }
    if (!raft.tracker.isMember(raft.id)) {
      // A removed node (or one not yet given the membership) serves no clients: it sends them
      // to a voter of the newest configuration it knows, as a removed etcd member refuses.
      const voters = raft.tracker.voterIds();
      const leader = voters.length > 0 ? prng.pick(voters) : this.world.anyNodeId();
      this.answer(request, { kind: 'redirect', leader });
      return;
    }
    const forward =
      raft.leader !== 0 && (params.forwarding || (request.kind === 'read' && params.followerReads));
    if (raft.role !== 'leader' && !forward) {
      const leader = raft.leader !== 0 ? raft.leader : this.world.anyNodeId();
      this.answer(request, { kind: 'redirect', leader });
      return;
    }
    this.submit(node, request);
  }

  /** Proposes a write (the codec's bytes) or asks for a read index; the answer comes once it is applied. */
  private submit(node: SimNode, request: ClientRequest): void {
    const replica = this.replica(node.id);
    try {
      if (request.kind === 'write') {
        replica.pendingWrites.set(`${request.client}:${request.seq}`, request);
        node.raw.propose(replica.machine.codec.encode(request.command));
      } else {
        const context = `${request.client}:${request.seq}:${request.attempt}`;
        replica.pendingReads.set(context, request);
        node.raw.readIndex(new TextEncoder().encode(context));
      }
    } catch (error) {
      if (!isRaftError(error)) throw error;
      // Refused (e.g. a transfer in progress): the client's timeout retries.
    }
    this.world.runtime.drive(node);
  }

  /** Sends `outcome` to the client attempt `to`. */
  private answer(to: Waiting, outcome: ClientReply['outcome']): void {
    this.reply({ client: to.client, seq: to.seq, attempt: to.attempt, outcome });
  }

  private reply(reply: ClientReply): void {
    // Replies cross the same unreliable network.
    if (this.world.network.loses()) return;
    this.ctx.after(this.world.network.latency(), { kind: 'client-reply', reply });
  }

  private replica(id: NodeId): Replica {
    return this.replicas.get(id)!;
  }
}

/** A command from its bytes; null for bytes that do not decode, as the interface asks. */
function decodeOrNull(codec: CommandCodec<unknown>, bytes: Uint8Array): unknown {
  try {
    return codec.decode(bytes);
  } catch {
    return null;
  }
}
