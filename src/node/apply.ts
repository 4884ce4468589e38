/**
 * Applying committed entries to one raft group's state machine, in log order: KV commands in
 * batches (`applyBatch`, waiting first while the store's commits in flight are over their
 * bound), conf changes through the core (`applyConfChange`, then
 * `saveConfState`) and member updates to the member table, settling this node's own
 * proposals as their entries are applied.
 */
import { decodeCommand, type KvBackend, type KvCommand, type KvEntry } from '../kv/index.js';
import { decodeConfChange, type Entry, type RawNode } from '../raft/index.js';
import type { FileStorage } from '../storage/index.js';
import type { NodeCounters } from './counters.js';
import { unwrapCommand } from './envelope.js';
import { unwrapMemberUpdate } from './member-table.js';
import type { Membership } from './membership.js';
import type { NodeLogger } from './options.js';
import type { ProposalTracker } from './proposals.js';

/** What {@link Applier} needs from the runtime. */
export interface ApplierDeps {
  /** The group's core, which applies conf changes to its configuration. */
  readonly raw: Pick<RawNode, 'applyConfChange'>;
  /** The group's log storage, where an applied configuration is made durable. */
  readonly storage: Pick<FileStorage, 'saveConfState'>;
  readonly kv: Pick<KvBackend, 'applyBatch' | 'backPressure'>;
  readonly proposals: ProposalTracker;
  readonly membership: Membership;
  readonly counters: NodeCounters;
  readonly logger: NodeLogger;
}

/** KV entries collected for one `applyBatch`, with the sequence number of this node's own. */
interface KvBatch {
  entries: KvEntry[];
  seqs: (number | undefined)[];
}

/** Applies committed entries of one raft group. */
export class Applier {
  constructor(private readonly deps: ApplierDeps) {}

  /**
   * Applies committed entries in order. A conf change is made durable (`saveConfState`)
   * before the KV applied index moves past it: after a restart the core does not replay
   * entries the KV store has applied, so the membership must already be on disk.
   */
  async apply(entries: readonly Entry[]): Promise<void> {
    let batch: KvBatch = { entries: [], seqs: [] };
    for (const entry of entries) {
      if (entry.type === 'conf-change') {
        await this.applyKv(batch);
        await this.applyConfChange(entry);
        batch = { entries: [{ index: entry.index, command: null }], seqs: [undefined] };
        continue;
      }
      const update = entry.type === 'normal' ? unwrapMemberUpdate(entry.data) : undefined;
      if (update !== undefined) {
        await this.applyKv(batch);
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
    await this.applyKv(batch);
    this.deps.counters.entriesApplied += entries.length;
  }

  private async applyConfChange(entry: Entry): Promise<void> {
    const cc = decodeConfChange(entry.data);
    const confState = this.deps.raw.applyConfChange(cc);
    await this.deps.storage.saveConfState(confState);
    await this.deps.membership.applyConfChange(cc, confState);
    this.deps.logger.info(`applied conf change at ${entry.index}: voters [${confState.voters.join(',')}]`);
  }

  /** The KV command an entry carries (null for none) and its sequence number if this node proposed it. */
  private decodeEntry(entry: Entry): { command: KvCommand | null; seq: number | undefined } {
    const unwrapped = unwrapCommand(entry.data);
    if (unwrapped === undefined) return { command: null, seq: undefined };
    const mine = this.deps.proposals.ownSeq(unwrapped.id);
    try {
      return { command: decodeCommand(unwrapped.command), seq: mine };
    } catch (error) {
      if (mine !== undefined) this.deps.proposals.failed(mine, error as Error);
      return { command: null, seq: undefined };
    }
  }

  /**
   * Applies a batch of KV entries once the store has room for more work in flight (its
   * back-pressure: LMDB commits run behind the apply path, see src/kv/lmdb-backend.ts).
   */
  private async applyKv(batch: KvBatch): Promise<void> {
    if (batch.entries.length === 0) return;
    const room = this.deps.kv.backPressure();
    if (room !== undefined) await room;
    const results = this.deps.kv.applyBatch(batch.entries);
    for (let i = 0; i < batch.seqs.length; i++) {
      const seq = batch.seqs[i];
      const result = results[i];
      if (seq === undefined || result === undefined || result === null) continue;
      this.deps.proposals.applied(seq, batch.entries[i]!.index, result);
    }
  }
}
