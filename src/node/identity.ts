/**
 * Cluster identity: the `--initial-cluster` string, node ids derived from names and the
 * cluster id derived from the whole string. Both are deterministic so every node computes
 * the same ids from the same flags, with nothing to coordinate.
 */
import { createHash } from 'node:crypto';
import { NodeError } from './errors.js';

/** One member of the initial cluster. */
export interface ClusterMember {
  readonly name: string;
  readonly id: number;
  /** Peer address, `host:port`. */
  readonly host: string;
  readonly port: number;
}

/** Longest accepted member name, in characters. */
export const MEMBER_NAME_CHARS_MAX = 64;
/** Most members accepted in `--initial-cluster`. */
export const INITIAL_MEMBERS_MAX = 15;

const NAME_PATTERN = /^[A-Za-z0-9][A-Za-z0-9._-]*$/;

/**
 * A positive id in `[1, 2^48)` from a name: the first 6 bytes of its SHA-256. 48 bits keep
 * ids safe JavaScript integers; a collision between two names of one cluster is refused by
 * `parseInitialCluster` (the command line's `--initial-cluster`).
 */
export function nodeIdFromName(name: string): number {
  const digest = createHash('sha256').update(`flotilla-node:${name}`).digest();
  const id = digest.readUIntBE(0, 6);
  return id === 0 ? 1 : id;
}

/**
 * The cluster id: 32 bits of the SHA-256 of the canonical initial cluster (members sorted by
 * name). Nodes started from different `--initial-cluster` strings refuse each other's
 * handshakes.
 */
export function clusterIdFrom(members: readonly ClusterMember[]): number {
  const canonical = [...members]
    .sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0))
    .map((m) => `${m.name}=${m.host}:${m.port}`)
    .join(',');
  return createHash('sha256').update(`flotilla-cluster:${canonical}`).digest().readUInt32BE(0);
}

/** Parses `host:port` (IPv6 in brackets); throws `INVALID_CONFIG` naming `what`. */
export function parseHostPort(text: string, what: string): { host: string; port: number } {
  const match = /^(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9.-]+):(\d{1,5})$/.exec(text.trim());
  if (match === null) throw new NodeError('INVALID_CONFIG', `${what}: expected host:port, got '${text}'`);
  const host = match[1]!.replace(/^\[|\]$/g, '');
  const port = Number(match[2]);
  if (port < 1 || port > 65_535) throw new NodeError('INVALID_CONFIG', `${what}: port ${port} out of range`);
  return { host, port };
}

/**
 * Parses `name=host:port,name=host:port,...` (an optional `http://` before the address is
 * accepted). Throws `INVALID_CONFIG` for an empty list, bad names, duplicate names,
 * duplicate addresses or colliding ids.
 */
export function parseInitialCluster(text: string): ClusterMember[] {
  const parts = text
    .split(',')
    .map((p) => p.trim())
    .filter((p) => p !== '');
  if (parts.length === 0) throw new NodeError('INVALID_CONFIG', '--initial-cluster: no members given');
  if (parts.length > INITIAL_MEMBERS_MAX) {
    throw new NodeError('INVALID_CONFIG', `--initial-cluster: at most ${INITIAL_MEMBERS_MAX} members`);
  }
  const members: ClusterMember[] = [];
  for (const part of parts) {
    const eq = part.indexOf('=');
    if (eq <= 0)
      throw new NodeError('INVALID_CONFIG', `--initial-cluster: expected name=host:port, got '${part}'`);
    const name = part.slice(0, eq);
    checkName(name, '--initial-cluster');
    const address = parseHostPort(
      part.slice(eq + 1).replace(/^https?:\/\//, ''),
      `--initial-cluster member ${name}`,
    );
    members.push({ name, id: nodeIdFromName(name), ...address });
  }
  const seen = (values: string[], what: string): void => {
    const set = new Set<string>();
    for (const v of values) {
      if (set.has(v)) throw new NodeError('INVALID_CONFIG', `--initial-cluster: duplicate ${what} '${v}'`);
      set.add(v);
    }
  };
  seen(
    members.map((m) => m.name),
    'name',
  );
  seen(
    members.map((m) => `${m.host}:${m.port}`),
    'address',
  );
  seen(
    members.map((m) => String(m.id)),
    'node id (hash collision; rename a member)',
  );
  return members;
}

/** Throws `INVALID_CONFIG` unless `name` is a valid member name. */
export function checkName(name: string, what: string): void {
  if (name.length === 0 || name.length > MEMBER_NAME_CHARS_MAX || !NAME_PATTERN.test(name)) {
    throw new NodeError(
      'INVALID_CONFIG',
      `${what}: invalid name '${name}' (1-${MEMBER_NAME_CHARS_MAX} characters: letters, digits, '.', '_', '-')`,
    );
  }
}

/**
 * `text` without the members that have no name (`=http://host:port`): etcdctl's `member add`
 * prints members that have not started yet that way.
 */
export function withoutUnnamedMembers(text: string): string {
  return text
    .split(',')
    .filter((part) => !part.trim().startsWith('='))
    .join(',');
}
