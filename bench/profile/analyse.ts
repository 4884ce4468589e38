/**
 * Reads a V8 CPU profile (the `.cpuprofile` JSON that Chrome DevTools opens): where the
 * sampled time of one process went, by function (self time) and by category (which part of
 * Flotilla, which dependency, Node's internals, V8, the garbage collector, idle).
 *
 * A sample's duration is the time until the next sample (the last one runs to the
 * profile's end), as DevTools counts it. A native function (a frame without a script, such
 * as `writeBuffer`, `fdatasync`, `crc32c` or lmdb's bindings) is counted in the category of
 * the JavaScript frame that called it, and listed with that caller. Pure: no I/O.
 */

/** One frame of the call tree. `lineNumber` is 0-based, as V8 writes it. */
export interface CallFrame {
  readonly functionName: string;
  readonly url: string;
  readonly lineNumber: number;
  readonly columnNumber?: number;
}

export interface ProfileNode {
  readonly id: number;
  readonly callFrame: CallFrame;
  readonly children?: readonly number[];
}

/** The parts of a `.cpuprofile` read here; times in microseconds. */
export interface CpuProfile {
  readonly nodes: readonly ProfileNode[];
  readonly startTime: number;
  readonly endTime: number;
  readonly samples?: readonly number[];
  readonly timeDeltas?: readonly number[];
}

/** Time in one category: milliseconds, and percent of the busy (not idle) time. */
export interface CategoryTime {
  readonly ms: number;
  readonly pct: number;
}

/** A frame's location for a reader: `line` and `column` 1-based. */
export interface FrameLocation {
  readonly function: string;
  readonly url: string;
  readonly line: number;
  readonly column: number;
}

/**
 * Self time of one function (all its call-tree nodes together; a native function's, per
 * calling JavaScript function).
 */
export interface FunctionTime extends FrameLocation {
  readonly category: string;
  /** For a native function: the nearest JavaScript frame below it on the stack, else null. */
  readonly caller: FrameLocation | null;
  readonly self_ms: number;
  /** Percent of the busy time. */
  readonly self_pct: number;
}

export interface ProfileSummary {
  readonly samples: number;
  /** Sampled time in all: busy + idle. */
  readonly total_ms: number;
  /** Everything but `(idle)`: JavaScript, native code, V8, GC. */
  readonly busy_ms: number;
  readonly idle_ms: number;
  readonly gc_ms: number;
  /** `(program)`: V8 and native work not attributed to a JavaScript frame. */
  readonly program_ms: number;
  /** Samples left out (see `AnalyseOptions.exclude`). */
  readonly excluded_ms: number;
  /** Busy time by category, largest first; `(idle)` is left out (see `idle_ms`). */
  readonly categories: Record<string, CategoryTime>;
  /** The functions with the most self time, largest first. */
  readonly top: FunctionTime[];
}

export const IDLE = '(idle)';
export const GC = '(gc)';
export const NATIVE = '(native/V8)';
export const OTHER_PACKAGES = 'node_modules (other)';
export const NODE_INTERNAL = 'node:internal';

/** Dependencies with a category of their own; the rest are `node_modules (other)`. */
const PACKAGES = new Set(['lmdb', 'msgpackr', '@grpc/grpc-js', 'protobufjs', 'pino', 'prom-client']);

/** The package a `node_modules` path belongs to (`@scope/name` or `name`), if any. */
function packageOf(url: string): string | undefined {
  const at = url.lastIndexOf('/node_modules/');
  if (at < 0) return undefined;
  const parts = url.slice(at + '/node_modules/'.length).split('/');
  const first = parts[0] ?? '';
  return first.startsWith('@') ? `${first}/${parts[1] ?? ''}` : first;
}

/**
 * The category of a frame, from its script URL (and its name for V8's pseudo-frames):
 * `flotilla:<directory>` for a file under Flotilla's `src/<directory>/` (`flotilla:raft`,
 * `flotilla:kv`, ...), `flotilla:other` for a file directly in `src/`, `flotilla:bench`; the
 * package for `lmdb`, `msgpackr`, `@grpc/grpc-js`, `protobufjs`, `pino`, `prom-client`, else
 * `node_modules (other)`; `node:internal` for Node's own modules; `(native/V8)` for frames
 * without a script (`(program)`, `(root)`, native functions: see `analyseProfile` for those
 * called from JavaScript); `(gc)`; `(idle)`.
 */
export function categoryOf(url: string, functionName: string): string {
  if (url === '') {
    if (functionName === '(idle)') return IDLE;
    if (functionName === '(garbage collector)') return GC;
    return NATIVE;
  }
  if (url.startsWith('node:')) return NODE_INTERNAL;
  const pkg = packageOf(url);
  if (pkg !== undefined) return PACKAGES.has(pkg) ? pkg : OTHER_PACKAGES;
  const flotilla = /\/dist\/(src|bench)\/(.+)$/.exec(url) ?? /\/(src|bench)\/(.+)$/.exec(url);
  if (flotilla === null) return 'other';
  if (flotilla[1] === 'bench') return 'flotilla:bench';
  const path = (flotilla[2] ?? '').split('/');
  return path.length > 1 ? `flotilla:${path[0]}` : 'flotilla:other';
}

/** Self time in microseconds of each node id. */
export function selfTimes(profile: CpuProfile): Map<number, number> {
  const samples = profile.samples ?? [];
  const deltas = profile.timeDeltas ?? [];
  const self = new Map<number, number>();
  let at = profile.startTime;
  const stamps = samples.map((_, i) => {
    at += deltas[i] ?? 0;
    return at;
  });
  for (let i = 0; i < samples.length; i++) {
    const until = i + 1 < samples.length ? stamps[i + 1]! : Math.max(profile.endTime, stamps[i]!);
    const duration = Math.max(0, until - stamps[i]!);
    const id = samples[i]!;
    self.set(id, (self.get(id) ?? 0) + duration);
  }
  return self;
}

