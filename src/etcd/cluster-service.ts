/** etcd's `Cluster` service. */
import type { UntypedServiceImplementation } from '@grpc/grpc-js';
import type { EtcdContext } from './context.js';

/** The `Cluster` service of one node. */
export function clusterService(_ctx: EtcdContext): UntypedServiceImplementation {
  return {};
}
