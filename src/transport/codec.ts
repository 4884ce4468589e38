/**
 * The wire encoding of raft messages: MessagePack (msgpackr) of positional tuples.
 *
 *     message = [typeCode, groupId, from, to, term, ...fields of the type, in declaration order]
 *     entries = [index, term, entryTypeCode, data, index, term, entryTypeCode, data, ...]
 *     snapshot = [index, term, confState, data]
 *     confState = [voters, votersOutgoing, learners, learnersNext, autoLeave, removed]
 *
 * Why tuples rather than maps or msgpackr records: measured with `bench/transport.ts` on a
 * batch of 100 appends of one 256-byte entry, tuples encode+decode in about 40% of the time of
 * maps (`useRecords: false` with keys) and 70% of per-stream sequential records, and are the
 * smallest on the wire; unlike sequential records they carry no per-connection state, so a
 * message can be encoded once, queued, and dropped without desynchronising the decoder.
 * Binary fields are msgpack `bin`, never arrays of numbers.
 *
 * Decoding validates every field and builds fresh objects: bytes from the network may be
 * anything, and a malformed message must become a `MALFORMED` {@link TransportError}, never a
 * crash or a half-valid object reaching the core.
 *
 * Decoded binary fields (entry data, read contexts) are plain `Uint8Array` views into the
 * decoded bytes, not copies: copying each entry cost about 0.4 µs, more than half of the decode
 * time of a 100-entry append. The transport decodes straight from socket reads, which Node
 * sizes to the bytes read (at most 64 KiB), so a retained entry pins at most one read's worth of
 * neighbouring frames. Nothing in the transport writes to those bytes afterwards.
 */
import { Packr, RESERVE_START_SPACE } from 'msgpackr';
import { assertNever } from '../raft/assert.js';
import type { ConfState, Entry, EntryType, Message, MessageType, Snapshot } from '../raft/types.js';
import { TransportError } from './errors.js';

/** Type codes on the wire. Never renumber: they are part of the protocol. */
const MESSAGE_TYPE_CODES: Readonly<Record<MessageType, number>> = Object.freeze({
  vote: 1,
  'vote-response': 2,
  append: 3,
  'append-response': 4,
  heartbeat: 5,
  'heartbeat-response': 6,
  snapshot: 7,
  'timeout-now': 8,
  'read-index': 9,
  'read-index-response': 10,
  propose: 11,
  unreachable: 12,
  'snapshot-status': 13,
  'transfer-leader': 14,
});

const MESSAGE_TYPES_BY_CODE: ReadonlyMap<number, MessageType> = new Map(
  Object.entries(MESSAGE_TYPE_CODES).map(([type, code]) => [code, type as MessageType]),
);

const ENTRY_TYPE_CODES: Readonly<Record<EntryType, number>> = Object.freeze({ normal: 0, 'conf-change': 1 });

/** Tuple slots per entry in the flattened entry list. */
const ENTRY_SLOTS = 4;

const packr = new Packr({ useRecords: false });

/**
 * Encodes `value` as MessagePack with `headerBytes` (at most 255) uninitialised bytes reserved
 * in front, so a frame header can be written in place without copying the payload.
 */
export function packWithHeader(value: unknown, headerBytes: number): Buffer {
  return packr.pack(value, RESERVE_START_SPACE | headerBytes);
}

/** Decodes one MessagePack value occupying all of `bytes`; throws `MALFORMED` otherwise. */
export function unpackValue(bytes: Uint8Array, what: string): unknown {
  try {
    return packr.unpack(bytes);
  } catch (cause) {
    // msgpackr reports truncation, trailing bytes and unknown extensions by throwing; deep
    // nesting throws RangeError. All of them mean the peer sent garbage.
    throw new TransportError('MALFORMED', `malformed ${what}: ${(cause as Error).message}`, { cause });
  }
}

/** The MessagePack encoding of `message`. */
export function encodeMessage(message: Message): Uint8Array {
  return packWithHeader(messageToTuple(message), 0);
}

/**
 * Decodes a message encoded by {@link encodeMessage}; throws a `MALFORMED` TransportError.
 * Binary fields of the result are views into `bytes`, which must therefore not be modified.
 */
export function decodeMessage(bytes: Uint8Array): Message {
  return messageFromTuple(unpackValue(bytes, 'message'));
}

