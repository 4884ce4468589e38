/**
 * gRPC message framing ("Length-Prefixed-Message" of the gRPC over HTTP/2 protocol): each
 * message in a stream's DATA is a 5-byte prefix (compressed flag, 32-bit length) and the
 * serialized message.
 */
import { status } from '@grpc/grpc-js';
import { GrpcCallError } from './grpc-status.js';

/** A message with gRPC's 5-byte prefix (the server's encoder: src/grpc/status.ts). */
export { framed as grpcFrame } from '../grpc/status.js';

/** Splits gRPC-framed bytes as they arrive into whole messages. */
export class MessageReader {
  private buffered: Buffer = Buffer.alloc(0);

  /** Adds `chunk`; returns the messages it completes. */
  push(chunk: Buffer): Buffer[] {
    this.buffered = this.buffered.length === 0 ? chunk : Buffer.concat([this.buffered, chunk]);
    const messages: Buffer[] = [];
    while (this.buffered.length >= 5) {
      const length = this.buffered.readUInt32BE(1);
      if (this.buffered.length < 5 + length) break;
      if (this.buffered[0] !== 0)
        throw new GrpcCallError(status.INTERNAL, 'compressed messages are not supported');
      messages.push(this.buffered.subarray(5, 5 + length));
      this.buffered = this.buffered.subarray(5 + length);
    }
    return messages;
  }
}
