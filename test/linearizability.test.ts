import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import type { CheckResult, KvInput, KvOutput, Operation } from '../src/sim/linearizability.js';
import { checkLinearizable, describeOperation } from '../src/sim/linearizability.js';

// ---------------------------------------------------------------------------------------------
// Builders: `ret` undefined means the outcome is unknown (the client timed out).

function op(clientId: number, input: KvInput, call: number, ret?: number, output?: KvOutput): Operation {
  return ret === undefined
    ? { clientId, input, call, return: undefined, output: undefined }
    : { clientId, input, call, return: ret, output: output! };
}

function put(c: number, key: string, value: string, call: number, ret?: number): Operation {
  return op(c, { kind: 'put', key, value }, call, ret, { kind: 'put' });
}

function get(c: number, key: string, value: string | null, call: number, ret: number): Operation {
  return op(c, { kind: 'get', key }, call, ret, { kind: 'get', value });
}

function cas(
  c: number,
  key: string,
  expected: string | null,
  value: string,
  ok: boolean,
  call: number,
  ret?: number,
): Operation {
  return op(c, { kind: 'cas', key, expected, value }, call, ret, { kind: 'cas', ok });
}

function assertOk(history: readonly Operation[]): void {
  assert.deepEqual(checkLinearizable(history), { result: 'ok' });
}

function assertIllegal(
  history: readonly Operation[],
  key = 'k',
): Extract<CheckResult, { result: 'illegal' }> {
  const verdict = checkLinearizable(history);
  assert.equal(verdict.result, 'illegal', JSON.stringify(verdict));
  assert.equal(verdict.key, key);
  return verdict;
}

// ---------------------------------------------------------------------------------------------

