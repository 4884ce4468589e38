/**
 * Loading the LMDB backend's key index from record heads (restart and restore), and the
 * restore's bounded transactions.
 */

import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import fc from 'fast-check';
import { open } from 'lmdb';
import { readUint64, revisionKey, writeUint64 } from '../src/kv/bytes.js';
import {
  decodeRecord,
  decodeRecordHead,
  encodeRecord,
  pack,
  readRecordHead,
  tombstoneKv,
} from '../src/kv/codec.js';
import { bytes, KvDriver } from '../src/kv/conformance-harness.js';
import { isKvError } from '../src/kv/errors.js';
import { IndexLoader } from '../src/kv/index-loader.js';
import { LmdbKvBackend } from '../src/kv/lmdb-backend.js';
import { type BinaryDatabase, openHeadDatabase, scanRecordHeads } from '../src/kv/lmdb-store.js';
import { MemoryKvBackend } from '../src/kv/memory-backend.js';
import { decodeSnapshot, encodeSnapshot } from '../src/kv/snapshot.js';
import { RecordsChunkWriter } from '../src/kv/snapshot-records.js';

const revisionKeyOf = (main: number) => revisionKey(main, 0);

const root = await mkdtemp(join(tmpdir(), 'flotilla-kv-restore-'));
after(() => rm(root, { recursive: true, force: true }));
let directories = 0;
const freshPath = () => join(root, `kv-${directories++}`);

/** What a full decode says of a record's head, or the error it throws. */
function fullHead(bytes: Uint8Array): unknown {
  try {
    const record = decodeRecord(1, 0, bytes);
    const { createRevision, version, lease } = record.kv;
    return { key: [...record.kv.key], tombstone: record.tombstone, createRevision, version, lease };
  } catch (error) {
    return { threw: isKvError(error, 'CORRUPT') ? 'CORRUPT' : 'other' };
  }
}

function fastHead(bytes: Uint8Array, padding: number): unknown {
  // In a larger buffer with garbage after the record, as LMDB's reused read buffer.
  const buffer = new Uint8Array(bytes.length + padding).fill(0xc6);
  buffer.set(bytes);
  try {
    const head = decodeRecordHead(1, 0, buffer, bytes.length);
    const { createRevision, version, lease } = head;
    return { key: [...head.key], tombstone: head.tombstone, createRevision, version, lease };
  } catch (error) {
    return { threw: isKvError(error, 'CORRUPT') ? 'CORRUPT' : 'other' };
  }
}

const count = fc.oneof(
  fc.integer({ min: 0, max: 300 }),
  fc.integer({ min: 0, max: 2 ** 32 + 10 }),
  fc.constantFrom(0x7f, 0x80, 0xff, 0x100, 0xffff, 0x10000, 2 ** 32 - 1, 2 ** 32, Number.MAX_SAFE_INTEGER),
);

test('a record head read without decoding the value is what a full decode gives', () => {
  const record = fc.record({
    key: fc.uint8Array({ minLength: 1, maxLength: 300 }),
    value: fc.oneof(
      fc.uint8Array({ maxLength: 40 }),
      fc.integer({ min: 0, max: 70_000 }).map((n) => new Uint8Array(n)),
    ),
    createRevision: count,
    version: count,
    lease: count,
    tombstone: fc.boolean(),
  });
  fc.assert(
    fc.property(record, fc.nat(20), (r, padding) => {
      const kv = r.tombstone
        ? tombstoneKv(r.key, 5)
        : {
            key: r.key,
            value: r.value,
            createRevision: r.createRevision,
            modRevision: 5,
            version: r.version,
            lease: r.lease,
          };
      const encoded = encodeRecord({ main: 5, sub: 0, tombstone: r.tombstone, kv });
      assert.ok(readRecordHead(encoded) !== undefined, 'the fast path reads what encodeRecord writes');
      assert.deepEqual(fastHead(encoded, padding), fullHead(encoded));
    }),
    { numRuns: 300 },
  );
  // Other shapes, cut and altered bytes: the same answer as a full decode, never a different head.
  fc.assert(
    fc.property(record, fc.nat(60), fc.integer({ min: 0, max: 255 }), fc.nat(20), (r, at, byte, padding) => {
      const kv = {
        key: r.key,
        value: r.value.subarray(0, 30),
        createRevision: r.createRevision,
        modRevision: 5,
        version: r.version,
        lease: r.lease,
      };
      const encoded = encodeRecord({ main: 5, sub: 0, tombstone: false, kv });
      const altered = encoded.slice(0, Math.max(1, encoded.length - (at % 3)));
      altered[at % altered.length] = byte;
      assert.deepEqual(fastHead(altered, padding), fullHead(altered));
    }),
    { numRuns: 2000 },
  );
});

