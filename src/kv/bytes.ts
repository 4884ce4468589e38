/**
 * Byte helpers. Inside the state machine a key is held as a latin1 string (one char per
 * byte): JavaScript compares strings by UTF-16 code unit, which for latin1 strings is
 * exactly the byte order etcd sorts keys in, and strings make cheap map keys.
 */

import { Buffer } from 'node:buffer';
import { invalidArgument } from './errors.js';
import type { KeyRangeRequest } from './types.js';

/** An empty byte array (shared; never modified). */
export const EMPTY_BYTES: Uint8Array = new Uint8Array(0);

/** `bytes` as a plain Uint8Array view (Buffers and other subclasses become views over the same memory). */
export function plainBytes(bytes: Uint8Array): Uint8Array {
  if (bytes.constructor === Uint8Array) return bytes;
  return new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}

/** A private copy of `bytes`, so later changes by the caller cannot reach stored state. */
export function copyBytes(bytes: Uint8Array): Uint8Array {
  return bytes.length === 0 ? EMPTY_BYTES : new Uint8Array(bytes);
}

/** The key string of `bytes`. */
export function keyString(bytes: Uint8Array): string {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('latin1');
}

/** The bytes of a key string (a fresh array). */
export function keyBytes(key: string): Uint8Array {
  const bytes = new Uint8Array(key.length);
  for (let i = 0; i < key.length; i++) bytes[i] = key.charCodeAt(i);
  return bytes;
}

/** Lexicographic byte order, like Go's `bytes.Compare`: negative, 0 or positive. */
export function compareBytes(a: Uint8Array, b: Uint8Array): number {
  const length = Math.min(a.length, b.length);
  for (let i = 0; i < length; i++) {
    const difference = a[i]! - b[i]!;
    if (difference !== 0) return difference;
  }
  return a.length - b.length;
}

/** Whether two byte arrays hold the same bytes. */
export function equalBytes(a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && compareBytes(a, b) === 0;
}

/** A parsed key range `[start, end)`; `end` null means unbounded. */
export interface KeyRange {
  readonly start: string;
  readonly end: string | null;
}

/**
 * Parses etcd's (key, rangeEnd) pair. A single key becomes `[key, key + "\0")`, the range
 * that holds exactly that key. Throws `INVALID_ARGUMENT` for an empty key or a `rangeEnd`
 * that sorts before `key` (etcd silently returns nothing there; we refuse the likely bug).
 */
export function parseKeyRange(request: KeyRangeRequest): KeyRange {
  if (request.key.length === 0) throw invalidArgument('key is not provided');
  const start = keyString(request.key);
  const rangeEnd = request.rangeEnd;
  if (rangeEnd === undefined || rangeEnd.length === 0) return { start, end: `${start}\0` };
  if (rangeEnd.length === 1 && rangeEnd[0] === 0) return { start, end: null };
  const end = keyString(rangeEnd);
  if (end < start) throw invalidArgument('range end is before key');
  return { start, end };
}

/** Whether `key` lies in `range`. */
export function inKeyRange(key: string, range: KeyRange): boolean {
  return key >= range.start && (range.end === null || key < range.end);
}

/** Whether `range` holds exactly one key (a single-key request). */
export function isSingleKey(range: KeyRange): boolean {
  return range.end === `${range.start}\0`;
}

const TWO_TO_32 = 2 ** 32;

/** Writes a non-negative safe integer as 8 big-endian bytes at `offset`. */
export function writeUint64(target: Uint8Array, offset: number, value: number): void {
  if (offset < 0 || offset + 8 > target.length) throw new RangeError('kv: write beyond the end of the bytes');
  writeUint32(target, offset, Math.floor(value / TWO_TO_32));
  writeUint32(target, offset + 4, value >>> 0);
}

/** Writes 4 big-endian bytes (no DataView: this runs once per record of a snapshot). */
function writeUint32(target: Uint8Array, offset: number, value: number): void {
  target[offset] = value >>> 24;
  target[offset + 1] = (value >>> 16) & 0xff;
  target[offset + 2] = (value >>> 8) & 0xff;
  target[offset + 3] = value & 0xff;
}

/** Reads 8 big-endian bytes at `offset` as a number (exact below 2^53). */
export function readUint64(source: Uint8Array, offset: number): number {
  return readUint32(source, offset) * TWO_TO_32 + readUint32(source, offset + 4);
}

/** Reads 4 big-endian bytes at `offset` (no DataView: this runs once per record on a scan). */
export function readUint32(source: Uint8Array, offset: number): number {
  if (offset < 0 || offset + 4 > source.length) throw new RangeError('kv: read beyond the end of the bytes');
  return (
    source[offset]! * 0x1000000 +
    ((source[offset + 1]! << 16) | (source[offset + 2]! << 8) | source[offset + 3]!)
  );
}

/** The 16-byte revision key of (main, sub): big-endian, so byte order is revision order (like etcd's). */
export function revisionKey(main: number, sub: number): Uint8Array {
  const key = new Uint8Array(16);
  writeUint64(key, 0, main);
  writeUint64(key, 8, sub);
  return key;
}