describe('checkLinearizable: hand-written histories', () => {
  it('accepts the empty history', () => assertOk([]));

  it('accepts a sequential history', () => {
    assertOk([
      get(1, 'k', null, 0, 1),
      put(1, 'k', 'a', 2, 3),
      get(2, 'k', 'a', 4, 5),
      put(2, 'k', 'b', 6, 7),
    ]);
  });

  it('rejects a read of a value nobody wrote', () => {
    const verdict = assertIllegal([put(1, 'k', 'a', 0, 1), get(2, 'k', 'zzz', 2, 3)]);
    assert.match(verdict.detail, /"zzz"/);
  });

  it('rejects a read of a present value on a never-written key', () => {
    assertIllegal([get(1, 'k', 'a', 0, 1)]);
  });

  it('rejects a stale read after a completed write', () => {
    const verdict = assertIllegal([put(1, 'k', 'a', 0, 1), put(1, 'k', 'b', 2, 3), get(2, 'k', 'a', 4, 5)]);
    assert.match(verdict.detail, /Longest linearizable prefix found \(2 ops\), leaving the value "b"/);
    assert.match(verdict.detail, /client 2: get\("k"\) -> "a" @\[4, 5\]/);
  });

  it('accepts a read overlapping a write that sees either value', () => {
    assertOk([put(1, 'k', 'a', 0, 1), put(1, 'k', 'b', 2, 6), get(2, 'k', 'a', 3, 4)]);
    assertOk([put(1, 'k', 'a', 0, 1), put(1, 'k', 'b', 2, 6), get(2, 'k', 'b', 3, 4)]);
  });

  it('rejects a read that goes back in time after a newer read', () => {
    // Both reads overlap the write, but once b was seen, a later read cannot see a again.
    assertIllegal([
      put(1, 'k', 'a', 0, 1),
      put(1, 'k', 'b', 2, 10),
      get(2, 'k', 'b', 3, 4),
      get(2, 'k', 'a', 5, 6),
    ]);
  });

  it('accepts concurrent writes in either order', () => {
    const writes = [put(1, 'k', 'a', 0, 10), put(2, 'k', 'b', 1, 9)];
    assertOk([...writes, get(3, 'k', 'a', 11, 12)]);
    assertOk([...writes, get(3, 'k', 'b', 11, 12)]);
    assertIllegal([...writes, get(3, 'k', 'a', 11, 12), get(3, 'k', 'b', 13, 14)]);
  });

  it('orders a return before a call at the same instant', () => {
    assertIllegal([put(1, 'k', 'a', 0, 5), get(2, 'k', null, 5, 6)]);
    assertOk([put(1, 'k', 'a', 0, 5), get(2, 'k', 'a', 5, 6)]);
    // Zero-length operations work too.
    assertOk([put(1, 'k', 'a', 3, 3), get(2, 'k', 'a', 3, 3), put(1, 'k', 'b', 3, 4)]);
    assertIllegal([put(1, 'k', 'a', 3, 3), get(2, 'k', null, 3, 4)]);
  });

  it('checks cas outcomes against the current value', () => {
    assertOk([cas(1, 'k', null, 'a', true, 0, 1), get(1, 'k', 'a', 2, 3)]);
    assertOk([put(1, 'k', 'a', 0, 1), cas(1, 'k', 'a', 'b', true, 2, 3), cas(2, 'k', 'a', 'c', false, 4, 5)]);
    assertIllegal([put(1, 'k', 'a', 0, 1), cas(2, 'k', 'a', 'b', false, 2, 3)]);
    assertIllegal([cas(1, 'k', 'a', 'b', true, 0, 1)]);
    assertIllegal([put(1, 'k', 'a', 0, 1), cas(1, 'k', null, 'b', true, 2, 3)]);
  });

  it('lets exactly one of two concurrent creates win', () => {
    assertOk([
      cas(1, 'k', null, 'a', true, 0, 5),
      cas(2, 'k', null, 'b', false, 1, 4),
      get(3, 'k', 'a', 6, 7),
    ]);
    assertIllegal([cas(1, 'k', null, 'a', true, 0, 5), cas(2, 'k', null, 'b', true, 1, 4)]);
    assertIllegal([cas(1, 'k', null, 'a', false, 0, 5), cas(2, 'k', null, 'b', false, 1, 4)]);
  });

  it('accepts a pending put that must have happened to explain a later read', () => {
    assertOk([
      put(1, 'k', 'a', 0),
      get(2, 'k', null, 1, 2),
      get(2, 'k', 'a', 10, 11),
      get(3, 'k', 'a', 12, 13),
    ]);
  });

  it('accepts a pending put that never took effect', () => {
    assertOk([put(1, 'k', 'a', 0), get(2, 'k', null, 1, 2), get(2, 'k', null, 100, 101)]);
  });

  it('rejects a pending put observed by a read that finished before its call', () => {
    assertIllegal([get(2, 'k', 'a', 0, 1), put(1, 'k', 'a', 2)]);
  });

  it('rejects a pending put whose effect later disappears', () => {
    assertIllegal([put(1, 'k', 'a', 0), get(2, 'k', 'a', 1, 2), get(2, 'k', null, 3, 4)]);
  });

  it('lets a pending cas succeed or fail as the register dictates', () => {
    const pending = cas(1, 'k', null, 'a', true, 0);
    assertOk([pending, get(2, 'k', 'a', 1, 2)]);
    assertOk([pending, get(2, 'k', null, 1, 2)]);
    // With the value already present, the cas cannot succeed.
    assertIllegal([put(2, 'k', 'b', 0, 1), cas(1, 'k', null, 'a', true, 2), get(2, 'k', 'a', 3, 4)]);
  });

  it('ignores pending gets', () => {
    assertOk([put(1, 'k', 'a', 0, 1), op(2, { kind: 'get', key: 'k' }, 2)]);
  });

  it('checks keys independently and names the illegal one', () => {
    const history = [
      put(1, 'x', 'a', 0, 1),
      put(2, 'y', 'b', 0, 1),
      get(1, 'y', 'b', 2, 3),
      get(2, 'x', 'b', 2, 3),
    ];
    const verdict = assertIllegal(history, 'x');
    assert.doesNotMatch(verdict.detail, /"y"/);
    // The same values on different keys would be fine on one key in the other order.
    assertOk([put(1, 'x', 'a', 0, 1), get(1, 'y', null, 2, 3), get(1, 'x', 'a', 2, 3)]);
  });

  it('rejects malformed operations', () => {
    assert.throws(() => checkLinearizable([put(1, 'k', 'a', 5, 4)]), RangeError);
    const mismatched: Operation = {
      clientId: 1,
      input: { kind: 'get', key: 'k' },
      call: 0,
      return: 1,
      output: { kind: 'put' },
    };
    assert.throws(() => checkLinearizable([mismatched]), RangeError);
    const noOutput: Operation = {
      clientId: 1,
      input: { kind: 'get', key: 'k' },
      call: 0,
      return: 1,
      output: undefined,
    };
    assert.throws(() => checkLinearizable([noOutput]), RangeError);
  });

  it('describes operations readably', () => {
    assert.equal(describeOperation(put(3, 'k', 'v', 1, 2)), 'client 3: put("k", "v") -> ok @[1, 2]');
    assert.equal(describeOperation(get(1, 'k', null, 1, 2)), 'client 1: get("k") -> null @[1, 2]');
    assert.equal(
      describeOperation(cas(2, 'k', null, 'v', false, 4)),
      'client 2: cas("k", null -> "v") -> ? @[4, pending)',
    );
  });
});

