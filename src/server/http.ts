/**
 * The HTTP/JSON client API of one node (node's `http` module, no framework).
 *
 * | route | what |
 * | --- | --- |
 * | `PUT /v1/kv/{key}` | body `{"value": "...", "lease"?: n, "prevKv"?: bool}` (or `valueBase64`) |
 * | `GET /v1/kv/{key}` | linearizable (ReadIndex) unless `?consistency=serializable`; `?revision=` |
 * | `DELETE /v1/kv/{key}` | `?prefix=true` deletes every key starting with it |
 * | `GET /v1/kv?prefix=p` | range by prefix (or `?from=&to=`), `limit`, `revision`, `keysOnly`, `countOnly` |
 * | `POST /v1/txn` | etcd-like compare / success / failure (see json.ts) |
 * | `GET /v1/watch?key=k` or `?prefix=p` | Server-Sent Events from `startRevision` (see watch-sse.ts) |
 * | `POST /v1/lease/grant` `{ttl, id?}`, `/revoke` `{id}`, `/keepalive` `{id}`; `GET /v1/lease/{id}` | leases; the leader revokes expired ones |
 * | `GET /v1/snapshot` | a consistent KV snapshot (backup), for `flotilla snapshot save` |
 * | `/v1/members`, `/v1/leader` | membership changes and leadership transfer (see members.ts) |
 * | `GET /v1/cluster` | members, leader, term, commit, applied (this node's view) |
 * | `GET /health` | 200 when a leader is known, else 503 |
 * | `GET /metrics` | Prometheus text format |
 *
 * Writes on a follower go through raft's proposal forwarding, so any node accepts them.
 * While no leader is known a request waits (up to the runtime's request timeout) and then
 * fails with a retryable 503 `NO_LEADER`. Every error is JSON with a stable code.
 *
 * **Exactly-once writes.** A write (`PUT`/`DELETE /v1/kv`, `POST /v1/txn`, lease grant,
 * revoke and keep-alive) may carry `x-flotilla-client-id` and `x-flotilla-seq` (positive
 * integers, both or neither): the command then runs in that client session (Raft thesis
 * §6.3). The state machine applies a client's command `seq` once and caches its outcome, so
 * a retry of the same pair, through any node, answers the first outcome without applying
 * again; a `seq` below the client's last applied one is refused (409 `STALE_SEQUENCE`). A
 * client uses a new `seq` (increasing) for each new request and the same one for its
 * retries. The server does not compare request bodies: a retry must repeat its request.
 */
import { randomInt } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Registry } from 'prom-client';
import type { ClientSession, KvCommand, KvResult, KvSnapshot, RangeRequest } from '../kv/index.js';
import type { RaftNode } from '../node/index.js';
import { drained } from './drained.js';
import { HttpError, toHttpError } from './errors.js';
import {
  asObject,
  badRequest,
  boolField,
  bytesField,
  type Encoding,
  intField,
  kvJson,
  parseTxn,
  prefixEnd,
  render,
  responseOpJson,
  utf8,
} from './json.js';
import type { FieldLogger } from './log.js';
import { routeMembers } from './members.js';
import { NodeMetrics } from './metrics.js';
import { parseWatchRequest, serveWatch } from './watch-sse.js';

/** Largest request body accepted, in bytes: the KV request limit (1.5 MiB) plus JSON/base64 overhead. */
export const REQUEST_BODY_BYTES_MAX = 2 * 1024 * 1024 + 512 * 1024;
/** Largest value accepted, in bytes (the KV layer's `requestBytesMax`, checked again there). */
export const VALUE_BYTES_MAX = 1.5 * 1024 * 1024;

/** The request header naming the client of an exactly-once write (a positive integer). */
export const CLIENT_ID_HEADER = 'x-flotilla-client-id';
/** The request header carrying the client's sequence number of the write (a positive integer). */
export const SEQ_HEADER = 'x-flotilla-seq';

