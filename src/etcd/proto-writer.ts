/**
 * The protobuf primitives of the hand-written encoders (codec.ts): varint and field sizes,
 * a writer over one pre-sized buffer, and the field tags they use.
 */
import { Buffer } from 'node:buffer';

/** Bytes of a varint holding `n` (a safe integer; negative int64s take 10 bytes). */
export function varintSize(n: number): number {
  if (n < 0) return 10;
  if (n < 0x80) return 1;
  if (n < 0x4000) return 2;
  if (n < 0x200000) return 3;
  if (n < 0x10000000) return 4;
  if (n < 2 ** 35) return 5;
  if (n < 2 ** 42) return 6;
  if (n < 2 ** 49) return 7;
  return 8; // below 2^53 = Number.MAX_SAFE_INTEGER + 1 < 2^56
}

/** Size of a varint field (tag and value) holding `n`, 0 when it is the default. */
export function intField(n: number): number {
  return n === 0 ? 0 : 1 + varintSize(n);
}

/** Size of a length-delimited field of `length` bytes (tag, length, bytes). */
export function lengthField(length: number, tagBytes = 1): number {
  return tagBytes + varintSize(length) + length;
}

/** A growing position in one pre-sized buffer. */
export class Writer {
  readonly buf: Buffer;
  pos = 0;

  constructor(size: number) {
    this.buf = Buffer.allocUnsafe(size);
  }

  varint(n: number): void {
    const buf = this.buf;
    if (n < 0) {
      this.negative(n);
      return;
    }
    while (n > 0x7fffffff) {
      buf[this.pos++] = (n % 0x80) | 0x80;
      n = Math.floor(n / 0x80);
    }
    while (n > 0x7f) {
      buf[this.pos++] = (n & 0x7f) | 0x80;
      n >>>= 7;
    }
    buf[this.pos++] = n;
  }

  /** A negative int64: ten bytes of two's complement. */
  private negative(n: number): void {
    let v = BigInt.asUintN(64, BigInt(n));
    for (let i = 0; i < 9; i++) {
      this.buf[this.pos++] = Number(v & 0x7fn) | 0x80;
      v >>= 7n;
    }
    this.buf[this.pos++] = Number(v);
  }

  /** A varint field, left out when 0. */
  int(tag: number, n: number): void {
    if (n === 0) return;
    this.buf[this.pos++] = tag;
    this.varint(n);
  }

  /** A bool field, left out when false. */
  bool(tag: number, value: boolean | undefined): void {
    if (value !== true) return;
    this.buf[this.pos++] = tag;
    this.buf[this.pos++] = 1;
  }

  /** A bytes field, left out when empty. */
  bytes(tag: number, bytes: Uint8Array): void {
    if (bytes.length === 0) return;
    const buf = this.buf;
    buf[this.pos++] = tag;
    this.varint(bytes.length);
    const length = bytes.length;
    if (length < 64) {
      // A loop beats set()'s call overhead for short keys and values.
      let pos = this.pos;
      for (let i = 0; i < length; i++) buf[pos++] = bytes[i]!;
      this.pos = pos;
    } else {
      buf.set(bytes, this.pos);
      this.pos += length;
    }
  }

  /** The tag and length of a message field whose body follows. */
  message(tag: number, size: number): void {
    this.buf[this.pos++] = tag;
    this.varint(size);
  }

  /** The buffer, checked to be exactly full. */
  done(): Buffer {
    if (this.pos !== this.buf.length) {
      throw new Error(`etcd codec: wrote ${this.pos} bytes of ${this.buf.length}`);
    }
    return this.buf;
  }
}

// Tags: (field number << 3) | wire type (0 varint, 2 length-delimited).
export const T1_VARINT = 0x08;
export const T1_BYTES = 0x0a;
export const T2_VARINT = 0x10;
export const T2_BYTES = 0x12;
export const T3_VARINT = 0x18;
export const T3_BYTES = 0x1a;
export const T4_VARINT = 0x20;
export const T4_BYTES = 0x22;
export const T5_VARINT = 0x28;
export const T5_BYTES = 0x2a;
export const T6_VARINT = 0x30;
export const T6_BYTES = 0x32;
export const T7_VARINT = 0x38;
export const T11_BYTES = 0x5a;