// ---------------------------------------------------------------------------------------------
// Budget.

/** `width` fully concurrent puts followed by a read of a value none of them wrote. */
function hardHistory(key: string, width: number): Operation[] {
  const puts = Array.from({ length: width }, (_, i) => put(i, key, `v${i}`, 0, 100));
  return [...puts, get(width, key, 'nope', 101, 102)];
}

describe('checkLinearizable: step budget', () => {
  it('reports unknown, never ok, when the budget runs out', () => {
    const verdict = checkLinearizable(hardHistory('k', 12), { maxStepsPerKey: 100 });
    assert.equal(verdict.result, 'unknown');
    assert.equal(verdict.key, 'k');
  });

  it('reports unknown on an ok-looking history that needs more steps', () => {
    const history = [put(1, 'k', 'a', 0, 1), put(1, 'k', 'b', 2, 3), get(1, 'k', 'b', 4, 5)];
    assert.equal(checkLinearizable(history, { maxStepsPerKey: 2 }).result, 'unknown');
    assertOk(history);
  });

  it('finds the violation in the same history given enough budget', () => {
    assertIllegal(hardHistory('k', 8));
  });

  it('prefers illegal on one key over unknown on another', () => {
    const history = [...hardHistory('hard', 12), put(1, 'bad', 'a', 0, 1), get(1, 'bad', null, 2, 3)];
    const verdict = checkLinearizable(history, { maxStepsPerKey: 1000 });
    assert.equal(verdict.result, 'illegal');
    assert.equal(verdict.key, 'bad');
  });
});

// ---------------------------------------------------------------------------------------------
// Generated histories: a true sequential execution stretched into concurrency windows.

type Outcome = 'returned' | 'timed out, applied' | 'timed out, lost';

interface Step {
  client: number;
  kind: 'put' | 'get' | 'cas';
  key: number;
  value: number;
  expected: number | null;
  gap: number;
  latency: number;
  /** Where inside the window the op takes effect, as a fraction in hundredths. */
  at: number;
  outcome: Outcome;
}

/**
 * Turns steps into a history: each client issues its ops back to back; every op takes effect at an
 * odd instant strictly inside its (even-timed) window, so the effect order is a valid linearization,
 * and outputs come from a real Map applied in that order. Lost ops never take effect.
 */
function simulate(steps: readonly Step[]): Operation[] {
  const clock = new Map<number, number>();
  const timed = steps.map((s, index) => {
    const call = (clock.get(s.client) ?? 0) + 2 * s.gap;
    const ret = call + 2 * (1 + s.latency);
    clock.set(s.client, ret);
    const effect = call + 1 + 2 * Math.floor((s.latency * s.at) / 100);
    const key = `k${s.key}`;
    const value = `v${s.value}`;
    const input: KvInput =
      s.kind === 'put'
        ? { kind: 'put', key, value }
        : s.kind === 'get'
          ? { kind: 'get', key }
          : { kind: 'cas', key, expected: s.expected === null ? null : `v${s.expected}`, value };
    return { s, index, call, ret, effect, input };
  });
  const store = new Map<string, string>();
  const history: Operation[] = [];
  for (const t of [...timed].sort((a, b) => a.effect - b.effect || a.index - b.index)) {
    if (t.s.outcome === 'timed out, lost') {
      history.push(op(t.s.client, t.input, t.call));
      continue;
    }
    const output = apply(store, t.input);
    if (t.s.outcome === 'returned') history.push(op(t.s.client, t.input, t.call, t.ret, output));
    else history.push(op(t.s.client, t.input, t.call));
  }
  return history;
}

