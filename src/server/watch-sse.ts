/**
 * `GET /v1/watch` as Server-Sent Events: `?key=k` (one key) or `?prefix=p`, optional
 * `startRevision` (replay history from it; default: live only), `prevKv`, `noPut`,
 * `noDelete`, `encoding`. Each revision's events arrive as one `data:` line
 * `{"revision", "events": [{"type": "PUT"|"DELETE", "kv", "prevKv"?}]}`. A watcher that
 * falls behind a compaction gets `event: error` with `{"error": {"code": "COMPACTED", …}}`
 * and the stream ends. Watches are served by the node the client is connected to, from its
 * applied state (like etcd), so they follow that node's apply order.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { KvBackend, WatchRequest } from '../kv/index.js';
import { isKvError } from '../kv/index.js';
import { drained } from './drained.js';
import { badRequest, type Encoding, kvJson, prefixEnd, utf8 } from './json.js';

/** Interval of SSE comment lines that keep idle connections (and proxies) open, in ms. */
export const WATCH_KEEPALIVE_MS = 15_000;

/** The watch request a URL asks for; throws a 400 for bad parameters. */
export function parseWatchRequest(url: URL): WatchRequest {
  const key = url.searchParams.get('key');
  const prefix = url.searchParams.get('prefix');
  if ((key === null) === (prefix === null)) throw badRequest('give exactly one of ?key= or ?prefix=');
  const flag = (name: string): boolean => {
    const value = url.searchParams.get(name);
    if (value === null || value === 'false') return false;
    if (value === '' || value === 'true') return true;
    throw badRequest(`${name} must be true or false`);
  };
  const startText = url.searchParams.get('startRevision') ?? '0';
  if (!/^\d{1,15}$/.test(startText)) throw badRequest('startRevision must be a non-negative integer');
  let range: { key: Uint8Array; rangeEnd?: Uint8Array };
  if (key !== null) {
    if (key === '') throw badRequest('key must not be empty');
    range = { key: utf8(key) };
  } else {
    const bytes = utf8(prefix ?? '');
    range =
      bytes.length === 0
        ? { key: Uint8Array.of(0), rangeEnd: Uint8Array.of(0) }
        : { key: bytes, rangeEnd: prefixEnd(bytes) };
  }
  return {
    ...range,
    startRevision: Number(startText),
    prevKv: flag('prevKv'),
    noPut: flag('noPut'),
    noDelete: flag('noDelete'),
  };
}

/**
 * Streams a watch until the client disconnects or the watcher fails. Throws (before any
 * byte is written) when the watch cannot start, e.g. `COMPACTED`.
 */
export async function serveWatch(
  kv: KvBackend,
  request: WatchRequest,
  encoding: Encoding,
  req: IncomingMessage,
  res: ServerResponse,
): Promise<void> {
  const watcher = kv.watch(request);
  res.writeHead(200, {
    'content-type': 'text/event-stream',
    'cache-control': 'no-cache',
    connection: 'keep-alive',
  });
  res.write(`: watching from revision ${kv.revision}\n\n`);
  const keepalive = setInterval(() => res.write(': keepalive\n\n'), WATCH_KEEPALIVE_MS);
  const stop = (): void => watcher.cancel();
  req.on('close', stop);
  res.on('close', stop);
  try {
    for (;;) {
      const batch = await watcher.next();
      if (batch === undefined) break;
      const events = batch.events.map((e) => ({
        type: e.type,
        kv: kvJson(e.kv, encoding),
        ...(e.prevKv === undefined ? {} : { prevKv: kvJson(e.prevKv, encoding) }),
      }));
      // Back-pressure: wait until the socket drains before taking the next batch, so a slow
      // client leaves its backlog in the watcher, which is bounded (it falls back to catching
      // up from history), not in this response's buffer.
      if (!res.write(`data: ${JSON.stringify({ revision: batch.revision, events })}\n\n`)) {
        await drained(res);
        if (res.destroyed) break;
      }
    }
  } catch (error) {
    if (!isKvError(error)) throw error;
    res.write(
      `event: error\ndata: ${JSON.stringify({ error: { code: error.code, message: error.message } })}\n\n`,
    );
  } finally {
    clearInterval(keepalive);
    watcher.cancel();
    res.end();
  }
}
