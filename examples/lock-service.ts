/**
 * A lock service with fencing tokens and lease expiry, replicated by Flotilla: named locks,
 * each held by one owner until it releases it or its lease runs out. Every grant gets a
 * fencing token larger than any before it, and each lock guards a value that only accepts
 * writes carrying a token at least as new as the newest it has seen — so a holder that
 * paused past its lease (and lost the lock to another) cannot overwrite the new holder's
 * work (Kleppmann's fencing).
 *
 * The state machine is deterministic: time comes in the commands (`now`, the proposing
 * member's clock in milliseconds), never from the clock of the member applying them.
 *
 *   node dist/examples/lock-service.js --id 1 --listen 127.0.0.1:7101 --http 127.0.0.1:8101 \
 *     --peers 1=127.0.0.1:7101,2=127.0.0.1:7102,3=127.0.0.1:7103 --data-dir data/lock-1
 *   curl -X POST 'localhost:8101/acquire?lock=db&owner=a&ttl=5000' -> {"ok":true,"token":1,"expiresAt":...}
 *   curl -X POST 'localhost:8101/write?lock=db&token=1&value=x'    -> {"ok":true}
 *   curl -X POST 'localhost:8101/release?lock=db&owner=a&token=1'  -> {"ok":true}
 *   curl 'localhost:8101/lock?lock=db'                             -> {"holder":null,"value":"x",...}
 */
import type { InMemoryStateMachine, StateMachineEntry } from '../src/index.js';
import { serveExample } from './example-server.js';

/** A command; `now` is the proposer's clock (milliseconds since the epoch). */
export type LockCommand =
  | { readonly op: 'acquire'; readonly lock: string; readonly owner: string; readonly ttlMs: number; readonly now: number }
  | { readonly op: 'release'; readonly lock: string; readonly owner: string; readonly token: number }
  | { readonly op: 'write'; readonly lock: string; readonly token: number; readonly value: string };

/** What a command returns: granted (with the token and lease end) or refused (with the holder). */
export interface LockResult {
  readonly ok: boolean;
  readonly token?: number;
  readonly expiresAt?: number;
  readonly holder?: string;
}

/** A lock as a query sees it at `now`. */
export interface LockView {
  readonly holder: string | null;
  readonly token: number;
  readonly expiresAt: number;
  readonly value: string | null;
}

interface Lock {
  owner: string;
  /** The token of the latest grant; writes with an older one are refused. */
  token: number;
  expiresAt: number;
  /** The guarded value and the newest token a write has carried. */
  value: string | null;
  writtenToken: number;
}

/** The state machine: every lock by name, and the last fencing token handed out. */
export class LockService implements InMemoryStateMachine<LockCommand, LockResult, { lock: string; now: number }, LockView> {
  readonly kind = 'in-memory';
  readonly codec = {
    encode: (command: LockCommand): Uint8Array => Buffer.from(JSON.stringify(command)),
    decode: (bytes: Uint8Array): LockCommand => JSON.parse(Buffer.from(bytes).toString()) as LockCommand,
  };
  private locks = new Map<string, Lock>();
  private lastToken = 0;

  apply(entries: readonly StateMachineEntry<LockCommand>[]): LockResult[] {
    return entries.map(({ command }) => (command === null ? { ok: true } : this.step(command)));
  }

  private step(command: LockCommand): LockResult {
    const lock = this.locks.get(command.lock);
    switch (command.op) {
      case 'acquire': {
        if (lock !== undefined && lock.owner !== '' && lock.expiresAt > command.now && lock.owner !== command.owner) {
          return { ok: false, holder: lock.owner, expiresAt: lock.expiresAt };
        }
        const renewing = lock !== undefined && lock.owner === command.owner && lock.expiresAt > command.now;
        const token = renewing ? lock.token : ++this.lastToken;
        const expiresAt = command.now + command.ttlMs;
        const held = lock ?? { owner: '', token: 0, expiresAt: 0, value: null, writtenToken: 0 };
        this.locks.set(command.lock, { ...held, owner: command.owner, token, expiresAt });
        return { ok: true, token, expiresAt };
      }
      case 'release': {
        if (lock === undefined || lock.owner !== command.owner || lock.token !== command.token) return { ok: false };
        lock.owner = '';
        lock.expiresAt = 0;
        return { ok: true };
      }
      case 'write': {
        // The fencing check: only a token at least as new as every one seen may write.
        if (lock === undefined || command.token < lock.token || command.token < lock.writtenToken) {
          return { ok: false };
        }
        lock.value = command.value;
        lock.writtenToken = command.token;
        return { ok: true, token: command.token };
      }
    }
  }

  query({ lock, now }: { lock: string; now: number }): LockView {
    const l = this.locks.get(lock);
    const held = l !== undefined && l.owner !== '' && l.expiresAt > now;
    return {
      holder: held ? l.owner : null,
      token: l?.token ?? 0,
      expiresAt: held ? l.expiresAt : 0,
      value: l?.value ?? null,
    };
  }

  snapshot(): Uint8Array[] {
    return [Buffer.from(JSON.stringify({ lastToken: this.lastToken, locks: [...this.locks] }))];
  }

  async restore(chunks: AsyncIterable<Uint8Array>): Promise<void> {
    const parts: Buffer[] = [];
    for await (const chunk of chunks) parts.push(Buffer.from(chunk));
    const state = JSON.parse(Buffer.concat(parts).toString()) as { lastToken: number; locks: [string, Lock][] };
    this.lastToken = state.lastToken;
    this.locks = new Map(state.locks);
  }

  async close(): Promise<void> {}
}

if (process.argv[1]?.endsWith('lock-service.js') === true) {
  await serveExample(new LockService(), (node, method, url) => {
    const p = (name: string): string => url.searchParams.get(name) ?? '';
    const lock = p('lock');
    if (method === 'POST' && url.pathname === '/acquire') {
      return node.propose({ op: 'acquire', lock, owner: p('owner'), ttlMs: Number(p('ttl')), now: Date.now() });
    }
    if (method === 'POST' && url.pathname === '/release') {
      return node.propose({ op: 'release', lock, owner: p('owner'), token: Number(p('token')) });
    }
    if (method === 'POST' && url.pathname === '/write') {
      return node.propose({ op: 'write', lock, token: Number(p('token')), value: p('value') });
    }
    if (url.pathname === '/lock') return node.read({ lock, now: Date.now() });
    return undefined;
  });
}
