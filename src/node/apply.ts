/**
 * Applying committed entries to one raft group's state machine, in log order: commands in
 * batches (the state machine's `apply`), conf changes through the core (`applyConfChange`, then
 * `saveConfState`) and member updates to the member table, settling this node's own
 * proposals as their entries are applied.
 *
 * Client sessions (sessions.ts) are checked and updated entry by entry, in log order, never
 * per batch: batches differ between members (they follow each member's Readies), the session
 * table must not. A command applied in a session has its result filled in once its batch
 * returns; a retry of it in the same batch first flushes the batch, so it gets that result.
 */
import { decodeConfChange, type Entry, type RawNode } from '../raft/index.js';
import type { ReplicaStorage } from '../storage/index.js';
import type { NodeCounters } from './counters.js';
import { type SessionTag, type Unwrapped, unwrapCommand } from './envelope.js';
import type { MachineDriver } from './machine-driver.js';
import { unwrapMemberUpdate } from './member-table.js';
import type { Membership } from './membership.js';
import type { NodeLogger } from './options.js';
import type { ProposalTracker } from './proposals.js';
import type { ClientSessions } from './sessions.js';
import type { StateMachineEntry } from './state-machine.js';

/** What {@link Applier} needs from the runtime. */
export interface ApplierDeps {
  /** The group's core, which applies conf changes to its configuration. */
  readonly raw: Pick<RawNode, 'applyConfChange'>;
  /** The group's log storage, where an applied configuration is made durable. */
  readonly storage: Pick<ReplicaStorage, 'saveConfState'>;
  /** The group's state machine. */
  readonly machine: Pick<MachineDriver, 'apply' | 'codec'>;
  readonly proposals: ProposalTracker;
  readonly membership: Membership;
  /** The group's client sessions. */
  readonly sessions: ClientSessions;
  readonly counters: NodeCounters;
  readonly logger: NodeLogger;
}

/** How this node's proposal of an entry is settled, when not by the state machine's result. */
type Settlement = { readonly result: unknown } | { readonly error: Error };

/** Entries collected for one state machine `apply`, with what to do for each once applied. */
class ApplyBatch {
  readonly entries: StateMachineEntry<unknown>[] = [];
  /** This node's proposal sequence number, per entry. */
  readonly seqs: (number | undefined)[] = [];
  /** The session command whose result the state machine's result becomes, per entry. */
  readonly tags: (SessionTag | undefined)[] = [];
  /** A settlement that replaces the state machine's result, per entry. */
  readonly settlements: (Settlement | undefined)[] = [];
  /** Sessions with a command in this batch (a retry of one must wait for its result). */
  readonly sessionIds = new Set<number>();

  /** A batch holding `index` as a runtime entry (command null) alone. */
  static runtimeEntry(index: number): ApplyBatch {
    const batch = new ApplyBatch();
    batch.push({ index, command: null }, undefined);
    return batch;
  }

  push(
    entry: StateMachineEntry<unknown>,
    seq: number | undefined,
    tag?: SessionTag,
    settlement?: Settlement,
  ): void {
    this.entries.push(entry);
    this.seqs.push(seq);
    this.tags.push(tag);
    this.settlements.push(settlement);
    if (tag !== undefined) this.sessionIds.add(tag.clientId);
  }
}

/** Applies committed entries of one raft group. */
export class Applier {
  constructor(private readonly deps: ApplierDeps) {}

  /**
   * Applies committed entries in order. A conf change is made durable (`saveConfState`)
   * before the state machine's applied index moves past it: after a restart the core does
   * not replay entries an on-disk state machine has applied, so the membership must already
   * be on disk. Runtime entries reach the state machine as `command: null`.
   */
  async apply(entries: readonly Entry[]): Promise<void> {
    let batch = new ApplyBatch();
    for (const entry of entries) {
      if (entry.type === 'conf-change') {
        await this.applyCommands(batch);
        await this.applyConfChange(entry);
        batch = ApplyBatch.runtimeEntry(entry.index);
        continue;
      }
      const update = entry.type === 'normal' ? unwrapMemberUpdate(entry.data) : undefined;
      if (update !== undefined) {
        await this.applyCommands(batch);
        await this.deps.membership.applyUpdate(update.update);
        const mine = this.deps.proposals.ownSeq(update.id);
        if (mine !== undefined) this.deps.proposals.appliedMemberUpdate(mine);
        batch = ApplyBatch.runtimeEntry(entry.index);
        continue;
      }
      const unwrapped = entry.type === 'normal' ? unwrapCommand(entry.data) : undefined;
      const session = unwrapped?.session;
      if (session !== undefined && batch.sessionIds.has(session.clientId)) {
        await this.applyCommands(batch);
        batch = new ApplyBatch();
      }
      this.collect(batch, entry, unwrapped);
    }
    await this.applyCommands(batch);
    this.deps.counters.entriesApplied += entries.length;
  }

  private async applyConfChange(entry: Entry): Promise<void> {
    const cc = decodeConfChange(entry.data);
    const confState = this.deps.raw.applyConfChange(cc);
    await this.deps.storage.saveConfState(confState);
    await this.deps.membership.applyConfChange(cc, confState);
    this.deps.logger.info(`applied conf change at ${entry.index}: voters [${confState.voters.join(',')}]`);
  }

  /**
   * Adds an entry to the batch: its command (null for none, a duplicate or a refused session
   * command, or bytes that do not decode), this node's proposal of it, and its session.
   */
  private collect(batch: ApplyBatch, entry: Entry, unwrapped: Unwrapped | undefined): void {
    const index = entry.index;
    if (unwrapped === undefined) {
      batch.push({ index, command: null }, undefined);
      return;
    }
    const { proposals, sessions } = this.deps;
    const mine = proposals.ownSeq(unwrapped.id);
    if (unwrapped.register === true) {
      sessions.open(index);
      batch.push({ index, command: null }, mine, undefined, { result: index });
      return;
    }
    const tag = unwrapped.session;
    if (tag !== undefined) {
      const verdict = sessions.check(tag);
      if (verdict.kind !== 'apply') {
        const settlement =
          verdict.kind === 'duplicate' ? { result: verdict.result } : { error: verdict.error };
        batch.push({ index, command: null }, mine, undefined, settlement);
        return;
      }
    }
    let command: unknown;
    try {
      command = this.deps.machine.codec.decode(unwrapped.command);
    } catch (error) {
      batch.push({ index, command: null }, mine, undefined, { error: error as Error });
      return;
    }
    // The session moves now, in log order; its result is filled in when the batch returns.
    if (tag !== undefined) sessions.record(tag, index, undefined);
    batch.push({ index, command }, mine, tag);
  }

  /** Applies a batch, keeps session results, and settles this node's proposals in it. */
  private async applyCommands(batch: ApplyBatch): Promise<void> {
    if (batch.entries.length === 0) return;
    const results = await this.deps.machine.apply(batch.entries);
    const { proposals, sessions } = this.deps;
    for (let i = 0; i < batch.entries.length; i++) {
      const tag = batch.tags[i];
      if (tag !== undefined) sessions.record(tag, batch.entries[i]!.index, results[i]);
      const seq = batch.seqs[i];
      if (seq === undefined) continue;
      const settlement = batch.settlements[i];
      if (settlement === undefined) proposals.applied(seq, batch.entries[i]!.index, results[i]);
      else if ('error' in settlement) proposals.failed(seq, settlement.error);
      else proposals.applied(seq, batch.entries[i]!.index, settlement.result);
    }
  }
}