/** Fills a backend with a mixed history: puts, deletes, leases (some revoked), a compaction. */
function mixedHistory(driver: KvDriver, seed: number): void {
  let state = seed;
  const random = (n: number) => {
    state = (Math.imul(state, 1103515245) + 12345) >>> 0;
    return (state >>> 8) % n;
  };
  const leases = [7, 2 ** 40 + 3];
  for (const id of leases) driver.apply({ type: 'leaseGrant', id, ttlSeconds: 60, nowMs: 0 });
  for (let i = 0; i < 600; i++) {
    const key = `k${random(150)}`;
    const choice = random(10);
    if (choice < 6) driver.put(key, 'v'.repeat(random(400)));
    else if (choice < 8) driver.put(key, 'leased', { lease: leases[random(2)]! });
    else driver.del(key);
    if (i === 300) driver.apply({ type: 'compact', revision: driver.kv.revision - 100 });
  }
  driver.apply({ type: 'leaseRevoke', id: 7 });
}

/** The key index of `db`, built the way a restart did before: a full decode of every record. */
function indexByFullDecode(db: BinaryDatabase, revision: number): IndexLoader {
  const loader = new IndexLoader(revision);
  for (const { key, value } of db.getRange({ start: Uint8Array.of(0x72), end: Uint8Array.of(0x73) })) {
    const record = decodeRecord(readUint64(key, 1), readUint64(key, 9), value);
    const { createRevision, version, lease } = record.kv;
    loader.add(record.main, record.sub, {
      key: record.kv.key,
      tombstone: record.tombstone,
      createRevision,
      version,
      lease,
    });
  }
  return loader;
}

test('the key index loaded from record heads equals the one a full decode of every record builds', async () => {
  const path = freshPath();
  const kv = LmdbKvBackend.open(path);
  mixedHistory(new KvDriver(kv), 11);
  const revision = kv.revision;
  await kv.compactionDeleted();
  await kv.close();
  const env = open<Uint8Array, Uint8Array>({ path, maxDbs: 4 });
  try {
    const plain: BinaryDatabase = env.openDB({ name: 'kv-0', keyEncoding: 'binary', encoding: 'binary' });
    const heads = new IndexLoader(revision);
    for (const [main, sub, head] of scanRecordHeads(openHeadDatabase(env, 'kv-0')))
      heads.add(main, sub, head);
    assert.ok(
      heads.index.size > 100 && heads.leaseOfKey.size > 0,
      `${heads.index.size} keys, ${heads.leaseOfKey.size} leased`,
    );
    const full = indexByFullDecode(plain, revision);
    assert.deepEqual(heads.index, full.index);
    assert.deepEqual(heads.leaseOfKey, full.leaseOfKey);
  } finally {
    await env.close();
  }
});

test('a restore writes bounded transactions, loads the index from the stream, and equals the source', async () => {
  const source = new KvDriver(new MemoryKvBackend({ snapshotChunkBytesMax: 4096 }));
  mixedHistory(source, 5);
  const bound = 16 * 1024;
  const peaks: number[] = [];
  const path = freshPath();
  const driver = new KvDriver(
    LmdbKvBackend.open(
      path,
      { restoreTransactionBytesMax: bound },
      { restoreStaged: (peak) => peaks.push(peak) },
    ),
  );
  driver.put('mine', '1');
  await driver.kv.restore(source.kv.snapshot());
  // At most one write of the largest size beyond the bound (a record of 400 bytes and its key).
  assert.equal(peaks.length, 1);
  assert.ok(peaks[0]! >= bound && peaks[0]! < bound + 1024, `peak staged ${peaks[0]} bytes against ${bound}`);
  assert.equal(driver.kv.hash(), source.kv.hash());
  const ranges = (kv: KvDriver) =>
    [driver.kv.revision - 50, 0].map((revision) =>
      kv.keys({ key: bytes('k'), rangeEnd: bytes('l'), revision }),
    );
  assert.deepEqual(ranges(driver), ranges(source));
  assert.deepEqual(
    driver.kv.leaseTimeToLive(2 ** 40 + 3, 0, true),
    source.kv.leaseTimeToLive(2 ** 40 + 3, 0, true),
  );
  // What the restore loaded is what a restart rebuilds.
  await driver.kv.close();
  driver.kv = LmdbKvBackend.open(path);
  assert.equal(driver.kv.hash(), source.kv.hash());
  assert.deepEqual(ranges(driver), ranges(source));
  assert.deepEqual(
    driver.kv.leaseTimeToLive(2 ** 40 + 3, 0, true),
    source.kv.leaseTimeToLive(2 ** 40 + 3, 0, true),
  );
  await driver.kv.close();
});

