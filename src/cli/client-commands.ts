/**
 * Client commands over the HTTP API: `put`, `get`, `del`, `txn`, `status`. `--endpoints`
 * lists client URLs (default `$FLOTILLA_ENDPOINTS`, else `./data/cluster.json`'s, else
 * `http://127.0.0.1:2379`); a request goes to the first endpoint that answers, moving on
 * after a connection failure or a retryable error.
 *
 * Writes (`put`, `del`, `txn`) are exactly-once: each runs in a client session (a random
 * client id, sequence number 1, sent as `x-flotilla-client-id` / `x-flotilla-seq`) and is
 * retried with the same pair, round the endpoints, after a connection failure, a timeout or
 * a retryable error, for up to {@link WRITE_RETRY_MS}: a retry of a write that was applied
 * answers its first outcome instead of applying it again.
 */
import { randomInt } from 'node:crypto';
import { createWriteStream, existsSync, readFileSync } from 'node:fs';
import { rename, rm } from 'node:fs/promises';
import { resolve } from 'node:path';
import { Readable, Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { Command } from 'commander';
import type { ClientSession } from '../kv/index.js';
import { isNodeError, parseInitialCluster, restoreDataDir } from '../node/index.js';
import { registerMemberCommands } from './member-commands.js';

interface ClientFlags {
  endpoints?: string;
  json?: boolean;
  consistency?: string;
  prefix?: boolean;
  progress?: boolean;
  commandTimeout?: string;
}

/** Per request, in milliseconds: longer than a node's default request timeout (5 s). */
const REQUEST_TIMEOUT_MS = 8000;
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
interface ReplyBody {
  readonly error?: { readonly code: string; readonly message: string; readonly retryable?: boolean };
  readonly kvs?: readonly { readonly key: string; readonly value: string }[];
  readonly key?: string;
  readonly value?: string;
  readonly deleted?: number;
  readonly succeeded?: boolean;
  readonly responses?: readonly unknown[];
}

interface Reply {
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

function keyPath(key: string): string {
  return `/v1/kv/${key.split('/').map(encodeURIComponent).join('/')}`;
}

function finish(reply: Reply, json: boolean, text: () => string): void {
  const error = reply.body.error;
  if (json) console.log(JSON.stringify(reply.body));
  else if (error !== undefined) console.error(`error: ${error.code}: ${error.message}`);
  else console.log(text());
  if (error !== undefined) process.exitCode = 1;
}

function withCommon(command: Command): Command {
  return command
    .option('--endpoints <urls>', 'comma-separated client URLs')
    .option('--json', 'print the JSON response');
}

/** The options of an exactly-once write command. */
function withWrite(command: Command): Command {
  return withCommon(command).option(
    '--command-timeout <ms>',
    'how long the write may take, retries included',
    String(WRITE_RETRY_MS),
  );
}

/** A new session, and the retry budget from `--command-timeout` (exit 2 when it is not a number). */
function writeOptions(flags: ClientFlags): RequestOptions {
  const text = flags.commandTimeout ?? String(WRITE_RETRY_MS);
  if (!/^\d{1,9}$/.test(text)) {
    console.error(`error: --command-timeout must be a number of milliseconds, got '${text}'`);
    process.exit(2);
  }
  return { session: newSession(), retryMs: Number(text) };
}

/** Registers `put`, `get`, `del`, `status`, the `snapshot` and the `member` commands. */
export function registerClientCommands(program: Command): void {
  registerSnapshotCommands(program);
  registerMemberCommands(program);
  withWrite(program.command('put <key> <value>').description('write a key')).action(
    async (key: string, value: string, flags: ClientFlags) => {
      const reply = await request(
        resolveEndpoints(flags.endpoints),
        'PUT',
        keyPath(key),
        { value },
        writeOptions(flags),
      );
      finish(reply, flags.json === true, () => 'OK');
    },
  );
  withCommon(
    program.command('get <key>').description('read a key (linearizable unless --consistency serializable)'),
  )
    .option('--consistency <c>', 'linearizable or serializable', 'linearizable')
    .option('--prefix', 'read every key starting with <key>')
    .action(async (key: string, flags: ClientFlags) => {
      const consistency = `consistency=${encodeURIComponent(flags.consistency ?? 'linearizable')}`;
      const path =
        flags.prefix === true
          ? `/v1/kv?prefix=${encodeURIComponent(key)}&${consistency}`
          : `${keyPath(key)}?${consistency}`;
      const reply = await request(resolveEndpoints(flags.endpoints), 'GET', path);
      finish(reply, flags.json === true, () => {
        const kvs = reply.body.kvs ?? [{ key: reply.body.key ?? key, value: reply.body.value ?? '' }];
        return kvs.map((kv) => (flags.prefix === true ? `${kv.key}\n${kv.value}` : kv.value)).join('\n');
      });
    });
  withWrite(program.command('del <key>').description('delete a key'))
    .option('--prefix', 'delete every key starting with <key>')
    .action(async (key: string, flags: ClientFlags) => {
      const path = `${keyPath(key)}${flags.prefix === true ? '?prefix=true' : ''}`;
      const reply = await request(
        resolveEndpoints(flags.endpoints),
        'DELETE',
        path,
        undefined,
        writeOptions(flags),
      );
      finish(reply, flags.json === true, () => String(reply.body.deleted));
    });
  withWrite(
    program
      .command('txn [json]')
      .description(
        'run a transaction: {"compare":[...],"success":[...],"failure":[...]} as in POST /v1/txn (from stdin without [json])',
      ),
  ).action(async (text: string | undefined, flags: ClientFlags) => {
    let body: unknown;
    try {
      body = JSON.parse(text ?? readFileSync(0, 'utf8'));
    } catch (error) {
      console.error(`error: the transaction is not valid JSON: ${(error as Error).message}`);
      process.exitCode = 2;
      return;
    }
    const reply = await request(
      resolveEndpoints(flags.endpoints),
      'POST',
      '/v1/txn',
      body,
      writeOptions(flags),
    );
    finish(reply, flags.json === true, () =>
      [
        reply.body.succeeded === true ? 'SUCCEEDED' : 'FAILED',
        ...(reply.body.responses ?? []).map((r) => JSON.stringify(r)),
      ].join('\n'),
    );
  });
  withCommon(
    program.command('status').description("each endpoint's view: role, term, commit, applied, leader"),
  ).action(async (flags: ClientFlags) => {
    const rows = await Promise.all(resolveEndpoints(flags.endpoints).map(statusOf));
    if (flags.json === true) {
      console.log(JSON.stringify(rows));
    } else {
      for (const r of rows) {
        console.log(
          'error' in r
            ? `${r.endpoint}  unreachable: ${r.error}`
            : `${r.name}  id ${r.id}  ${r.role}  term ${r.term}  commit ${r.commit}  applied ${r.applied}  leader ${r.leader}`,
        );
      }
    }
    if (rows.some((r) => 'error' in r)) process.exitCode = 1;
  });
}

/** Registers `snapshot save` and `snapshot restore` (backups). */
export function registerSnapshotCommands(program: Command): void {
  const snapshot = program.command('snapshot').description('back up and restore the key-value state');
  withCommon(
    snapshot.command('save <file>').description("write a consistent copy of a node's KV state to <file>"),
  )
    .option('--progress', 'print the bytes received to stderr (the default when stderr is a terminal)')
    .action(async (file: string, flags: ClientFlags) => {
      const endpoint = resolveEndpoints(flags.endpoints)[0]!;
      const res = await fetch(`${endpoint}/v1/snapshot`);
      if (res.status !== 200 || res.body === null) {
        console.error(`error: ${endpoint} answered ${res.status}: ${await res.text()}`);
        process.exitCode = 1;
        return;
      }
      const progress =
        flags.progress === true || process.stderr.isTTY === true
          ? new ByteProgress(process.stderr)
          : undefined;
      let bytes = 0;
      const counter = new Transform({
        transform(chunk: Buffer, _encoding, done) {
          bytes += chunk.length;
          progress?.update(bytes);
          done(null, chunk);
        },
      });
      try {
        await pipeline(Readable.fromWeb(res.body), counter, createWriteStream(`${file}.tmp`));
      } catch (error) {
        progress?.finish(bytes, 'failed');
        await rm(`${file}.tmp`, { force: true });
        console.error(`error: receiving the snapshot from ${endpoint}: ${(error as Error).message}`);
        process.exitCode = 1;
        return;
      }
      progress?.finish(bytes, 'done');
      await rename(`${file}.tmp`, file);
      const index = res.headers.get('x-flotilla-applied-index');
      const revision = res.headers.get('x-flotilla-revision');
      const report = { file, bytes, appliedIndex: Number(index), revision: Number(revision) };
      console.log(
        flags.json === true
          ? JSON.stringify(report)
          : `saved ${bytes} bytes at revision ${revision} to ${file}`,
      );
    });
  snapshot
    .command('restore <file>')
    .description('create the data directory of a member of a NEW cluster from a snapshot file')
    .requiredOption('--name <name>', "the member's name")
    .requiredOption('--data-dir <dir>', 'an empty data directory')
    .requiredOption('--initial-cluster <list>', "the new cluster's members: name=host:port,...")
    .action(async (file: string, flags: { name: string; dataDir: string; initialCluster: string }) => {
      try {
        const members = parseInitialCluster(flags.initialCluster);
        const result = await restoreDataDir({
          snapshotFile: file,
          name: flags.name,
          dataDir: resolve(flags.dataDir),
          initialCluster: flags.initialCluster,
          members,
        });
        console.log(`restored ${flags.name} at index ${result.index}, revision ${result.revision}`);
      } catch (error) {
        console.error(`error: ${(error as Error).message}`);
        process.exitCode = isNodeError(error, 'INVALID_CONFIG') ? 2 : 1;
      }
    });
}

type StatusRow =
  | {
      name: string;
      id: number;
      role: string;
      term: number;
      commit: number;
      applied: number;
      leader: string;
      endpoint: string;
    }
  | { endpoint: string; error: string };

async function statusOf(endpoint: string): Promise<StatusRow> {
  try {
    const res = await fetch(`${endpoint}/v1/cluster`, { signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS) });
    const body = (await res.json()) as {
      member: { id: number; name: string };
      role: string;
      term: number;
      commit: number;
      applied: number;
      leader: { name: string } | null;
    };
    return {
      name: body.member.name,
      id: body.member.id,
      role: body.role,
      term: body.term,
      commit: body.commit,
      applied: body.applied,
      leader: body.leader?.name ?? '',
      endpoint,
    };
  } catch (error) {
    return { endpoint, error: (error as Error).message };
  }
}

/** Interval of progress updates, in milliseconds. */
const PROGRESS_INTERVAL_MS = 250;

/**
 * Prints "received N bytes" to a stream at most every {@link PROGRESS_INTERVAL_MS}: on a
 * terminal one line rewritten in place, elsewhere one line per update.
 */
export class ByteProgress {
  private lastMs = 0;
  private readonly started = Date.now();

  constructor(private readonly out: NodeJS.WriteStream) {}

  /** Reports `bytes` received so far (throttled). */
  update(bytes: number): void {
    const now = Date.now();
    if (now - this.lastMs < PROGRESS_INTERVAL_MS) return;
    this.lastMs = now;
    this.print(`received ${formatBytes(bytes)}`);
  }

  /** The last report (never throttled), ending the line. */
  finish(bytes: number, how: 'done' | 'failed'): void {
    const seconds = (Date.now() - this.started) / 1000;
    this.print(`received ${formatBytes(bytes)} in ${seconds.toFixed(1)} s, ${how}`);
    if (this.out.isTTY === true) this.out.write('\n');
  }

  private print(text: string): void {
    if (this.out.isTTY === true) this.out.write(`\r\x1b[K${text}`);
    else this.out.write(`${text}\n`);
  }
}

/** `N bytes`, with MiB alongside above one MiB. */
function formatBytes(bytes: number): string {
  return bytes < 1024 * 1024 ? `${bytes} bytes` : `${bytes} bytes (${(bytes / 1024 / 1024).toFixed(1)} MiB)`;
}
