/**
 * Client commands over the HTTP API: `put`, `get`, `del`, `txn`, plus the `status`,
 * `snapshot` and `member` commands of their own files. `--endpoints` lists client URLs
 * (default `$FLOTILLA_ENDPOINTS`, else `./data/cluster.json`'s, else
 * `http://127.0.0.1:2379`); a request goes to the first endpoint that answers, moving on
 * after a connection failure or a retryable error.
 *
 * Writes (`put`, `del`, `txn`) are exactly-once: each runs in a client session (a random
 * client id, sequence number 1, sent as `x-flotilla-client-id` / `x-flotilla-seq`) and is
 * retried with the same pair, round the endpoints, after a connection failure, a timeout or
 * a retryable error, for up to {@link WRITE_RETRY_MS}: a retry of a write that was applied
 * answers its first outcome instead of applying it again.
 */
import { readFileSync } from 'node:fs';
import type { Command } from 'commander';
import { newSession, type RequestOptions, request, resolveEndpoints, WRITE_RETRY_MS } from './api-client.js';
import { registerMemberCommands } from './member-commands.js';
import { finish, withCommon } from './reply-output.js';
import { registerSnapshotCommands } from './snapshot-commands.js';
import { registerStatusCommand } from './status-command.js';

interface ClientFlags {
  endpoints?: string;
  json?: boolean;
  consistency?: string;
  prefix?: boolean;
  commandTimeout?: string;
}

function keyPath(key: string): string {
  return `/v1/kv/${key.split('/').map(encodeURIComponent).join('/')}`;
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

/** Registers `put`, `get`, `del`, `txn`, `status`, the `snapshot` and the `member` commands. */
export function registerClientCommands(program: Command): void {
  registerSnapshotCommands(program);
  registerMemberCommands(program);
  registerPut(program);
  registerGet(program);
  registerDel(program);
  registerTxn(program);
  registerStatusCommand(program);
}

/** `put <key> <value>`: an exactly-once write. */
function registerPut(program: Command): void {
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
}

/** `get <key>`: one key, or every key under a prefix with `--prefix`. */
function registerGet(program: Command): void {
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
}

/** `del <key>`: an exactly-once delete of one key, or of a prefix with `--prefix`. */
function registerDel(program: Command): void {
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
}

/** `txn [json]`: an exactly-once transaction, from the argument or stdin. */
function registerTxn(program: Command): void {
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
}
