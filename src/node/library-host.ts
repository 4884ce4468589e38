/**
 * The host behind `createNode`: a {@link Host} with nothing of a particular state machine
 * added, which tells its {@link FlotillaNode} handle after every Ready pass (so the handle can
 * report role, leader and applied index changes), and which stops for good once this member
 * has applied its own removal from the group.
 */
import { RemovedError } from './errors.js';
import { Host, type HostParts } from './host.js';
import type { UnknownStateMachine } from './machine-driver.js';
import type { RaftNodeInit } from './options.js';

/** One raft group replicating a user's state machine. */
export class LibraryHost extends Host {
  private observer: () => void = () => {};
  private removedSelf = false;

  /** Starts a host (see `Host.launch`); `observer` may be set later. */
  static async start(init: RaftNodeInit, stateMachine: UnknownStateMachine): Promise<LibraryHost> {
    const host = await Host.launch(init, stateMachine, (parts: HostParts) => new LibraryHost(parts));
    host.noticeRemoval();
    return host;
  }

  /** Calls `observer` after every Ready pass (synchronously, inside the loop: it must not throw). */
  observe(observer: () => void): void {
    this.observer = observer;
  }

  /**
   * Whether this member's removal from the group is applied here (checked after every Ready
   * pass: a removal is permanent). The node then stops; see {@link LibraryHost.stopRemoved}.
   */
  get removed(): boolean {
    return this.removedSelf;
  }

  /**
   * Stops after this member's removal: waiting requests fail with {@link RemovedError},
   * then the node closes like `stop`.
   */
  stopRemoved(): Promise<void> {
    this.replica.failAll(new RemovedError('REMOVED', `member ${this.options.id} was removed from the group`));
    return this.stop();
  }

  protected override onAdvanced(): void {
    this.noticeRemoval();
    this.observer();
  }

  /** Records whether the applied configuration lists this member as removed. */
  private noticeRemoval(): void {
    // The host's applied configuration: the same object until it changes (no copy per pass).
    if (!this.removedSelf) this.removedSelf = (this.confState().removed ?? []).includes(this.options.id);
  }
}
