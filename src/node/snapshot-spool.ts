/**
 * Where a follower keeps an on-disk state machine's state received from the leader, between
 * its arrival and its restore (etcd keeps a received bbolt file as `<index>.snap.db` the same
 * way). The raft snapshot of an on-disk state machine is metadata only (see snapshots.ts), so
 * the state itself must be on this member's disk before the raft snapshot is: the transport
 * writes the stream here (a {@link SnapshotSink}) and delivers the snapshot message only once
 * the file is complete, verified and durable. A crash after the raft snapshot was saved and
 * before the restore finished restores from this file on start (startup.ts).
 *
 * Files, in `<dataDir>/snap-received/`:
 *
 *     <index, 16 hex digits>.state   the payload (framed chunks: [length u32 BE][chunk] each),
 *                                    then [payload bytes u64][crc32c u32][magic "FLSR"]
 *     *.tmp                          a stream being received (removed on start)
 *
 * A file is trusted only whole: its trailer must match its length and CRC-32C before a single
 * chunk is read back. The CRC-32C of a file this process received was computed from the bytes
 * as they arrived; reading it back before the restore then checks the trailer only (the pages
 * come from the page cache, so a second pass would check memory, not the disk). After a
 * restart, the whole file is read and checked.
 */

import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { crc32c } from '@node-rs/crc32';
import type { SnapshotRequest } from '../raft/index.js';
import { nodeFileSystem, type StorageFile, writeFully } from '../storage/index.js';
import type { SnapshotSink } from '../transport/index.js';
import { NodeError } from './errors.js';

const SUFFIX = '.state';
const TRAILER_BYTES = 16;
const MAGIC = Buffer.from('FLSR');
/** Bytes read per step when checking a file. */
const READ_BYTES = 1024 * 1024;

/** Received state machine snapshots of one replica, by raft index. */
export class SnapshotSpool {
  private readonly fs = nodeFileSystem;
  readonly directory: string;
  /** The CRC-32C of each file sealed by this process, by index. */
  private readonly sealed = new Map<number, number>();

  constructor(dataDir: string) {
    this.directory = join(dataDir, 'snap-received');
  }

  /** A sink for the payload of `message` (see the module comment). */
  sink(message: SnapshotRequest): SnapshotSink {
    return new SpoolSink(this, message.snapshot.meta.index);
  }

  /** The final path of the state at `index`. */
  pathOf(index: number): string {
    return join(this.directory, `${index.toString(16).padStart(16, '0')}${SUFFIX}`);
  }

  /**
   * The chunks of the state received for `index`, read back after the whole file was checked
   * against its trailer; undefined when there is no complete file for `index`. Throws
   * `FATAL` when the file does not match its trailer.
   */
  async chunks(index: number): Promise<AsyncIterable<Uint8Array> | undefined> {
    const path = this.pathOf(index);
    let file: StorageFile;
    try {
      file = await this.fs.open(path, 'read');
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw error;
    }
    let payloadBytes: number;
    try {
      payloadBytes = await verify(file, path, this.sealed.get(index));
    } catch (error) {
      await file.close();
      throw error;
    }
    return readFramed(file, payloadBytes, path);
  }

  /** Records the CRC-32C of the payload this process sealed at `index`. */
  wasSealed(index: number, crc: number): void {
    this.sealed.set(index, crc);
  }

  /** Removes every file: what was received is restored, or no longer wanted. */
  async clear(): Promise<void> {
    this.sealed.clear();
    const names = await this.fs.list(this.directory);
    for (const name of names) await this.fs.unlink(join(this.directory, name));
    if (names.length > 0) await this.fs.syncDirectory(this.directory);
  }
}

/** Writes one stream to a temporary file; `finish` seals, syncs and renames it. */
class SpoolSink implements SnapshotSink {
  private file: Promise<StorageFile> | undefined;
  private readonly temp: string;
  private position = 0;
  private crc = 0;
  private aborted = false;

  constructor(
    private readonly spool: SnapshotSpool,
    private readonly index: number,
  ) {
    this.temp = join(spool.directory, `${index}.${randomBytes(4).toString('hex')}.tmp`);
  }

