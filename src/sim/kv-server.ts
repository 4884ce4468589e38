/**
 * The KV service each simulated node runs on top of Raft: its replica of the key-value state
 * machine, client requests (writes proposed, linearizable reads by read index, serializable
 * reads from local state, redirects), and the answers, which cross the same unreliable network.
 */
import type { Entry, NodeId, Ready } from '../raft/index.js';
import { isRaftError } from '../raft/index.js';
import { decodeCommand, KvMachine } from './kv-machine.js';
import type { SimContext } from './sim-context.js';
import type { ClientReply, ClientRequest } from './sim-events.js';
import type { NodeApplication, SimNode } from './sim-node.js';
import type { SimWorld } from './sim-world.js';

/** Who is waiting for an answer: one attempt of one client operation. */
type Waiting = { client: number; seq: number; attempt: number };

/** One node's KV state: lost with the process on a crash, rebuilt from the disk on restart. */
interface KvReplica {
  machine: KvMachine;
  /** Writes proposed here whose clients wait for an answer: key `client:seq`. */
  pendingWrites: Map<string, Waiting>;
  /** Reads waiting for their read index to be released, by context key. */
  pendingReads: Map<string, Waiting & { key: string }>;
  /** Reads released and waiting for the applied index to reach `index`. */
  readyReads: (Waiting & { index: number; key: string })[];
}

/** The KV service of every node. */
export class KvServer implements NodeApplication {
  private readonly replicas = new Map<NodeId, KvReplica>();

  constructor(
    private readonly ctx: SimContext,
    private readonly world: SimWorld,
  ) {}

  start(id: NodeId, snapshot: Uint8Array): void {
    const machine = new KvMachine();
    machine.restore(snapshot);
    this.replicas.set(id, { machine, pendingWrites: new Map(), pendingReads: new Map(), readyReads: [] });
  }

  restore(id: NodeId, snapshot: Uint8Array): void {
    this.replica(id).machine.restore(snapshot);
  }

  snapshot(id: NodeId): Uint8Array {
    return this.replica(id).machine.snapshot();
  }

  applyEntry(node: SimNode, entry: Entry): void {
    const replica = this.replica(node.id);
    const command = decodeCommand(entry.data);
    if (command === undefined) return;
    const result = replica.machine.apply(command);
    const key = `${command.client}:${command.seq}`;
    const waiting = replica.pendingWrites.get(key);
    if (waiting !== undefined && result !== undefined) {
      replica.pendingWrites.delete(key);
      this.answer(waiting, { kind: 'ok', result });
    }
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
    this.serveReads(node, replica, rd);
  }

  /** Serves released reads whose index the state machine has reached. */
  private serveReads(node: SimNode, replica: KvReplica, rd: Ready): void {
    const last = rd.committedEntries[rd.committedEntries.length - 1];
    const applied = Math.max(node.raw.raft.log.applied, last?.index ?? 0, rd.snapshot?.meta.index ?? 0);
    const keep: KvReplica['readyReads'] = [];
    for (const read of replica.readyReads) {
      if (read.index > applied) {
        keep.push(read);
        continue;
      }
      const value = replica.machine.get(read.key);
      this.answer(read, { kind: 'ok', result: { value } });
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
      const value = this.replica(id).machine.get(request.key);
      this.answer(request, { kind: 'ok', result: { value } });
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

  /** Proposes a write or asks for a read index; the answer comes once it is applied. */
  private submit(node: SimNode, request: ClientRequest): void {
    const replica = this.replica(node.id);
    try {
      if (request.kind === 'write') {
        replica.pendingWrites.set(`${request.client}:${request.seq}`, request);
        node.raw.propose(request.command);
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

  private replica(id: NodeId): KvReplica {
    return this.replicas.get(id)!;
  }
}
