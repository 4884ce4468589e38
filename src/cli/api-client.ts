/**
 * The HTTP API as the client commands reach it: which endpoints to use, and a request that
 * goes to the first endpoint giving a definite answer. `--endpoints` lists client URLs
 * (default `$FLOTILLA_ENDPOINTS`, else `./data/cluster.json`'s, else `http://127.0.0.1:2379`).
 *
 * Writes are exactly-once when sent in a client session (a random client id, sequence
 * number 1, sent as `x-flotilla-client-id` / `x-flotilla-seq`): they are retried with the
 * same pair, round the endpoints, after a connection failure, a timeout or a retryable
 * error, for up to {@link WRITE_RETRY_MS}: a retry of a write that was applied answers its
 * first outcome instead of applying it again.
 */
import { randomInt } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import type { ClientSession } from '../kv/index.js';

/** Per request, in milliseconds: longer than a node's default request timeout (5 s). */
export const REQUEST_TIMEOUT_MS = 8000;
/** How long an exactly-once write is retried (same session) before giving up, in milliseconds. */
export const WRITE_RETRY_MS = 20_000;
/** Client ids are drawn at random below this. */
const CLIENT_ID_MAX = 2 ** 48;

/** A new client session (see `src/server/http.ts`): a random client id, sequence number 1 (one write per CLI process). */
export function newSession(): ClientSession {
  return { clientId: randomInt(1, CLIENT_ID_MAX), seq: 1 };
}

/** The endpoints to use, from the flag, the environment, or `./data/cluster.json`. */
export function resolveEndpoints(flag: string | undefined): string[] {
  const { FLOTILLA_ENDPOINTS: fromEnvironment } = process.env;
  const text = flag ?? fromEnvironment;
  if (text !== undefined && text.trim() !== '') {
    return text
      .split(',')
      .map((e) => e.trim())
      .filter((e) => e !== '')
      .map((e) => (e.startsWith('http') ? e : `http://${e}`).replace(/\/$/, ''));
  }
  if (existsSync('data/cluster.json')) {
    const file = JSON.parse(readFileSync('data/cluster.json', 'utf8')) as { nodes: { clientUrl: string }[] };
    return file.nodes.map((n) => n.clientUrl);
  }
  return ['http://127.0.0.1:2379'];
}

/** The fields of an API response the commands look at. */
export interface ReplyBody {
  readonly error?: { readonly code: string; readonly message: string; readonly retryable?: boolean };
  readonly kvs?: readonly { readonly key: string; readonly value: string }[];
  readonly key?: string;
  readonly value?: string;
  readonly deleted?: number;
  readonly succeeded?: boolean;
  readonly responses?: readonly unknown[];
}

/** An API response: its status and JSON body. */
export interface Reply {
  readonly status: number;
  readonly body: ReplyBody;
}

/** Options of {@link request}. */
export interface RequestOptions {
  /**
   * Makes a write exactly-once: sent as headers, and every retry reuses it, so the request
   * is also retried after a timeout or a lost answer (not only after a retryable error).
   */
  readonly session?: ClientSession;
  /** With a session: how long to keep retrying round the endpoints (default {@link WRITE_RETRY_MS}). */
  readonly retryMs?: number;
  /** Per attempt (default {@link REQUEST_TIMEOUT_MS}). */
  readonly attemptTimeoutMs?: number;
}

/**
 * Sends a request to the first endpoint that gives a definite answer. Without a session,
 * each endpoint is tried once, moving on after a connection failure or a retryable error.
 * With one, the endpoints are tried in turn (with a growing pause after each round) until
 * one answers definitely, also moving on after a timeout, a dropped connection or a 504
 * `TIMEOUT`: the session makes the retries safe.
 */
export async function request(
  endpoints: readonly string[],
  method: string,
  path: string,
  body?: unknown,
  options: RequestOptions = {},
): Promise<Reply> {
  const { session } = options;
  const deadline = Date.now() + (session === undefined ? 0 : (options.retryMs ?? WRITE_RETRY_MS));
  const headers: Record<string, string> = {};
  if (body !== undefined) headers['content-type'] = 'application/json';
  if (session !== undefined) {
    headers['x-flotilla-client-id'] = String(session.clientId);
    headers['x-flotilla-seq'] = String(session.seq);
  }
  let last: Reply | undefined;
  let lastError: unknown;
  for (let round = 0; ; round++) {
    for (const endpoint of endpoints) {
      try {
        const attemptMs = options.attemptTimeoutMs ?? REQUEST_TIMEOUT_MS;
        // A retried write stays within its budget (give an attempt at least a moment).
        const timeoutMs =
          session === undefined ? attemptMs : Math.max(250, Math.min(attemptMs, deadline - Date.now()));
        const init: RequestInit = { method, headers, signal: AbortSignal.timeout(timeoutMs) };
        if (body !== undefined) init.body = JSON.stringify(body);
        const res = await fetch(`${endpoint}${path}`, init);
        const reply: Reply = { status: res.status, body: (await res.json()) as ReplyBody };
        const error = reply.body.error;
        const retry = error?.retryable === true || (session !== undefined && error?.code === 'TIMEOUT');
        if (!retry) return reply;
        last = reply;
      } catch (error) {
        lastError = error;
      }
    }
    if (Date.now() >= deadline) break;
    await new Promise((r) => setTimeout(r, Math.min(100 * 2 ** round, 1000)));
  }
  if (last !== undefined) return last;
  const cause = lastError instanceof Error ? (lastError.cause ?? lastError) : lastError;
  throw new Error(
    `no endpoint answered (${endpoints.join(', ')}): ${(cause as Error | undefined)?.message ?? String(cause)}` +
      (session === undefined ? '' : '; the write may or may not have been applied'),
  );
}
