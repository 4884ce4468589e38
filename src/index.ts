/**
 * Flotilla as a library: `createNode` replicates any state machine with Raft. See
 * docs/library.md and the API reference in docs/api/. The KV database, the raft core and the
 * other layers have their own subpath exports (`flotilla/raft`, `flotilla/kv`, ...).
 *
 * @packageDocumentation
 */
export * from './node/library.js';