/** Lease ids the server picks are below this (random, so any node can pick one without coordination). */
export const LEASE_ID_MAX = 2 ** 48;

/** Options of {@link HttpApi}. */
export interface HttpApiOptions {
  readonly node: RaftNode;
  readonly host: string;
  /** 0 picks an ephemeral port. */
  readonly port: number;
  /** Where requests (`debug`) and internal errors (`error`) are logged; none when absent. */
  readonly logger?: FieldLogger;
}

/** The HTTP server of one node. */
export class HttpApi {
  private readonly server: Server;
  private readonly metrics: NodeMetrics;

  constructor(private readonly options: HttpApiOptions) {
    this.metrics = new NodeMetrics(options.node);
    this.server = createServer((req, res) => {
      void this.handle(req, res);
    });
    this.server.keepAliveTimeout = 5000;
  }

  /** This node's Prometheus registry (`/metrics`); other servers of the node add their metrics to it. */
  get metricsRegistry(): Registry {
    return this.metrics.registry;
  }

  /** Starts listening; resolves with the bound port. */
  async start(): Promise<{ port: number }> {
    await new Promise<void>((resolve, reject) => {
      this.server.once('error', reject);
      this.server.listen(this.options.port, this.options.host, () => {
        this.server.off('error', reject);
        resolve();
      });
    });
    return { port: (this.server.address() as AddressInfo).port };
  }

  /** Stops accepting connections and closes every open one (watch streams included). */
  async stop(): Promise<void> {
    const closed = new Promise<void>((resolve) => this.server.close(() => resolve()));
    // Open watch streams and keep-alive connections would otherwise hold the server open.
    this.server.closeAllConnections();
    await closed;
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const started = performance.now();
    let status = 500;
    try {
      const url = new URL(req.url ?? '/', 'http://localhost');
      if (url.pathname === '/v1/watch') {
        if (req.method !== 'GET') throw methodNotAllowed(req.method ?? '', url.pathname);
        status = 200;
        await serveWatch(this.options.node.backend, parseWatchRequest(url), encodingOf(url), req, res);
        return;
      }
      const { status: s, body, contentType, stream } = await this.route(req, url);
      status = s;
      if (stream !== undefined) await sendSnapshot(res, stream);
      else send(res, s, body, contentType);
    } catch (error) {
      const httpError = toHttpError(error, (id) => this.leaderOf(id));
      status = httpError.status;
      if (httpError.code === 'INTERNAL') {
        this.options.logger?.error(`internal error: ${httpError.message}`, {
          method: req.method,
          path: req.url,
          err: error,
        });
      }
      send(res, status, httpError.toJson());
    } finally {
      const ms = performance.now() - started;
      this.metrics.observeHttp(req.method ?? 'GET', status, ms);
      const logger = this.options.logger;
      if (logger?.enabled('debug') === true) {
        logger.debug('request', { method: req.method, path: req.url, status, ms: Math.round(ms * 10) / 10 });
      }
    }
  }

  private async route(
    req: IncomingMessage,
    url: URL,
  ): Promise<{ status: number; body: unknown; contentType?: string; stream?: KvSnapshot }> {
    const path = url.pathname;
    const method = req.method ?? 'GET';
    if (path.startsWith('/v1/kv/')) {
      const key = decodeKey(path.slice('/v1/kv/'.length));
      switch (method) {
        case 'GET':
          return ok(await this.get(key, url));
        case 'PUT':
          return ok(await this.put(key, await readJson(req), url, sessionOf(req)));
        case 'DELETE':
          return ok(await this.delete(key, url, sessionOf(req)));
        default:
          throw methodNotAllowed(method, path);
      }
    }
    if (path === '/v1/kv') return only(method, 'GET', path, async () => ok(await this.range(url)));
    if (path === '/v1/txn')
      return only(method, 'POST', path, async () =>
        ok(await this.txn(await readJson(req), url, sessionOf(req))),
      );
    if (path.startsWith('/v1/lease/')) return this.routeLease(req, method, path);
    if (path === '/v1/snapshot') {
      if (method !== 'GET') throw methodNotAllowed(method, path);
      return { status: 200, body: undefined, stream: this.options.node.backend.snapshot() };
    }
    const membership = await routeMembers(this.options.node, method, path, () => readJson(req));
    if (membership !== undefined) return membership;
    if (path === '/v1/cluster') return only(method, 'GET', path, async () => ok(this.cluster()));
    if (path === '/health') return only(method, 'GET', path, async () => this.health());
    if (path === '/metrics') {
      return only(method, 'GET', path, async () => ({
        status: 200,
        body: await this.metrics.render(),
        contentType: this.metrics.contentType,
      }));
    }
    throw new HttpError(404, 'NOT_FOUND', `no route ${method} ${path}`);
  }

