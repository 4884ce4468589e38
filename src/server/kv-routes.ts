/**
 * The key-value routes of the HTTP API: `GET|PUT|DELETE /v1/kv/{key}`, `GET /v1/kv` (ranges)
 * and `POST /v1/txn`. Reads go through the node's read path (linearizable unless
 * `?consistency=serializable`); writes are proposed through raft (see propose.ts).
 */
import type { IncomingMessage } from 'node:http';
import type { KvNode } from '../db/index.js';
import type { ClientSession, KvCommand, RangeRequest } from '../kv/index.js';
import { HttpError } from './errors.js';
import {
  asObject,
  badRequest,
  boolField,
  bytesField,
  intField,
  kvJson,
  parseTxn,
  prefixEnd,
  render,
  responseOpJson,
  utf8,
} from './json.js';
import { write } from './propose.js';
import { methodNotAllowed, ok, only, type RouteReply } from './reply.js';
import { consistencyOf, decodeKey, encodingOf, queryBool, queryInt, readJson, sessionOf } from './request.js';

/** Largest value accepted, in bytes (the KV layer's `requestBytesMax`, checked again there). */
export const VALUE_BYTES_MAX = 1.5 * 1024 * 1024;

/** Routes `/v1/kv/{key}`, `/v1/kv` and `/v1/txn`; undefined when the path is not one of them. */
export async function routeKv(
  node: KvNode,
  req: IncomingMessage,
  method: string,
  url: URL,
): Promise<RouteReply | undefined> {
  const path = url.pathname;
  if (path.startsWith('/v1/kv/')) {
    const key = decodeKey(path.slice('/v1/kv/'.length));
    switch (method) {
      case 'GET':
        return ok(await get(node, key, url));
      case 'PUT':
        return ok(await put(node, key, await readJson(req), url, sessionOf(req)));
      case 'DELETE':
        return ok(await remove(node, key, url, sessionOf(req)));
      default:
        throw methodNotAllowed(method, path);
    }
  }
  if (path === '/v1/kv') return only(method, 'GET', path, async () => ok(await range(node, url)));
  if (path === '/v1/txn')
    return only(method, 'POST', path, async () =>
      ok(await txn(node, await readJson(req), url, sessionOf(req))),
    );
  return undefined;
}

async function get(node: KvNode, key: Uint8Array, url: URL): Promise<unknown> {
  const request: RangeRequest = { key, revision: queryInt(url, 'revision') };
  const response = await node.read(request, consistencyOf(url));
  const kv = response.kvs[0];
  if (kv === undefined) throw new HttpError(404, 'KEY_NOT_FOUND', `key '${render(key, 'utf8')}' not found`);
  return { ...kvJson(kv, encodingOf(url)), revision: response.revision };
}

async function put(
  node: KvNode,
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
  const response = await write(node, command, 'put', session);
  const out = { revision: response.revision };
  return response.prevKv === undefined ? out : { ...out, prevKv: kvJson(response.prevKv, encodingOf(url)) };
}

/** `DELETE /v1/kv/{key}`, of every key under it with `?prefix=true`. */
async function remove(
  node: KvNode,
  key: Uint8Array,
  url: URL,
  session: ClientSession | undefined,
): Promise<unknown> {
  const prefix = queryBool(url, 'prefix');
  const command: KvCommand = prefix
    ? { type: 'deleteRange', key, rangeEnd: prefixEnd(key) }
    : { type: 'deleteRange', key };
  const response = await write(node, command, 'deleteRange', session);
  return { revision: response.revision, deleted: response.deleted };
}

async function range(node: KvNode, url: URL): Promise<unknown> {
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
  const response = await node.read(
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

async function txn(
  node: KvNode,
  body: unknown,
  url: URL,
  session: ClientSession | undefined,
): Promise<unknown> {
  const request = parseTxn(body);
  const response = await write(node, { type: 'txn', ...request }, 'txn', session);
  const encoding = encodingOf(url);
  return {
    revision: response.revision,
    succeeded: response.succeeded,
    responses: response.responses.map((r) => responseOpJson(r, encoding)),
  };
}
