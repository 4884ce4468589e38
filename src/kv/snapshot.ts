/**
 * The snapshot format, shared by every backend so a snapshot taken from one restores into
 * any other. A snapshot is a sequence of chunks, each a MessagePack array `[kind, body]`:
 *
 * 1. `['header', {format, version, appliedIndex, revision, compactRevision}]`
 * 2. `['records', [[revisionKey, recordBytes], ...]]` — the MVCC history in ascending
 *    revision order; `revisionKey` is 16 bytes (main, sub big-endian), `recordBytes` the
 *    stored record encoding (see codec.ts). Zero or more chunks.
 * 3. `['leases', [[id, ttlSeconds, remainingTtlSeconds, anchorMs], ...]]` by ascending id.
 * 4. `['sessions', [[clientId, seq, lastIndex, resultBytes], ...]]` least recently touched first.
 * 5. `['end', sha256]` — the SHA-256 of every preceding chunk's bytes.
 *
 * Chunks are cut at about `chunkBytesMax` so a transport can stream them in bounded frames.
 * A restore applies nothing until the `end` chunk's checksum has been verified.
 */

import { createHash } from 'node:crypto';
import { parseAlarms } from './alarms.js';
import { compareBytes, equalBytes, readUint64 } from './bytes.js';
import { pack, unpack } from './codec.js';
import { KvError } from './errors.js';
import { RecordsChunkWriter } from './snapshot-records.js';
import type { KvMeta, LeaseInfo } from './types.js';

/** Names the format in the header. */
export const SNAPSHOT_FORMAT = 'flotilla-kv';
/** Version of the format; bumped on any incompatible change. */
export const SNAPSHOT_VERSION = 1;

/** A session with its cached result still encoded. */
export interface EncodedSession {
  readonly clientId: number;
  readonly seq: number;
  readonly lastIndex: number;
  readonly result: Uint8Array;
}

/** A consistent view of a store to write as a snapshot. */
export interface SnapshotSource {
  readonly meta: KvMeta;
  /**
   * (16-byte revision key, record bytes) in ascending revision order. The bytes may be a
   * view valid only until the next record is asked for: each is copied into its chunk at once.
   */
  readonly records: Iterable<readonly [Uint8Array, Uint8Array]>;
  /** By ascending id. */
  readonly leases: Iterable<LeaseInfo>;
  /** Least recently touched first. */
  readonly sessions: Iterable<EncodedSession>;
}

/** A decoded piece of a snapshot, in stream order. */
export type SnapshotPart =
  | { readonly kind: 'header'; readonly meta: KvMeta }
  | { readonly kind: 'records'; readonly records: readonly (readonly [Uint8Array, Uint8Array])[] }
  | { readonly kind: 'leases'; readonly leases: readonly LeaseInfo[] }
  | { readonly kind: 'sessions'; readonly sessions: readonly EncodedSession[] };

/** Bytes counted per item beside its byte fields (numbers, framing). */
const itemOverheadBytes = 32;

/** Encodes `source` as snapshot chunks of about `chunkBytesMax` bytes. */
export function* encodeSnapshot(source: SnapshotSource, chunkBytesMax: number): Generator<Uint8Array> {
  const checksum = createHash('sha256');
  const chunk = (kind: string, body: unknown): Uint8Array => {
    const bytes = pack([kind, body]);
    checksum.update(bytes);
    return bytes;
  };
  const { appliedIndex, revision, compactRevision, alarms = [] } = source.meta;
  yield chunk('header', {
    format: SNAPSHOT_FORMAT,
    version: SNAPSHOT_VERSION,
    appliedIndex,
    revision,
    compactRevision,
    // Only when raised: a snapshot without alarms is byte for byte what it was before them.
    ...(alarms.length === 0 ? {} : { alarms: alarms.map((a) => [a.memberId, a.alarm]) }),
  });
  for (const bytes of recordChunks(source.records, chunkBytesMax)) {
    checksum.update(bytes);
    yield bytes;
  }
  const leases = mapIterable(source.leases, (lease) => {
    const fields = [lease.id, lease.ttlSeconds, lease.remainingTtlSeconds, lease.anchorMs];
    return [fields, 0] as const;
  });
  for (const batch of batches(leases, chunkBytesMax)) yield chunk('leases', batch);
  const sessions = mapIterable(source.sessions, (session) => {
    const fields = [session.clientId, session.seq, session.lastIndex, session.result];
    return [fields, session.result.length] as const;
  });
  for (const batch of batches(sessions, chunkBytesMax)) yield chunk('sessions', batch);
  yield pack(['end', new Uint8Array(checksum.digest())]);
}

