/** etcd's `Lease` service. */
import type { UntypedServiceImplementation } from '@grpc/grpc-js';
import type { EtcdContext } from './context.js';

/** The `Lease` service of one node. */
export function leaseService(_ctx: EtcdContext): UntypedServiceImplementation {
  return {};
}
