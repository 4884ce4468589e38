/**
 * HTTP/2 frames (RFC 9113 §4 and §6) as Flotilla's gRPC server (src/grpc/) and the
 * benchmark's gRPC client write and read them: the frame types, flags, settings and error
 * codes they use, encoders for the frames they send, and the split of received bytes into
 * frames.
 */

// Frame types, flags, settings and error codes of RFC 9113.
export const DATA = 0x0;
export const HEADERS = 0x1;
export const PRIORITY_FRAME = 0x2;
export const RST_STREAM = 0x3;
export const SETTINGS = 0x4;
export const PUSH_PROMISE = 0x5;
export const PING = 0x6;
export const GOAWAY = 0x7;
export const WINDOW_UPDATE = 0x8;
export const CONTINUATION = 0x9;
export const END_STREAM = 0x1;
export const ACK = 0x1;
export const END_HEADERS = 0x4;
export const PADDED = 0x8;
export const PRIORITY = 0x20;
export const SETTINGS_HEADER_TABLE_SIZE = 0x1;
export const SETTINGS_ENABLE_PUSH = 0x2;
export const SETTINGS_MAX_CONCURRENT_STREAMS = 0x3;
export const SETTINGS_INITIAL_WINDOW_SIZE = 0x4;
export const SETTINGS_MAX_FRAME_SIZE = 0x5;
export const NO_ERROR = 0x0;
export const PROTOCOL_ERROR = 0x1;
export const INTERNAL_ERROR = 0x2;
export const FLOW_CONTROL_ERROR = 0x3;
export const STREAM_CLOSED = 0x5;
export const FRAME_SIZE_ERROR = 0x6;
export const COMPRESSION_ERROR = 0x9;
export const CANCEL = 0x8;
export const REFUSED_STREAM = 0x7;
export const MAX_WINDOW = 2 ** 31 - 1;
export const DEFAULT_WINDOW = 65_535;
export const PREFACE = Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n', 'latin1');

/** Writes a 9-byte frame header at `at` of `target`. */
export function frameHeader(
  target: Buffer,
  at: number,
  length: number,
  type: number,
  flags: number,
  stream: number,
): void {
  target[at] = (length >>> 16) & 0xff;
  target[at + 1] = (length >>> 8) & 0xff;
  target[at + 2] = length & 0xff;
  target[at + 3] = type;
  target[at + 4] = flags;
  target.writeUInt32BE(stream, at + 5);
}

/** A whole frame: header and `payload`. */
export function frame(
  type: number,
  flags: number,
  stream: number,
  payload: Uint8Array = Buffer.alloc(0),
): Buffer {
  const out = Buffer.allocUnsafe(9 + payload.length);
  frameHeader(out, 0, payload.length, type, flags, stream);
  out.set(payload, 9);
  return out;
}

/** A SETTINGS frame with each `[setting, value]` of `settings`. */
export function settingsFrame(settings: readonly (readonly [setting: number, value: number])[]): Buffer {
  const payload = Buffer.alloc(6 * settings.length);
  settings.forEach(([setting, value], i) => {
    payload.writeUInt16BE(setting, 6 * i);
    payload.writeUInt32BE(value, 6 * i + 2);
  });
  return frame(SETTINGS, 0, 0, payload);
}

/** A WINDOW_UPDATE frame giving `increment` bytes back to `stream`'s window (0: the connection's). */
export function windowUpdateFrame(stream: number, increment: number): Buffer {
  return frame(WINDOW_UPDATE, 0, stream, uint32(increment));
}

/** A RST_STREAM frame resetting `stream` with error `code`. */
export function rstStreamFrame(stream: number, code: number): Buffer {
  return frame(RST_STREAM, 0, stream, uint32(code));
}

function uint32(value: number): Buffer {
  const payload = Buffer.alloc(4);
  payload.writeUInt32BE(value, 0);
  return payload;
}

/** Receives one frame: its type, flags, stream id and payload. */
export type FrameHandler = (type: number, flags: number, stream: number, payload: Buffer) => void;

/**
 * Hands each whole frame at the start of `input` to `onFrame`, stopping early once
 * `stopped()` says so after a frame; returns the bytes after the last whole frame (the start
 * of an incomplete one), or undefined if it stopped early.
 */
export function readFrames(input: Buffer, onFrame: FrameHandler, stopped: () => boolean): Buffer | undefined {
  while (input.length >= 9) {
    const length = (input[0]! << 16) | (input[1]! << 8) | input[2]!;
    if (input.length < 9 + length) break;
    const type = input[3]!;
    const flags = input[4]!;
    const stream = input.readUInt32BE(5) & 0x7fffffff;
    const payload = input.subarray(9, 9 + length);
    input = input.subarray(9 + length);
    onFrame(type, flags, stream, payload);
    if (stopped()) return undefined;
  }
  return input;
}
