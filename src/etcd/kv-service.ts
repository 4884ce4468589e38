/** etcd's `KV` service. */
import type { UntypedServiceImplementation } from '@grpc/grpc-js';
import type { EtcdContext } from './context.js';

/** The `KV` service of one node. */
export function kvService(_ctx: EtcdContext): UntypedServiceImplementation {
  return {};
}