  private async get(key: Uint8Array, url: URL): Promise<unknown> {
    const request: RangeRequest = { key, revision: queryInt(url, 'revision') };
    const response = await this.options.node.read(request, consistencyOf(url));
    const kv = response.kvs[0];
    if (kv === undefined) throw new HttpError(404, 'KEY_NOT_FOUND', `key '${render(key, 'utf8')}' not found`);
    return { ...kvJson(kv, encodingOf(url)), revision: response.revision };
  }

  /** Proposes `command` (in `session`, if any) and returns its response of `type`. */
  private async write<K extends KvResponseType>(
    command: KvCommand,
    type: K,
    session: ClientSession | undefined,
  ): Promise<Extract<KvResponseOf, { type: K }>> {
    const result = await this.options.node.propose(session === undefined ? command : { ...command, session });
    return expect(result, type, session);
  }

  private async put(
    key: Uint8Array,
    body: unknown,
    url: URL,
    session: ClientSession | undefined,
  ): Promise<unknown> {
    const fields = asObject(body, 'body');
    const value = bytesField(fields, 'value', true)!;
    if (value.length > VALUE_BYTES_MAX) {
      throw new HttpError(
        413,
        'REQUEST_TOO_LARGE',
        `value of ${value.length} bytes exceeds ${VALUE_BYTES_MAX}`,
      );
    }
    const command: KvCommand = {
      type: 'put',
      key,
      value,
      lease: intField(fields, 'lease', 0),
      prevKv: boolField(fields, 'prevKv'),
    };
    const response = await this.write(command, 'put', session);
    const out = { revision: response.revision };
    return response.prevKv === undefined ? out : { ...out, prevKv: kvJson(response.prevKv, encodingOf(url)) };
  }

  private async delete(key: Uint8Array, url: URL, session: ClientSession | undefined): Promise<unknown> {
    const prefix = queryBool(url, 'prefix');
    const command: KvCommand = prefix
      ? { type: 'deleteRange', key, rangeEnd: prefixEnd(key) }
      : { type: 'deleteRange', key };
    const response = await this.write(command, 'deleteRange', session);
    return { revision: response.revision, deleted: response.deleted };
  }

  private async range(url: URL): Promise<unknown> {
    const prefix = url.searchParams.get('prefix');
    const from = url.searchParams.get('from');
    let request: RangeRequest;
    if (prefix !== null) {
      const key = utf8(prefix);
      request = {
        key: key.length === 0 ? Uint8Array.of(0) : key,
        rangeEnd: key.length === 0 ? Uint8Array.of(0) : prefixEnd(key),
      };
    } else if (from !== null) {
      const to = url.searchParams.get('to');
      request = { key: utf8(from), rangeEnd: to === null ? Uint8Array.of(0) : utf8(to) };
    } else {
      throw badRequest('give ?prefix= or ?from=[&to=]');
    }
    const response = await this.options.node.read(
      {
        ...request,
        limit: queryInt(url, 'limit'),
        revision: queryInt(url, 'revision'),
        keysOnly: queryBool(url, 'keysOnly'),
        countOnly: queryBool(url, 'countOnly'),
      },
      consistencyOf(url),
    );
    const encoding = encodingOf(url);
    return {
      revision: response.revision,
      count: response.count,
      more: response.more,
      kvs: response.kvs.map((kv) => kvJson(kv, encoding)),
    };
  }

