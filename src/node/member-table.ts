/**
 * The member table: what every node knows about every member beside its raft id — name, peer
 * address and client URLs (the HTTP API and the etcd gRPC API) — and how it is replicated and
 * kept.
 *
 * Why client URLs are replicated through the log (etcd's "publish") rather than carried in
 * the transport handshake: `etcdctl --cluster`, `MemberList` and the HTTP API must show the
 * same URLs on every member, including members this one never connected to (followers do not
 * talk to each other while a leader is stable), members that are down, and to a member that
 * joined from a snapshot. A log entry gives every member the same table at the same applied
 * index; the handshake would only tell each node about the peers it happened to exchange
 * frames with, and its view would differ from node to node.
 *
 * Every field has one writer, so replays and races cannot revert a newer value:
 * - a conf change adding a member (its JSON context) creates its entry: name (possibly empty
 *   for a member added through etcd's `MemberAdd`, which names no one) and peer address;
 * - `publish` — proposed by each member once after every start — sets its own name and client
 *   URLs (etcd: `publish` of the member's attributes);
 * - `peer` — etcd's `MemberUpdate` — changes a member's peer address.
 *
 * Both updates are normal log entries with their own envelope magic (see
 * {@link wrapMemberUpdate}); the KV state machine sees them as no-ops. The table is durable in
 * `members.json` (written after each applied change, before the KV applied index moves past
 * it), travels in every raft snapshot as its first chunk (so a member that catches up from a
 * snapshot, whose log never held the changes, still learns every member), and is rebuilt on
 * start from `members.json`, the snapshot and the log after it.
 */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { decodeConfChange, type Entry } from '../raft/index.js';
import type { PeerAddress } from '../transport/index.js';
import type { RequestId } from './envelope.js';
import { unframeChunks } from './envelope.js';
import { writeJsonDurably } from './member-file.js';

/** Where a member serves clients; absent until it has published them. */
export interface MemberClientUrls {
  /** The HTTP/JSON API, `http://host:port`. */
  readonly http?: string;
  /** The etcd v3 gRPC API, `http://host:port` (etcd's `clientURLs`). */
  readonly grpc?: string;
}

/** Name, peer address and client URLs of a member. */
export interface MemberAddress extends PeerAddress {
  /** Empty for a member added through etcd's `MemberAdd` that has not started (published) yet. */
  readonly name: string;
  readonly clientUrls?: MemberClientUrls;
}

/** A replicated change of a member's attributes (see the file comment). */
export type MemberUpdate =
  | {
      readonly op: 'publish';
      readonly id: number;
      readonly name: string;
      readonly clientUrls: MemberClientUrls;
    }
  | { readonly op: 'peer'; readonly id: number; readonly host: string; readonly port: number };

/** First byte of a member-update entry (KV command entries start with 0xf1). */
const UPDATE_MAGIC = 0xf2;
const UPDATE_HEADER_BYTES = 17;

/** The log entry of `update`: magic, the proposal's request id, JSON. */
export function wrapMemberUpdate(origin: Uint8Array, seq: number, update: MemberUpdate): Uint8Array {
  const json = Buffer.from(JSON.stringify(update), 'utf8');
  const out = new Uint8Array(UPDATE_HEADER_BYTES + json.length);
  out[0] = UPDATE_MAGIC;
  out.set(origin, 1);
  new DataView(out.buffer).setBigUint64(9, BigInt(seq));
  out.set(json, UPDATE_HEADER_BYTES);
  return out;
}

/** The update an entry carries; undefined when it is not a (valid) member-update entry. */
export function unwrapMemberUpdate(data: Uint8Array): { id: RequestId; update: MemberUpdate } | undefined {
  if (data.length < UPDATE_HEADER_BYTES || data[0] !== UPDATE_MAGIC) return undefined;
  const view = new DataView(data.buffer, data.byteOffset, data.byteLength);
  const origin = Buffer.from(data.buffer, data.byteOffset + 1, 8).toString('hex');
  const seq = Number(view.getBigUint64(9));
  const update = parseUpdate(Buffer.from(data.subarray(UPDATE_HEADER_BYTES)).toString('utf8'));
  return update === undefined ? undefined : { id: { origin, seq }, update };
}

function parseUpdate(text: string): MemberUpdate | undefined {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    return undefined;
  }
  if (typeof value !== 'object' || value === null) return undefined;
  const v = value as {
    op?: unknown;
    id?: unknown;
    name?: unknown;
    clientUrls?: unknown;
    host?: unknown;
    port?: unknown;
  };
  if (typeof v.id !== 'number') return undefined;
  if (v.op === 'publish' && typeof v.name === 'string') {
    return { op: 'publish', id: v.id, name: v.name, clientUrls: parseClientUrls(v.clientUrls) ?? {} };
  }
  if (v.op === 'peer' && typeof v.host === 'string' && typeof v.port === 'number') {
    return { op: 'peer', id: v.id, host: v.host, port: v.port };
  }
  return undefined;
}

