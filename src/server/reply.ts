/**
 * What a route of the HTTP API answers, and writing it to the response: a JSON (or text)
 * body with its status, or a KV snapshot streamed as length-prefixed chunks. Also the
 * method checks every route shares.
 */
import type { ServerResponse } from 'node:http';
import type { KvSnapshot } from '../kv/index.js';
import { drained } from './drained.js';
import { HttpError } from './errors.js';

/** A route's answer: a status and body, or a snapshot to stream (`stream`). */
export interface RouteReply {
  readonly status: number;
  readonly body: unknown;
  readonly contentType?: string;
  readonly stream?: KvSnapshot;
}

/** A 200 answer with `body`. */
export function ok(body: unknown): { status: number; body: unknown } {
  return { status: 200, body };
}

/** Runs `run` if the request's method is `allowed`, else 405 `METHOD_NOT_ALLOWED`. */
export async function only<T>(
  method: string,
  allowed: string,
  path: string,
  run: () => Promise<T>,
): Promise<T> {
  if (method !== allowed) throw methodNotAllowed(method, path);
  return run();
}

/** 405 `METHOD_NOT_ALLOWED` for `method` on `path`. */
export function methodNotAllowed(method: string, path: string): HttpError {
  return new HttpError(405, 'METHOD_NOT_ALLOWED', `${method} is not allowed on ${path}`);
}

/** 404 `NOT_FOUND`: no route for `method` on `path`. */
export function noRoute(method: string, path: string): HttpError {
  return new HttpError(404, 'NOT_FOUND', `no route ${method} ${path}`);
}

/** Writes a status and body (JSON unless a string), or just ends a response already under way. */
export function send(
  res: ServerResponse,
  status: number,
  body: unknown,
  contentType = 'application/json',
): void {
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
export async function sendSnapshot(res: ServerResponse, snapshot: KvSnapshot): Promise<void> {
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
