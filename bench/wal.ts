/**
 * WAL benchmark: `npm run bench:wal -- [--json] [--seconds N] [--slice-seconds S] [--dir D]`.
 *
 * Measures, in one run on the same disk: the raw rate of a 4 KiB write + `fdatasync` into a
 * preallocated file (the physical limit for one durable write), then the WAL's throughput
 * through `FileStorage.save` (each save one Ready: 256-byte entries plus a hard state) for
 * batch sizes 1, 10, 100 and 1000, each as a ratio to that limit. For the record it also
 * measures raw appends that grow the file and the WAL without preallocation.
 *
 * Shared virtual disks drift by 2x within seconds (and other processes compete for them),
 * so the measurements are interleaved finely: each round runs every measurement for one
 * short slice, and each rate is its total count over its total time, so every measurement
 * sees the same mix of fast and slow moments as the raw limit it is compared with.
 * Between slices, outside the timed region, each storage snapshots and compacts, as the
 * runtime's snapshot policy would: an unbounded in-memory log would otherwise make the
 * benchmark measure the garbage collector (millions of retained entries) instead of the WAL.
 * With `--json` the last line is
 * `{"fdatasync_per_s","batch1_entries_per_s","batch10_entries_per_s","batch100_entries_per_s","batch1000_entries_per_s"}`.
 */
import { type FileHandle, mkdtemp, open, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Entry } from '../src/raft/types.js';
import { EMPTY_CONF_STATE } from '../src/raft/types.js';
import { FileStorage } from '../src/storage/file-storage.js';

const ENTRY_BYTES = 256;
const RAW_WRITE_BYTES = 4096;
const RAW_PREALLOCATED_BYTES = 64 * 1024 * 1024;

/** One measurement: runs for about `seconds` and reports the operations (entries or writes) done. */
interface Measurement {
  readonly label: string;
  /** Bytes of payload per counted operation, for MB/s. */
  readonly bytesPerOperation: number;
  run(seconds: number): Promise<Slice>;
  /** Work between slices, outside the timed region. */
  settle(): Promise<void>;
  close(): Promise<void>;
}

/** 4 KiB write + fdatasync; into a zero-filled file (overwriting) or at the end of a growing one. */
async function rawMeasurement(directory: string, preallocated: boolean): Promise<Measurement> {
  const path = join(directory, `raw-${preallocated ? 'preallocated' : 'growing'}`);
  const handle = await open(path, 'w+');
  if (preallocated) await fillZeros(handle, RAW_PREALLOCATED_BYTES);
  const block = new Uint8Array(RAW_WRITE_BYTES).fill(0xab);
  let writes = 0;
  return {
    label: `raw 4 KiB write + fdatasync, ${preallocated ? 'preallocated file' : 'growing file'}`,
    bytesPerOperation: RAW_WRITE_BYTES,
    run: (seconds) =>
      rate(seconds, async () => {
        const position = preallocated
          ? (writes * RAW_WRITE_BYTES) % RAW_PREALLOCATED_BYTES
          : writes * RAW_WRITE_BYTES;
        await handle.write(block, 0, block.length, position);
        await handle.datasync();
        writes++;
        return 1;
      }),
    settle: async () => undefined,
    close: async () => {
      await handle.close();
      await rm(path, { force: true });
    },
  };
}

async function fillZeros(handle: FileHandle, bytes: number): Promise<void> {
  const zeros = new Uint8Array(1024 * 1024);
  for (let position = 0; position < bytes; position += zeros.length)
    await handle.write(zeros, 0, zeros.length, position);
  await handle.datasync();
}