function parseClientUrls(value: unknown): MemberClientUrls | undefined {
  if (typeof value !== 'object' || value === null) return undefined;
  const v = value as { http?: unknown; grpc?: unknown };
  const urls = {
    ...(typeof v.http === 'string' ? { http: v.http } : {}),
    ...(typeof v.grpc === 'string' ? { grpc: v.grpc } : {}),
  };
  return urls.http === undefined && urls.grpc === undefined ? undefined : urls;
}

/**
 * Applies `update` to `table` (of a member it knows; others are ignored, deterministically on
 * every node since the entry exists once the member was added). Returns the entry's new
 * value, undefined when nothing changed.
 */
export function applyMemberUpdate(
  table: Map<number, MemberAddress>,
  update: MemberUpdate,
): MemberAddress | undefined {
  const current = table.get(update.id);
  if (current === undefined) return undefined;
  const next: MemberAddress =
    update.op === 'publish'
      ? {
          name: update.name,
          host: current.host,
          port: current.port,
          ...(Object.keys(update.clientUrls).length === 0 ? {} : { clientUrls: update.clientUrls }),
        }
      : { ...current, host: update.host, port: update.port };
  table.set(update.id, next);
  return next;
}

/**
 * Records the member a conf change's context describes, when the table has no entry for it
 * (a context never overwrites: names and client URLs are the member's own to publish, and
 * peer addresses change through `peer` updates). A known entry with an empty name takes a
 * non-empty one (a member added by name through the HTTP API).
 */
export function recordContextMember(
  table: Map<number, MemberAddress>,
  id: number,
  member: MemberAddress,
): void {
  const current = table.get(id);
  if (current === undefined) table.set(id, member);
  else if (current.name === '' && member.name !== '') table.set(id, { ...current, name: member.name });
}

/** The JSON context of a conf change proposed by the runtime. */
export interface MemberChangeContext {
  /** Identifies the proposal, so the proposing node can tell its waiter it was applied. */
  readonly token: string;
  readonly id: number;
  readonly name?: string;
  readonly host?: string;
  readonly port?: number;
}

/** Parses a conf change's context; undefined when there is none or it is not the runtime's. */
export function parseMemberContext(context: Uint8Array | undefined): MemberChangeContext | undefined {
  if (context === undefined) return undefined;
  try {
    const value: unknown = JSON.parse(Buffer.from(context).toString('utf8'));
    if (typeof value !== 'object' || value === null) return undefined;
    const v = value as { token?: unknown; id?: unknown; name?: unknown; host?: unknown; port?: unknown };
    if (typeof v.token !== 'string' || typeof v.id !== 'number') return undefined;
    return {
      token: v.token,
      id: v.id,
      ...(typeof v.name === 'string' && typeof v.host === 'string' && typeof v.port === 'number'
        ? { name: v.name, host: v.host, port: v.port }
        : {}),
    };
  } catch {
    return undefined;
  }
}

/** {@link recordContextMember} for a conf change's context, when it names a member and its address. */
export function recordMemberContext(table: Map<number, MemberAddress>, context: MemberChangeContext): void {
  if (context.name !== undefined && context.host !== undefined && context.port !== undefined) {
    recordContextMember(table, context.id, { name: context.name, host: context.host, port: context.port });
  }
}

/** The JSON form of a table (members.json, snapshots, cluster queries). */
export interface MemberJson {
  readonly id: number;
  readonly name: string;
  readonly host: string;
  readonly port: number;
  readonly clientUrls?: MemberClientUrls;
}

/** The table as JSON rows. */
export function membersToJson(table: ReadonlyMap<number, MemberAddress>): MemberJson[] {
  return [...table].map(([id, m]) => ({
    id,
    name: m.name,
    host: m.host,
    port: m.port,
    ...(m.clientUrls === undefined ? {} : { clientUrls: m.clientUrls }),
  }));
}

/** Rows back into table entries; malformed rows are skipped. */
export function membersFromJson(rows: unknown): Map<number, MemberAddress> {
  const table = new Map<number, MemberAddress>();
  if (!Array.isArray(rows)) return table;
  for (const row of rows as unknown[]) {
    if (typeof row !== 'object' || row === null) continue;
    const r = row as { id?: unknown; name?: unknown; host?: unknown; port?: unknown; clientUrls?: unknown };
    if (
      typeof r.id !== 'number' ||
      typeof r.name !== 'string' ||
      typeof r.host !== 'string' ||
      typeof r.port !== 'number'
    ) {
      continue;
    }
    const clientUrls = parseClientUrls(r.clientUrls);
    table.set(r.id, {
      name: r.name,
      host: r.host,
      port: r.port,
      ...(clientUrls === undefined ? {} : { clientUrls }),
    });
  }
  return table;
}

const MEMBERS_FILE = 'members.json';

/** Writes the table to `members.json` durably (temp file, fsync, rename, directory fsync). */
export async function writeMembersFile(
  dir: string,
  table: ReadonlyMap<number, MemberAddress>,
): Promise<void> {
  const text = `${JSON.stringify({ members: membersToJson(table) }, null, 2)}\n`;
  await writeJsonDurably(dir, MEMBERS_FILE, text);
}

