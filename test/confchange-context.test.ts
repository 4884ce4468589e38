/**
 * The optional context of a conf-change entry: replicated opaquely, appended after the changes
 * as `[u32 length][bytes]`, and absent from entries written without one (which still decode).
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import type { ConfChange, ConfChangeSingle } from '../src/raft/index.js';
import { AssertionError, decodeConfChange, encodeConfChange } from '../src/raft/index.js';

const singleArb: fc.Arbitrary<ConfChangeSingle> = fc
  .tuple(
    fc.constantFrom('add-voter' as const, 'add-learner' as const, 'remove' as const),
    fc.integer({ min: 1, max: Number.MAX_SAFE_INTEGER }),
  )
  .map(([type, node]) => ({ type, node }));

const ccArb: fc.Arbitrary<ConfChange> = fc
  .tuple(fc.array(singleArb, { maxLength: 6 }), fc.boolean(), fc.uint8Array({ minLength: 1, maxLength: 64 }))
  .map(([changes, leaveJoint, context]) =>
    leaveJoint ? { changes, leaveJoint: true, context } : { changes, context },
  );

describe('conf-change context', () => {
  it('round-trips, at any buffer offset', () => {
    fc.assert(
      fc.property(ccArb, (cc) => {
        const data = encodeConfChange(cc);
        assert.equal(data.length, 5 + 9 * cc.changes.length + 4 + (cc.context?.length ?? 0));
        assert.deepEqual(decodeConfChange(data), cc);
        const padded = new Uint8Array(data.length + 7);
        padded.set(data, 3);
        assert.deepEqual(decodeConfChange(padded.subarray(3, 3 + data.length)), cc);
      }),
      { numRuns: 300 },
    );
  });

  it('an entry without a context keeps the old format and decodes without one', () => {
    fc.assert(
      fc.property(ccArb, (cc) => {
        const { context: _context, ...plain } = cc;
        const data = encodeConfChange(plain);
        assert.equal(data.length, 5 + 9 * cc.changes.length);
        assert.deepEqual(decodeConfChange(data), plain);
        assert.equal('context' in decodeConfChange(data), false);
        // An empty context is not written at all.
        assert.deepEqual(encodeConfChange({ ...plain, context: new Uint8Array(0) }), data);
      }),
      { numRuns: 200 },
    );
  });

  it('a truncated or padded context is rejected as corrupt', () => {
    fc.assert(
      fc.property(ccArb, fc.nat(), (cc, cut) => {
        const data = encodeConfChange(cc);
        const head = 5 + 9 * cc.changes.length;
        // Any cut past the changes but before the end leaves a malformed context.
        const at = head + 1 + (cut % (data.length - head - 1));
        assert.throws(() => decodeConfChange(data.subarray(0, at)), AssertionError);
        assert.throws(() => decodeConfChange(new Uint8Array([...data, 0])), AssertionError);
      }),
      { numRuns: 200 },
    );
  });

  it('the decoded context does not alias the entry buffer', () => {
    const context = new TextEncoder().encode('{"name":"n4"}');
    const data = encodeConfChange({ changes: [{ type: 'add-learner', node: 4 }], context });
    const decoded = decodeConfChange(data);
    data.fill(0);
    assert.deepEqual(decoded.context, context);
  });
});
