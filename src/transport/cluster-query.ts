/**
 * The dialing side of the one-shot cluster query (frames.ts: CLUSTER_QUERY / CLUSTER_INFO):
 * connects to a member's peer address, asks, reads the one answer and closes. A node joining
 * a running cluster uses it before it has an id of its own (src/node/join.ts).
 */
import { connect } from 'node:net';
import { TransportError } from './errors.js';
import { FrameReader } from './frame-reader.js';
import { clusterQueryFrame, decodeClusterInfo, FRAME_KIND, PROTOCOL_VERSION } from './frames.js';
import type { PeerAddress } from './options.js';

/** Largest answer accepted, in bytes (a member list of a few hundred members fits easily). */
const CLUSTER_INFO_BYTES_MAX = 1024 * 1024;

/**
 * Asks the member listening at `address` about its cluster; resolves with its answer (the
 * text its transport's `clusterInfo` returned). Rejects with a `TransportError` when the
 * member cannot be reached, closes without answering (it serves no queries), answers in
 * another protocol version or not within `timeoutMs`.
 */
export function queryClusterInfo(address: PeerAddress, timeoutMs: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const where = `${address.host}:${address.port}`;
    const reader = new FrameReader(CLUSTER_INFO_BYTES_MAX);
    let settled = false;
    const socket = connect({ host: address.host, port: address.port });
    const finish = (error: TransportError | undefined, text?: string): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      socket.destroy();
      if (error === undefined) resolve(text ?? '');
      else reject(error);
    };
    const timer = setTimeout(
      () => finish(new TransportError('HANDSHAKE_FAILED', `no answer from ${where} within ${timeoutMs} ms`)),
      timeoutMs,
    );
    socket.setNoDelay(true);
    socket.on('connect', () => socket.write(clusterQueryFrame()));
    socket.on('error', (cause) =>
      finish(new TransportError('HANDSHAKE_FAILED', `cannot query ${where}: ${cause.message}`, { cause })),
    );
    socket.on('close', () =>
      finish(new TransportError('HANDSHAKE_FAILED', `${where} closed the connection without answering`)),
    );
    socket.on('data', (chunk: Buffer) => {
      try {
        reader.push(chunk);
        const payload = reader.next();
        if (payload === undefined) return;
        if (payload[0] !== FRAME_KIND.CLUSTER_INFO) {
          throw new TransportError('PROTOCOL', `${where} answered with frame kind ${payload[0]}`);
        }
        const info = decodeClusterInfo(payload.subarray(1));
        if (info.protocolVersion !== PROTOCOL_VERSION) {
          throw new TransportError(
            'PROTOCOL',
            `${where} speaks protocol version ${info.protocolVersion}, not ${PROTOCOL_VERSION}`,
          );
        }
        finish(undefined, info.text);
      } catch (error) {
        finish(
          error instanceof TransportError
            ? error
            : new TransportError('MALFORMED', String(error), { cause: error }),
        );
      }
    });
  });
}
