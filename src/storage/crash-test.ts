/**
 * The WAL torture test, with real processes and real files. A worker process
 * (crash-worker.ts) saves through the real FileStorage and reports each operation as
 * acknowledged only after its fsync completed; this parent SIGKILLs it at a random moment,
 * recovers the storage itself, and checks that every acknowledged entry, snapshot and hard
 * state is present and intact; then it starts the worker again on the same directory.
 *
 * With `--groups N` (N > 1) the worker runs N raft groups in one SharedWal, all saving
 * concurrently, and every group's acknowledgements are checked against that group's state.
 *
 *     npm run crash-test -- --cycles 200 [--groups N] [--json] [--seed N] [--dir D]
 *
 * With `--json` the last line is `{"cycles","acknowledged","lost","recoveries"}`; the exit
 * status is 1 when anything was lost.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath, pathToFileURL } from 'node:url';
import type { LogStorage } from '../raft/storage.js';
import type { HardState } from '../raft/types.js';
import {
  bytesEqual,
  type CrashOperation,
  entryIntact,
  seededRandom,
  snapshotData,
  type WorkerMessage,
} from './crash-data.js';
import { FileStorage } from './file-storage.js';
import { SharedWal } from './shared-wal.js';

/** Options of {@link runCrashTest}. */
export interface CrashTestOptions {
  /** Kill-and-recover cycles. Default 100. */
  readonly cycles: number;
  /** Seeds the kill delays and the workers' operations. Default: from the clock. */
  readonly seed: number;
  /** Each worker is killed after a delay uniform in `[0, killDelayMsMax)` from its start. Default 500. */
  readonly killDelayMsMax: number;
  /** WAL segment size, small so rollovers and segment deletion happen often. Default 256 KiB. */
  readonly segmentSizeBytes: number;
  /** Data directory; default a temporary one, removed afterwards. */
  readonly directory: string | undefined;
  /** Progress lines; default none. */
  readonly log: (line: string) => void;
  /** A deliberate worker bug the check must catch (tests of the test); default none. */
  readonly mutation: 'ack-before-write' | undefined;
  /** Raft groups; above 1 they share one SharedWal and save concurrently. Default 1 (FileStorage). */
  readonly groups: number;
}

/** The outcome of {@link runCrashTest}. */
export interface CrashTestResult {
  readonly cycles: number;
  /** Entries whose append was acknowledged (after fsync), over all cycles. */
  readonly acknowledged: number;
  /** Acknowledged entries (or snapshot, hard state) missing or altered after a recovery, plus corrupt data served. */
  readonly lost: number;
  /** Successful recoveries: the parent's after every kill and the workers' own at start. */
  readonly recoveries: number;
  /** Recoveries that cut a torn tail. */
  readonly tornTails: number;
  readonly seed: number;
}

/** What the parent knows is durable: the acknowledged state. */
interface Model {
  /** Terms of the entries in `(snapshotIndex, lastIndex]`. */
  terms: Map<number, number>;
  lastIndex: number;
  snapshotIndex: number;
  snapshotTerm: number;
  hardState: HardState;
}

interface Totals {
  acknowledged: number;
  lost: number;
  recoveries: number;
  tornTails: number;
}

const WORKER_PATH = fileURLToPath(new URL('./crash-worker.js', import.meta.url));

/** Runs the torture test; rejects if a worker fails on its own or a recovery refuses. */
export async function runCrashTest(options: Partial<CrashTestOptions> = {}): Promise<CrashTestResult> {
  const seed = options.seed ?? Date.now() % 1_000_000;
  const cycles = options.cycles ?? 100;
  const log = options.log ?? (() => undefined);
  const directory = options.directory ?? (await mkdtemp(join(tmpdir(), 'flotilla-crash-')));
  const random = seededRandom(seed);
  const totals: Totals = { acknowledged: 0, lost: 0, recoveries: 0, tornTails: 0 };
  const groups = options.groups ?? 1;
  let models = new Map<number, Model>();
  for (const group of groupIds(groups)) models.set(group, emptyModel());
  try {
    for (let cycle = 1; cycle <= cycles; cycle++) {
      const workerSeed = Math.floor(random() * 0x7fff_ffff);
      const killDelayMs = random() * (options.killDelayMsMax ?? 500);
      const worker = { ...options, directory, seed: workerSeed, killDelayMs, groups };
      const pending = await runWorker(worker, models, totals);
      models = await verify(directory, models, pending, totals, options.segmentSizeBytes);
      const lastIndex = [...models.values()].reduce((sum, model) => sum + model.lastIndex, 0);
      log(`cycle ${cycle}: last index ${lastIndex} (over ${groups} groups), lost ${totals.lost}`);
    }
  } finally {
    if (options.directory === undefined) await rm(directory, { recursive: true, force: true });
  }
  return { cycles, ...totals, seed };
}

