/**
 * Coalesced heartbeats (CockroachDB's): the heartbeats and heartbeat responses that the active
 * groups of a multi-raft host send one peer host in one event-loop turn go as one HOST frame
 * (src/transport/frames.ts) instead of one MESSAGE frame each, and are expanded on receipt into
 * the per-group messages the cores expect:
 *
 *     heartbeats = [HEARTBEATS_TAG, [groupId, term, commit, context, ...], [groupId, term, context, ...]]
 *
 * the first list the heartbeats (`commit` and the read `context` of each), the second the
 * responses; sender and receiver are the two hosts, which are the replicas' ids. A tick of a
 * host leading G active groups with a peer then costs one frame to that peer rather than G.
 *
 * Heartbeats may thereby overtake or fall behind a group's other messages to the same peer;
 * raft allows any reordering (a heartbeat's commit is capped by the follower's known match,
 * and every answer is checked against the leader's current state).
 */
import type { HeartbeatRequest, HeartbeatResponse, Message, NodeId } from '../raft/index.js';
import { TupleReader } from '../transport/codec.js';
import type { TcpTransport } from '../transport/index.js';

/** First slot of a coalesced heartbeat frame (host-beat.ts's beat is 1). */
export const HEARTBEATS_TAG = 2;

/** Slots per heartbeat and per response in the flat lists. */
const HEARTBEAT_SLOTS = 4;
const RESPONSE_SLOTS = 3;

/** What a group sends through: the host's transport, with heartbeats diverted into batches. */
export type GroupSender = Pick<TcpTransport, 'send' | 'sendSnapshot' | 'stats'>;

/** Batches the heartbeats of every group of a host per peer and event-loop turn. */
export class HeartbeatCoalescer implements GroupSender {
  /** Per peer: the flat heartbeat and response lists of this turn. */
  private readonly batches = new Map<NodeId, { heartbeats: unknown[]; responses: unknown[] }>();
  private flushScheduled = false;

  constructor(
    private readonly transport: Pick<TcpTransport, 'send' | 'sendSnapshot' | 'stats' | 'sendHost'>,
  ) {}

  /** Sends `messages`: heartbeats and their responses batched, everything else at once. */
  send(messages: readonly Message[]): void {
    const others: Message[] = [];
    for (const m of messages) {
      if (m.type === 'heartbeat') this.batch(m.to).heartbeats.push(m.groupId, m.term, m.commit, m.context);
      else if (m.type === 'heartbeat-response') this.batch(m.to).responses.push(m.groupId, m.term, m.context);
      else others.push(m);
    }
    if (others.length > 0) this.transport.send(others);
  }

  sendSnapshot(...args: Parameters<TcpTransport['sendSnapshot']>): void {
    this.transport.sendSnapshot(...args);
  }

  stats(): ReturnType<TcpTransport['stats']> {
    return this.transport.stats();
  }

  private batch(peer: NodeId): { heartbeats: unknown[]; responses: unknown[] } {
    let batch = this.batches.get(peer);
    if (batch === undefined) {
      batch = { heartbeats: [], responses: [] };
      this.batches.set(peer, batch);
    }
    if (!this.flushScheduled) {
      this.flushScheduled = true;
      // After the turn in which every group ran its Ready pass: one frame per peer.
      setImmediate(() => this.flush());
    }
    return batch;
  }

  private flush(): void {
    this.flushScheduled = false;
    for (const [peer, { heartbeats, responses }] of this.batches) {
      this.transport.sendHost(peer, [HEARTBEATS_TAG, heartbeats, responses]);
    }
    this.batches.clear();
  }
}

/**
 * The messages a coalesced heartbeat frame from host `from` to host `to` carries; throws a
 * `MALFORMED` TransportError for a malformed one.
 */
export function expandHeartbeats(value: unknown, from: NodeId, to: NodeId): Message[] {
  const r = new TupleReader(value, 'coalesced heartbeats');
  const tag = r.uint('tag');
  if (tag !== HEARTBEATS_TAG) throw r.error(`unknown host frame tag ${tag}`);
  const heartbeats = r.array('heartbeats');
  const responses = r.array('responses');
  r.end();
  if (heartbeats.length % HEARTBEAT_SLOTS !== 0 || responses.length % RESPONSE_SLOTS !== 0) {
    throw r.error(`lists of ${heartbeats.length} and ${responses.length} slots`);
  }
  const out: Message[] = [];
  const h = new TupleReader(heartbeats, 'coalesced heartbeat');
  for (let i = 0; i < heartbeats.length; i += HEARTBEAT_SLOTS) {
    const groupId = h.uint('groupId');
    const term = h.uint('term');
    const commit = h.uint('commit');
    const m: HeartbeatRequest = {
      type: 'heartbeat',
      groupId,
      from,
      to,
      term,
      commit,
      context: h.bytes('context'),
    };
    out.push(m);
  }
  const p = new TupleReader(responses, 'coalesced heartbeat response');
  for (let i = 0; i < responses.length; i += RESPONSE_SLOTS) {
    const groupId = p.uint('groupId');
    const term = p.uint('term');
    const m: HeartbeatResponse = {
      type: 'heartbeat-response',
      groupId,
      from,
      to,
      term,
      context: p.bytes('context'),
    };
    out.push(m);
  }
  return out;
}

/** The tag of a HOST frame value (its first slot), or undefined when it has none. */
export function hostFrameTag(value: unknown): unknown {
  return Array.isArray(value) ? value[0] : undefined;
}
