/** Names of WAL segment files: `<16 hex digits of the sequence number>.wal`, created as `.wal.tmp`. */
import { basename, join } from 'node:path';
import { ioError } from './errors.js';
import type { FileSystem } from './file-system.js';

/** A segment file: its sequence number and path. */
export interface SegmentFile {
  readonly seq: number;
  readonly path: string;
}

const SEGMENT_NAME = /^([0-9a-f]{16})\.wal$/;

/** The file name of segment `seq`. */
export function segmentFileName(seq: number): string {
  return `${seq.toString(16).padStart(16, '0')}.wal`;
}

/** The sequence number in a segment file's path (NaN when it is not one). */
export function segmentSeqOf(path: string): number {
  const match = SEGMENT_NAME.exec(basename(path));
  return match === null ? Number.NaN : Number.parseInt(match[1]!, 16);
}

/** The name a segment has while it is being prepared; never read by recovery. */
export function temporarySegmentName(seq: number): string {
  return `${segmentFileName(seq)}.tmp`;
}

/** The segments in `walDirectory`, ordered by sequence number; other files are ignored. */
export async function listSegments(walDirectory: string, fs: FileSystem): Promise<SegmentFile[]> {
  const segments: SegmentFile[] = [];
  for (const name of await fs.list(walDirectory)) {
    const match = SEGMENT_NAME.exec(name);
    if (match === null) continue;
    segments.push({ seq: Number.parseInt(match[1]!, 16), path: join(walDirectory, name) });
  }
  return segments.sort((a, b) => a.seq - b.seq);
}

/** Paths of leftover temporary files in `directory` (interrupted segment or snapshot creation). */
export async function listTemporaryFiles(directory: string, fs: FileSystem): Promise<string[]> {
  return (await fs.list(directory))
    .filter((name) => name.endsWith('.tmp'))
    .map((name) => join(directory, name));
}

/** Deletes the leftover temporary segment files in `directory` (a crash mid-rollover); returns their paths. */
export async function removeTemporaryFiles(directory: string, fs: FileSystem): Promise<string[]> {
  const paths = await listTemporaryFiles(directory, fs);
  for (const path of paths) {
    try {
      await fs.unlink(path);
    } catch (error) {
      throw ioError('temporary file removal', path, error);
    }
  }
  return paths;
}
