/**
 * Client sessions for exactly-once commands (Raft thesis §6.3): per client, the sequence
 * number of its last applied command and that command's outcome. The table is state: it is
 * persisted, snapshotted and hashed like the keys. Its size is bounded by evicting the
 * session touched longest ago; eviction depends only on the applied commands, so every
 * replica evicts the same sessions.
 */

import { assert } from '../raft/assert.js';
import { KvError } from './errors.js';
import type { ClientSession, KvResult } from './types.js';

/** One client's session. */
export interface SessionRecord {
  readonly clientId: number;
  /** Sequence number of the last applied command. */
  readonly seq: number;
  /** Raft index of the entry that last touched the session (orders eviction). */
  readonly lastIndex: number;
  /** The outcome of command `seq`, returned again to retries. */
  readonly result: KvResult;
}

/** All sessions, least recently touched first. */
export class SessionTable {
  // Map iteration order is insertion order: re-inserting on touch keeps it LRU order.
  private readonly sessions = new Map<number, SessionRecord>();

  /** How many sessions exist. */
  get size(): number {
    return this.sessions.size;
  }

  /** The session of `clientId`, if any. */
  get(clientId: number): SessionRecord | undefined {
    return this.sessions.get(clientId);
  }

  /**
   * Stores `session` as the most recently touched and returns the sessions evicted to stay
   * within `sessionsMax`.
   */
  put(session: SessionRecord, sessionsMax: number): SessionRecord[] {
    const previous = this.sessions.get(session.clientId);
    assert(previous === undefined || previous.seq < session.seq, 'session sequence must increase');
    this.sessions.delete(session.clientId);
    this.sessions.set(session.clientId, session);
    const evicted: SessionRecord[] = [];
    for (const oldest of this.sessions.values()) {
      if (this.sessions.size - evicted.length <= sessionsMax) break;
      evicted.push(oldest);
    }
    for (const session of evicted) this.sessions.delete(session.clientId);
    return evicted;
  }

  /** Replaces the table by `sessions` (ordered by ascending `lastIndex`). */
  load(sessions: Iterable<SessionRecord>): void {
    this.sessions.clear();
    let lastIndex = -1;
    for (const session of sessions) {
      assert(session.lastIndex > lastIndex, 'sessions must load in touch order');
      lastIndex = session.lastIndex;
      this.sessions.set(session.clientId, session);
    }
  }

  /** Every session, least recently touched first. */
  list(): SessionRecord[] {
    return [...this.sessions.values()];
  }
}

/** Whether a session's client id and sequence are positive safe integers. */
export function validSession(session: ClientSession): boolean {
  const { clientId, seq } = session;
  return Number.isSafeInteger(clientId) && clientId > 0 && Number.isSafeInteger(seq) && seq > 0;
}

/** The `STALE_SEQUENCE` error of a command older than its client's last applied one. */
export function staleSequence(session: ClientSession, lastSeq: number): KvError {
  return new KvError(
    'STALE_SEQUENCE',
    `kv: command ${session.seq} of client ${session.clientId} precedes its last applied command ${lastSeq}`,
  );
}