test('a stream that fails after some transactions committed leaves the previous state, before and after a reopen', async () => {
  const source = new KvDriver(new MemoryKvBackend({ snapshotChunkBytesMax: 2048 }));
  mixedHistory(source, 9);
  const chunks = [...source.kv.snapshot()];
  assert.ok(chunks.length > 20);
  const path = freshPath();
  const driver = new KvDriver(LmdbKvBackend.open(path, { restoreTransactionBytesMax: 4096 }));
  driver.put('mine', '1');
  const before = driver.kv.hash();
  const altered = chunks.map((chunk, i) =>
    i === chunks.length - 3 ? chunk.map((b, j) => (j === 40 ? b ^ 1 : b)) : chunk,
  );
  for (const broken of [chunks.slice(0, -1), altered]) {
    await assert.rejects(driver.kv.restore(broken), (error) => isKvError(error, 'CORRUPT'));
    assert.equal(driver.kv.hash(), before);
    assert.equal(driver.value('mine'), '1');
  }
  await driver.kv.close();
  driver.kv = LmdbKvBackend.open(path, { restoreTransactionBytesMax: 4096 });
  assert.equal(driver.kv.hash(), before, 'the half-written generation was discarded');
  await driver.kv.restore(chunks);
  assert.equal(driver.kv.hash(), source.kv.hash());
  await driver.kv.close();
});

test('records chunks are what MessagePack-encoding them gives, for any record count and size', () => {
  const sizes = fc.array(fc.oneof(fc.nat(20), fc.constantFrom(255, 256, 65_535, 65_536, 70_000)), {
    maxLength: 40,
  });
  fc.assert(
    fc.property(sizes, (lengths) => {
      const records = lengths.map(
        (length, i) => [revisionKeyOf(i + 1), new Uint8Array(length).fill(i)] as const,
      );
      const writer = new RecordsChunkWriter(8);
      for (const [key, value] of records) writer.add(key, value);
      assert.deepEqual(writer.finish(), pack(['records', records]));
    }),
    { numRuns: 100 },
  );
  // Array headers of 16-bit and 32-bit counts.
  for (const count of [15, 16, 65_535, 65_536, 70_000]) {
    const records = Array.from(
      { length: count },
      (_, i) => [revisionKeyOf(i + 1), Uint8Array.of(i & 0xff)] as const,
    );
    const writer = new RecordsChunkWriter(1024);
    for (const [key, value] of records) writer.add(key, value);
    assert.deepEqual(writer.finish(), pack(['records', records]));
  }
});

test('a record read as a view is copied before its chunk is handed on, whatever runs between chunks', async () => {
  // Records as views into one reused read buffer (LMDB's), and between two chunks other reads
  // of that buffer (the leader's applies and reads, on later event-loop turns): the record
  // that starts the next chunk must be in it already. It was not: a follower got a record
  // overwritten by the store's meta record, behind a valid checksum.
  const shared = new Uint8Array(200);
  const expected: [Uint8Array, Uint8Array][] = [];
  function* views(): Generator<readonly [Uint8Array, Uint8Array]> {
    for (let i = 1; i <= 50; i++) {
      const value = new Uint8Array(100 + (i % 7)).fill(i);
      expected.push([revisionKeyOf(i), value]);
      shared.set(value);
      yield [revisionKeyOf(i), shared.subarray(0, value.length)];
    }
  }
  const meta = { appliedIndex: 9, revision: 51, compactRevision: 0 };
  const chunks: Uint8Array[] = [];
  for (const chunk of encodeSnapshot({ meta, records: views(), leases: [], sessions: [] }, 1024)) {
    chunks.push(chunk);
    shared.fill(0xee); // another read of the buffer before the next chunk is asked for
  }
  const records: (readonly [Uint8Array, Uint8Array])[] = [];
  for await (const part of decodeSnapshot(chunks)) if (part.kind === 'records') records.push(...part.records);
  assert.ok(chunks.length > 5, `${chunks.length} chunks`);
  assert.deepEqual(
    records.map(([k, v]) => [Buffer.from(k).toString('hex'), Buffer.from(v).toString('hex')]),
    expected.map(([k, v]) => [Buffer.from(k).toString('hex'), Buffer.from(v).toString('hex')]),
  );
});

