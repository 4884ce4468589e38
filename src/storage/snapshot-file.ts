/**
 * Snapshot files: `<index 16 hex>-<term 16 hex>.snap`, written under a `.tmp` name, fsync'd,
 * renamed into place and the directory fsync'd, so a file under its final name is complete.
 *
 *     file = [magic "FLSNAP\0\1"][SNAPSHOT_META frame][data …][data length u64][crc32c u32]
 *
 * The metadata frame has its own checksum so a reader can trust the metadata before it
 * streams the data; the final crc32c covers every byte before it. The data is opaque: the
 * state machine writes it through a {@link SnapshotWriter} and reads it as a stream.
 */
import { join } from 'node:path';
import { crc32c } from '@node-rs/crc32';
import type { Snapshot, SnapshotMeta } from '../raft/types.js';
import { CodecError, decodeSnapshotMeta, FRAME_HEADER_BYTES, FRAME_TYPE, FrameEncoder } from './codec.js';
import { ioError, StorageError } from './errors.js';
import { type FileSystem, type StorageFile, writeFully } from './file-system.js';
import { readFrameAt } from './segment-scan.js';

const MAGIC = Uint8Array.from([0x46, 0x4c, 0x53, 0x4e, 0x41, 0x50, 0x00, 0x01]);
const TRAILER_BYTES = 12;
/** Data is written, read and checksummed in pieces of this size so no step blocks the event loop long. */
const CHUNK_BYTES = 1024 * 1024;
const NAME = /^([0-9a-f]{16})-([0-9a-f]{16})\.snap$/;
const TWO_POW_32 = 0x1_0000_0000;

/** A snapshot file and the index and term its name states. */
export interface SnapshotFile {
  readonly index: number;
  readonly term: number;
  readonly path: string;
}

/** The file name of the snapshot at (`index`, `term`). */
export function snapshotFileName(index: number, term: number): string {
  return `${index.toString(16).padStart(16, '0')}-${term.toString(16).padStart(16, '0')}.snap`;
}

/** The snapshot files in `directory`, oldest (lowest index) first. */
export async function listSnapshotFiles(directory: string, fs: FileSystem): Promise<SnapshotFile[]> {
  const files: SnapshotFile[] = [];
  for (const name of await fs.list(directory)) {
    const match = NAME.exec(name);
    if (match === null) continue;
    const index = Number.parseInt(match[1]!, 16);
    files.push({ index, term: Number.parseInt(match[2]!, 16), path: join(directory, name) });
  }
  return files.sort((a, b) => a.index - b.index);
}

/** Streams one snapshot into a file; nothing is visible under the final name until `commit`. */
export class SnapshotWriter {
  private crc = 0;
  private position = 0;
  private dataBytes = 0;

  private constructor(
    private readonly directory: string,
    private readonly fs: FileSystem,
    private readonly meta: SnapshotMeta,
    private readonly file: StorageFile,
    private readonly temporaryPath: string,
  ) {}

  /** Opens the temporary file and writes the header. */
  static async begin(directory: string, fs: FileSystem, meta: SnapshotMeta): Promise<SnapshotWriter> {
    const temporaryPath = join(directory, `${snapshotFileName(meta.index, meta.term)}.tmp`);
    let file: StorageFile;
    try {
      file = await fs.open(temporaryPath, 'create');
    } catch (error) {
      throw ioError('snapshot create', temporaryPath, error);
    }
    const writer = new SnapshotWriter(directory, fs, meta, file, temporaryPath);
    await writer.append(MAGIC);
    await writer.append(new FrameEncoder(256).begin(FRAME_TYPE.SNAPSHOT_META).snapshotMeta(meta).finish());
    return writer;
  }

  /** Appends data. */
  async write(data: Uint8Array): Promise<void> {
    for (let offset = 0; offset < data.length; offset += CHUNK_BYTES) {
      await this.append(data.subarray(offset, offset + CHUNK_BYTES));
    }
    this.dataBytes += data.length;
  }