/**
 * The `records` chunks of `records`, cut where {@link batches} would cut them; each record's
 * bytes are copied into its chunk before the next record is asked for (see snapshot-records.ts),
 * and before the chunk ahead of it is yielded: the consumer may run other reads of the same
 * LMDB read buffer (on later event-loop turns) before it asks for the next chunk, and a record
 * still held as a view across that yield would be clobbered by them.
 */
function* recordChunks(
  records: Iterable<readonly [Uint8Array, Uint8Array]>,
  chunkBytesMax: number,
): Generator<Uint8Array> {
  let capacity = Math.min(chunkBytesMax, 64 * 1024);
  let writer = new RecordsChunkWriter(capacity);
  let bytes = 0;
  for (const [revisionKey, recordBytes] of records) {
    const size = revisionKey.length + recordBytes.length;
    if (writer.count > 0 && bytes + size + itemOverheadBytes > chunkBytesMax) {
      const chunk = writer.finish();
      capacity = Math.max(capacity, chunk.length);
      writer = new RecordsChunkWriter(capacity);
      writer.add(revisionKey, recordBytes);
      bytes = size + itemOverheadBytes;
      yield chunk;
      continue;
    }
    writer.add(revisionKey, recordBytes);
    bytes += size + itemOverheadBytes;
  }
  if (writer.count > 0) yield writer.finish();
}

function* mapIterable<Item, Mapped>(items: Iterable<Item>, map: (item: Item) => Mapped): Generator<Mapped> {
  for (const item of items) yield map(item);
}

/** Groups (item, byte size) pairs into arrays of about `bytesMax` bytes. */
function* batches<Item>(items: Iterable<readonly [Item, number]>, bytesMax: number): Generator<Item[]> {
  let batch: Item[] = [];
  let bytes = 0;
  for (const [item, size] of items) {
    if (batch.length > 0 && bytes + size + itemOverheadBytes > bytesMax) {
      yield batch;
      batch = [];
      bytes = 0;
    }
    batch.push(item);
    bytes += size + itemOverheadBytes;
  }
  if (batch.length > 0) yield batch;
}

/** The order chunk kinds must come in; `end` is last. */
const KIND_ORDER: Readonly<Record<string, number>> = {
  header: 0,
  records: 1,
  leases: 2,
  sessions: 3,
  end: 4,
};
const END_RANK = 4;

/**
 * Decodes snapshot chunks into parts, checking structure and order as it goes, and the
 * `end` checksum last: it throws `CORRUPT` on any defect, so a consumer must not make the
 * restored state current before the iteration has completed.
 */
export async function* decodeSnapshot(
  chunks: Iterable<Uint8Array> | AsyncIterable<Uint8Array>,
): AsyncGenerator<SnapshotPart> {
  const checksum = createHash('sha256');
  const cursor = new SnapshotCursor();
  for await (const bytes of chunks) {
    const [kind, body] = splitChunk(bytes);
    cursor.advance(kind);
    if (kind === 'end') {
      const expected = new Uint8Array(checksum.digest());
      if (!(body instanceof Uint8Array) || !equalBytes(body, expected)) throw corrupt('checksum mismatch');
      continue;
    }
    checksum.update(bytes);
    yield cursor.parse(kind, body);
  }
  if (!cursor.ended) throw corrupt('truncated');
}

function splitChunk(bytes: Uint8Array): [string, unknown] {
  let decoded: unknown;
  try {
    decoded = unpack(bytes);
  } catch {
    throw corrupt('undecodable chunk');
  }
  if (!Array.isArray(decoded) || decoded.length !== 2 || typeof decoded[0] !== 'string') {
    throw corrupt('malformed chunk');
  }
  if (!(decoded[0] in KIND_ORDER)) throw corrupt(`unknown chunk kind ${JSON.stringify(decoded[0])}`);
  return [decoded[0], decoded[1]];
}

/** Tracks order and monotonicity across chunks and parses each body. */
class SnapshotCursor {
  private rank = -1;
  private meta: KvMeta | undefined;
  private lastRevisionKey: Uint8Array | undefined;
  private lastLeaseId = 0;
  private lastSessionIndex = -1;