  private open(): Promise<StorageFile> {
    this.file ??= nodeFileSystem
      .mkdir(this.spool.directory)
      .then(() => nodeFileSystem.open(this.temp, 'create'));
    return this.file;
  }

  async write(bytes: Uint8Array): Promise<void> {
    const file = await this.open();
    await writeFully(file, bytes, 0, bytes.length, this.position);
    this.position += bytes.length;
    this.crc = crc32c(Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength), this.crc);
  }

  async finish(): Promise<void> {
    const file = await this.open();
    try {
      const trailer = Buffer.alloc(TRAILER_BYTES);
      trailer.writeBigUInt64BE(BigInt(this.position), 0);
      trailer.writeUInt32BE(this.crc >>> 0, 8);
      MAGIC.copy(trailer, 12);
      await writeFully(file, trailer, 0, trailer.length, this.position);
      await file.datasync();
    } finally {
      await file.close();
    }
    await nodeFileSystem.rename(this.temp, this.spool.pathOf(this.index));
    await nodeFileSystem.syncDirectory(this.spool.directory);
    this.spool.wasSealed(this.index, this.crc >>> 0);
  }

  abort(): void {
    if (this.aborted) return;
    this.aborted = true;
    const file = this.file;
    if (file === undefined) return;
    void file
      .then((f) => f.close())
      .then(() => nodeFileSystem.unlink(this.temp))
      .catch(() => {});
  }
}

async function readAt(file: StorageFile, bytes: number, position: number, path: string): Promise<Buffer> {
  const buffer = Buffer.allocUnsafe(bytes);
  let done = 0;
  while (done < bytes) {
    const read = await file.read(buffer, done, bytes - done, position + done);
    if (read <= 0) throw corrupt(path, `ends at ${position + done}, expected ${position + bytes} bytes`);
    done += read;
  }
  return buffer;
}

function corrupt(path: string, why: string): NodeError {
  return new NodeError('FATAL', `received snapshot ${path} is corrupt: ${why}`);
}

/**
 * Checks a file's trailer against its contents (against `sealedCrc`, the CRC-32C computed as
 * this process received it, when given); returns the payload's length.
 */
async function verify(file: StorageFile, path: string, sealedCrc: number | undefined): Promise<number> {
  const size = await file.size();
  if (size < TRAILER_BYTES) throw corrupt(path, `${size} bytes`);
  const trailer = await readAt(file, TRAILER_BYTES, size - TRAILER_BYTES, path);
  const payloadBytes = Number(trailer.readBigUInt64BE(0));
  if (!trailer.subarray(12).equals(MAGIC) || payloadBytes !== size - TRAILER_BYTES) {
    throw corrupt(path, 'bad trailer');
  }
  if (sealedCrc !== undefined) {
    if (sealedCrc !== trailer.readUInt32BE(8)) throw corrupt(path, 'checksum mismatch');
    return payloadBytes;
  }
  let crc = 0;
  for (let at = 0; at < payloadBytes; at += READ_BYTES) {
    crc = crc32c(await readAt(file, Math.min(READ_BYTES, payloadBytes - at), at, path), crc);
  }
  if (crc >>> 0 !== trailer.readUInt32BE(8)) throw corrupt(path, 'checksum mismatch');
  return payloadBytes;
}

/** The framed chunks of a verified file; closes it when done or abandoned. */
async function* readFramed(
  file: StorageFile,
  payloadBytes: number,
  path: string,
): AsyncGenerator<Uint8Array> {
  try {
    let at = 0;
    while (at < payloadBytes) {
      if (payloadBytes - at < 4) throw corrupt(path, `a chunk header at ${at} is cut short`);
      const length = (await readAt(file, 4, at, path)).readUInt32BE(0);
      if (at + 4 + length > payloadBytes) throw corrupt(path, `a chunk at ${at} runs past the end`);
      yield new Uint8Array(await readAt(file, length, at + 4, path));
      at += 4 + length;
    }
  } finally {
    await file.close();
  }
}