  /** Writes the trailer, fsyncs, renames into place and fsyncs the directory. */
  async commit(): Promise<SnapshotFile> {
    const trailer = new Uint8Array(8);
    const view = new DataView(trailer.buffer);
    view.setUint32(0, this.dataBytes >>> 0, true);
    view.setUint32(4, Math.floor(this.dataBytes / TWO_POW_32), true);
    await this.append(trailer);
    const checksum = new Uint8Array(4);
    new DataView(checksum.buffer).setUint32(0, this.crc, true);
    await this.append(checksum);
    const path = join(this.directory, snapshotFileName(this.meta.index, this.meta.term));
    try {
      await this.file.sync();
      await this.file.close();
      await this.fs.rename(this.temporaryPath, path);
      await this.fs.syncDirectory(this.directory);
    } catch (error) {
      throw ioError('snapshot commit', path, error);
    }
    return { index: this.meta.index, term: this.meta.term, path };
  }

  /** Closes and removes the temporary file. */
  async abort(): Promise<void> {
    await this.file.close().catch(() => undefined);
    await this.fs.unlink(this.temporaryPath).catch(() => undefined);
  }

  private async append(bytes: Uint8Array): Promise<void> {
    try {
      await writeFully(this.file, bytes, 0, bytes.length, this.position);
    } catch (error) {
      throw ioError('snapshot write', this.temporaryPath, error, this.position);
    }
    this.crc = crc32c(bytes, this.crc);
    this.position += bytes.length;
  }
}

/** Writes a whole in-memory snapshot to a file in `directory`. */
export async function writeSnapshotFile(
  directory: string,
  fs: FileSystem,
  snapshot: Snapshot,
): Promise<SnapshotFile> {
  const writer = await SnapshotWriter.begin(directory, fs, snapshot.meta);
  try {
    await writer.write(snapshot.data);
    return await writer.commit();
  } catch (error) {
    await writer.abort();
    throw error;
  }
}

/** An open snapshot file whose metadata has been checked. */
export interface SnapshotReader {
  readonly meta: SnapshotMeta;
  readonly dataBytes: number;
  /**
   * The data in pieces. The whole-file checksum is verified after the last piece: a
   * consumer must discard what it built if the iteration throws. Closes the file when done.
   */
  chunks(): AsyncGenerator<Uint8Array>;
}

/** Opens a snapshot file, checking its header, metadata and length (not yet the data's checksum). */
export async function openSnapshotFile(path: string, fs: FileSystem): Promise<SnapshotReader> {
  let file: StorageFile;
  try {
    file = await fs.open(path, 'read');
  } catch (error) {
    throw ioError('snapshot open', path, error);
  }
  try {
    return await readHeader(path, file);
  } catch (error) {
    await file.close().catch(() => undefined);
    throw error;
  }
}

async function readHeader(path: string, file: StorageFile): Promise<SnapshotReader> {
  const corrupt = (message: string, offset: number) =>
    new StorageError('CORRUPT', message, { file: path, offset });
  const size = await readOrThrow(path, () => file.size());
  const prefixBytes = MAGIC.length + FRAME_HEADER_BYTES;
  if (size < prefixBytes + TRAILER_BYTES) throw corrupt(`snapshot file of ${size} bytes is too short`, 0);
  const prefix = await readAt(path, file, 0, prefixBytes);
  if (Buffer.compare(prefix.subarray(0, MAGIC.length), MAGIC) !== 0) throw corrupt('bad snapshot magic', 0);
  const frameBytes = FRAME_HEADER_BYTES + new DataView(prefix.buffer).getUint32(MAGIC.length, true);
  const headerBytes = MAGIC.length + frameBytes;
  if (headerBytes + TRAILER_BYTES > size)
    throw corrupt('snapshot metadata extends past the end', MAGIC.length);
  const header = await readAt(path, file, 0, headerBytes);
  const read = readFrameAt(header.subarray(MAGIC.length), 0);
  if ('invalid' in read) throw corrupt(`snapshot metadata: ${read.invalid}`, MAGIC.length);
  if (read.frame.type !== FRAME_TYPE.SNAPSHOT_META)
    throw corrupt('snapshot metadata has the wrong type', MAGIC.length);
  let meta: SnapshotMeta;
  try {
    meta = decodeSnapshotMeta(read.frame.payload);
  } catch (error) {
    if (error instanceof CodecError) throw corrupt(`snapshot metadata: ${error.message}`, MAGIC.length);
    throw error;
  }
  const trailer = await readAt(path, file, size - TRAILER_BYTES, TRAILER_BYTES);
  const trailerView = new DataView(trailer.buffer);
  const dataBytes = trailerView.getUint32(4, true) * TWO_POW_32 + trailerView.getUint32(0, true);
  if (dataBytes !== size - TRAILER_BYTES - headerBytes)
    throw corrupt(`snapshot length field says ${dataBytes} data bytes`, size - TRAILER_BYTES);
  const expected = trailerView.getUint32(8, true);
  const initialCrc = crc32c(header);
  return {
    meta,
    dataBytes,
    chunks: () => dataChunks(path, file, headerBytes, dataBytes, initialCrc, trailer, expected),
  };
}