  private async txn(body: unknown, url: URL, session: ClientSession | undefined): Promise<unknown> {
    const txn = parseTxn(body);
    const response = await this.write({ type: 'txn', ...txn }, 'txn', session);
    const encoding = encodingOf(url);
    return {
      revision: response.revision,
      succeeded: response.succeeded,
      responses: response.responses.map((r) => responseOpJson(r, encoding)),
    };
  }

  private async routeLease(
    req: IncomingMessage,
    method: string,
    path: string,
  ): Promise<{ status: number; body: unknown }> {
    const action = path.slice('/v1/lease/'.length);
    if (action === 'grant' || action === 'revoke' || action === 'keepalive') {
      if (method !== 'POST') throw methodNotAllowed(method, path);
      const session = sessionOf(req);
      const body = asObject(await readJson(req), 'body');
      if (action === 'grant') return ok(await this.leaseGrant(body, session));
      const id = intField(body, 'id', 0);
      if (id === 0) throw badRequest('id is required');
      if (action === 'revoke') {
        return ok({
          revision: (await this.write({ type: 'leaseRevoke', id }, 'leaseRevoke', session)).revision,
        });
      }
      return ok(await this.leaseKeepAlive(id, session));
    }
    if (method !== 'GET') throw methodNotAllowed(method, path);
    if (!/^\d{1,16}$/.test(action)) throw new HttpError(404, 'NOT_FOUND', `no route ${method} ${path}`);
    return ok(await this.leaseTimeToLive(Number(action)));
  }

  /** A retry in the same session answers the first grant, with the id picked then. */
  private async leaseGrant(
    body: Record<string, unknown>,
    session: ClientSession | undefined,
  ): Promise<unknown> {
    const ttlSeconds = intField(body, 'ttl', 0);
    if (ttlSeconds === 0) throw badRequest('ttl (seconds, positive) is required');
    const id = intField(body, 'id', 0) || randomInt(1, LEASE_ID_MAX);
    const response = await this.write(
      { type: 'leaseGrant', id, ttlSeconds, nowMs: Date.now() },
      'leaseGrant',
      session,
    );
    return { id: response.id, ttl: response.ttlSeconds, revision: response.revision };
  }

  /** A keep-alive resets the lease's countdown to its granted TTL, replicated as a checkpoint. */
  private async leaseKeepAlive(id: number, session: ClientSession | undefined): Promise<unknown> {
    const current = await this.leaseTimeToLive(id);
    await this.write(
      { type: 'leaseCheckpoint', id, remainingTtlSeconds: current.grantedTtl, nowMs: Date.now() },
      'leaseCheckpoint',
      session,
    );
    return { id, ttl: current.grantedTtl };
  }

  /** etcd `LeaseTimeToLive` after a linearizable barrier; 404 `LEASE_NOT_FOUND` for an unknown lease. */
  private async leaseTimeToLive(
    id: number,
  ): Promise<{ id: number; ttl: number; grantedTtl: number; keys: string[] }> {
    await this.options.node.read({ key: Uint8Array.of(0) });
    const info = this.options.node.backend.leaseTimeToLive(id, Date.now(), true);
    if (info.ttlSeconds === -1) throw new HttpError(404, 'LEASE_NOT_FOUND', `lease ${id} not found`);
    return {
      id,
      ttl: info.ttlSeconds,
      grantedTtl: info.grantedTtlSeconds,
      keys: info.keys.map((k) => render(k, 'utf8')),
    };
  }