test('an LMDB snapshot streamed from its read buffer is byte for byte the memory backend one, with commits in flight', async () => {
  const options = { snapshotChunkBytesMax: 3000 };
  const memory = new KvDriver(new MemoryKvBackend(options));
  const lmdb = new KvDriver(LmdbKvBackend.open(freshPath(), { ...options, commitIntervalMs: 0 }));
  mixedHistory(memory, 3);
  mixedHistory(lmdb, 3);
  await lmdb.kv.sync();
  // Some batches still in the overlay: their records come from it, the rest from LMDB.
  for (let i = 0; i < 30; i++) {
    memory.put(`late${i}`, 'x'.repeat(i * 10));
    lmdb.put(`late${i}`, 'x'.repeat(i * 10));
  }
  const fromLmdb = [...lmdb.kv.snapshot()];
  assert.ok(fromLmdb.length > 20);
  assert.deepEqual(fromLmdb, [...memory.kv.snapshot()]);
  await lmdb.kv.close();
});

test('revision bytes are read and written as a DataView does, big-endian', () => {
  fc.assert(
    fc.property(
      fc.oneof(fc.nat(), fc.maxSafeNat(), fc.constantFrom(2 ** 32 - 1, 2 ** 32, 2 ** 53 - 1)),
      fc.nat(8),
      (value, offset) => {
        const ours = new Uint8Array(16);
        writeUint64(ours, offset, value);
        const view = new DataView(new ArrayBuffer(16));
        view.setUint32(offset, Math.floor(value / 2 ** 32));
        view.setUint32(offset + 4, value >>> 0);
        assert.deepEqual(ours, new Uint8Array(view.buffer));
        assert.equal(readUint64(ours, offset), value);
      },
    ),
  );
  assert.throws(() => readUint64(new Uint8Array(8), 1), RangeError);
  assert.throws(() => writeUint64(new Uint8Array(8), 1, 5), RangeError);
});

test('a stream whose records are out of revision order is refused and leaves the previous state', async () => {
  const records: [Uint8Array, Uint8Array][] = [];
  for (let i = 1; i <= 40; i++) {
    const value = pack(['x']);
    records.push([revisionKeyOf(i), value]);
  }
  // Well-formed records, built the way a put writes them, so only their order is wrong.
  const source = new KvDriver(new MemoryKvBackend({ snapshotChunkBytesMax: 512 }));
  for (let i = 0; i < 40; i++) source.put(`k${i % 13}`, `v${i}`);
  const snapshotRecords: (readonly [Uint8Array, Uint8Array])[] = [];
  for await (const part of decodeSnapshot([...source.kv.snapshot()]))
    if (part.kind === 'records') snapshotRecords.push(...part.records);
  assert.equal(snapshotRecords.length, 40);
  const swapped = [...snapshotRecords];
  [swapped[30], swapped[31]] = [swapped[31]!, swapped[30]!];
  const meta = { appliedIndex: 40, revision: 41, compactRevision: 0 };
  const chunks = [...encodeSnapshot({ meta, records: swapped, leases: [], sessions: [] }, 512)];
  const path = freshPath();
  const driver = new KvDriver(LmdbKvBackend.open(path, { restoreTransactionBytesMax: 4096 }));
  driver.put('mine', '1');
  const before = driver.kv.hash();
  await assert.rejects(driver.kv.restore(chunks), (error) => isKvError(error, 'CORRUPT'));
  assert.equal(driver.kv.hash(), before);
  assert.equal(driver.value('mine'), '1');
  // The same records in order restore.
  const ordered = [...encodeSnapshot({ meta, records: snapshotRecords, leases: [], sessions: [] }, 512)];
  await driver.kv.restore(ordered);
  assert.equal(driver.value('k0'), 'v39');
  await driver.kv.close();
});