async function* dataChunks(
  path: string,
  file: StorageFile,
  start: number,
  dataBytes: number,
  initialCrc: number,
  trailer: Uint8Array,
  expected: number,
): AsyncGenerator<Uint8Array> {
  try {
    let crc = initialCrc;
    for (let done = 0; done < dataBytes; ) {
      const chunk = await readAt(path, file, start + done, Math.min(CHUNK_BYTES, dataBytes - done));
      crc = crc32c(chunk, crc);
      done += chunk.length;
      yield chunk;
    }
    crc = crc32c(trailer.subarray(0, 8), crc);
    if (crc !== expected) {
      const checksumOffset = start + dataBytes + 8;
      throw new StorageError('CORRUPT', `snapshot checksum mismatch over bytes [0, ${checksumOffset})`, {
        file: path,
        offset: checksumOffset,
      });
    }
  } finally {
    await file.close().catch(() => undefined);
  }
}

/** Reads and fully verifies a snapshot file into memory. */
export async function readSnapshotFile(path: string, fs: FileSystem): Promise<Snapshot> {
  const reader = await openSnapshotFile(path, fs);
  const data = new Uint8Array(reader.dataBytes);
  let offset = 0;
  for await (const chunk of reader.chunks()) {
    data.set(chunk, offset);
    offset += chunk.length;
  }
  return { meta: reader.meta, data };
}

/**
 * Loads and verifies the snapshot the WAL recorded at (`pointer.index`, `pointer.term`):
 * `MISSING_SNAPSHOT` when its file is gone, `CORRUPT` when it does not verify.
 */
export async function loadRecordedSnapshot(
  directory: string,
  fs: FileSystem,
  pointer: { readonly index: number; readonly term: number },
): Promise<Snapshot> {
  const path = join(directory, snapshotFileName(pointer.index, pointer.term));
  const present = await listSnapshotFiles(directory, fs);
  if (!present.some((file) => file.path === path)) {
    const message = `the WAL records snapshot ${pointer.index} (term ${pointer.term}) but its file is missing`;
    throw new StorageError('MISSING_SNAPSHOT', message, { file: path });
  }
  const snapshot = await readSnapshotFile(path, fs);
  if (snapshot.meta.index !== pointer.index || snapshot.meta.term !== pointer.term) {
    const message = `snapshot file holds (${snapshot.meta.index}, ${snapshot.meta.term}), not the recorded one`;
    throw new StorageError('CORRUPT', message, { file: path, offset: MAGIC.length });
  }
  return snapshot;
}

/**
 * Deletes snapshot files newer than `newestIndex` (written, but the WAL never recorded them:
 * a crash came between) and all but the newest `keepCount` of the others, plus leftover
 * temporary files. Returns the deleted paths.
 */
export async function pruneSnapshotFiles(
  directory: string,
  fs: FileSystem,
  keepCount: number,
  newestIndex: number,
): Promise<string[]> {
  const files = await listSnapshotFiles(directory, fs);
  const kept = files.filter((f) => f.index <= newestIndex).slice(-keepCount);
  const doomed = files.filter((f) => !kept.includes(f)).map((f) => f.path);
  for (const name of await fs.list(directory))
    if (name.endsWith('.snap.tmp')) doomed.push(join(directory, name));
  for (const path of doomed) {
    try {
      await fs.unlink(path);
    } catch (error) {
      throw ioError('snapshot delete', path, error);
    }
  }
  return doomed;
}

async function readAt(
  path: string,
  file: StorageFile,
  position: number,
  length: number,
): Promise<Uint8Array> {
  const buffer = new Uint8Array(length);
  let done = 0;
  while (done < length) {
    const read = await readOrThrow(
      path,
      () => file.read(buffer, done, length - done, position + done),
      position,
    );
    if (read === 0)
      throw new StorageError('CORRUPT', 'snapshot file ended early', { file: path, offset: position + done });
    done += read;
  }
  return buffer;
}

async function readOrThrow<T>(path: string, operation: () => Promise<T>, offset?: number): Promise<T> {
  try {
    return await operation();
  } catch (error) {
    throw ioError('snapshot read', path, error, offset);
  }
}