  get ended(): boolean {
    return this.rank === END_RANK;
  }

  advance(kind: string): void {
    const rank = KIND_ORDER[kind]!;
    const repeatable = kind !== 'header' && kind !== 'end';
    if (
      this.ended ||
      rank < this.rank ||
      (rank === this.rank && !repeatable) ||
      (this.rank < 0 && rank !== 0)
    ) {
      throw corrupt(`chunk ${kind} out of order`);
    }
    this.rank = rank;
  }

  parse(kind: string, body: unknown): SnapshotPart {
    switch (kind) {
      case 'header':
        this.meta = parseHeader(body);
        return { kind, meta: this.meta };
      case 'records':
        return { kind, records: this.parseRecords(body) };
      case 'leases':
        return { kind, leases: this.parseLeases(body) };
      default:
        return { kind: 'sessions', sessions: this.parseSessions(body) };
    }
  }

  private parseRecords(body: unknown): [Uint8Array, Uint8Array][] {
    const records = expectArray(body);
    for (const record of records) {
      if (
        !Array.isArray(record) ||
        !(record[0] instanceof Uint8Array) ||
        !(record[1] instanceof Uint8Array)
      ) {
        throw corrupt('malformed record');
      }
      const key = record[0];
      if (key.length !== 16 || readUint64(key, 0) > this.meta!.revision) throw corrupt('bad revision key');
      if (this.lastRevisionKey !== undefined && compareBytes(this.lastRevisionKey, key) >= 0) {
        throw corrupt('records out of order');
      }
      this.lastRevisionKey = key;
    }
    return records as [Uint8Array, Uint8Array][];
  }

  private parseLeases(body: unknown): LeaseInfo[] {
    return expectArray(body).map((fields) => {
      const [id, ttlSeconds, remainingTtlSeconds, anchorMs] = expectCounts(fields, 4);
      if (id! <= this.lastLeaseId) throw corrupt('leases out of order');
      this.lastLeaseId = id!;
      return {
        id: id!,
        ttlSeconds: ttlSeconds!,
        remainingTtlSeconds: remainingTtlSeconds!,
        anchorMs: anchorMs!,
      };
    });
  }

  private parseSessions(body: unknown): EncodedSession[] {
    return expectArray(body).map((fields) => {
      if (!Array.isArray(fields) || fields.length !== 4 || !(fields[3] instanceof Uint8Array)) {
        throw corrupt('malformed session');
      }
      const [clientId, seq, lastIndex] = expectCounts(fields.slice(0, 3), 3);
      if (lastIndex! <= this.lastSessionIndex) throw corrupt('sessions out of order');
      this.lastSessionIndex = lastIndex!;
      return { clientId: clientId!, seq: seq!, lastIndex: lastIndex!, result: fields[3] };
    });
  }
}

function parseHeader(body: unknown): KvMeta {
  const header = (typeof body === 'object' && body !== null ? body : {}) as {
    readonly format?: unknown;
    readonly version?: unknown;
    readonly appliedIndex?: unknown;
    readonly revision?: unknown;
    readonly compactRevision?: unknown;
    readonly alarms?: unknown;
  };
  if (header.format !== SNAPSHOT_FORMAT || header.version !== SNAPSHOT_VERSION) {
    throw corrupt(`unsupported format ${String(header.format)} v${String(header.version)}`);
  }
  const [appliedIndex, revision, compactRevision] = expectCounts(
    [header.appliedIndex, header.revision, header.compactRevision],
    3,
  );
  if (revision! < 1 || compactRevision! > revision!) throw corrupt('bad revisions in header');
  const meta = { appliedIndex: appliedIndex!, revision: revision!, compactRevision: compactRevision! };
  return header.alarms === undefined ? meta : { ...meta, alarms: parseAlarms(header.alarms) };
}

function expectArray(body: unknown): unknown[] {
  if (!Array.isArray(body)) throw corrupt('chunk body is not a list');
  return body;
}

function expectCounts(fields: unknown, length: number): number[] {
  if (!Array.isArray(fields) || fields.length !== length) throw corrupt('malformed entry');
  for (const field of fields) {
    if (!Number.isSafeInteger(field) || (field as number) < 0) throw corrupt('malformed number');
  }
  return fields as number[];
}

function corrupt(what: string): KvError {
  return new KvError('CORRUPT', `kv: snapshot ${what}`);
}
