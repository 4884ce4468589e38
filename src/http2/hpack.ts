/**
 * HPACK (RFC 7541), as much as a gRPC server and client need: a complete decoder for the
 * peer's header blocks (static and dynamic tables, Huffman-coded strings), and an encoder for
 * headers that never touches the dynamic table (every field is indexed from the static table
 * or sent as a literal without indexing), so a fixed header block can be built once and
 * reused.
 */

/** A decoded header field. */
export type HeaderField = readonly [name: string, value: string];

/** RFC 7541 Appendix A. */
const STATIC_TABLE: readonly HeaderField[] = [
  [':authority', ''],
  [':method', 'GET'],
  [':method', 'POST'],
  [':path', '/'],
  [':path', '/index.html'],
  [':scheme', 'http'],
  [':scheme', 'https'],
  [':status', '200'],
  [':status', '204'],
  [':status', '206'],
  [':status', '304'],
  [':status', '400'],
  [':status', '404'],
  [':status', '500'],
  ['accept-charset', ''],
  ['accept-encoding', 'gzip, deflate'],
  ['accept-language', ''],
  ['accept-ranges', ''],
  ['accept', ''],
  ['access-control-allow-origin', ''],
  ['age', ''],
  ['allow', ''],
  ['authorization', ''],
  ['cache-control', ''],
  ['content-disposition', ''],
  ['content-encoding', ''],
  ['content-language', ''],
  ['content-length', ''],
  ['content-location', ''],
  ['content-range', ''],
  ['content-type', ''],
  ['cookie', ''],
  ['date', ''],
  ['etag', ''],
  ['expect', ''],
  ['expires', ''],
  ['from', ''],
  ['host', ''],
  ['if-match', ''],
  ['if-modified-since', ''],
  ['if-none-match', ''],
  ['if-range', ''],
  ['if-unmodified-since', ''],
  ['last-modified', ''],
  ['link', ''],
  ['location', ''],
  ['max-forwards', ''],
  ['proxy-authenticate', ''],
  ['proxy-authorization', ''],
  ['range', ''],
  ['referer', ''],
  ['refresh', ''],
  ['retry-after', ''],
  ['server', ''],
  ['set-cookie', ''],
  ['strict-transport-security', ''],
  ['transfer-encoding', ''],
  ['user-agent', ''],
  ['vary', ''],
  ['via', ''],
  ['www-authenticate', ''],
];

/**
 * The Huffman code of RFC 7541 Appendix B is canonical: the code lengths determine the codes.
 * Here the length of symbol `i` (0-255) is `charCode(i) - 'A' + 5`; EOS (256) is 30 bits.
 */
const HUFFMAN_LENGTHS =
  'ISXXXXXXXTZXXZXXXXXXXXZXXXXXXXXXBFFHIBDGFFDGDBBBAAABBBBBBBCDKBHFIBCCCCCCCCCCCCCCCCCCCCCCDCDIOIJBKABABABBBACCBBB' +
  'ABCBAABCCCCCKGJIXPRPPRRRSRSSSSSTSTTRSTSSSSQRSRSSTRQPRRSSQSRRTQRSSQQRQSRSSPRRRSRRSVVPORSRUVVVWWVTUOQVWWVWTQQVVXWW' +
  'WPTPQRQQSRRUUTTVSVWVVWWWWWXWWWWWV';
const EOS = 256;
const MAX_CODE_LENGTH = 30;

/** Canonical decoding tables: per length, the first code, how many codes, where their symbols start. */
const huffman = (() => {
  const lengths = [...HUFFMAN_LENGTHS].map((c) => c.charCodeAt(0) - 65 + 5);
  lengths.push(MAX_CODE_LENGTH); // EOS
  const symbols = lengths.map((_, symbol) => symbol).sort((a, b) => lengths[a]! - lengths[b]! || a - b);
  const count = new Int32Array(MAX_CODE_LENGTH + 1);
  for (const length of lengths) count[length]!++;
  const firstCode = new Int32Array(MAX_CODE_LENGTH + 1);
  const offset = new Int32Array(MAX_CODE_LENGTH + 1);
  let code = 0;
  let index = 0;
  for (let length = 1; length <= MAX_CODE_LENGTH; length++) {
    firstCode[length] = code;
    offset[length] = index;
    code = (code + count[length]!) * 2;
    index += count[length]!;
  }
  return { symbols: Int32Array.from(symbols), count, firstCode, offset, lengths };
})();

/** Decodes a Huffman-coded string (RFC 7541 §5.2). */
export function huffmanDecode(bytes: Uint8Array): string {
  const out: number[] = [];
  let code = 0;
  let length = 0;
  for (const byte of bytes) {
    for (let bit = 7; bit >= 0; bit--) {
      code = code * 2 + ((byte >> bit) & 1);
      length++;
      const index = code - huffman.firstCode[length]!;
      if (index >= 0 && index < huffman.count[length]!) {
        const symbol = huffman.symbols[huffman.offset[length]! + index]!;
        if (symbol === EOS) throw new HpackError('EOS in a Huffman-coded string');
        out.push(symbol);
        code = 0;
        length = 0;
      } else if (length >= MAX_CODE_LENGTH) {
        throw new HpackError('invalid Huffman code');
      }
    }
  }
  if (length > 7) throw new HpackError('Huffman padding longer than 7 bits');
  return Buffer.from(out).toString('latin1');
}