/** The reference sequential semantics, written independently of the checker's integer model. */
function apply(store: Map<string, string>, input: KvInput): KvOutput {
  const current = store.get(input.key) ?? null;
  switch (input.kind) {
    case 'put':
      store.set(input.key, input.value);
      return { kind: 'put' };
    case 'get':
      return { kind: 'get', value: current };
    case 'cas':
      if (current !== input.expected) return { kind: 'cas', ok: false };
      store.set(input.key, input.value);
      return { kind: 'cas', ok: true };
  }
}

function stepArb(outcomes: fc.Arbitrary<Outcome>, keys = 3, clients = 6): fc.Arbitrary<Step> {
  return fc.record({
    client: fc.integer({ min: 0, max: clients - 1 }),
    kind: fc.constantFrom('put', 'get', 'get', 'cas'),
    key: fc.integer({ min: 0, max: keys - 1 }),
    value: fc.integer({ min: 0, max: 3 }),
    expected: fc.option(fc.integer({ min: 0, max: 3 }), { nil: null }),
    gap: fc.integer({ min: 0, max: 3 }),
    latency: fc.integer({ min: 0, max: 12 }),
    at: fc.integer({ min: 0, max: 99 }),
    outcome: outcomes,
  });
}

const returned = fc.constant<Outcome>('returned');
const sometimesTimedOut = fc.constantFrom<Outcome>(
  'returned',
  'returned',
  'returned',
  'returned',
  'timed out, applied',
  'timed out, lost',
);

describe('checkLinearizable: generated histories', () => {
  it('accepts every history produced by a real sequential execution', () => {
    fc.assert(
      fc.property(fc.array(stepArb(returned), { maxLength: 120 }), (steps) => {
        assert.deepEqual(checkLinearizable(simulate(steps)), { result: 'ok' });
      }),
    );
  });

  it('rejects such a history once a get is corrupted to an unwritten value', () => {
    fc.assert(
      fc.property(
        fc.array(stepArb(sometimesTimedOut), { minLength: 1, maxLength: 120 }),
        fc.nat(),
        (steps, pick) => {
          const history = simulate(steps);
          const gets = history.flatMap((o, i) =>
            o.input.kind === 'get' && o.return !== undefined ? [i] : [],
          );
          fc.pre(gets.length > 0);
          const victim = gets[pick % gets.length]!;
          const corrupted = history.map((o, i) =>
            i === victim ? { ...o, output: { kind: 'get', value: 'never-written' } as const } : o,
          );
          const verdict = checkLinearizable(corrupted);
          assert.equal(verdict.result, 'illegal');
          assert.equal(verdict.key, history[victim]!.input.key);
        },
      ),
    );
  });

  it('accepts histories where some outcomes are unknown, applied or not', () => {
    fc.assert(
      fc.property(fc.array(stepArb(sometimesTimedOut), { maxLength: 120 }), (steps) => {
        assert.deepEqual(checkLinearizable(simulate(steps)), { result: 'ok' });
      }),
    );
  });

  it('agrees with brute-force enumeration on small arbitrary histories', () => {
    fc.assert(
      fc.property(fc.array(arbitraryOp(), { maxLength: 7 }), (history) => {
        const expected = bruteForceLinearizable(history) ? 'ok' : 'illegal';
        assert.equal(checkLinearizable(history).result, expected);
      }),
      { numRuns: 500 },
    );
  });

  it('checks a 10,000-operation history with timeouts', () => {
    const random = fc.sample(
      fc.array(stepArb(sometimesTimedOut, 10, 10), { minLength: 10_000, maxLength: 10_000 }),
      {
        seed: 42,
        numRuns: 1,
      },
    )[0]!;
    assert.deepEqual(checkLinearizable(simulate(random)), { result: 'ok' });
  });
});

// ---------------------------------------------------------------------------------------------
// Brute force reference: try every order consistent with real time (and every subset of pending ops).

