/**
 * The node-level heartbeat of a multi-raft host: what one host tells another about itself
 * rather than about one raft group, one HOST frame (src/transport/frames.ts) per peer and
 * beat, however many groups the two hosts share:
 *
 *     beat = [BEAT_TAG, epoch, quiesces, wakes]
 *     quiesces = [groupId, term, commit, groupId, term, commit, ...]
 *     wakes = [groupId, groupId, ...]
 *
 * - `epoch`: a random number the sending host drew when it started; a new epoch means the host
 *   restarted (its replicas forgot what they knew), even if no beat was ever missed.
 * - `quiesces`: groups this host leads that stopped ticking, each with the leader's term and
 *   commit index (the last index of its log): a follower of that term whose log ends there
 *   stops ticking too.
 * - `wakes`: groups whose leader on the receiving host is asked to tick again (a follower of
 *   it was woken by something other than its leader).
 *
 * A beat is sent every few ticks even when it carries no notice: peers judge this host alive
 * by hearing anything from it (a beat or a raft message), which lets quiesced followers detect
 * a dead leader without any per-group heartbeat.
 */
import { TupleReader } from '../transport/codec.js';

/** First slot of a beat: tells a beat from any other HOST frame value a later version may add. */
const BEAT_TAG = 1;

/** A quiesce notice: the leader of `groupId` in `term` stopped ticking with its log committed to `commit`. */
export interface QuiesceNotice {
  readonly groupId: number;
  readonly term: number;
  readonly commit: number;
}

/** One host's beat to a peer (see the module comment). */
export interface HostBeat {
  readonly epoch: number;
  readonly quiesces: readonly QuiesceNotice[];
  readonly wakes: readonly number[];
}

/** The HOST frame value of `beat`. */
export function encodeBeat(beat: HostBeat): unknown[] {
  const quiesces: number[] = new Array(beat.quiesces.length * 3);
  let i = 0;
  for (const q of beat.quiesces) {
    quiesces[i++] = q.groupId;
    quiesces[i++] = q.term;
    quiesces[i++] = q.commit;
  }
  return [BEAT_TAG, beat.epoch, quiesces, [...beat.wakes]];
}

/**
 * The beat a HOST frame value carries; throws a `MALFORMED` TransportError for anything else
 * (a peer's bug: its sender logs it and drops the connection, as for a bad raft message).
 */
export function decodeBeat(value: unknown): HostBeat {
  const r = new TupleReader(value, 'host beat');
  const tag = r.uint('tag');
  if (tag !== BEAT_TAG) throw r.error(`unknown host frame tag ${tag}`);
  const epoch = r.uint('epoch');
  const flat = r.array('quiesces');
  const wakesFlat = r.array('wakes');
  r.end();
  if (flat.length % 3 !== 0) throw r.error(`quiesces has ${flat.length} slots, not 3 per notice`);
  const q = new TupleReader(flat, 'host beat quiesces');
  const quiesces: QuiesceNotice[] = new Array(flat.length / 3);
  for (let i = 0; i < quiesces.length; i++) {
    quiesces[i] = { groupId: q.uint('groupId'), term: q.uint('term'), commit: q.uint('commit') };
  }
  const w = new TupleReader(wakesFlat, 'host beat wakes');
  const wakes = wakesFlat.map(() => w.uint('groupId'));
  return { epoch, quiesces, wakes };
}

/** What a host has to tell each peer in its next beat. */
export class BeatOutbox {
  private readonly quiesces = new Map<number, QuiesceNotice[]>();
  private readonly wakes = new Map<number, number[]>();

  constructor(readonly epoch: number) {}

  /** Tells `peer` that this host's replica of `notice.groupId`, its leader, quiesced. */
  quiesce(peer: number, notice: QuiesceNotice): void {
    const list = this.quiesces.get(peer);
    if (list === undefined) this.quiesces.set(peer, [notice]);
    else list.push(notice);
  }

  /** Asks `peer`, the leader of `groupId` as this host knows it, to tick the group again. */
  wake(peer: number, groupId: number): void {
    const list = this.wakes.get(peer);
    if (list === undefined) this.wakes.set(peer, [groupId]);
    else list.push(groupId);
  }

  /** Whether a notice waits for any peer. */
  hasNotices(): boolean {
    return this.quiesces.size > 0 || this.wakes.size > 0;
  }

  /** Takes the beat for `peer`: this host's epoch and every notice queued for it. */
  take(peer: number): HostBeat {
    const beat = {
      epoch: this.epoch,
      quiesces: this.quiesces.get(peer) ?? [],
      wakes: this.wakes.get(peer) ?? [],
    };
    this.quiesces.delete(peer);
    this.wakes.delete(peer);
    return beat;
  }

  /** The peers with notices queued. */
  peersWithNotices(): number[] {
    return [...new Set([...this.quiesces.keys(), ...this.wakes.keys()])];
  }
}