/** Reads `members.json`; undefined when there is none. */
export async function readMembersFile(dir: string): Promise<Map<number, MemberAddress> | undefined> {
  let text: string;
  try {
    text = await readFile(join(dir, MEMBERS_FILE), 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw error;
  }
  return membersFromJson((JSON.parse(text) as { members?: unknown }).members);
}

/** Prefix of the member chunk of a raft snapshot (a KV chunk is a MessagePack array: 0x92). */
const SNAPSHOT_MEMBERS_PREFIX = 'flotilla-members:';
/** Prefix of the client session chunk, which follows the member chunk when there are sessions. */
const SNAPSHOT_SESSIONS_PREFIX = Buffer.from('flotilla-sessions:');

/** The first chunk of a raft snapshot's data: the member table at the snapshot's index. */
export function snapshotMembersChunk(table: ReadonlyMap<number, MemberAddress>): Uint8Array {
  return new Uint8Array(Buffer.from(`${SNAPSHOT_MEMBERS_PREFIX}${JSON.stringify(membersToJson(table))}`));
}

function hasPrefix(chunk: Uint8Array, prefix: Buffer): boolean {
  return chunk.length >= prefix.length && prefix.equals(chunk.subarray(0, prefix.length));
}

/**
 * Splits a raft snapshot's data (see envelope.ts: framed chunks) into its member table (absent
 * in snapshots written before tables were included, and in restored backups), its client
 * sessions (sessions.ts; absent when there are none) and the state machine snapshot's chunks.
 */
export function splitSnapshotData(data: Uint8Array): {
  members: Map<number, MemberAddress> | undefined;
  sessions: Uint8Array | undefined;
  kvChunks: Iterable<Uint8Array>;
} {
  const chunks = [...unframeChunks(data)];
  let at = 0;
  let members: Map<number, MemberAddress> | undefined;
  let sessions: Uint8Array | undefined;
  const membersPrefix = Buffer.from(SNAPSHOT_MEMBERS_PREFIX);
  if (chunks[at] !== undefined && hasPrefix(chunks[at]!, membersPrefix)) {
    const text = Buffer.from(chunks[at]!.subarray(membersPrefix.length)).toString('utf8');
    members = membersFromJson(JSON.parse(text));
    at++;
    if (chunks[at] !== undefined && hasPrefix(chunks[at]!, SNAPSHOT_SESSIONS_PREFIX)) {
      sessions = chunks[at]!.subarray(SNAPSHOT_SESSIONS_PREFIX.length);
      at++;
    }
  }
  return { members, sessions, kvChunks: chunks.slice(at) };
}

/** The runtime's chunks of a raft snapshot: the member table, then the sessions if any. */
function* runtimeChunks(
  table: ReadonlyMap<number, MemberAddress>,
  sessions: Uint8Array,
): Generator<Uint8Array> {
  yield snapshotMembersChunk(table);
  if (sessions.length > 0) yield new Uint8Array(Buffer.concat([SNAPSHOT_SESSIONS_PREFIX, sessions]));
}

/** A raft snapshot's chunks: the runtime's (member table, sessions), then the state machine's. */
export function* snapshotChunks(
  table: ReadonlyMap<number, MemberAddress>,
  kvChunks: Iterable<Uint8Array>,
  sessions: Uint8Array = new Uint8Array(0),
): Generator<Uint8Array> {
  yield* runtimeChunks(table, sessions);
  yield* kvChunks;
}

/** {@link snapshotChunks} over a state machine view's chunks, which may come asynchronously. */
export async function* raftSnapshotChunks(
  table: ReadonlyMap<number, MemberAddress>,
  chunks: AsyncIterable<Uint8Array> | Iterable<Uint8Array>,
  sessions: Uint8Array = new Uint8Array(0),
): AsyncGenerator<Uint8Array> {
  yield* runtimeChunks(table, sessions);
  yield* chunks;
}

/**
 * The member table on start: `members.json` (the initial cluster from the flags when there is
 * none yet), then the table in the raft snapshot (authoritative at its index; `members.json`
 * may be older after a crash), then the conf change contexts and member updates in the log
 * after the snapshot up to the applied index (a crash may have come between applying one and
 * writing the file). The same rules as when they were first applied.
 *
 * `dir` is the data directory, `initial` the initial cluster from the flags, `snapshotData` the
 * raft snapshot's data and `entries` the log after it up to the applied index.
 */
export async function loadMemberTable(
  dir: string,
  initial: ReadonlyMap<number, MemberAddress>,
  snapshotData: Uint8Array,
  entries: readonly Entry[],
): Promise<Map<number, MemberAddress>> {
  const table = (await readMembersFile(dir)) ?? new Map<number, MemberAddress>(initial);
  const fromSnapshot = splitSnapshotData(snapshotData).members;
  if (fromSnapshot !== undefined) for (const [id, m] of fromSnapshot) table.set(id, m);
  for (const entry of entries) {
    if (entry.type === 'conf-change') {
      const c = parseMemberContext(decodeConfChange(entry.data).context);
      if (c !== undefined) recordMemberContext(table, c);
      continue;
    }
    const update = unwrapMemberUpdate(entry.data);
    if (update !== undefined) applyMemberUpdate(table, update.update);
  }
  return table;
}