  private cluster(): unknown {
    const node = this.options.node;
    const status = node.status();
    const voters = new Set(status.confState.voters);
    const members = [...node.members()]
      .filter(([id]) => !(status.confState.removed ?? []).includes(id))
      .map(([id, m]) => ({
        id,
        name: m.name,
        peerUrl: `http://${m.host}:${m.port}`,
        voter: voters.has(id),
        ...(m.clientUrls?.http === undefined ? {} : { clientUrl: m.clientUrls.http }),
        ...(m.clientUrls?.grpc === undefined ? {} : { grpcUrl: m.clientUrls.grpc }),
      }));
    return {
      clusterId: status.clusterId,
      member: { id: status.id, name: status.name },
      role: status.role,
      leader: status.leader === 0 ? null : (this.leaderOf(status.leader) ?? { id: status.leader, name: '' }),
      term: status.term,
      commit: status.commit,
      applied: status.kvApplied,
      revision: status.revision,
      members,
    };
  }

  private health(): { status: number; body: unknown } {
    const status = this.options.node.status();
    const healthy = status.leader !== 0 && this.options.node.failure === undefined;
    return {
      status: healthy ? 200 : 503,
      body: { health: healthy, role: status.role, leader: status.leader, term: status.term },
    };
  }

  private leaderOf(id: number): { id: number; name: string } | undefined {
    const member = this.options.node.members().get(id);
    return member === undefined ? undefined : { id, name: member.name };
  }
}

function ok(body: unknown): { status: number; body: unknown } {
  return { status: 200, body };
}

async function only<T>(method: string, allowed: string, path: string, run: () => Promise<T>): Promise<T> {
  if (method !== allowed) throw methodNotAllowed(method, path);
  return run();
}

function methodNotAllowed(method: string, path: string): HttpError {
  return new HttpError(405, 'METHOD_NOT_ALLOWED', `${method} is not allowed on ${path}`);
}

function send(res: ServerResponse, status: number, body: unknown, contentType = 'application/json'): void {
  if (res.headersSent) {
    res.end();
    return;
  }
  const text = typeof body === 'string' ? body : `${JSON.stringify(body)}\n`;
  res.writeHead(status, { 'content-type': contentType, 'content-length': Buffer.byteLength(text) });
  res.end(text);
}

/**
 * Streams a KV snapshot as `[length u32 BE][chunk]` records (the format `snapshot restore`
 * reads), waiting for the socket to drain between chunks.
 */
async function sendSnapshot(res: ServerResponse, snapshot: KvSnapshot): Promise<void> {
  res.writeHead(200, {
    'content-type': 'application/octet-stream',
    'x-flotilla-applied-index': String(snapshot.meta.appliedIndex),
    'x-flotilla-revision': String(snapshot.meta.revision),
  });
  try {
    for (const chunk of snapshot) {
      const header = Buffer.alloc(4);
      header.writeUInt32BE(chunk.length);
      res.write(header);
      if (!res.write(chunk)) await drained(res);
      if (res.destroyed) break;
    }
  } finally {
    snapshot.release();
    res.end();
  }
}

/** The key from the URL path: percent-decoded UTF-8; the rest of the path (slashes too) is the key. */
function decodeKey(encoded: string): Uint8Array {
  let key: string;
  try {
    key = decodeURIComponent(encoded);
  } catch {
    throw badRequest('key is not valid percent-encoding');
  }
  if (key.length === 0) throw badRequest('key must not be empty');
  return utf8(key);
}

/** Reads and parses a JSON body, refusing more than {@link REQUEST_BODY_BYTES_MAX} bytes. */
async function readJson(req: IncomingMessage): Promise<unknown> {
  const declared = Number(req.headers['content-length'] ?? '0');
  if (declared > REQUEST_BODY_BYTES_MAX) {
    req.resume();
    throw new HttpError(
      413,
      'REQUEST_TOO_LARGE',
      `body of ${declared} bytes exceeds ${REQUEST_BODY_BYTES_MAX}`,
    );
  }
  const chunks: Buffer[] = [];
  let total = 0;
  for await (const chunk of req as AsyncIterable<Buffer>) {
    total += chunk.length;
    if (total > REQUEST_BODY_BYTES_MAX) {
      req.resume();
      throw new HttpError(413, 'REQUEST_TOO_LARGE', `body exceeds ${REQUEST_BODY_BYTES_MAX} bytes`);
    }
    chunks.push(chunk);
  }
  const text = Buffer.concat(chunks).toString('utf8');
  if (text.trim() === '') throw new HttpError(400, 'INVALID_JSON', 'request body is empty; expected JSON');
  try {
    return JSON.parse(text) as unknown;
  } catch (error) {
    throw new HttpError(400, 'INVALID_JSON', `malformed JSON: ${(error as Error).message}`);
  }
}

