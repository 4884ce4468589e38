import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after } from 'node:test';
import { MemoryStorage } from '../src/raft/storage.js';
import { restartedState, runLogStorageConformance } from '../src/storage/conformance.js';
import { FileStorage } from '../src/storage/file-storage.js';

runLogStorageConformance('MemoryStorage', {
  open: async () => new MemoryStorage(),
  reopen: async (storage) => restartedState(storage),
});

const root = await mkdtemp(join(tmpdir(), 'flotilla-conformance-'));
after(() => rm(root, { recursive: true, force: true }));
let directories = 0;

// Small segments so the suite also exercises rollover, carried state and segment deletion.
const options = { segmentSizeBytes: 1024 };

runLogStorageConformance('FileStorage', {
  open: () => FileStorage.open(join(root, `storage-${directories++}`), options),
  reopen: async (storage) => {
    const { directory } = storage as FileStorage;
    await storage.close();
    return FileStorage.open(directory, options);
  },
});
