/**
 * Helpers for the key-value conformance suite and tests: a driver that numbers entries,
 * applies commands and unwraps their outcomes, plus byte/string shorthands. Keys and values
 * in tests are short latin1 strings. The suite's parts (`conformance-*.ts`) take their
 * helpers from here, never from `conformance.ts`, which only assembles them.
 */

import assert from 'node:assert/strict';
import type { KvBackend } from './backend.js';
import { keyBytes, keyString } from './bytes.js';
import { isKvError, type KvError, type KvErrorCode } from './errors.js';
import type { KvOptions } from './state-machine.js';
import type { KeyValue, KvCommand, KvResponse, KvResult, RangeRequest, WatchBatch } from './types.js';
import type { Watcher } from './watch-hub.js';

/** Opens backends for the conformance suite. */
export interface KvBackendFactory {
  /** A new, empty backend. */
  open(options?: Partial<KvOptions>): Promise<KvBackend>;
  /** Closes `backend` and opens it again from what it stored. */
  reopen(backend: KvBackend): Promise<KvBackend>;
}

/** Runs a test body against a fresh backend, closing it afterwards. */
export type WithDriver = (
  body: (driver: KvDriver, factory: KvBackendFactory) => Promise<void> | void,
  options?: Partial<KvOptions>,
) => () => Promise<void>;

/** Closes a backend, ignoring an error from one a test left failed. */
export async function closeQuietly(backend: KvBackend): Promise<void> {
  try {
    await backend.close();
  } catch {
    // A backend left failed by a test may refuse; there is nothing more to release.
  }
}

/** The bytes of a test string. */
export function bytes(text: string): Uint8Array {
  return keyBytes(text);
}

/** The string of test bytes. */
export function text(value: Uint8Array): string {
  return keyString(value);
}

/** `[0]`: as a range end, "every key from `key` on". */
export const FROM_KEY: Uint8Array = Uint8Array.of(0);

/** A response of the given type. */
export type ResponseOf<Type extends KvResponse['type']> = Extract<KvResponse, { type: Type }>;

/** Drives one backend: numbers entries and unwraps outcomes. */
export class KvDriver {
  constructor(public kv: KvBackend) {}

  /** Applies `commands` as one batch of consecutive entries. */
  applyAll(commands: readonly (KvCommand | null)[]): (KvResult | null)[] {
    let index = this.kv.appliedIndex;
    return this.kv.applyBatch(commands.map((command) => ({ index: ++index, command })));
  }

  /** Applies one command and returns its outcome. */
  apply(command: KvCommand): KvResult {
    const result = this.applyAll([command])[0];
    assert.ok(result !== null && result !== undefined);
    return result;
  }

  /** Applies a command that must succeed and returns its response. */
  ok<Type extends KvResponse['type']>(command: KvCommand & { type: Type }): ResponseOf<Type> {
    const result = this.apply(command);
    if (!result.ok) assert.fail(`${command.type} failed: ${result.error.code} ${result.error.message}`);
    assert.equal(result.response.type, command.type);
    return result.response as ResponseOf<Type>;
  }

  /** Applies a command that must fail with `code` and returns the error. */
  fail(command: KvCommand, code: KvErrorCode): KvError {
    const result = this.apply(command);
    assert.ok(!result.ok, `${command.type} should fail with ${code}`);
    assert.ok(
      isKvError(result.error, code),
      `expected ${code}, got ${result.error.code}: ${result.error.message}`,
    );
    return result.error;
  }

  /** Puts `key` = `value` and returns the new revision. */
  put(key: string, value: string, extra: { lease?: number } = {}): number {
    return this.ok({ type: 'put', key: bytes(key), value: bytes(value), ...extra }).revision;
  }

  /** Deletes `key` (or `[key, end)`) and returns how many keys were deleted. */
  del(key: string, end?: string): number {
    const rangeEnd = end === undefined ? {} : { rangeEnd: end === '\0' ? FROM_KEY : bytes(end) };
    return this.ok({ type: 'deleteRange', key: bytes(key), ...rangeEnd }).deleted;
  }

  /** The kv of `key` at `revision` (0: current), if it exists there. */
  get(key: string, revision = 0): KeyValue | undefined {
    const response = this.kv.range({ key: bytes(key), revision });
    return response.kvs[0];
  }

  /** The value of `key` as a string, if it exists. */
  value(key: string, revision = 0): string | undefined {
    const kv = this.get(key, revision);
    return kv === undefined ? undefined : text(kv.value);
  }

  /** The keys a range returns, as strings. */
  keys(request: RangeRequest): string[] {
    return this.kv.range(request).kvs.map((kv) => text(kv.key));
  }
}

/** Asserts that `body` throws a KvError with `code`. */
export function assertKvError(body: () => unknown, code: KvErrorCode): void {
  assert.throws(body, (error) => {
    assert.ok(isKvError(error), `expected KvError ${code}, got ${String(error)}`);
    assert.equal(error.code, code, error.message);
    return true;
  });
}

/** Every batch a watcher has ready now. */
export function drain(watcher: Watcher): WatchBatch[] {
  const batches: WatchBatch[] = [];
  for (let batch = watcher.poll(); batch !== undefined; batch = watcher.poll()) batches.push(batch);
  return batches;
}

/** A readable summary of batches: `rev:TYPE key=value` per event. */
export function describeBatches(batches: readonly WatchBatch[]): string[] {
  return batches.flatMap((batch) =>
    batch.events.map((event) => {
      const prev = event.prevKv === undefined ? '' : ` prev=${text(event.prevKv.value)}`;
      return `${batch.revision}:${event.type} ${text(event.kv.key)}=${text(event.kv.value)}${prev}`;
    }),
  );
}

/** An outcome with errors reduced to code and message, for comparing backends. */
export function comparable(result: KvResult | null): unknown {
  if (result === null || result.ok) return result;
  return { ok: false, code: result.error.code, message: result.error.message };
}
