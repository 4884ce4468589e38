/** etcd's `Watch` service. */
import type { UntypedServiceImplementation } from '@grpc/grpc-js';
import type { EtcdContext } from './context.js';

/** The `Watch` service of one node. */
export function watchService(_ctx: EtcdContext): UntypedServiceImplementation {
  return {};
}