/** The groups of a run: 0 stands for the single FileStorage. */
function groupIds(groups: number): number[] {
  if (groups <= 1) return [0];
  return Array.from({ length: groups }, (_, i) => i + 1);
}

function emptyModel(): Model {
  return {
    terms: new Map(),
    lastIndex: 0,
    snapshotIndex: 0,
    snapshotTerm: 0,
    hardState: { term: 0, vote: 0, commit: 0 },
  };
}

/**
 * Runs one worker until the kill; applies its acknowledged operations to each group's model
 * (in place) and returns the operation in flight at the kill in each group, if any.
 */
async function runWorker(
  worker: {
    directory: string;
    seed: number;
    killDelayMs: number;
    groups: number;
  } & Partial<CrashTestOptions>,
  models: Map<number, Model>,
  totals: Totals,
): Promise<Map<number, CrashOperation>> {
  const segmentSizeBytes = String(worker.segmentSizeBytes ?? 256 * 1024);
  const args = [
    WORKER_PATH,
    worker.directory,
    String(worker.seed),
    segmentSizeBytes,
    worker.mutation ?? 'none',
    String(worker.groups),
  ];
  const child = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  let stderr = '';
  child.stderr?.on('data', (chunk: Buffer) => {
    stderr += chunk.toString();
  });
  const pending = new Map<number, CrashOperation>();
  createInterface({ input: child.stdout! }).on('line', (line) => {
    const message = JSON.parse(line) as WorkerMessage;
    if (message.type === 'ready') {
      totals.recoveries++;
      return;
    }
    const group = message.group ?? 0;
    const operation = pending.get(group);
    if (message.type === 'begin') pending.set(group, message.operation);
    else if (operation !== undefined) {
      totals.acknowledged += applyOperation(models.get(group)!, operation);
      pending.delete(group);
    }
  });
  const timer = setTimeout(() => child.kill('SIGKILL'), worker.killDelayMs);
  const signal = await exited(child);
  clearTimeout(timer);
  if (signal !== 'SIGKILL') throw new Error(`crash worker exited by itself (${signal}): ${stderr}`);
  return pending;
}

/** Resolves with the terminating signal (or exit code) once all output has been read. */
function exited(child: ChildProcess): Promise<string> {
  return new Promise((resolve) => child.on('close', (code, signal) => resolve(signal ?? `exit ${code}`)));
}

/** Applies an acknowledged operation to the model; returns the entries it acknowledged. */
function applyOperation(model: Model, operation: CrashOperation): number {
  switch (operation.kind) {
    case 'append':
      for (let index = operation.first; index <= model.lastIndex; index++) model.terms.delete(index);
      for (let index = operation.first; index <= operation.last; index++)
        model.terms.set(index, operation.term);
      model.lastIndex = operation.last;
      model.hardState = operation.hardState;
      return operation.last - operation.first + 1;
    case 'snapshot':
      for (let index = model.snapshotIndex + 1; index <= operation.index; index++) model.terms.delete(index);
      model.snapshotIndex = operation.index;
      model.snapshotTerm = operation.term;
      return 0;
    case 'hard-state':
      model.hardState = operation.hardState;
      return 0;
  }
}

function cloneModel(model: Model): Model {
  return { ...model, terms: new Map(model.terms) };
}

/**
 * Recovers the storage and checks each group against its acknowledged model, allowing the
 * operation in flight at the kill to be there or not. Returns the recovered state as the
 * new models: whatever recovery returns is what the next worker builds on.
 */
async function verify(
  directory: string,
  models: ReadonlyMap<number, Model>,
  pending: ReadonlyMap<number, CrashOperation>,
  totals: Totals,
  segmentSizeBytes: number | undefined,
): Promise<Map<number, Model>> {
  const options = segmentSizeBytes === undefined ? {} : { segmentSizeBytes };
  const recovered = new Map<number, Model>();
  if (models.has(0)) {
    const storage = await FileStorage.open(directory, options);
    try {
      totals.recoveries++;
      if (storage.recovery.tornTail !== undefined) totals.tornTails++;
      recovered.set(0, checkGroup(storage, models.get(0)!, pending.get(0), totals));
    } finally {
      await storage.close();
    }
    return recovered;
  }
  const wal = await SharedWal.open(join(directory, 'wal'), options);
  try {
    totals.recoveries++;
    if (wal.recovery.tornTail !== undefined) totals.tornTails++;
    for (const [group, model] of models) {
      const storage = await wal.openGroup(group, join(directory, `snap-${group}`));
      recovered.set(group, checkGroup(storage, model, pending.get(group), totals));
    }
  } finally {
    await wal.close();
  }
  return recovered;
}