/** Small single-key histories with small, tie-prone times and arbitrary (mostly wrong) outputs. */
function arbitraryOp(): fc.Arbitrary<Operation> {
  const value = fc.constantFrom('a', 'b');
  const input: fc.Arbitrary<KvInput> = fc.oneof(
    value.map((v) => ({ kind: 'put', key: 'k', value: v }) as const),
    fc.constant({ kind: 'get', key: 'k' } as const),
    fc
      .tuple(fc.option(value, { nil: null }), value)
      .map(([e, v]) => ({ kind: 'cas', key: 'k', expected: e, value: v }) as const),
  );
  const output = (i: KvInput): fc.Arbitrary<KvOutput> =>
    i.kind === 'put'
      ? fc.constant({ kind: 'put' })
      : i.kind === 'get'
        ? fc.option(value, { nil: null }).map((v) => ({ kind: 'get', value: v }))
        : fc.boolean().map((ok) => ({ kind: 'cas', ok }));
  return fc
    .tuple(input, fc.integer({ min: 0, max: 6 }), fc.option(fc.integer({ min: 0, max: 3 }), { freq: 4 }))
    .chain(([i, call, length]) =>
      length === null
        ? fc.constant(op(0, i, call))
        : output(i).map((out) => op(0, i, call, call + length, out)),
    );
}

/** Whether `a` must be linearized before `b`; zero-length ops at the same instant are concurrent. */
function precedes(a: Operation, b: Operation): boolean {
  if (a.return === undefined) return false;
  if (a.return !== b.call) return a.return < b.call;
  return !(a.call === a.return && b.call === b.return);
}

function bruteForceLinearizable(history: readonly Operation[]): boolean {
  const explore = (remaining: readonly Operation[], value: string | null): boolean => {
    // Every remaining op returned, or a pending one may simply never take effect.
    if (remaining.every((o) => o.return === undefined)) return true;
    return remaining.some((candidate, i) => {
      if (remaining.some((other) => other !== candidate && precedes(other, candidate))) return false;
      const store = new Map(value === null ? [] : [['k', value]]);
      const actual = apply(store, candidate.input as KvInput);
      if (candidate.output !== undefined && JSON.stringify(actual) !== JSON.stringify(candidate.output))
        return false;
      return explore(
        remaining.filter((_, j) => j !== i),
        store.get('k') ?? null,
      );
    });
  };
  return explore(history, null);
}

// ---------------------------------------------------------------------------------------------
// Counters: add n returns the value it produced; read returns the value (the simulator's
// user-level state machine).

function add(c: number, n: number, value: number | undefined, call: number, ret?: number): Operation {
  return ret === undefined || value === undefined
    ? { clientId: c, input: { kind: 'add', key: 'c', n }, call, return: undefined, output: undefined }
    : { clientId: c, input: { kind: 'add', key: 'c', n }, call, return: ret, output: { kind: 'add', value } };
}

function read(c: number, value: number, call: number, ret: number): Operation {
  return {
    clientId: c,
    input: { kind: 'read', key: 'c' },
    call,
    return: ret,
    output: { kind: 'read', value },
  };
}

describe('counter histories', () => {
  it('accepts concurrent adds in either order, and reads between them', () => {
    assertOk([add(1, 2, 5, 0, 10), add(2, 3, 3, 0, 10), read(3, 3, 1, 2), read(3, 5, 11, 12)]);
  });

  it('accepts an add with an unknown outcome taking effect, or never', () => {
    assertOk([add(1, 4, undefined, 0), read(2, 4, 5, 6), read(2, 4, 7, 8)]);
    assertOk([add(1, 4, undefined, 0), read(2, 0, 5, 6)]);
  });

  it('rejects an add applied twice (a retry not suppressed)', () => {
    const verdict = checkLinearizable([add(1, 2, 2, 0, 1), read(2, 4, 2, 3)]);
    assert.equal(verdict.result, 'illegal');
    if (verdict.result === 'illegal') assert.match(verdict.detail, /read\("c"\) -> 4/);
  });

  it('rejects a read that goes back (a lost add)', () => {
    assert.equal(checkLinearizable([add(1, 2, 2, 0, 1), read(2, 0, 2, 3)]).result, 'illegal');
  });

  it('rejects a key with both register and counter operations as malformed', () => {
    assert.throws(() => checkLinearizable([add(1, 1, 1, 0, 1), get(2, 'c', null, 2, 3)]), RangeError);
  });
});
