/**
 * etcd's `Auth` service. Flotilla has no authentication: it answers as an etcd whose
 * authentication is disabled and stays so.
 *
 * - AuthStatus: `enabled: false`. AuthDisable: success (it is disabled).
 * - Authenticate: etcd's `authentication is not enabled` (what etcd answers while disabled).
 * - UserList / RoleList: empty; UserGet / RoleGet: etcd's `user name not found` /
 *   `role name not found` (there are none).
 * - AuthEnable and every user or role change: `UNIMPLEMENTED`, saying Flotilla does not
 *   support authentication (enabling it would need a root user, which cannot be added).
 */
import { status } from '@grpc/grpc-js';
import type { ServiceImplementation } from '../grpc/index.js';
import type { EtcdContext } from './context.js';
import { EtcdGrpcError, etcdError } from './errors.js';
import { unary } from './unary.js';

/** The error of everything that would change users, roles or the auth switch. */
export function authNotSupported(): EtcdGrpcError {
  return new EtcdGrpcError(status.UNIMPLEMENTED, 'etcdserver: authentication is not supported by Flotilla');
}

const MUTATIONS = [
  'AuthEnable',
  'UserAdd',
  'UserDelete',
  'UserChangePassword',
  'UserGrantRole',
  'UserRevokeRole',
  'RoleAdd',
  'RoleDelete',
  'RoleGrantPermission',
  'RoleRevokePermission',
] as const;

/** The `Auth` service of one node. */
export function authService(ctx: EtcdContext): ServiceImplementation {
  const service: ServiceImplementation = {
    AuthStatus: unary(async () => ({ header: ctx.header(), enabled: false, authRevision: 0 })),
    AuthDisable: unary(async () => ({ header: ctx.header() })),
    Authenticate: unary(async () => {
      throw etcdError('authNotEnabled');
    }),
    UserList: unary(async () => ({ header: ctx.header(), users: [] })),
    RoleList: unary(async () => ({ header: ctx.header(), roles: [] })),
    UserGet: unary(async () => {
      throw new EtcdGrpcError(status.FAILED_PRECONDITION, 'etcdserver: user name not found');
    }),
    RoleGet: unary(async () => {
      throw new EtcdGrpcError(status.FAILED_PRECONDITION, 'etcdserver: role name not found');
    }),
  };
  for (const name of MUTATIONS) {
    service[name] = unary(async () => {
      throw authNotSupported();
    });
  }
  return service;
}
