/**
 * The child of the LMDB crash test: opens the store at argv[2] and applies the batches of
 * kv-crash-commands.ts from its applied index on, forever, printing (synchronously)
 * `applied N` right after each `applyBatch` returns and `committed N` whenever it sees
 * LMDB's committed index move. The test kills it with SIGKILL at a random moment. Without an
 * argument (as `node --test dist/test/` runs every file below `test/`) it does nothing.
 */
import { writeSync } from 'node:fs';
import { LmdbKvBackend } from '../../src/kv/lmdb-backend.js';
import { batchAt } from './kv-crash-commands.js';

async function applyForever(path: string): Promise<never> {
  const backend = LmdbKvBackend.open(path, { commitBatchesMax: 16 });
  writeSync(1, `open ${backend.appliedIndex}\n`);
  let committed = backend.committedIndex;
  for (let round = 0; ; round++) {
    const room = backend.backPressure();
    if (room !== undefined) await room;
    backend.applyBatch(batchAt(backend.appliedIndex + 1));
    writeSync(1, `applied ${backend.appliedIndex}\n`);
    if (backend.committedIndex !== committed) {
      committed = backend.committedIndex;
      writeSync(1, `committed ${committed}\n`);
    }
    if (round % 4 === 0) await new Promise((resolve) => setImmediate(resolve));
  }
}

const path = process.argv[2];
if (path !== undefined) await applyForever(path);
