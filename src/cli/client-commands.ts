/**
 * Client commands over the HTTP API: `put`, `get`, `del`, `status`. `--endpoints` lists
 * client URLs (default `$FLOTILLA_ENDPOINTS`, else `./data/cluster.json`'s, else
 * `http://127.0.0.1:2379`); a request goes to the first endpoint that answers, moving on
 * after a connection failure or a retryable error.
 */
import { existsSync, readFileSync } from 'node:fs';
import { rename, writeFile } from 'node:fs/promises';
import { resolve } from 'node:path';
import type { Command } from 'commander';
import { isNodeError, parseInitialCluster, restoreDataDir } from '../node/index.js';
import { registerMemberCommands } from './member-commands.js';

interface ClientFlags {
  endpoints?: string;
  json?: boolean;
  consistency?: string;
  prefix?: boolean;
}

/** Per request, in milliseconds: longer than a node's default request timeout (5 s). */
const REQUEST_TIMEOUT_MS = 8000;

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
}

interface Reply {
  readonly status: number;
  readonly body: ReplyBody;
}

/** Sends a request to the first endpoint that gives a definite answer. */
export async function request(
  endpoints: readonly string[],
  method: string,
  path: string,
  body?: unknown,
): Promise<Reply> {
  let last: Reply | undefined;
  let lastError: unknown;
  for (const endpoint of endpoints) {
    try {
      const init: RequestInit = { method, signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS) };
      if (body !== undefined) {
        init.body = JSON.stringify(body);
        init.headers = { 'content-type': 'application/json' };
      }
      const res = await fetch(`${endpoint}${path}`, init);
      const reply: Reply = { status: res.status, body: (await res.json()) as ReplyBody };
      const error = reply.body.error;
      if (error?.retryable !== true) return reply;
      last = reply;
    } catch (error) {
      lastError = error;
    }
  }
  if (last !== undefined) return last;
  throw new Error(
    `no endpoint answered (${endpoints.join(', ')}): ${(lastError as Error | undefined)?.message ?? ''}`,
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

/** Registers `put`, `get`, `del`, `status`, the `snapshot` and the `member` commands. */
export function registerClientCommands(program: Command): void {
  registerSnapshotCommands(program);
  registerMemberCommands(program);
  withCommon(program.command('put <key> <value>').description('write a key')).action(
    async (key: string, value: string, flags: ClientFlags) => {
      const reply = await request(resolveEndpoints(flags.endpoints), 'PUT', keyPath(key), { value });
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
  withCommon(program.command('del <key>').description('delete a key'))
    .option('--prefix', 'delete every key starting with <key>')
    .action(async (key: string, flags: ClientFlags) => {
      const path = `${keyPath(key)}${flags.prefix === true ? '?prefix=true' : ''}`;
      const reply = await request(resolveEndpoints(flags.endpoints), 'DELETE', path);
      finish(reply, flags.json === true, () => String(reply.body.deleted));
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
  ).action(async (file: string, flags: ClientFlags) => {
    const endpoint = resolveEndpoints(flags.endpoints)[0]!;
    const res = await fetch(`${endpoint}/v1/snapshot`);
    if (res.status !== 200) {
      console.error(`error: ${endpoint} answered ${res.status}: ${await res.text()}`);
      process.exitCode = 1;
      return;
    }
    const data = new Uint8Array(await res.arrayBuffer());
    await writeFile(`${file}.tmp`, data);
    await rename(`${file}.tmp`, file);
    const index = res.headers.get('x-flotilla-applied-index');
    const revision = res.headers.get('x-flotilla-revision');
    const report = { file, bytes: data.length, appliedIndex: Number(index), revision: Number(revision) };
    console.log(
      flags.json === true
        ? JSON.stringify(report)
        : `saved ${data.length} bytes at revision ${revision} to ${file}`,
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
