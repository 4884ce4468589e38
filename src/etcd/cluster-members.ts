/**
 * etcd's `Member` as the `Cluster` service sends it: the configured members (voters and
 * learners) with their peer and client URLs, and the parsing of the peer URLs a request
 * carries.
 */
import type { KvNode } from '../db/index.js';
import type { MemberInfo } from '../index.js';
import { etcdError } from './errors.js';

/** etcd `Member` as sent. */
export interface MemberWire {
  readonly ID: string;
  readonly name: string;
  readonly peerURLs: string[];
  readonly clientURLs: string[];
  readonly isLearner: boolean;
}

/** The configured members as etcd lists them, by ascending id. */
export function memberList(node: KvNode): MemberWire[] {
  return node.raft
    .members()
    .sort((a, b) => a.id - b.id)
    .map(memberWire);
}

/** One member as etcd sends it (an unstarted member has no name and no client URLs). */
export function memberWire(
  m: Pick<MemberInfo, 'id' | 'name' | 'address' | 'role' | 'clientUrls'>,
): MemberWire {
  return {
    ID: String(m.id),
    name: m.name,
    peerURLs: m.address === '' ? [] : [`http://${m.address}`],
    clientURLs: m.clientUrls?.grpc === undefined ? [] : [etcdClientUrl(m.clientUrls.grpc)],
    isLearner: m.role === 'learner',
  };
}

/**
 * A member's gRPC URL as etcd's `clientURLs` lists it: `host:port`, without `http://`.
 *
 * Why no scheme: etcdctl 3.4 uses these as endpoints (`--cluster`), and for Status, HashKV,
 * Defragment and MoveLeader's leader search it dials each endpoint directly, sending the
 * endpoint string as the HTTP/2 `:authority`. Node's HTTP/2 server (nghttp2) refuses an
 * authority holding `http://` with a stream reset (`PROTOCOL_ERROR`), where Go's accepts it;
 * `host:port` works with every etcd client (clientv3 reads a scheme-less endpoint as an
 * insecure `host:port`). The same holds for endpoints given by hand: docs/etcd-api.md.
 */
export function etcdClientUrl(url: string): string {
  return url.replace(/^https?:\/\//, '').replace(/\/$/, '');
}

/** A peer address as a URL, `http://host:port` (IPv6 hosts in brackets). */
export function peerUrl(m: { host: string; port: number }): string {
  return `http://${m.host.includes(':') ? `[${m.host}]` : m.host}:${m.port}`;
}

/** Parses etcd peer URLs: exactly one `http(s)://host:port` (Flotilla has one peer address per member). */
export function parsePeerUrls(urls: readonly string[] | undefined): { host: string; port: number } {
  const distinct = [...new Set(urls ?? [])];
  if (distinct.length !== 1) throw etcdError('memberBadUrls');
  const match = /^https?:\/\/(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9.-]+):(\d{1,5})\/?$/.exec(distinct[0]!.trim());
  const port = Number(match?.[2]);
  if (match === null || port < 1 || port > 65_535) throw etcdError('memberBadUrls');
  return { host: match[1]!.replace(/^\[|\]$/g, ''), port };
}