/** V8's frames that stand for a state rather than a function. */
const PSEUDO_FRAMES = new Set(['(root)', '(program)', '(idle)', '(garbage collector)']);

/** How one call-tree node is counted. */
interface NodeRole {
  readonly category: string;
  /** The nearest frame with a script at or below this node on the stack. */
  readonly script: CallFrame | undefined;
  /** Whether the node is excluded (an excluded frame is at or below it on the stack). */
  readonly excluded: boolean;
}

/** Each node's category, caller and exclusion, walking the call tree from its roots. */
function nodeRoles(profile: CpuProfile, exclude: (url: string) => boolean): Map<number, NodeRole> {
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const children = new Set(profile.nodes.flatMap((n) => n.children ?? []));
  const roles = new Map<number, NodeRole>();
  const stack: { id: number; parent: NodeRole | undefined }[] = profile.nodes
    .filter((n) => !children.has(n.id))
    .map((n) => ({ id: n.id, parent: undefined }));
  for (let next = stack.pop(); next !== undefined; next = stack.pop()) {
    const node = byId.get(next.id);
    if (node === undefined || roles.has(node.id)) continue;
    const { url, functionName } = node.callFrame;
    const excluded = (next.parent?.excluded ?? false) || (url !== '' && exclude(url));
    let role: NodeRole;
    if (url !== '') role = { category: categoryOf(url, functionName), script: node.callFrame, excluded };
    else if (PSEUDO_FRAMES.has(functionName) || next.parent?.script === undefined) {
      role = { category: categoryOf(url, functionName), script: undefined, excluded };
    } else role = { category: next.parent.category, script: next.parent.script, excluded };
    roles.set(node.id, role);
    for (const child of node.children ?? []) stack.push({ id: child, parent: role });
  }
  return roles;
}

const ms = (us: number): number => Math.round(us / 100) / 10;
/** Percent rounded down to 0.01, so that parts of a whole never add up to more than 100. */
const pct = (part: number, whole: number): number =>
  whole > 0 ? Math.floor((part / whole) * 10_000) / 100 : 0;

const locationOf = (frame: CallFrame): FrameLocation => ({
  function: frame.functionName === '' ? '(anonymous)' : frame.functionName,
  url: frame.url,
  line: frame.lineNumber + 1,
  column: (frame.columnNumber ?? -1) + 1,
});

const keyOf = (frame: CallFrame | undefined): string =>
  frame === undefined
    ? ''
    : `${frame.functionName}\n${frame.url}\n${frame.lineNumber}\n${frame.columnNumber ?? -1}`;

interface FunctionAccumulator {
  readonly frame: CallFrame;
  readonly category: string;
  readonly caller: CallFrame | undefined;
  us: number;
}

export interface AnalyseOptions {
  /** How many functions to list (default 15). */
  readonly top?: number;
  /** Frames from these scripts, and everything they call, are left out (the profiler's own). */
  readonly exclude?: (url: string) => boolean;
}

/** Summarises `profile`: totals, busy time by category, and the top functions by self time. */
export function analyseProfile(profile: CpuProfile, options: AnalyseOptions = {}): ProfileSummary {
  const self = selfTimes(profile);
  const roles = nodeRoles(profile, options.exclude ?? (() => false));
  const byCategory = new Map<string, number>();
  const byFunction = new Map<string, FunctionAccumulator>();
  let totalUs = 0;
  let programUs = 0;
  let excludedUs = 0;
  for (const node of profile.nodes) {
    const us = self.get(node.id) ?? 0;
    const role = roles.get(node.id);
    if (us === 0 || role === undefined) continue;
    if (role.excluded) {
      excludedUs += us;
      continue;
    }
    const frame = node.callFrame;
    totalUs += us;
    if (frame.url === '' && frame.functionName === '(program)') programUs += us;
    byCategory.set(role.category, (byCategory.get(role.category) ?? 0) + us);
    if (role.category === IDLE) continue;
    const caller = frame.url === '' ? role.script : undefined;
    const key = `${keyOf(frame)}\n${keyOf(caller)}`;
    const entry = byFunction.get(key) ?? { frame, category: role.category, caller, us: 0 };
    entry.us += us;
    byFunction.set(key, entry);
  }
  const idleUs = byCategory.get(IDLE) ?? 0;
  const busyUs = totalUs - idleUs;
  const categories: Record<string, CategoryTime> = {};
  for (const [name, us] of [...byCategory].sort((a, b) => b[1] - a[1])) {
    if (name !== IDLE) categories[name] = { ms: ms(us), pct: pct(us, busyUs) };
  }
  const functions = [...byFunction.values()].sort((a, b) => b.us - a.us).slice(0, options.top ?? 15);
  return {
    samples: profile.samples?.length ?? 0,
    total_ms: ms(totalUs),
    busy_ms: ms(busyUs),
    idle_ms: ms(idleUs),
    gc_ms: ms(byCategory.get(GC) ?? 0),
    program_ms: ms(programUs),
    excluded_ms: ms(excludedUs),
    categories,
    top: functions.map((f) => ({
      ...locationOf(f.frame),
      category: f.category,
      caller: f.caller === undefined ? null : locationOf(f.caller),
      self_ms: ms(f.us),
      self_pct: pct(f.us, busyUs),
    })),
  };
}
