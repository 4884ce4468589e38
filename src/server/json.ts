/**
 * JSON shapes of the HTTP API and their translation to and from the KV data model. Keys and
 * values are UTF-8 strings in JSON; `?encoding=base64` (or `valueBase64` in a request)
 * carries arbitrary bytes.
 */
import type {
  Compare,
  CompareResult,
  CompareTarget,
  KeyValue,
  RequestOp,
  ResponseOp,
  TxnRequest,
} from '../kv/index.js';
import { HttpError } from './errors.js';

/** How keys and values are written in responses. */
export type Encoding = 'utf8' | 'base64';

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** UTF-8 bytes of a string. */
export function utf8(text: string): Uint8Array {
  return encoder.encode(text);
}

/** Renders bytes in the chosen encoding. */
export function render(bytes: Uint8Array, encoding: Encoding): string {
  return encoding === 'base64' ? Buffer.from(bytes).toString('base64') : decoder.decode(bytes);
}

/** A key-value as JSON. */
export function kvJson(kv: KeyValue, encoding: Encoding): Record<string, unknown> {
  return {
    key: render(kv.key, encoding),
    value: render(kv.value, encoding),
    createRevision: kv.createRevision,
    modRevision: kv.modRevision,
    version: kv.version,
    lease: kv.lease,
  };
}

/** The byte string a request gives in `field` (a string) or `field + 'Base64'`. */
export function bytesField(
  body: Record<string, unknown>,
  field: string,
  required: boolean,
): Uint8Array | undefined {
  const text = body[field];
  const b64 = body[`${field}Base64`];
  if (typeof text === 'string') return utf8(text);
  if (typeof b64 === 'string') {
    if (!/^[A-Za-z0-9+/]*={0,2}$/.test(b64)) throw badRequest(`${field}Base64 is not valid base64`);
    return new Uint8Array(Buffer.from(b64, 'base64'));
  }
  if (text !== undefined || b64 !== undefined) throw badRequest(`${field} must be a string`);
  if (required) throw badRequest(`${field} is required`);
  return undefined;
}

/** A non-negative safe integer field, or the default. */
export function intField(body: Record<string, unknown>, field: string, fallback: number): number {
  const value = body[field];
  if (value === undefined) return fallback;
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < 0) {
    throw badRequest(`${field} must be a non-negative integer`);
  }
  return value;
}

/** An optional boolean field. */
export function boolField(body: Record<string, unknown>, field: string): boolean {
  const value = body[field];
  if (value === undefined) return false;
  if (typeof value !== 'boolean') throw badRequest(`${field} must be a boolean`);
  return value;
}

/** `value` as a JSON object, or a 400. */
export function asObject(value: unknown, what: string): Record<string, unknown> {
  if (typeof value !== 'object' || value === null || Array.isArray(value))
    throw badRequest(`${what} must be an object`);
  return value as Record<string, unknown>;
}

/** `value` as a JSON array, or a 400. */
function asArray(value: unknown, what: string): unknown[] {
  if (value === undefined) return [];
  if (!Array.isArray(value)) throw badRequest(`${what} must be an array`);
  return value;
}

/** A 400 `INVALID_ARGUMENT`. */
export function badRequest(message: string): HttpError {
  return new HttpError(400, 'INVALID_ARGUMENT', message);
}

const TARGETS: ReadonlySet<string> = new Set(['VALUE', 'VERSION', 'CREATE', 'MOD', 'LEASE']);
const RESULTS: ReadonlySet<string> = new Set(['EQUAL', 'GREATER', 'LESS', 'NOT_EQUAL']);

/**
 * Parses an etcd-like transaction:
 * `{compare: [{key, target, result, value}], success: [op], failure: [op]}` where an op is
 * `{put: {key, value, lease?}}`, `{get: {key, rangeEnd?, prefix?}}` or `{delete: {key, rangeEnd?, prefix?}}`.
 */
export function parseTxn(body: unknown): TxnRequest {
  const txn = asObject(body, 'txn');
  const { compare, success, failure } = txn;
  return {
    compare: asArray(compare, 'compare').map((c, i) => parseCompare(asObject(c, `compare[${i}]`))),
    success: asArray(success, 'success').map((op, i) => parseOp(op, `success[${i}]`)),
    failure: asArray(failure, 'failure').map((op, i) => parseOp(op, `failure[${i}]`)),
  };
}

function parseCompare(c: Record<string, unknown>): Compare {
  const key = bytesField(c, 'key', true)!;
  const { target = 'VALUE', result = 'EQUAL' } = c;
  if (typeof target !== 'string' || !TARGETS.has(target))
    throw badRequest(`unknown compare target ${String(target)}`);
  if (typeof result !== 'string' || !RESULTS.has(result))
    throw badRequest(`unknown compare result ${String(result)}`);
  const base = { key, result: result as CompareResult };
  if (target === 'VALUE') return { ...base, target: 'VALUE', value: bytesField(c, 'value', true)! };
  return { ...base, target: target as Exclude<CompareTarget, 'VALUE'>, value: intField(c, 'value', 0) };
}

function parseOp(value: unknown, what: string): RequestOp {
  const op = asObject(value, what);
  const names = Object.keys(op);
  if (names.length !== 1) throw badRequest(`${what} must have exactly one of put, get, delete`);
  const name = names[0]!;
  const args = asObject(op[name], `${what}.${name}`);
  const key = bytesField(args, 'key', true)!;
  switch (name) {
    case 'put':
      return { type: 'put', key, value: bytesField(args, 'value', true)!, lease: intField(args, 'lease', 0) };
    case 'get':
      return { type: 'range', key, ...rangeEndOf(args, key) };
    case 'delete':
      return { type: 'deleteRange', key, ...rangeEndOf(args, key) };
    default:
      throw badRequest(`${what}: unknown operation ${name}`);
  }
}

function rangeEndOf(args: Record<string, unknown>, key: Uint8Array): { rangeEnd?: Uint8Array } {
  if (boolField(args, 'prefix')) return { rangeEnd: prefixEnd(key) };
  const rangeEnd = bytesField(args, 'rangeEnd', false);
  return rangeEnd === undefined ? {} : { rangeEnd };
}

/** The end of the range of keys starting with `prefix` (etcd's `GetPrefixRangeEnd`). */
export function prefixEnd(prefix: Uint8Array): Uint8Array {
  const end = Uint8Array.from(prefix);
  for (let i = end.length - 1; i >= 0; i--) {
    if (end[i]! < 0xff) {
      end[i] = end[i]! + 1;
      return end.subarray(0, i + 1);
    }
  }
  return Uint8Array.of(0); // every key
}

/** A transaction's responses as JSON. */
export function responseOpJson(op: ResponseOp, encoding: Encoding): Record<string, unknown> {
  switch (op.type) {
    case 'range':
      return { get: { count: op.count, more: op.more, kvs: op.kvs.map((kv) => kvJson(kv, encoding)) } };
    case 'put':
      return { put: { revision: op.revision } };
    case 'deleteRange':
      return { delete: { deleted: op.deleted } };
    case 'txn':
      return {
        txn: { succeeded: op.succeeded, responses: op.responses.map((r) => responseOpJson(r, encoding)) },
      };
  }
}
