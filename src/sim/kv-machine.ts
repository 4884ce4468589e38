/**
 * The simulator's replicated state machine: a key-value map with compare-and-swap, and a
 * session table (client id -> last sequence number and its result) so a command retried by
 * its client is applied exactly once.
 */

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

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** Encodes a command for a log entry. */
export function encodeCommand(command: KvCommand): Uint8Array {
  return encoder.encode(JSON.stringify(command));
}

/** Decodes a log entry's data; empty data (a leader's no-op) yields undefined. */
export function decodeCommand(data: Uint8Array): KvCommand | undefined {
  if (data.length === 0) return undefined;
  return JSON.parse(decoder.decode(data)) as KvCommand;
}

/** The key-value state machine with client sessions. */
export class KvMachine {
  private data = new Map<string, string>();
  private sessions = new Map<number, { seq: number; result: KvResult }>();
  /** How many commands were skipped as duplicates (retries already applied). */
  duplicates = 0;

  /** Applies a command; a retry of the client's last command returns the first result. */
  apply(command: KvCommand): KvResult | undefined {
    const session = this.sessions.get(command.client);
    if (session !== undefined && command.seq <= session.seq) {
      this.duplicates++;
      return command.seq === session.seq ? session.result : undefined;
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

  /** The value of `key`, or null. */
  get(key: string): string | null {
    return this.data.get(key) ?? null;
  }

  /** Serializes the whole state (data and sessions). */
  snapshot(): Uint8Array {
    return encoder.encode(JSON.stringify({ data: [...this.data], sessions: [...this.sessions] }));
  }

  /** Replaces the state with a snapshot's. */
  restore(bytes: Uint8Array): void {
    if (bytes.length === 0) {
      this.data = new Map();
      this.sessions = new Map();
      return;
    }
    const parsed = JSON.parse(decoder.decode(bytes)) as {
      data: [string, string][];
      sessions: [number, { seq: number; result: KvResult }][];
    };
    this.data = new Map(parsed.data);
    this.sessions = new Map(parsed.sessions);
  }
}
