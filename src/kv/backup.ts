/**
 * Backup files: a KV snapshot's chunks, each as `[length u32 BE][chunk]` (the framing of the
 * runtime's snapshot data, src/node/envelope.ts).
 * Two flavours restore alike (`flotilla snapshot restore`):
 *
 * - plain: exactly the framed chunks (`GET /v1/snapshot`, `flotilla snapshot save`);
 * - etcd's: what the etcd `Maintenance.Snapshot` stream sends (`etcdctl snapshot save`). etcd
 *   clients check that a snapshot ends with the SHA-256 of what precedes it, recognised by the
 *   size (`size % 512 == 32`: etcd's bolt file is page-aligned), so the framed chunks are
 *   padded with zeros to a multiple of 512 bytes and followed by their SHA-256.
 *
 * The KV chunks carry their own checksum too (the snapshot's `end` chunk), verified on restore.
 */
import { createHash } from 'node:crypto';

const SECTOR_BYTES = 512;
const SHA256_BYTES = 32;

/** The etcd flavour of a backup of `chunks`: framed, zero-padded to 512 bytes, then their SHA-256. */
export function encodeEtcdBackup(chunks: Iterable<Uint8Array>): Buffer {
  const all = [...chunks];
  const framedBytes = all.reduce((sum, chunk) => sum + 4 + chunk.length, 0);
  const padded = Math.ceil(framedBytes / SECTOR_BYTES) * SECTOR_BYTES;
  const out = Buffer.alloc(padded + SHA256_BYTES);
  let offset = 0;
  for (const chunk of all) {
    out.writeUInt32BE(chunk.length, offset);
    out.set(chunk, offset + 4);
    offset += 4 + chunk.length;
  }
  createHash('sha256').update(out.subarray(0, padded)).digest().copy(out, padded);
  return out;
}

/**
 * The KV chunks of a backup of either flavour (views into `data`). Throws when an etcd
 * flavoured file's padding is not zeros or a frame is truncated; the chunks' own checksum is
 * the KV restore's to verify.
 */
export function decodeBackup(data: Uint8Array): Uint8Array[] {
  let body = data;
  let padded = false;
  if (data.length >= SHA256_BYTES && data.length % SECTOR_BYTES === SHA256_BYTES) {
    const end = data.length - SHA256_BYTES;
    const digest = createHash('sha256').update(data.subarray(0, end)).digest();
    if (digest.equals(data.subarray(end))) {
      body = data.subarray(0, end);
      padded = true;
    }
  }
  const view = new DataView(body.buffer, body.byteOffset, body.byteLength);
  const chunks: Uint8Array[] = [];
  let offset = 0;
  while (offset < body.length) {
    const length = offset + 4 <= body.length ? view.getUint32(offset) : 0;
    if (length === 0 && padded) {
      if (body.subarray(offset).some((b) => b !== 0)) throw new Error('backup: garbage after the last chunk');
      break;
    }
    if (offset + 4 > body.length) throw new Error('backup: truncated chunk header');
    offset += 4;
    if (offset + length > body.length) throw new Error('backup: truncated chunk');
    chunks.push(body.subarray(offset, offset + length));
    offset += length;
  }
  return chunks;
}
