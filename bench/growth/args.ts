/** The flags of `npm run bench:growth`. */
import { tmpdir } from 'node:os';
import type { System } from '../vs-etcd/processes.js';

export interface GrowthArgs {
  /** Distinct keys to put, in all. */
  keys: number;
  /** Bytes per value. */
  valueSize: number;
  /** Concurrent clients (each one request at a time) and the gRPC connections they share. */
  clients: number;
  conns: number;
  /** The systems to load, one at a time, in this order. */
  systems: System[];
  json: boolean;
  /** Replace the growth section of bench/RESULTS.md. */
  write: boolean;
  dir: string;
}

export const USAGE =
  'npm run bench:growth [-- --keys N] [--value-size B] [--clients C] [--conns K] [--systems flotilla,etcd] [--quick] [--json] [--no-write] [--dir D]';

/** Keys with `--quick` (and the default for a run that does not write the results). */
export const QUICK_KEYS = 20_000;

function usage(message: string): never {
  console.error(`error: ${message}`);
  console.error(`usage: ${USAGE}`);
  process.exit(2);
}

function integer(flag: string, text: string, min: number, max: number): number {
  const value = Number(text);
  if (!/^\d+$/.test(text) || value < min || value > max)
    usage(`${flag} must be in [${min}, ${max}], got '${text}'`);
  return value;
}

function systems(text: string): System[] {
  const list = text.split(',');
  if (
    list.length === 0 ||
    list.some((s) => s !== 'flotilla' && s !== 'etcd') ||
    new Set(list).size !== list.length
  ) {
    usage(`--systems takes flotilla and/or etcd, comma-separated, got '${text}'`);
  }
  return list as System[];
}

/**
 * Parses the flags. Defaults: 100,000 keys (20,000 with `--quick`, which also does not write
 * bench/RESULTS.md) of 1024 bytes, 100 clients over 10 connections, Flotilla then etcd.
 */
export function parseArgs(argv: readonly string[]): GrowthArgs {
  const args: GrowthArgs = {
    keys: 100_000,
    valueSize: 1024,
    clients: 100,
    conns: 10,
    systems: ['flotilla', 'etcd'],
    json: false,
    write: true,
    dir: tmpdir(),
  };
  let keysGiven = false;
  let quick = false;
  const valued: Record<string, (text: string) => void> = {
    '--keys': (text) => {
      args.keys = integer('--keys', text, 10, 100_000_000);
      keysGiven = true;
    },
    '--value-size': (text) => {
      args.valueSize = integer('--value-size', text, 1, 1024 * 1024);
    },
    '--clients': (text) => {
      args.clients = integer('--clients', text, 1, 10_000);
    },
    '--conns': (text) => {
      args.conns = integer('--conns', text, 1, 1000);
    },
    '--systems': (text) => {
      args.systems = systems(text);
    },
    '--dir': (text) => {
      args.dir = text;
    },
  };
  const switches: Record<string, () => void> = {
    '--quick': () => {
      quick = true;
    },
    '--json': () => {
      args.json = true;
    },
    '--no-write': () => {
      args.write = false;
    },
  };
  for (let i = 0; i < argv.length; i++) {
    const flag = argv[i]!;
    const take = valued[flag];
    const set = switches[flag];
    if (take !== undefined) {
      const text = argv[++i];
      if (text === undefined) usage(`${flag} needs a value`);
      take(text);
    } else if (set !== undefined) set();
    else usage(`unknown option '${flag}'`);
  }
  if (quick) {
    args.write = false;
    if (!keysGiven) args.keys = QUICK_KEYS;
  }
  return args;
}
