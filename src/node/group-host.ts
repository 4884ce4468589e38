/**
 * One group's replica on a multi-raft host (multi-host.ts): a {@link LibraryHost} built on the
 * process's shared transport and timer instead of its own, so a `FlotillaNode` handle drives
 * it exactly as it drives a single-group node.
 */
import type { HostParts } from './host.js';
import { LibraryHost } from './library-host.js';

/** A replica of one group, hosted with others in one process. */
export class GroupHost extends LibraryHost {
  /** Builds the replica from its recovered parts; the caller starts delivering to it, then wakes it. */
  static open(parts: HostParts): GroupHost {
    return new GroupHost(parts);
  }
}
