/** fast-check arbitraries shared by the property tests of the core. */
import fc from 'fast-check';
import type { NodeId } from '../../src/raft/index.js';

/** Acknowledged index of every node 1..9 (position i is node i + 1), each at most `max`. */
export function ackedArb(max: number): fc.Arbitrary<number[]> {
  return fc.array(fc.nat(max), { minLength: 9, maxLength: 9 });
}

/** A vote (or no answer) from every node 1..9; non-voters' votes must be ignored. */
export const votesArb: fc.Arbitrary<Map<NodeId, boolean>> = fc
  .array(fc.constantFrom<boolean | undefined>(true, false, undefined), { minLength: 9, maxLength: 9 })
  .map((a) => {
    const votes = new Map<NodeId, boolean>();
    a.forEach((v, i) => {
      if (v !== undefined) votes.set(i + 1, v);
    });
    return votes;
  });
