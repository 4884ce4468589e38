/**
 * Core throughput: committed proposals per second for 3 in-process nodes with in-memory
 * storage and an instant network, with 1 and with 256 concurrent proposers. Measures the
 * consensus core alone (no disk, no sockets): the ceiling everything else builds on.
 *
 *   npm run bench:core [-- --json] [--seconds S]
 */
import { Harness } from '../src/sim/harness.js';

interface Result {
  proposers: number;
  committed: number;
  seconds: number;
  perSecond: number;
}

/** Keeps `proposers` proposals outstanding at the leader; counts entries applied there. */
function run(proposers: number, seconds: number): Result {
  const h = new Harness({ size: 3, seed: 42, raft: { inflightMessagesMax: 256, appendBytesMax: 1 << 20 } });
  const leader = h.node(h.electLeader());
  const payload = new Uint8Array(128).fill(7);
  let outstanding = 0;
  let applied = leader.applied.length;
  let committed = 0;
  const start = performance.now();
  const deadline = start + seconds * 1000;
  let rounds = 0;
  while (true) {
    if ((++rounds & 63) === 0 && performance.now() > deadline) break;
    const batch: Uint8Array[] = [];
    while (outstanding + batch.length < proposers) batch.push(payload);
    if (batch.length > 0) {
      // Concurrent proposers arriving between two Readies land in one batch, as in the runtime.
      leader.raw.proposeBatch(batch);
      outstanding += batch.length;
    }
    h.processReadies();
    h.deliverAll();
    const done = leader.applied.length - applied;
    if (done > 0) {
      committed += done;
      outstanding -= done;
      applied = leader.applied.length;
      // Keep memory flat: the applied list is only counted.
      if (applied > 100_000) {
        leader.applied = [];
        applied = 0;
      }
    }
  }
  const elapsed = (performance.now() - start) / 1000;
  return { proposers, committed, seconds: elapsed, perSecond: committed / elapsed };
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)]!;
}

const json = process.argv.includes('--json');
const secondsArg = process.argv.indexOf('--seconds');
const seconds = secondsArg >= 0 ? Number(process.argv[secondsArg + 1]) : 3;
const rows: { proposers: number; medianPerSecond: number; runs: number[] }[] = [];
for (const proposers of [1, 256]) {
  run(proposers, 0.5); // warm-up: JIT
  const runs = [0, 1, 2].map(() => run(proposers, seconds).perSecond);
  rows.push({ proposers, medianPerSecond: median(runs), runs });
  if (!json) {
    console.log(
      `${String(proposers).padStart(4)} proposer(s): ${Math.round(median(runs)).toLocaleString('en-US')} committed/s (median of ${runs.map((r) => Math.round(r)).join(', ')})`,
    );
  }
}
if (json) {
  console.log(
    JSON.stringify({
      proposers_1_per_s: Math.round(rows[0]!.medianPerSecond),
      proposers_256_per_s: Math.round(rows[1]!.medianPerSecond),
    }),
  );
}