/** Checks one recovered group against its model (with or without `pending`); returns its state. */
function checkGroup(
  storage: LogStorage,
  model: Model,
  pending: CrashOperation | undefined,
  totals: Totals,
): Model {
  const candidates = [model];
  if (pending !== undefined) {
    const withPending = cloneModel(model);
    applyOperation(withPending, pending);
    candidates.push(withPending);
  }
  totals.lost +=
    Math.min(...candidates.map((candidate) => countLost(storage, candidate))) + countCorrupt(storage);
  return modelOf(storage);
}

/** Acknowledged things `storage` no longer holds as acknowledged. */
function countLost(storage: LogStorage, model: Model): number {
  const snapshot = storage.snapshot().meta;
  let lost = Math.max(0, model.snapshotIndex - snapshot.index);
  if (snapshot.index > model.snapshotIndex && model.terms.get(snapshot.index) !== snapshot.term) lost++;
  for (let index = Math.max(snapshot.index, model.snapshotIndex) + 1; index <= model.lastIndex; index++) {
    if (index > storage.lastIndex() || storage.term(index) !== model.terms.get(index)) lost++;
  }
  const { hardState } = storage.initialState();
  if (hardState.term < model.hardState.term || hardState.commit < model.hardState.commit) lost++;
  return lost;
}

/** Entries and snapshot data that are not exactly what was written. */
function countCorrupt(storage: LogStorage): number {
  let corrupt = 0;
  const { meta, data } = storage.snapshot();
  if (meta.index > 0 && !bytesEqual(data, snapshotData(meta.index, meta.term))) corrupt++;
  if (storage.lastIndex() < storage.firstIndex()) return corrupt;
  for (const entry of storage.entries(storage.firstIndex(), storage.lastIndex() + 1, Infinity)) {
    if (!entryIntact(entry)) corrupt++;
  }
  return corrupt;
}

function modelOf(storage: LogStorage): Model {
  const { meta } = storage.snapshot();
  const terms = new Map<number, number>();
  for (let index = meta.index + 1; index <= storage.lastIndex(); index++)
    terms.set(index, storage.term(index));
  return {
    terms,
    lastIndex: storage.lastIndex(),
    snapshotIndex: meta.index,
    snapshotTerm: meta.term,
    hardState: storage.initialState().hardState,
  };
}

function parseArguments(argv: readonly string[]): { options: Partial<CrashTestOptions>; json: boolean } {
  const value = (name: string): string | undefined => {
    const at = argv.indexOf(name);
    return at < 0 ? undefined : argv[at + 1];
  };
  const number = (name: string): number | undefined => {
    const text = value(name);
    return text === undefined ? undefined : Number(text);
  };
  const options: { -readonly [K in keyof CrashTestOptions]?: CrashTestOptions[K] } = {};
  const cycles = number('--cycles');
  const seed = number('--seed');
  const groups = number('--groups');
  if (cycles !== undefined) options.cycles = cycles;
  if (groups !== undefined) options.groups = groups;
  if (seed !== undefined) options.seed = seed;
  options.directory = value('--dir');
  return { options, json: argv.includes('--json') };
}

async function main(): Promise<void> {
  const { options, json } = parseArguments(process.argv.slice(2));
  const started = Date.now();
  const result = await runCrashTest({
    ...options,
    log: json ? () => undefined : (line) => console.log(line),
  });
  const seconds = ((Date.now() - started) / 1000).toFixed(1);
  const groups = options.groups ?? 1;
  console.log(
    `crash test: ${result.cycles} cycles of ${groups} group(s) in ${seconds}s (seed ${result.seed}): ` +
      `${result.acknowledged} entries acknowledged, ` +
      `${result.lost} lost, ${result.recoveries} recoveries, ${result.tornTails} torn tails cut`,
  );
  if (json) {
    const { cycles, acknowledged, lost, recoveries } = result;
    console.log(JSON.stringify({ cycles, acknowledged, lost, recoveries }));
  }
  if (result.lost > 0) process.exitCode = 1;
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  main().catch((error: unknown) => {
    console.error(error);
    process.exitCode = 2;
  });
}
