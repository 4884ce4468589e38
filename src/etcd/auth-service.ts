/** etcd's `Auth` service. */
import type { UntypedServiceImplementation } from '@grpc/grpc-js';
import type { EtcdContext } from './context.js';

/** The `Auth` service of one node. */
export function authService(_ctx: EtcdContext): UntypedServiceImplementation {
  return {};
}