/** Huffman-codes `text` (for tests of the decoder). */
export function huffmanEncode(text: string): Buffer {
  // Codes in canonical order: recompute each symbol's code from the tables.
  const codeOf = (symbol: number): [number, number] => {
    const length = huffman.lengths[symbol]!;
    const start = huffman.offset[length]!;
    let rank = 0;
    while (huffman.symbols[start + rank] !== symbol) rank++;
    return [huffman.firstCode[length]! + rank, length];
  };
  const bits: number[] = [];
  for (const byte of Buffer.from(text, 'latin1')) {
    const [code, length] = codeOf(byte);
    for (let bit = length - 1; bit >= 0; bit--) bits.push(Math.floor(code / 2 ** bit) % 2);
  }
  while (bits.length % 8 !== 0) bits.push(1);
  const out = Buffer.alloc(bits.length / 8);
  bits.forEach((bit, i) => {
    out[i >> 3] = out[i >> 3]! | (bit << (7 - (i % 8)));
  });
  return out;
}

/** A malformed header block (a connection error in HTTP/2). */
export class HpackError extends Error {
  override readonly name = 'HpackError';
}

/** The HPACK decoder of one connection (the dynamic table is per connection and direction). */
export class HpackDecoder {
  private readonly dynamic: HeaderField[] = [];
  private size = 0;
  private maxSize: number;

  /** `maxTableSize`: the SETTINGS_HEADER_TABLE_SIZE this side advertised (default 4096). */
  constructor(private readonly maxTableSize = 4096) {
    this.maxSize = maxTableSize;
  }

  /** Decodes one complete header block. */
  decode(block: Uint8Array): HeaderField[] {
    const fields: HeaderField[] = [];
    const cursor = { at: 0 };
    while (cursor.at < block.length) {
      const first = block[cursor.at]!;
      if (first & 0x80) {
        fields.push(this.entry(this.integer(block, cursor, 7)));
      } else if (first & 0x40) {
        const field = this.literal(block, cursor, 6);
        this.insert(field);
        fields.push(field);
      } else if (first & 0x20) {
        const size = this.integer(block, cursor, 5);
        if (size > this.maxTableSize) throw new HpackError(`table size ${size} above ${this.maxTableSize}`);
        this.maxSize = size;
        this.evict(0);
      } else {
        fields.push(this.literal(block, cursor, 4));
      }
    }
    return fields;
  }

  private entry(index: number): HeaderField {
    if (index === 0) throw new HpackError('index 0');
    const field =
      index <= STATIC_TABLE.length ? STATIC_TABLE[index - 1] : this.dynamic[index - STATIC_TABLE.length - 1];
    if (field === undefined) throw new HpackError(`index ${index} out of the tables`);
    return field;
  }

  private literal(block: Uint8Array, cursor: { at: number }, prefix: number): HeaderField {
    const index = this.integer(block, cursor, prefix);
    const name = index === 0 ? this.string(block, cursor) : this.entry(index)[0];
    return [name, this.string(block, cursor)];
  }

  private string(block: Uint8Array, cursor: { at: number }): string {
    if (cursor.at >= block.length) throw new HpackError('truncated string');
    const huffmanCoded = (block[cursor.at]! & 0x80) !== 0;
    const length = this.integer(block, cursor, 7);
    if (cursor.at + length > block.length) throw new HpackError('truncated string');
    const bytes = block.subarray(cursor.at, cursor.at + length);
    cursor.at += length;
    return huffmanCoded ? huffmanDecode(bytes) : Buffer.from(bytes).toString('latin1');
  }

  private integer(block: Uint8Array, cursor: { at: number }, prefix: number): number {
    const mask = (1 << prefix) - 1;
    let value = block[cursor.at++]! & mask;
    if (value < mask) return value;
    let shift = 0;
    for (;;) {
      if (cursor.at >= block.length) throw new HpackError('truncated integer');
      const byte = block[cursor.at++]!;
      value += (byte & 0x7f) * 2 ** shift;
      shift += 7;
      if ((byte & 0x80) === 0) return value;
      if (shift > 28) throw new HpackError('integer too large');
    }
  }

  private insert(field: HeaderField): void {
    const size = 32 + field[0].length + field[1].length;
    this.evict(size);
    if (size <= this.maxSize) {
      this.dynamic.unshift(field);
      this.size += size;
    }
  }

  /** Evicts the oldest entries until `room` more bytes fit. */
  private evict(room: number): void {
    while (this.dynamic.length > 0 && this.size + room > this.maxSize) {
      const [name, value] = this.dynamic.pop()!;
      this.size -= 32 + name.length + value.length;
    }
  }
}

function encodeInteger(value: number, prefix: number, firstByteFlags: number): number[] {
  const mask = (1 << prefix) - 1;
  if (value < mask) return [firstByteFlags | value];
  const bytes = [firstByteFlags | mask];
  let rest = value - mask;
  while (rest >= 128) {
    bytes.push((rest % 128) | 0x80);
    rest = Math.floor(rest / 128);
  }
  bytes.push(rest);
  return bytes;
}

function encodeString(text: string): number[] {
  const bytes = Buffer.from(text, 'latin1');
  return [...encodeInteger(bytes.length, 7, 0), ...bytes];
}

/**
 * The header block of a request: each field indexed from the static table when it is there
 * whole, else a literal without indexing (with the static table's name index when it has
 * the name). Never changes the peer's decoder state, so the block can be reused.
 */
export function encodeHeaders(fields: readonly HeaderField[]): Buffer {
  const out: number[] = [];
  for (const [name, value] of fields) {
    const whole = STATIC_TABLE.findIndex(([n, v]) => n === name && v === value);
    if (whole >= 0) {
      out.push(...encodeInteger(whole + 1, 7, 0x80));
      continue;
    }
    const named = STATIC_TABLE.findIndex(([n]) => n === name);
    if (named >= 0) out.push(...encodeInteger(named + 1, 4, 0));
    else out.push(0, ...encodeString(name));
    out.push(...encodeString(value));
  }
  return Buffer.from(out);
}
