/**
 * The child of the restore crash test (test/kv-restore-crash.test.ts): opens the LMDB store
 * at argv[2], restores the snapshot whose chunks are framed in the file argv[3] (envelope.ts,
 * `frameChunks`) in small transactions, and prints (synchronously)
 * `open N` before and `restored N` once `restore` has returned. The test kills it with
 * SIGKILL at a chosen moment. Without arguments (as `node --test dist/test/` runs every file
 * below `test/`) it does nothing.
 */
import { readFileSync, writeSync } from 'node:fs';
import { LmdbKvBackend } from '../../src/kv/lmdb-backend.js';
import { unframeChunks } from '../../src/node/envelope.js';

async function restoreOnce(path: string, framed: string): Promise<void> {
  const backend = LmdbKvBackend.open(path, { restoreTransactionBytesMax: 4096 });
  const chunks = [...unframeChunks(readFileSync(framed))];
  writeSync(1, `open ${backend.appliedIndex}\n`);
  await backend.restore(chunks);
  writeSync(1, `restored ${backend.appliedIndex}\n`);
  await backend.close();
}

const [path, framed] = process.argv.slice(2);
if (path !== undefined && framed !== undefined) await restoreOnce(path, framed);
