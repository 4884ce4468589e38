/**
 * Membership changes (Raft thesis §4.3, joint consensus): how a {@link ConfChange} turns one
 * configuration into the next, and its encoding in a log entry.
 *
 * - A change of at most one voter applies directly ("simple"): any two majorities of the old
 *   and new configurations overlap, so no joint phase is needed.
 * - Anything larger enters a joint configuration: the new voters become the incoming half,
 *   the old ones the outgoing half, and every decision needs a majority of both. Leaving the
 *   joint configuration is a second, empty change (proposed automatically by the leader when
 *   `autoLeave` is set).
 */
import { assert } from './assert.js';
import { RaftError } from './errors.js';
import type { TrackerConfig } from './tracker.js';
import { configFromConfState, confStateFromConfig, isJoint } from './tracker.js';
import type { ConfChange, ConfChangeSingle, ConfState, Entry, NodeId } from './types.js';

function invalid(message: string): never {
  throw new RaftError('INVALID_CONF_CHANGE', message);
}

interface MutableConfig {
  incoming: Set<NodeId>;
  outgoing: Set<NodeId>;
  learners: Set<NodeId>;
  learnersNext: Set<NodeId>;
  autoLeave: boolean;
}

function copy(config: TrackerConfig): MutableConfig {
  return {
    incoming: new Set(config.voters.incoming),
    outgoing: new Set(config.voters.outgoing),
    learners: new Set(config.learners),
    learnersNext: new Set(config.learnersNext),
    autoLeave: config.autoLeave,
  };
}

function freeze(c: MutableConfig): TrackerConfig {
  return {
    voters: { incoming: c.incoming, outgoing: c.outgoing },
    learners: c.learners,
    learnersNext: c.learnersNext,
    autoLeave: c.autoLeave,
  };
}

/** Whether `cc` leaves a joint configuration. */
export function isLeaveJoint(cc: ConfChange): boolean {
  return cc.leaveJoint === true || cc.changes.length === 0;
}

/** Number of voters that differ between two voter sets (symmetric difference). */
function voterDelta(a: ReadonlySet<NodeId>, b: ReadonlySet<NodeId>): number {
  let n = 0;
  for (const id of a) if (!b.has(id)) n++;
  for (const id of b) if (!a.has(id)) n++;
  return n;
}

/**
 * The configuration after `cc`. Throws `INVALID_CONF_CHANGE` when the change is not allowed
 * (entering a joint config from a joint config, leaving when not joint, removing every voter,
 * a node both voter and learner).
 */
export function applyConfChangeTo(config: TrackerConfig, cc: ConfChange): TrackerConfig {
  // Leaving is an empty change list: listed changes would otherwise be dropped silently.
  if (cc.leaveJoint === true && cc.changes.length > 0) invalid('a leave-joint change lists no changes');
  if (isLeaveJoint(cc)) return leaveJoint(config);
  if (isJoint(config)) invalid('a joint configuration must be left before the next change');
  const next = copy(config);
  for (const change of cc.changes) applySingle(next, change);
  if (next.incoming.size === 0) invalid('a configuration needs at least one voter');
  if (voterDelta(config.voters.incoming, next.incoming) <= 1) {
    // Simple change: any majority of the old and of the new configuration overlap.
    return freeze(next);
  }
  return enterJoint(config, cc);
}

function enterJoint(config: TrackerConfig, cc: ConfChange): TrackerConfig {
  const next = copy(config);
  next.outgoing = new Set(config.voters.incoming);
  next.autoLeave = true;
  for (const change of cc.changes) applySingle(next, change);
  if (next.incoming.size === 0) invalid('a configuration needs at least one voter');
  return freeze(next);
}

function leaveJoint(config: TrackerConfig): TrackerConfig {
  if (!isJoint(config)) invalid('not in a joint configuration');
  const next = copy(config);
  for (const id of next.learnersNext) next.learners.add(id);
  next.learnersNext.clear();
  next.outgoing.clear();
  next.autoLeave = false;
  return freeze(next);
}

