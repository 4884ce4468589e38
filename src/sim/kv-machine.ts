/**
 * The simulator's replicated key-value state machine: a map with compare-and-swap, and a
 * session table (client id -> last sequence number and its result) so a command retried by
 * its client is applied exactly once. It implements the public {@link InMemoryStateMachine}
 * interface, and the simulated nodes drive it only through that interface.
 */
import type { CommandCodec, InMemoryStateMachine, StateMachineEntry } from '../node/state-machine.js';
import { jsonCodec, jsonRecordChunks, readJsonRecords } from './machine-image.js';

/** A write command as carried in a log entry. */
export interface KvCommand {
  readonly client: number;
  readonly seq: number;
  readonly op: 'put' | 'cas';
  readonly key: string;
  readonly value: string;
  /** For cas: the value the key must hold (null: absent). */
  readonly expected?: string | null;
}

/** The outcome of applying a write. */
export interface KvResult {
  readonly ok: boolean;
}

const codec: CommandCodec<KvCommand> = jsonCodec<KvCommand>();

/** Encodes a command for a log entry. */
export function encodeCommand(command: KvCommand): Uint8Array {
  return codec.encode(command);
}

/** Decodes a log entry's data; empty data (a leader's no-op) yields undefined. */
export function decodeCommand(data: Uint8Array): KvCommand | undefined {
  return data.length === 0 ? undefined : codec.decode(data);
}

/**
 * A snapshot is a stream of records, a few per chunk, as the on-disk store streams its own:
 * the keys, then the client sessions. A stream cut short still decodes, to part of the state;
 * only the stream's end says it is whole (the simulator's snapshot streams check it).
 */
type KvRecord = { k: string; v: string } | { c: number; seq: number; result: KvResult };

/** Records per snapshot chunk. */
const RECORDS_PER_CHUNK = 4;

/**
 * The key-value state machine with client sessions. `apply` answers each write with its
 * result, or null for an entry without a command and for a retry older than the client's last
 * command (no one waits for it); a query is a key, answered with its value or null.
 */
export class KvMachine implements InMemoryStateMachine<KvCommand, KvResult | null, string, string | null> {
  readonly kind = 'in-memory';
  readonly codec = codec;
  private data = new Map<string, string>();
  private sessions = new Map<number, { seq: number; result: KvResult }>();
  /** How many commands were skipped as duplicates (retries already applied). */
  duplicates = 0;

  apply(entries: readonly StateMachineEntry<KvCommand>[]): (KvResult | null)[] {
    return entries.map((entry) => (entry.command === null ? null : this.applyCommand(entry.command)));
  }

  /** Applies a command; a retry of the client's last command returns the first result. */
  private applyCommand(command: KvCommand): KvResult | null {
    const session = this.sessions.get(command.client);
    if (session !== undefined && command.seq <= session.seq) {
      this.duplicates++;
      return command.seq === session.seq ? session.result : null;
    }
    const current = this.data.get(command.key) ?? null;
    let result: KvResult;
    if (command.op === 'put' || current === (command.expected ?? null)) {
      this.data.set(command.key, command.value);
      result = { ok: true };
    } else {
      result = { ok: false };
    }
    this.sessions.set(command.client, { seq: command.seq, result });
    return result;
  }

  /** The value of the key `key`, or null. */
  query(key: string): string | null {
    return this.data.get(key) ?? null;
  }

  /** The whole state (data and sessions), captured now. */
  snapshot(): Uint8Array[] {
    const records: KvRecord[] = [];
    for (const [k, v] of this.data) records.push({ k, v });
    for (const [c, { seq, result }] of this.sessions) records.push({ c, seq, result });
    return jsonRecordChunks(records, RECORDS_PER_CHUNK);
  }

  /** Replaces the state with a snapshot's; an empty stream is the empty state. */
  async restore(chunks: AsyncIterable<Uint8Array>): Promise<void> {
    const data = new Map<string, string>();
    const sessions = new Map<number, { seq: number; result: KvResult }>();
    for (const record of await readJsonRecords<KvRecord>(chunks)) {
      if ('k' in record) data.set(record.k, record.v);
      else sessions.set(record.c, { seq: record.seq, result: record.result });
    }
    this.data = data;
    this.sessions = sessions;
  }

  async close(): Promise<void> {}
}
