/** What every etcd service implementation of one node shares: the node and etcd's response header. */
import type { NodeLogger, RaftNode } from '../node/index.js';

/** etcd `ResponseHeader`; 64-bit fields as decimal strings (see proto.ts). */
export interface ResponseHeader {
  readonly cluster_id: string;
  readonly member_id: string;
  readonly revision: string;
  readonly raft_term: string;
}

/** The node a gRPC server serves, and helpers shared by its services. */
export class EtcdContext {
  constructor(
    readonly node: RaftNode,
    readonly logger: NodeLogger,
  ) {}

  /**
   * The header of a response: this cluster and member, the given revision (default: this
   * node's current applied revision) and this node's current raft term.
   */
  header(revision?: number): ResponseHeader {
    const status = this.node.status();
    return {
      cluster_id: String(status.clusterId),
      member_id: String(status.id),
      revision: String(revision ?? status.revision),
      raft_term: String(status.term),
    };
  }
}
