/**
 * Client sessions for any state machine (Raft thesis §6.3): a command proposed in a session
 * carries the session's id and a sequence number, and is applied at most once however often
 * the client retries it; a retry gets the first application's result.
 *
 * - A session is opened by an entry of its own (`Host.openSession`); its index is the
 *   session's id. An id the table does not know (never opened, or evicted) is refused with
 *   `SESSION_EXPIRED`, so a retry can never apply twice: the client opens a new session.
 * - Per session the table keeps the last applied sequence number and that command's result.
 *   A command with a higher number is applied; the same number again returns the kept
 *   result; a lower one, or the same one whose result was not kept, is refused with
 *   `DUPLICATE` (it was applied; the client moved on or the result is gone).
 * - The table is replicated state, changed only by applying entries, so every member holds
 *   the same one. It is bounded (`sessionsMax`): opening a session beyond it evicts the one
 *   used longest ago (by log order, the same on every member).
 * - It travels in raft snapshots (a chunk after the member table, see member-table.ts).
 *   An on-disk state machine applies the log beyond the last raft snapshot before a restart,
 *   and the runtime does not replay what it applied: those entries go through the table only
 *   (`replay`), so their sequence numbers are known but their results are not (a retry of
 *   exactly such a command gets `DUPLICATE`).
 *
 * Results are kept as values in memory and encoded with MessagePack in snapshots, so a
 * retry served after a restart or by another member gets the decoded value: a state machine
 * whose session results matter should return plain data.
 */
import { pack, unpack } from 'msgpackr';
import type { Entry } from '../raft/index.js';
import { type SessionTag, unwrapCommand } from './envelope.js';
import { DuplicateError, type FlotillaError, SessionExpiredError } from './errors.js';

/** One client session. */
interface Session {
  readonly clientId: number;
  /** The sequence number of the last command applied in it (0: none yet). */
  readonly seq: number;
  /** The index of the entry that last touched it (orders eviction). */
  readonly lastIndex: number;
  /** Whether `result` is the result of command `seq`. */
  readonly resultKnown: boolean;
  readonly result: unknown;
}

/** What to do with a command proposed in a session. */
export type SessionVerdict =
  | { readonly kind: 'apply' }
  | { readonly kind: 'duplicate'; readonly result: unknown }
  | { readonly kind: 'refused'; readonly error: FlotillaError };

/** The client sessions of one raft group. */
export class ClientSessions {
  // Map iteration order is insertion order; re-inserting on every touch keeps it LRU order.
  private sessions = new Map<number, Session>();

  constructor(private readonly sessionsMax: number) {}

  /** How many sessions are open. */
  get size(): number {
    return this.sessions.size;
  }

  /** Opens the session with id `index` (the index of the entry that opens it). */
  open(index: number): void {
    this.put({ clientId: index, seq: 0, lastIndex: index, resultKnown: true, result: undefined });
  }

  /** What to do with a command tagged `tag` (deterministic: depends on the table only). */
  check(tag: SessionTag): SessionVerdict {
    const session = this.sessions.get(tag.clientId);
    if (session === undefined) {
      return refused(
        'SESSION_EXPIRED',
        `session ${tag.clientId} is not open (never opened, or evicted): open a new one`,
      );
    }
    if (tag.seq > session.seq) return { kind: 'apply' };
    if (tag.seq === session.seq && session.resultKnown) return { kind: 'duplicate', result: session.result };
    return refused(
      'DUPLICATE',
      `command ${tag.seq} of session ${tag.clientId} was applied already and its result is not kept ` +
        `(the session is at ${session.seq})`,
    );
  }

  /** Records that command `tag` was applied at `index` with `result` (unknown when `resultKnown` is false). */
  record(tag: SessionTag, index: number, result: unknown, resultKnown = true): void {
    this.put({ clientId: tag.clientId, seq: tag.seq, lastIndex: index, resultKnown, result });
  }

  /**
   * Runs entries an on-disk state machine applied before a restart through the table alone:
   * sessions opened and sequence numbers move as they did, results are unknown.
   */
  replay(entries: readonly Entry[]): void {
    for (const entry of entries) {
      if (entry.type !== 'normal') continue;
      const unwrapped = unwrapCommand(entry.data);
      if (unwrapped?.register === true) this.open(entry.index);
      else if (unwrapped?.session !== undefined && this.check(unwrapped.session).kind === 'apply') {
        this.record(unwrapped.session, entry.index, undefined, false);
      }
    }
  }

  /** The table as bytes for a snapshot (empty when there are no sessions). */
  encode(): Uint8Array {
    if (this.sessions.size === 0) return new Uint8Array(0);
    const rows = [...this.sessions.values()].map((s) => [
      s.clientId,
      s.seq,
      s.lastIndex,
      s.resultKnown,
      s.result,
    ]);
    return new Uint8Array(pack(rows));
  }

  /** Replaces the table by one from {@link encode} (empty bytes or undefined: no sessions). */
  load(bytes: Uint8Array | undefined): void {
    const sessions = new Map<number, Session>();
    if (bytes !== undefined && bytes.length > 0) {
      const rows = unpack(bytes) as [number, number, number, boolean, unknown][];
      if (!Array.isArray(rows)) throw new Error('snapshot: malformed session table');
      for (const [clientId, seq, lastIndex, resultKnown, result] of rows) {
        sessions.set(clientId, { clientId, seq, lastIndex, resultKnown, result });
      }
    }
    this.sessions = sessions;
  }

  private put(session: Session): void {
    this.sessions.delete(session.clientId);
    this.sessions.set(session.clientId, session);
    for (const oldest of this.sessions.keys()) {
      if (this.sessions.size <= this.sessionsMax) break;
      this.sessions.delete(oldest);
    }
  }
}

function refused(code: 'SESSION_EXPIRED' | 'DUPLICATE', message: string): SessionVerdict {
  const error =
    code === 'SESSION_EXPIRED' ? new SessionExpiredError(code, message) : new DuplicateError(code, message);
  return { kind: 'refused', error };
}
