/**
 * What the simulator's state machines share: a JSON command codec, and the writing and reading
 * of snapshot streams (the chunks of `snapshot()`): one JSON image, or JSON records a few per
 * chunk, as an on-disk store streams its records.
 */
import type { CommandCodec } from '../node/state-machine.js';

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** A codec that stores commands as JSON text. */
export function jsonCodec<C>(): CommandCodec<C> {
  return {
    encode: (command: C): Uint8Array => encoder.encode(JSON.stringify(command)),
    decode: (bytes: Uint8Array): C => JSON.parse(decoder.decode(bytes)) as C,
  };
}

/** A state's JSON image as the one chunk of a snapshot. */
export function jsonImage(state: unknown): Uint8Array[] {
  return [encoder.encode(JSON.stringify(state))];
}

/** Reads a snapshot stream written by {@link jsonImage}; undefined for an empty one (no state yet). */
export async function readJsonImage<T>(chunks: AsyncIterable<Uint8Array>): Promise<T | undefined> {
  let text = '';
  for await (const chunk of chunks) text += decoder.decode(chunk, { stream: true });
  text += decoder.decode();
  return text.length === 0 ? undefined : (JSON.parse(text) as T);
}

/** Records as JSON chunks of up to `perChunk` records each (no chunk for no records). */
export function jsonRecordChunks(records: readonly unknown[], perChunk: number): Uint8Array[] {
  const chunks: Uint8Array[] = [];
  for (let i = 0; i < records.length; i += perChunk) {
    chunks.push(encoder.encode(JSON.stringify(records.slice(i, i + perChunk))));
  }
  return chunks;
}

/** Reads a stream written by {@link jsonRecordChunks}: every record, in order. */
export async function readJsonRecords<T>(chunks: AsyncIterable<Uint8Array>): Promise<T[]> {
  const records: T[] = [];
  for await (const chunk of chunks) records.push(...(JSON.parse(decoder.decode(chunk)) as T[]));
  return records;
}
