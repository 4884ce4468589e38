/**
 * Always-on assertions. A failed assertion means the node's state is corrupt or the code has
 * a bug: the node must halt, never continue. Operating errors (peer down, disk full) are not
 * assertions; they are {@link RaftError}s or storage errors handled by the runtime.
 */

/** Thrown when an invariant does not hold. */
export class AssertionError extends Error {
  override readonly name = 'AssertionError';
}

/** Throws an {@link AssertionError} with `message` unless `condition` holds. */
export function assert(condition: boolean, message: string): asserts condition {
  if (!condition) throw new AssertionError(message);
}

/** Marks a branch that exhaustive type checking proves unreachable. */
export function assertNever(value: never, what = 'value'): never {
  throw new AssertionError(`unexpected ${what}: ${JSON.stringify(value)}`);
}
