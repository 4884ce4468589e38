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
 */
import { randomInt } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { KvCommand, KvResult, KvSnapshot, RangeRequest } from '../kv/index.js';
import type { RaftNode } from '../node/index.js';
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
import { routeMembers } from './members.js';
import { HttpMetrics, renderMetrics } from './metrics.js';
import { parseWatchRequest, serveWatch } from './watch-sse.js';

/** Largest request body accepted, in bytes: the KV request limit (1.5 MiB) plus JSON/base64 overhead. */
export const REQUEST_BODY_BYTES_MAX = 2 * 1024 * 1024 + 512 * 1024;
/** Largest value accepted, in bytes (the KV layer's `requestBytesMax`, checked again there). */
export const VALUE_BYTES_MAX = 1.5 * 1024 * 1024;

/** Lease ids the server picks are below this (random, so any node can pick one without coordination). */
export const LEASE_ID_MAX = 2 ** 48;

/** Options of {@link HttpApi}. */
export interface HttpApiOptions {
  readonly node: RaftNode;
  readonly host: string;
  /** 0 picks an ephemeral port. */
  readonly port: number;
}

/** The HTTP server of one node. */
export class HttpApi {
  private readonly server: Server;
  private readonly metrics = new HttpMetrics();

  constructor(private readonly options: HttpApiOptions) {
    this.server = createServer((req, res) => {
      void this.handle(req, res);
    });
    this.server.keepAliveTimeout = 5000;
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
      send(res, status, httpError.toJson());
    } finally {
      this.metrics.observe(req.method ?? 'GET', status, performance.now() - started);
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
          return ok(await this.put(key, await readJson(req), url));
        case 'DELETE':
          return ok(await this.delete(key, url));
        default:
          throw methodNotAllowed(method, path);
      }
    }
    if (path === '/v1/kv') return only(method, 'GET', path, async () => ok(await this.range(url)));
    if (path === '/v1/txn')
      return only(method, 'POST', path, async () => ok(await this.txn(await readJson(req), url)));
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
        body: renderMetrics(this.options.node, this.metrics),
        contentType: 'text/plain; version=0.0.4',
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

  private async put(key: Uint8Array, body: unknown, url: URL): Promise<unknown> {
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
    const response = expect(await this.options.node.propose(command), 'put');
    const out = { revision: response.revision };
    return response.prevKv === undefined ? out : { ...out, prevKv: kvJson(response.prevKv, encodingOf(url)) };
  }

  private async delete(key: Uint8Array, url: URL): Promise<unknown> {
    const prefix = queryBool(url, 'prefix');
    const command: KvCommand = prefix
      ? { type: 'deleteRange', key, rangeEnd: prefixEnd(key) }
      : { type: 'deleteRange', key };
    const response = expect(await this.options.node.propose(command), 'deleteRange');
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

  private async txn(body: unknown, url: URL): Promise<unknown> {
    const txn = parseTxn(body);
    const response = expect(await this.options.node.propose({ type: 'txn', ...txn }), 'txn');
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
      const body = asObject(await readJson(req), 'body');
      if (action === 'grant') return ok(await this.leaseGrant(body));
      const id = intField(body, 'id', 0);
      if (id === 0) throw badRequest('id is required');
      if (action === 'revoke') {
        return ok({
          revision: expect(await this.options.node.propose({ type: 'leaseRevoke', id }), 'leaseRevoke')
            .revision,
        });
      }
      return ok(await this.leaseKeepAlive(id));
    }
    if (method !== 'GET') throw methodNotAllowed(method, path);
    if (!/^\d{1,16}$/.test(action)) throw new HttpError(404, 'NOT_FOUND', `no route ${method} ${path}`);
    return ok(await this.leaseTimeToLive(Number(action)));
  }

  private async leaseGrant(body: Record<string, unknown>): Promise<unknown> {
    const ttlSeconds = intField(body, 'ttl', 0);
    if (ttlSeconds === 0) throw badRequest('ttl (seconds, positive) is required');
    const id = intField(body, 'id', 0) || randomInt(1, LEASE_ID_MAX);
    const result = await this.options.node.propose({ type: 'leaseGrant', id, ttlSeconds, nowMs: Date.now() });
    const response = expect(result, 'leaseGrant');
    return { id: response.id, ttl: response.ttlSeconds, revision: response.revision };
  }

  /** A keep-alive resets the lease's countdown to its granted TTL, replicated as a checkpoint. */
  private async leaseKeepAlive(id: number): Promise<unknown> {
    const current = await this.leaseTimeToLive(id);
    const result = await this.options.node.propose({
      type: 'leaseCheckpoint',
      id,
      remainingTtlSeconds: current.grantedTtl,
      nowMs: Date.now(),
    });
    expect(result, 'leaseCheckpoint');
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
      if (!res.write(chunk)) {
        await new Promise((resolve) => {
          res.once('drain', resolve);
          res.once('close', resolve);
        });
      }
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

/** The response of a successful command of `type`, or the command's KV error thrown. */
function expect<T extends KvResult & { ok: true }, K extends T['response']['type']>(
  result: KvResult,
  type: K,
): Extract<T['response'], { type: K }> {
  if (!result.ok) throw result.error;
  if (result.response.type !== type)
    throw new Error(`expected a ${type} response, got ${result.response.type}`);
  return result.response as Extract<T['response'], { type: K }>;
}
