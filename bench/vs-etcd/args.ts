/** The flags of `npm run bench:vs-etcd`. */
import { tmpdir } from 'node:os';

export interface Args {
  rounds: number;
  scale: number;
  json: boolean;
  quick: boolean;
  write: boolean;
  dir: string;
  /** Also drive every row with etcd-load, the load generator on etcd's Go client. */
  neutral: boolean;
  /** Scrape Flotilla's per-stage write histograms around the put_1 and put_100 runs. */
  breakdown: boolean;
  /** Also run put_100_with_100k_watchers (minutes of watcher creation per run). */
  watchers100k: boolean;
  /** The member (1-based) both systems' leadership is moved to before every run; 'any' for none. */
  leader: number | 'any';
}

export const USAGE =
  'npm run bench:vs-etcd [-- --rounds N] [--scale X] [--json] [--quick] [--dir D] [--no-write] [--no-neutral] [--breakdown] [--watchers-100k] [--leader N|any]';

function usage(message: string): never {
  console.error(`error: ${message}`);
  console.error(`usage: ${USAGE}`);
  process.exit(2);
}

export function parseArgs(argv: readonly string[]): Args {
  const args: Args = {
    rounds: 3,
    scale: 1,
    json: false,
    quick: false,
    write: true,
    dir: tmpdir(),
    neutral: true,
    breakdown: false,
    watchers100k: false,
    leader: 3,
  };
  let roundsGiven = false;
  for (let i = 0; i < argv.length; i++) {
    const flag = argv[i]!;
    const value = (): string => {
      const v = argv[++i];
      if (v === undefined) usage(`${flag} needs a value`);
      return v;
    };
    if (flag === '--rounds') {
      const text = value();
      args.rounds = Number(text);
      roundsGiven = true;
      if (!/^\d+$/.test(text) || args.rounds < 1 || args.rounds > 99)
        usage(`--rounds must be in [1, 99], got '${text}'`);
    } else if (flag === '--scale') {
      const text = value();
      args.scale = Number(text);
      if (!Number.isFinite(args.scale) || args.scale <= 0 || args.scale > 1000) {
        usage(`--scale must be a positive number, got '${text}'`);
      }
    } else if (flag === '--json') args.json = true;
    else if (flag === '--quick') args.quick = true;
    else if (flag === '--no-write') args.write = false;
    else if (flag === '--no-neutral') args.neutral = false;
    else if (flag === '--breakdown') args.breakdown = true;
    else if (flag === '--watchers-100k') args.watchers100k = true;
    else if (flag === '--dir') args.dir = value();
    else if (flag === '--leader') {
      const text = value();
      const n = Number(text);
      if (text === 'any') args.leader = 'any';
      else if (Number.isInteger(n) && n >= 1 && n <= 3) args.leader = n;
      else usage(`--leader must be a member, 1 to 3, or 'any'; got '${text}'`);
    } else usage(`unknown option '${flag}'`);
  }
  if (args.quick) {
    args.write = false;
    if (!roundsGiven) args.rounds = 1;
  }
  return args;
}
