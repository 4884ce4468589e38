/**
 * The gRPC side of a response (gRPC over HTTP/2: "Response-Headers", "Trailers"): the header
 * blocks of a call's start and end, request metadata, `grpc-timeout`, message framing, and
 * how an error becomes a status.
 */
import { status } from '@grpc/grpc-js';
import { encodeHeaders, type HeaderField } from '../http2/hpack.js';

/** An error with a gRPC status (grpc-js's `ServiceError` has this shape; etcd's errors too). */
export interface StatusError {
  readonly code?: number;
  readonly details?: string;
  readonly message?: string;
}

/** The longest `grpc-message` sent, in characters (longer messages are cut). */
const MESSAGE_CHARS_MAX = 4096;

/** The response headers of every call. */
export const RESPONSE_HEADERS = encodeHeaders([
  [':status', '200'],
  ['content-type', 'application/grpc'],
]);

/** The trailers of a call that succeeded. */
export const OK_TRAILERS = encodeHeaders([['grpc-status', '0']]);

/** A status's fields, as trailers or a trailers-only response. */
function statusFields(code: number, message: string): HeaderField[] {
  const fields: HeaderField[] = [['grpc-status', String(code)]];
  if (message !== '') fields.push(['grpc-message', percentEncode(message.slice(0, MESSAGE_CHARS_MAX))]);
  return fields;
}

/** The trailers of a call that ends with `code` and `message`. */
export function statusTrailers(code: number, message: string): Buffer {
  return code === status.OK && message === '' ? OK_TRAILERS : encodeHeaders(statusFields(code, message));
}

/** A response of trailers only (a call that fails before any message): `:status`, content type and status. */
export function trailersOnly(code: number, message: string): Buffer {
  return encodeHeaders([
    [':status', '200'],
    ['content-type', 'application/grpc'],
    ...statusFields(code, message),
  ]);
}

/** A plain HTTP response that ends the stream: for requests that are not gRPC. */
export function httpStatus(code: number): Buffer {
  return encodeHeaders([[':status', String(code)]]);
}

/**
 * `grpc-message` encoding: UTF-8, then every byte outside printable ASCII and `%` itself as
 * `%XX` (gRPC over HTTP/2, "Status-Message").
 */
export function percentEncode(message: string): string {
  let plain = true;
  for (let i = 0; i < message.length && plain; i++) {
    const c = message.charCodeAt(i);
    plain = c >= 0x20 && c <= 0x7e && c !== 0x25;
  }
  if (plain) return message;
  let out = '';
  for (const byte of Buffer.from(message, 'utf8')) {
    out += byte >= 0x20 && byte <= 0x7e && byte !== 0x25 ? String.fromCharCode(byte) : `%${hex(byte)}`;
  }
  return out;
}

function hex(byte: number): string {
  return byte.toString(16).toUpperCase().padStart(2, '0');
}

/** The status an error ends a call with: its own code and message, or UNKNOWN. */
export function statusOf(error: unknown): { code: number; message: string } {
  const e = error as StatusError | null | undefined;
  const code = typeof e?.code === 'number' && e.code >= 0 && e.code <= 16 ? e.code : status.UNKNOWN;
  const message =
    typeof e?.details === 'string' ? e.details : typeof e?.message === 'string' ? e.message : '';
  return { code, message };
}

const TIMEOUT_UNITS_MS: Readonly<Record<string, number>> = {
  H: 3_600_000,
  M: 60_000,
  S: 1000,
  m: 1,
  u: 1e-3,
  n: 1e-6,
};

/** A `grpc-timeout` value in ms (`5S`, `4999876u`), or undefined when absent or malformed. */
export function timeoutMs(value: string | undefined): number | undefined {
  if (value === undefined || value.length < 2 || value.length > 9) return undefined;
  const unit = TIMEOUT_UNITS_MS[value[value.length - 1]!];
  const digits = value.slice(0, -1);
  if (unit === undefined || !/^[0-9]+$/.test(digits)) return undefined;
  return Number(digits) * unit;
}

/**
 * A call's request metadata: its headers, read the way grpc-js's `Metadata.get` reads them.
 * `-bin` values are base64-decoded to Buffers.
 */
export class CallMetadata {
  constructor(private readonly fields: readonly HeaderField[]) {}

  /** Every value of header `key` (lower case), in order. */
  get(key: string): (string | Buffer)[] {
    const name = key.toLowerCase();
    const values: (string | Buffer)[] = [];
    for (const [field, value] of this.fields) {
      if (field !== name) continue;
      if (name.endsWith('-bin'))
        for (const part of value.split(',')) values.push(Buffer.from(part.trim(), 'base64'));
      else values.push(value);
    }
    return values;
  }
}

/** A message with gRPC's 5-byte prefix (not compressed, 32-bit big-endian length). */
export function framed(message: Uint8Array): Buffer {
  const out = Buffer.allocUnsafe(5 + message.length);
  out[0] = 0;
  out.writeUInt32BE(message.length, 1);
  out.set(message, 5);
  return out;
}
