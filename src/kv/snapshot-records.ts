/**
 * The `records` chunks of a snapshot (snapshot.ts), written straight into the chunk's buffer
 * as the records arrive: each record's bytes are copied once, from wherever the source
 * holds them (for the LMDB backend, LMDB's reused read buffer), so a source may hand out
 * views that are only valid until it is asked for the next record. The bytes are exactly
 * what MessagePack-encoding `['records', [[revisionKey, recordBytes], ...]]` with the
 * shared encoder (codec.ts) gives: the smallest `bin` and `array` headers.
 */

/** Room kept before the body for the chunk's header: fixarray, 'records', array32 header. */
const HEADER_ROOM = 1 + 8 + 5;
/** `[0x92, fixstr 7, 'records']`. */
const CHUNK_PREFIX = Uint8Array.of(0x92, 0xa7, 0x72, 0x65, 0x63, 0x6f, 0x72, 0x64, 0x73);

/** One `records` chunk being filled. */
export class RecordsChunkWriter {
  private buffer: Uint8Array;
  private position = HEADER_ROOM;
  /** Records in the chunk. */
  count = 0;

  constructor(capacity: number) {
    this.buffer = new Uint8Array(HEADER_ROOM + capacity);
  }

  /** Appends the record (copying both byte arrays). */
  add(revisionKey: Uint8Array, bytes: Uint8Array): void {
    this.reserve(1 + 5 + revisionKey.length + 5 + bytes.length);
    this.buffer[this.position++] = 0x92;
    this.bin(revisionKey);
    this.bin(bytes);
    this.count++;
  }

  /** The chunk's bytes (the writer must not be used afterwards). */
  finish(): Uint8Array {
    const count = this.count;
    const arrayHeader =
      count < 16
        ? [0x90 | count]
        : count < 0x10000
          ? [0xdc, count >>> 8, count & 0xff]
          : [0xdd, count >>> 24, (count >>> 16) & 0xff, (count >>> 8) & 0xff, count & 0xff];
    const start = HEADER_ROOM - CHUNK_PREFIX.length - arrayHeader.length;
    this.buffer.set(CHUNK_PREFIX, start);
    this.buffer.set(arrayHeader, start + CHUNK_PREFIX.length);
    return this.buffer.subarray(start, this.position);
  }

  private bin(bytes: Uint8Array): void {
    const length = bytes.length;
    const buffer = this.buffer;
    let at = this.position;
    if (length < 0x100) {
      buffer[at++] = 0xc4;
      buffer[at++] = length;
    } else if (length < 0x10000) {
      buffer[at++] = 0xc5;
      buffer[at++] = length >>> 8;
      buffer[at++] = length & 0xff;
    } else {
      buffer[at++] = 0xc6;
      buffer[at++] = length >>> 24;
      buffer[at++] = (length >>> 16) & 0xff;
      buffer[at++] = (length >>> 8) & 0xff;
      buffer[at++] = length & 0xff;
    }
    buffer.set(bytes, at);
    this.position = at + length;
  }

  private reserve(bytes: number): void {
    if (this.position + bytes <= this.buffer.length) return;
    const grown = new Uint8Array(Math.max(this.buffer.length * 2, this.position + bytes));
    grown.set(this.buffer.subarray(0, this.position));
    this.buffer = grown;
  }
}
