/**
 * Applying committed entries to one raft group's state machine, in log order: commands in
 * batches (the state machine's `apply`), conf changes through the core (`applyConfChange`, then
 * `saveConfState`) and member updates to the member table, settling this node's own
 * proposals as their entries are applied.
 */
import { decodeConfChange, type Entry, type RawNode } from '../raft/index.js';
import type { FileStorage } from '../storage/index.js';
import type { NodeCounters } from './counters.js';
import { unwrapCommand } from './envelope.js';
import type { MachineDriver } from './machine-driver.js';
import { unwrapMemberUpdate } from './member-table.js';
import type { Membership } from './membership.js';
import type { NodeLogger } from './options.js';
import type { ProposalTracker } from './proposals.js';
import type { StateMachineEntry } from './state-machine.js';

/** What {@link Applier} needs from the runtime. */
export interface ApplierDeps {
  /** The group's core, which applies conf changes to its configuration. */
  readonly raw: Pick<RawNode, 'applyConfChange'>;
  /** The group's log storage, where an applied configuration is made durable. */
  readonly storage: Pick<FileStorage, 'saveConfState'>;
  /** The group's state machine. */
  readonly machine: Pick<MachineDriver, 'apply' | 'codec'>;
  readonly proposals: ProposalTracker;
  readonly membership: Membership;
  readonly counters: NodeCounters;
  readonly logger: NodeLogger;
}

/** Entries collected for one state machine `apply`, with the sequence number of this node's own. */
interface ApplyBatch {
  entries: StateMachineEntry<unknown>[];
  seqs: (number | undefined)[];
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
    let batch: ApplyBatch = { entries: [], seqs: [] };
    for (const entry of entries) {
      if (entry.type === 'conf-change') {
        await this.applyCommands(batch);
        await this.applyConfChange(entry);
        batch = { entries: [{ index: entry.index, command: null }], seqs: [undefined] };
        continue;
      }
      const update = entry.type === 'normal' ? unwrapMemberUpdate(entry.data) : undefined;
      if (update !== undefined) {
        await this.applyCommands(batch);
        await this.deps.membership.applyUpdate(update.update);
        const mine = this.deps.proposals.ownSeq(update.id);
        if (mine !== undefined) this.deps.proposals.appliedMemberUpdate(mine);
        batch = { entries: [{ index: entry.index, command: null }], seqs: [undefined] };
        continue;
      }
      const { command, seq } = this.decodeEntry(entry);
      batch.entries.push({ index: entry.index, command });
      batch.seqs.push(seq);
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

  /** The command an entry carries (null for none) and its sequence number if this node proposed it. */
  private decodeEntry(entry: Entry): { command: unknown; seq: number | undefined } {
    const unwrapped = unwrapCommand(entry.data);
    if (unwrapped === undefined) return { command: null, seq: undefined };
    const mine = this.deps.proposals.ownSeq(unwrapped.id);
    try {
      return { command: this.deps.machine.codec.decode(unwrapped.command), seq: mine };
    } catch (error) {
      if (mine !== undefined) this.deps.proposals.failed(mine, error as Error);
      return { command: null, seq: undefined };
    }
  }

  /** Applies a batch and resolves this node's proposals in it with their results. */
  private async applyCommands(batch: ApplyBatch): Promise<void> {
    if (batch.entries.length === 0) return;
    const results = await this.deps.machine.apply(batch.entries);
    for (let i = 0; i < batch.seqs.length; i++) {
      const seq = batch.seqs[i];
      if (seq === undefined) continue;
      this.deps.proposals.applied(seq, batch.entries[i]!.index, results[i]);
    }
  }
}