/** The positional tuple of `m` (see the module comment for the layout). */
export function messageToTuple(m: Message): unknown[] {
  const head = [MESSAGE_TYPE_CODES[m.type], m.groupId, m.from, m.to, m.term];
  switch (m.type) {
    case 'vote':
      return [...head, m.preVote, m.lastLogIndex, m.lastLogTerm, m.transfer];
    case 'vote-response':
      return [...head, m.preVote, m.granted];
    case 'append':
      return [...head, m.prevLogIndex, m.prevLogTerm, entriesToTuple(m.entries), m.commit];
    case 'append-response':
      return [...head, m.reject, m.index, m.hintIndex, m.hintTerm];
    case 'heartbeat':
      return [...head, m.commit, m.context];
    case 'heartbeat-response':
    case 'read-index':
      return [...head, m.context];
    case 'snapshot':
      return [...head, snapshotToTuple(m.snapshot)];
    case 'timeout-now':
    case 'unreachable':
      return head;
    case 'read-index-response':
      return [...head, m.index, m.context];
    case 'propose':
      return [...head, entriesToTuple(m.entries), m.hops];
    case 'snapshot-status':
      return [...head, m.reject];
    case 'transfer-leader':
      return [...head, m.transferee];
    default:
      return assertNever(m, 'message');
  }
}

function entriesToTuple(entries: readonly Entry[]): unknown[] {
  const out: unknown[] = new Array(entries.length * ENTRY_SLOTS);
  let i = 0;
  for (const e of entries) {
    out[i++] = e.index;
    out[i++] = e.term;
    out[i++] = ENTRY_TYPE_CODES[e.type];
    out[i++] = e.data;
  }
  return out;
}

function snapshotToTuple(s: Snapshot): unknown[] {
  const c = s.meta.confState;
  const confState = [c.voters, c.votersOutgoing, c.learners, c.learnersNext, c.autoLeave, c.removed ?? []];
  return [s.meta.index, s.meta.term, confState, s.data];
}

/** Validates a decoded tuple and builds the message it encodes; throws `MALFORMED`. */
export function messageFromTuple(value: unknown): Message {
  const r = new TupleReader(value, 'message');
  const code = r.uint('type');
  const type = MESSAGE_TYPES_BY_CODE.get(code);
  if (type === undefined) throw r.error(`unknown message type code ${code}`);
  const m = readBody(type, [r.uint('groupId'), r.uint('from'), r.uint('to'), r.uint('term')], r);
  r.end();
  return m;
}

/**
 * Builds each message as one object literal from the header's fields (spreading a header
 * object into it cost more than the rest of decoding).
 */
function readBody(type: MessageType, h: readonly [number, number, number, number], r: TupleReader): Message {
  const [groupId, from, to, term] = h;
  switch (type) {
    case 'vote': {
      const preVote = r.bool('preVote');
      const lastLogIndex = r.uint('lastLogIndex');
      const lastLogTerm = r.uint('lastLogTerm');
      return {
        type,
        groupId,
        from,
        to,
        term,
        preVote,
        lastLogIndex,
        lastLogTerm,
        transfer: r.bool('transfer'),
      };
    }
    case 'vote-response':
      return { type, groupId, from, to, term, preVote: r.bool('preVote'), granted: r.bool('granted') };
    case 'append': {
      const prevLogIndex = r.uint('prevLogIndex');
      const prevLogTerm = r.uint('prevLogTerm');
      const entries = readEntries(r.array('entries'));
      return { type, groupId, from, to, term, prevLogIndex, prevLogTerm, entries, commit: r.uint('commit') };
    }
    case 'append-response': {
      const reject = r.bool('reject');
      const index = r.uint('index');
      const hintIndex = r.uint('hintIndex');
      return { type, groupId, from, to, term, reject, index, hintIndex, hintTerm: r.uint('hintTerm') };
    }
    case 'heartbeat':
      return { type, groupId, from, to, term, commit: r.uint('commit'), context: r.bytes('context') };
    case 'heartbeat-response':
    case 'read-index':
      return { type, groupId, from, to, term, context: r.bytes('context') };
    case 'snapshot':
      return { type, groupId, from, to, term, snapshot: readSnapshot(r.array('snapshot')) };
    case 'timeout-now':
    case 'unreachable':
      return { type, groupId, from, to, term };
    case 'read-index-response':
      return { type, groupId, from, to, term, index: r.uint('index'), context: r.bytes('context') };
    case 'propose': {
      const entries = readEntries(r.array('entries'));
      return { type, groupId, from, to, term, entries, hops: r.uint('hops') };
    }
    case 'snapshot-status':
      return { type, groupId, from, to, term, reject: r.bool('reject') };
    case 'transfer-leader':
      return { type, groupId, from, to, term, transferee: r.uint('transferee') };
    default:
      return assertNever(type, 'message type');
  }
}