function applySingle(c: MutableConfig, change: ConfChangeSingle): void {
  const id = change.node;
  if (!Number.isInteger(id) || id <= 0) invalid(`invalid node id ${id}`);
  switch (change.type) {
    case 'add-voter':
      c.learners.delete(id);
      c.learnersNext.delete(id);
      c.incoming.add(id);
      return;
    case 'add-learner':
      c.incoming.delete(id);
      // A voter of the outgoing half stays a voter until the joint config is left.
      if (c.outgoing.has(id)) c.learnersNext.add(id);
      else c.learners.add(id);
      return;
    case 'remove':
      c.incoming.delete(id);
      c.learners.delete(id);
      c.learnersNext.delete(id);
      return;
  }
}

/** Every member of a configuration, voters and learners of both halves. */
function memberIds(config: TrackerConfig): Set<NodeId> {
  return new Set([
    ...config.voters.incoming,
    ...config.voters.outgoing,
    ...config.learners,
    ...config.learnersNext,
  ]);
}

/**
 * The membership after applying, in order, the conf-change entries among `entries` to
 * `from` (usually a snapshot's membership and the log entries after it, up to the applied
 * index). Removed ids accumulate. A runtime uses it on restart to derive the membership from
 * what is durable, rather than trusting a membership saved separately from the applied index.
 */
export function replayConfChanges(from: ConfState, entries: readonly Entry[]): ConfState {
  let config = configFromConfState(from);
  const removed = new Set(from.removed ?? []);
  for (const entry of entries) {
    if (entry.type !== 'conf-change') continue;
    const next = applyConfChangeTo(config, decodeConfChange(entry.data));
    const after = memberIds(next);
    for (const id of memberIds(config)) if (!after.has(id)) removed.add(id);
    config = next;
  }
  const confState = confStateFromConfig(config);
  return removed.size > 0 ? { ...confState, removed: [...removed].sort((a, b) => a - b) } : confState;
}

// ------------------------------------------------------------------ encoding

const CHANGE_TYPES = ['add-voter', 'add-learner', 'remove'] as const;

/**
 * Encodes a change for a conf-change log entry:
 * `[leaveJoint u8][count u32]([type u8][node f64])*` optionally followed by
 * `[context length u32][context bytes]`. Entries written before the context existed end after
 * the changes and still decode (without a context); an empty context is not written.
 */
export function encodeConfChange(cc: ConfChange): Uint8Array {
  const head = 5 + cc.changes.length * 9;
  const context = cc.context !== undefined && cc.context.length > 0 ? cc.context : undefined;
  const bytes = new Uint8Array(head + (context === undefined ? 0 : 4 + context.length));
  const view = new DataView(bytes.buffer);
  view.setUint8(0, cc.leaveJoint === true ? 1 : 0);
  view.setUint32(1, cc.changes.length);
  cc.changes.forEach((change, i) => {
    view.setUint8(5 + i * 9, CHANGE_TYPES.indexOf(change.type));
    view.setFloat64(6 + i * 9, change.node);
  });
  if (context !== undefined) {
    view.setUint32(head, context.length);
    bytes.set(context, head + 4);
  }
  return bytes;
}

/** Decodes a conf-change entry's data. A malformed entry is corrupt state: it throws. */
export function decodeConfChange(data: Uint8Array): ConfChange {
  assert(data.length >= 5, `conf change entry of ${data.length} bytes is truncated`);
  const view = new DataView(data.buffer, data.byteOffset, data.byteLength);
  const count = view.getUint32(1);
  const head = 5 + count * 9;
  let context: Uint8Array | undefined;
  if (data.length !== head) {
    assert(
      data.length >= head + 4,
      `conf change entry length ${data.length} does not match ${count} changes`,
    );
    const length = view.getUint32(head);
    assert(
      data.length === head + 4 + length,
      `conf change entry length ${data.length} does not match ${count} changes and a context of ${length} bytes`,
    );
    context = data.slice(head + 4);
  }
  const changes: ConfChangeSingle[] = [];
  for (let i = 0; i < count; i++) {
    const type = CHANGE_TYPES[view.getUint8(5 + i * 9)];
    assert(type !== undefined, `unknown conf change type ${view.getUint8(5 + i * 9)}`);
    changes.push({ type, node: view.getFloat64(6 + i * 9) });
  }
  const cc: ConfChange = view.getUint8(0) === 1 ? { changes, leaveJoint: true } : { changes };
  return context === undefined ? cc : { ...cc, context };
}