/** `FileStorage.save` of `batchSize` 256-byte entries and a hard state. */
async function walMeasurement(
  directory: string,
  batchSize: number,
  preallocate: boolean,
): Promise<Measurement> {
  const path = join(directory, `wal-${batchSize}-${preallocate}`);
  const storage = await FileStorage.open(path, { preallocate });
  const data = new Uint8Array(ENTRY_BYTES).fill(0x5c);
  return {
    label: `WAL batch ${batchSize}${preallocate ? '' : ', no preallocation'}`,
    bytesPerOperation: ENTRY_BYTES,
    run: (seconds) =>
      rate(seconds, async () => {
        const first = storage.lastIndex() + 1;
        const entries: Entry[] = [];
        for (let index = first; index < first + batchSize; index++)
          entries.push({ index, term: 1, type: 'normal', data });
        await storage.save({ entries, hardState: { term: 1, vote: 1, commit: first } });
        return batchSize;
      }),
    // What the runtime's snapshot policy does: keeps the in-memory log (and the WAL) bounded.
    settle: async () => {
      const last = storage.lastIndex();
      if (last === storage.snapshot().meta.index) return;
      await storage.createSnapshot(last, EMPTY_CONF_STATE, new Uint8Array(64));
      await storage.compact(last);
    },
    close: async () => {
      await storage.close();
      await rm(path, { recursive: true, force: true });
    },
  };
}

/** Runs `operation` repeatedly for `seconds`; returns the counts it reported and the time taken. */
async function rate(seconds: number, operation: () => Promise<number>): Promise<Slice> {
  let count = 0;
  const start = performance.now();
  const deadline = start + seconds * 1000;
  while (performance.now() < deadline) count += await operation();
  return { count, seconds: (performance.now() - start) / 1000 };
}

/** What one slice of a measurement did. */
interface Slice {
  readonly count: number;
  readonly seconds: number;
}

function option(argv: readonly string[], name: string, fallback: number): number {
  const at = argv.indexOf(name);
  return at < 0 ? fallback : Number(argv[at + 1]);
}

interface Row {
  readonly label: string;
  readonly perSecond: number;
  readonly megabytesPerSecond: number;
  readonly ratio: number;
}

function printTable(rows: readonly Row[], seconds: number, sliceSeconds: number): void {
  console.log(`WAL benchmark: ${seconds}s per measurement, interleaved in ${sliceSeconds}s slices`);
  console.log('| measurement | entries/s (writes/s for raw) | MB/s | ratio to raw fdatasync rate |');
  console.log('| --- | ---: | ---: | ---: |');
  for (const row of rows) {
    const cells = [
      row.label,
      row.perSecond.toFixed(0),
      row.megabytesPerSecond.toFixed(1),
      `${row.ratio.toFixed(2)}x`,
    ];
    console.log(`| ${cells.join(' | ')} |`);
  }
}

async function main(): Promise<void> {
  const argv = process.argv.slice(2);
  const seconds = option(argv, '--seconds', 3);
  const sliceSeconds = option(argv, '--slice-seconds', 0.1);
  const dirAt = argv.indexOf('--dir');
  const directory = await mkdtemp(join(dirAt < 0 ? tmpdir() : argv[dirAt + 1]!, 'flotilla-bench-wal-'));
  const measurements = [
    await rawMeasurement(directory, true),
    await rawMeasurement(directory, false),
    ...(await Promise.all([1, 10, 100, 1000].map((size) => walMeasurement(directory, size, true)))),
    await walMeasurement(directory, 1, false),
    await walMeasurement(directory, 1000, false),
  ];
  try {
    const totals = measurements.map(() => ({ count: 0, seconds: 0 }));
    for (let round = 0; round < Math.ceil(seconds / sliceSeconds); round++) {
      for (const [i, measurement] of measurements.entries()) {
        const slice = await measurement.run(sliceSeconds);
        await measurement.settle();
        totals[i]!.count += slice.count;
        totals[i]!.seconds += slice.seconds;
      }
    }
    const perSecond = totals.map((total) => total.count / total.seconds);
    const rows = measurements.map((measurement, i) => ({
      label: measurement.label,
      perSecond: perSecond[i]!,
      megabytesPerSecond: (perSecond[i]! * measurement.bytesPerOperation) / 1e6,
      ratio: perSecond[i]! / perSecond[0]!,
    }));
    printTable(rows, seconds, sliceSeconds);
    if (argv.includes('--json')) {
      const at = (i: number) => Math.round(rows[i]!.perSecond);
      console.log(
        JSON.stringify({
          fdatasync_per_s: at(0),
          batch1_entries_per_s: at(2),
          batch10_entries_per_s: at(3),
          batch100_entries_per_s: at(4),
          batch1000_entries_per_s: at(5),
        }),
      );
    }
  } finally {
    for (const measurement of measurements) await measurement.close();
    await rm(directory, { recursive: true, force: true });
  }
}

await main();