function readEntries(flat: readonly unknown[]): Entry[] {
  if (flat.length % ENTRY_SLOTS !== 0) {
    throw new TransportError(
      'MALFORMED',
      `malformed message: entries has ${flat.length} slots, not 4 per entry`,
    );
  }
  const r = new TupleReader(flat, 'entry');
  const entries: Entry[] = new Array(flat.length / ENTRY_SLOTS);
  for (let i = 0; i < entries.length; i++) {
    const index = r.uint('index');
    const term = r.uint('term');
    const typeCode = r.uint('type');
    const type: EntryType | undefined =
      typeCode === 0 ? 'normal' : typeCode === 1 ? 'conf-change' : undefined;
    if (type === undefined) throw r.error(`unknown entry type code ${typeCode}`);
    entries[i] = { index, term, type, data: r.bytes('data') };
  }
  return entries;
}

function readSnapshot(value: readonly unknown[]): Snapshot {
  const r = new TupleReader(value, 'snapshot');
  const index = r.uint('index');
  const term = r.uint('term');
  const c = new TupleReader(r.array('confState'), 'confState');
  const base = {
    voters: c.nodeIds('voters'),
    votersOutgoing: c.nodeIds('votersOutgoing'),
    learners: c.nodeIds('learners'),
    learnersNext: c.nodeIds('learnersNext'),
    autoLeave: c.bool('autoLeave'),
  };
  const removed = c.nodeIds('removed');
  c.end();
  const confState: ConfState = removed.length > 0 ? { ...base, removed } : base;
  const data = r.bytes('data');
  r.end();
  return { meta: { index, term, confState }, data };
}

/**
 * Reads the slots of a decoded tuple in order, checking each one's type. Error messages name
 * the structure and field so a peer's bug can be found from the log line alone.
 */
export class TupleReader {
  private readonly tuple: readonly unknown[];
  private position = 0;

  constructor(
    value: unknown,
    private readonly what: string,
  ) {
    if (!Array.isArray(value)) throw this.error(`expected an array, got ${describe(value)}`);
    this.tuple = value;
  }

  /** A non-negative safe integer. */
  uint(field: string): number {
    const v = this.next(field);
    if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < 0)
      throw this.invalid(field, 'a non-negative integer', v);
    return v;
  }

  /** A boolean. */
  bool(field: string): boolean {
    const v = this.next(field);
    if (typeof v !== 'boolean') throw this.invalid(field, 'a boolean', v);
    return v;
  }

  /** A string. */
  string(field: string): string {
    const v = this.next(field);
    if (typeof v !== 'string') throw this.invalid(field, 'a string', v);
    return v;
  }

  /** Binary data, as a plain `Uint8Array` view of the same bytes (msgpackr returns `Buffer`s). */
  bytes(field: string): Uint8Array {
    const v = this.next(field);
    if (!(v instanceof Uint8Array)) throw this.invalid(field, 'binary data', v);
    return new Uint8Array(v.buffer, v.byteOffset, v.byteLength);
  }

  /** An array (not checked further). */
  array(field: string): readonly unknown[] {
    const v = this.next(field);
    if (!Array.isArray(v)) throw this.invalid(field, 'an array', v);
    return v;
  }

  /** An array of node ids. */
  nodeIds(field: string): number[] {
    const list = this.array(field);
    const ids = new TupleReader(list, `${this.what}.${field}`);
    return list.map((_, i) => ids.uint(String(i)));
  }

  /** Checks that every slot was read: extra slots mean a different protocol version or garbage. */
  end(): void {
    if (this.position !== this.tuple.length) {
      throw this.error(`${this.tuple.length} slots where ${this.position} were expected`);
    }
  }

  /** A `MALFORMED` error about this structure. */
  error(detail: string): TransportError {
    return new TransportError('MALFORMED', `malformed ${this.what}: ${detail}`);
  }

  private next(field: string): unknown {
    if (this.position >= this.tuple.length) throw this.error(`missing field ${field}`);
    return this.tuple[this.position++];
  }

  private invalid(field: string, expected: string, got: unknown): TransportError {
    return this.error(`field ${field} must be ${expected}, got ${describe(got)}`);
  }
}

/** A short, safe description of an arbitrary decoded value for error messages. */
function describe(value: unknown): string {
  if (value === null) return 'null';
  if (typeof value === 'number' || typeof value === 'boolean') return `${typeof value} ${value}`;
  if (typeof value === 'string') return `string of length ${value.length}`;
  if (typeof value === 'object') return (value as object).constructor?.name ?? 'object';
  return typeof value;
}
