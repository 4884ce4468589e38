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
 *
 * This file owns the server and the dispatch; the routes live by family in kv-routes.ts,
 * lease-routes.ts, members.ts and cluster-routes.ts, reading requests with request.ts and
 * answering with reply.ts.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Registry } from 'prom-client';
import type { KvNode } from '../db/index.js';
import { clusterView, health, leaderOf } from './cluster-routes.js';
import { toHttpError } from './errors.js';
import { routeKv } from './kv-routes.js';
import { routeLease } from './lease-routes.js';
import type { FieldLogger } from './log.js';
import { routeMembers } from './members.js';
import { NodeMetrics } from './metrics.js';
import { methodNotAllowed, noRoute, ok, only, type RouteReply, send, sendSnapshot } from './reply.js';
import { encodingOf, readJson } from './request.js';
import { parseWatchRequest, serveWatch } from './watch-sse.js';

/** Options of {@link HttpApi}. */
export interface HttpApiOptions {
  readonly node: KvNode;
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
      const httpError = toHttpError(error, (id) => leaderOf(this.options.node, id));
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

  private async route(req: IncomingMessage, url: URL): Promise<RouteReply> {
    const path = url.pathname;
    const method = req.method ?? 'GET';
    const node = this.options.node;
    const kv = await routeKv(node, req, method, url);
    if (kv !== undefined) return kv;
    if (path.startsWith('/v1/lease/')) return routeLease(node, req, method, path);
    if (path === '/v1/snapshot') {
      if (method !== 'GET') throw methodNotAllowed(method, path);
      return { status: 200, body: undefined, stream: node.backend.snapshot() };
    }
    const membership = await routeMembers(node, method, path, () => readJson(req));
    if (membership !== undefined) return membership;
    if (path === '/v1/cluster') return only(method, 'GET', path, async () => ok(clusterView(node)));
    if (path === '/health') return only(method, 'GET', path, async () => health(node));
    if (path === '/metrics') {
      return only(method, 'GET', path, async () => ({
        status: 200,
        body: await this.metrics.render(),
        contentType: this.metrics.contentType,
      }));
    }
    throw noRoute(method, path);
  }
}
