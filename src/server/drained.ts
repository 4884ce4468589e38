/** Waiting out back-pressure on an outgoing stream (HTTP responses, gRPC server streams). */

/** What {@link drained} needs of a stream: node's Writable and http.ServerResponse both have it. */
export interface DrainableStream {
  readonly destroyed: boolean;
  readonly writableEnded: boolean;
  on(event: 'drain' | 'close', listener: () => void): unknown;
  off(event: 'drain' | 'close', listener: () => void): unknown;
}

/** Resolves once `stream` can take more writes ('drain'), or once it closed. */
export function drained(stream: DrainableStream): Promise<void> {
  if (stream.destroyed || stream.writableEnded) return Promise.resolve();
  return new Promise((resolve) => {
    const done = (): void => {
      stream.off('drain', done);
      stream.off('close', done);
      resolve();
    };
    stream.on('drain', done);
    stream.on('close', done);
  });
}
