/**
 * What the simulator's state machines share: a JSON command codec, and the reading of a
 * snapshot stream (the chunks of `snapshot()`) back into one image.
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
