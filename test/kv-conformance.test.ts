import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after } from 'node:test';
import { type KvBackendFactory, runKvConformance, runKvEquivalence } from '../src/kv/conformance.js';
import type { KvBackend } from '../src/kv/index.js';
import { LmdbKvBackend, MemoryKvBackend } from '../src/kv/index.js';

/** The memory backend "restarts" from its own snapshot: it has no other durable state. */
const memory: KvBackendFactory = {
  open: async (options) => new MemoryKvBackend(options),
  reopen: async (backend: KvBackend) => {
    const restarted = new MemoryKvBackend(backend.options);
    await restarted.restore(backend.snapshot());
    await backend.close();
    return restarted;
  },
};

const root = await mkdtemp(join(tmpdir(), 'flotilla-kv-'));
after(() => rm(root, { recursive: true, force: true }));
let directories = 0;

/** LMDB with the default durability (commit without waiting for the flush). */
const lmdb: KvBackendFactory = {
  open: async (options) => LmdbKvBackend.open(join(root, `kv-${directories++}`), options),
  reopen: async (backend: KvBackend) => {
    const { path, options } = backend as LmdbKvBackend;
    await backend.close();
    return LmdbKvBackend.open(path, options);
  },
};

/** LMDB without fsync, for the many short-lived stores of the random test. */
const lmdbNoSync: KvBackendFactory = {
  open: async (options) =>
    LmdbKvBackend.open(join(root, `kv-${directories++}`), { ...options, noSync: true }),
  reopen: lmdb.reopen,
};

runKvConformance('MemoryKvBackend', memory);
runKvConformance('LmdbKvBackend', lmdb);
runKvEquivalence('MemoryKvBackend', memory, 'LmdbKvBackend', lmdbNoSync);