function queryInt(url: URL, name: string): number {
  const text = url.searchParams.get(name);
  if (text === null) return 0;
  if (!/^\d{1,15}$/.test(text)) throw badRequest(`${name} must be a non-negative integer`);
  return Number(text);
}

function queryBool(url: URL, name: string): boolean {
  const text = url.searchParams.get(name);
  if (text === null || text === 'false' || text === '0') return false;
  if (text === '' || text === 'true' || text === '1') return true;
  throw badRequest(`${name} must be true or false`);
}

function consistencyOf(url: URL): 'linearizable' | 'serializable' {
  const text = url.searchParams.get('consistency') ?? 'linearizable';
  if (text !== 'linearizable' && text !== 'serializable') {
    throw badRequest(`consistency must be linearizable or serializable, not '${text}'`);
  }
  return text;
}

function encodingOf(url: URL): Encoding {
  const text = url.searchParams.get('encoding') ?? 'utf8';
  if (text !== 'utf8' && text !== 'base64')
    throw badRequest(`encoding must be utf8 or base64, not '${text}'`);
  return text;
}

type KvResponseOf = (KvResult & { ok: true })['response'];
type KvResponseType = KvResponseOf['type'];

/**
 * The response of a successful command of `type`, or the command's KV error thrown. In a
 * session, a response of another type is the cached outcome of an earlier request that
 * used the same sequence number: 409 `SEQUENCE_REUSED`.
 */
function expect<K extends KvResponseType>(
  result: KvResult,
  type: K,
  session?: ClientSession,
): Extract<KvResponseOf, { type: K }> {
  if (!result.ok) throw result.error;
  if (result.response.type !== type) {
    if (session !== undefined) {
      throw new HttpError(
        409,
        'SEQUENCE_REUSED',
        `seq ${session.seq} of client ${session.clientId} was used for a ${result.response.type} request, ` +
          `not a ${type}: a retry must repeat its request, a new request needs a new seq`,
      );
    }
    throw new Error(`expected a ${type} response, got ${result.response.type}`);
  }
  return result.response as Extract<KvResponseOf, { type: K }>;
}

/**
 * The client session of a write from its `x-flotilla-client-id` and `x-flotilla-seq`
 * headers (both or neither); 400 `INVALID_ARGUMENT` for anything but two positive integers.
 */
function sessionOf(req: IncomingMessage): ClientSession | undefined {
  const clientId = headerInt(req, CLIENT_ID_HEADER);
  const seq = headerInt(req, SEQ_HEADER);
  if (clientId === undefined && seq === undefined) return undefined;
  if (clientId === undefined || seq === undefined) {
    throw badRequest(
      `${clientId === undefined ? SEQ_HEADER : CLIENT_ID_HEADER} given without ` +
        `${clientId === undefined ? CLIENT_ID_HEADER : SEQ_HEADER}: an exactly-once write needs both`,
    );
  }
  return { clientId, seq };
}

function headerInt(req: IncomingMessage, name: string): number | undefined {
  const raw = req.headers[name];
  if (raw === undefined) return undefined;
  const text = (Array.isArray(raw) ? raw.join(', ') : raw).trim();
  const value = Number(text);
  if (!/^\d{1,16}$/.test(text) || value < 1 || !Number.isSafeInteger(value)) {
    throw badRequest(`${name} must be an integer in [1, 2^53 - 1], got '${text.slice(0, 40)}'`);
  }
  return value;
}
