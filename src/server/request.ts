/**
 * Reading an HTTP request of the API: the JSON body (size-limited), the key in the path,
 * query parameters, and the client-session headers of an exactly-once write. Anything
 * malformed is a 400 (413 for a body too large).
 */
import type { IncomingMessage } from 'node:http';
import type { ClientSession } from '../kv/index.js';
import { HttpError } from './errors.js';
import { badRequest, type Encoding, utf8 } from './json.js';

/** Largest request body accepted, in bytes: the KV request limit (1.5 MiB) plus JSON/base64 overhead. */
export const REQUEST_BODY_BYTES_MAX = 2 * 1024 * 1024 + 512 * 1024;

/** The request header naming the client of an exactly-once write (a positive integer). */
export const CLIENT_ID_HEADER = 'x-flotilla-client-id';
/** The request header carrying the client's sequence number of the write (a positive integer). */
export const SEQ_HEADER = 'x-flotilla-seq';

/** The key from the URL path: percent-decoded UTF-8; the rest of the path (slashes too) is the key. */
export function decodeKey(encoded: string): Uint8Array {
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
export async function readJson(req: IncomingMessage): Promise<unknown> {
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

/** A non-negative integer query parameter; 0 when absent. */
export function queryInt(url: URL, name: string): number {
  const text = url.searchParams.get(name);
  if (text === null) return 0;
  if (!/^\d{1,15}$/.test(text)) throw badRequest(`${name} must be a non-negative integer`);
  return Number(text);
}

/** A boolean query parameter (`true`/`1`/empty or `false`/`0`); false when absent. */
export function queryBool(url: URL, name: string): boolean {
  const text = url.searchParams.get(name);
  if (text === null || text === 'false' || text === '0') return false;
  if (text === '' || text === 'true' || text === '1') return true;
  throw badRequest(`${name} must be true or false`);
}

/** The read consistency of `?consistency=` (linearizable by default). */
export function consistencyOf(url: URL): 'linearizable' | 'serializable' {
  const text = url.searchParams.get('consistency') ?? 'linearizable';
  if (text !== 'linearizable' && text !== 'serializable') {
    throw badRequest(`consistency must be linearizable or serializable, not '${text}'`);
  }
  return text;
}

/** The response encoding of keys and values from `?encoding=` (utf8 by default). */
export function encodingOf(url: URL): Encoding {
  const text = url.searchParams.get('encoding') ?? 'utf8';
  if (text !== 'utf8' && text !== 'base64')
    throw badRequest(`encoding must be utf8 or base64, not '${text}'`);
  return text;
}

/**
 * The client session of a write from its `x-flotilla-client-id` and `x-flotilla-seq`
 * headers (both or neither); 400 `INVALID_ARGUMENT` for anything but two positive integers.
 */
export function sessionOf(req: IncomingMessage): ClientSession | undefined {
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
