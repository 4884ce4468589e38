/**
 * Transport benchmarks over loopback:
 *
 * 1. Codec: encode + decode time of a batch of 100 appends (one 256-byte entry each) and of one
 *    append of 100 such entries, for the codec in use (positional tuples, validated) and the
 *    msgpackr alternatives it was chosen against (maps, records, sequential records; these
 *    are raw msgpackr calls without validation, which only flatters them).
 * 2. Throughput between two TcpTransports: messages/s with one 256-byte entry per append,
 *    and MB/s of entry data with 64 entries per append.
 * 3. Round trip of a tiny message (heartbeat → heartbeat-response), median of many pings.
 *
 *   node dist/bench/transport.js [--json] [--seconds S]
 */
import { Packr } from 'msgpackr';
import type { Message } from '../src/raft/types.js';
import { decodeMessage, encodeMessage } from '../src/transport/codec.js';
import { TcpTransport } from '../src/transport/tcp-transport.js';

const HOST = '127.0.0.1';

function appendOf(index: number, entries: number): Message {
  const list = [];
  for (let i = 0; i < entries; i++) {
    list.push({
      index: index + i,
      term: 7,
      type: 'normal' as const,
      data: new Uint8Array(256).fill(i & 0xff),
    });
  }
  return {
    type: 'append',
    groupId: 1,
    from: 1,
    to: 2,
    term: 7,
    prevLogIndex: index - 1,
    prevLogTerm: 7,
    entries: list,
    commit: index - 1,
  };
}

function median(values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)]!;
}

function percentile(values: readonly number[], p: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * p))]!;
}

interface CodecResult {
  codec: string;
  batch: string;
  bytes: number;
  encodeMicros: number;
  decodeMicros: number;
}

type Codec = { encode(m: Message): Uint8Array; decode(b: Uint8Array): unknown };

/** Fresh codec instances per repetition: sequential records carry state from message to message. */
const CODECS: Record<string, () => Codec> = {
  'tuples (in use)': () => ({ encode: encodeMessage, decode: decodeMessage }),
  'maps, useRecords:false': () => {
    const p = new Packr({ useRecords: false });
    return { encode: (m) => p.pack(m), decode: (b) => p.unpack(b) };
  },
  'records, inline': () => {
    const p = new Packr({ useRecords: true });
    return { encode: (m) => p.pack(m), decode: (b) => p.unpack(b) };
  },
  'records, sequential': () => {
    const e = new Packr({ sequential: true });
    const d = new Packr({ sequential: true });
    return { encode: (m) => e.pack(m), decode: (b) => d.unpackMultiple(b)[0] };
  },
};

/** Median over 15 repetitions of the per-batch encode and decode time. */
function benchCodec(name: string, batch: string, messages: readonly Message[]): CodecResult {
  const encodeTimes: number[] = [];
  const decodeTimes: number[] = [];
  let bytes = 0;
  for (let rep = 0; rep < 15; rep++) {
    const codec = CODECS[name]!();
    const rounds = 200;
    let encodeMs = 0;
    let decodeMs = 0;
    for (let r = 0; r < rounds; r++) {
      let t = performance.now();
      const encoded = messages.map((m) => codec.encode(m));
      encodeMs += performance.now() - t;
      t = performance.now();
      for (const b of encoded) codec.decode(b);
      decodeMs += performance.now() - t;
      bytes = encoded.reduce((sum, b) => sum + b.length, 0);
    }
    encodeTimes.push((encodeMs / rounds) * 1000);
    decodeTimes.push((decodeMs / rounds) * 1000);
  }
  return { codec: name, batch, bytes, encodeMicros: median(encodeTimes), decodeMicros: median(decodeTimes) };
}

async function pair(onMessageAtB: (m: Message, b: TcpTransport) => void, onMessageAtA: (m: Message) => void) {
  let b: TcpTransport | undefined;
  const a = new TcpTransport({
    nodeId: 1,
    clusterId: 1,
    listen: { host: HOST, port: 0 },
    peers: new Map(),
    onMessage: onMessageAtA,
  });
  b = new TcpTransport({
    nodeId: 2,
    clusterId: 1,
    listen: { host: HOST, port: 0 },
    peers: new Map(),
    onMessage: (m) => onMessageAtB(m, b!),
  });
  const [{ port: portA }, { port: portB }] = await Promise.all([a.start(), b.start()]);
  a.addPeer(2, { host: HOST, port: portB });
  b.addPeer(1, { host: HOST, port: portA });
  while (!a.stats().peers.get(2)!.connected || !b.stats().peers.get(1)!.connected) await sleep(5);
  return { a, b };
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

interface ThroughputResult {
  entriesPerAppend: number;
  messagesPerSecond: number;
  entriesPerSecond: number;
  megabytesPerSecond: number;
  dropped: number;
}

/**
 * Keeps at most `windowMessages` appends in flight (so the bounded queue never overflows) and
 * refills it every event-loop turn, as a leader streaming to a follower would.
 */
async function throughput(entriesPerAppend: number, seconds: number): Promise<ThroughputResult> {
  let received = 0;
  const { a, b } = await pair(
    () => received++,
    () => {},
  );
  const template = appendOf(1, entriesPerAppend);
  const windowMessages = Math.max(64, Math.floor(2048 / entriesPerAppend));
  let sent = 0;
  const start = performance.now();
  const deadline = start + seconds * 1000;
  while (performance.now() < deadline) {
    const batch: Message[] = [];
    while (sent + batch.length - received < windowMessages) batch.push(template);
    sent += batch.length;
    if (batch.length > 0) a.send(batch);
    await new Promise((resolve) => setImmediate(resolve));
  }
  const elapsed = (performance.now() - start) / 1000;
  const dropped = a.stats().peers.get(2)!.messagesDropped;
  await Promise.all([a.stop(), b.stop()]);
  return {
    entriesPerAppend,
    messagesPerSecond: received / elapsed,
    entriesPerSecond: (received * entriesPerAppend) / elapsed,
    megabytesPerSecond: (received * entriesPerAppend * 256) / elapsed / 1e6,
    dropped,
  };
}

/** Ping-pong of a heartbeat and its response; returns round-trip times in microseconds. */
async function roundTrips(count: number): Promise<number[]> {
  let resolvePong: () => void = () => {};
  const { a, b } = await pair(
    (m, self) => {
      if (m.type === 'heartbeat') {
        self.send([{ type: 'heartbeat-response', groupId: 1, from: 2, to: 1, term: 1, context: m.context }]);
      }
    },
    () => resolvePong(),
  );
  const ping: Message = {
    type: 'heartbeat',
    groupId: 1,
    from: 1,
    to: 2,
    term: 1,
    commit: 0,
    context: new Uint8Array(8),
  };
  const times: number[] = [];
  for (let i = 0; i < count + 200; i++) {
    const t = performance.now();
    await new Promise<void>((resolve) => {
      resolvePong = resolve;
      a.send([ping]);
    });
    if (i >= 200) times.push((performance.now() - t) * 1000);
  }
  await Promise.all([a.stop(), b.stop()]);
  return times;
}

const json = process.argv.includes('--json');
const secondsFlag = process.argv.indexOf('--seconds');
const seconds = secondsFlag >= 0 ? Number(process.argv[secondsFlag + 1]) : 2;

const hundredAppends = Array.from({ length: 100 }, (_, i) => appendOf(1 + i, 1));
const oneAppend = [appendOf(1, 100)];
const codecResults: CodecResult[] = [];
for (const name of Object.keys(CODECS)) {
  codecResults.push(benchCodec(name, '100 appends x 1 entry', hundredAppends));
  codecResults.push(benchCodec(name, '1 append x 100 entries', oneAppend));
}
const throughputResults = [await throughput(1, seconds), await throughput(64, seconds)];
const rtt = await roundTrips(5000);

if (json) {
  const rttSummary = { medianMicros: median(rtt), p99Micros: percentile(rtt, 0.99) };
  console.log(
    JSON.stringify({ codec: codecResults, throughput: throughputResults, roundTrip: rttSummary }, null, 2),
  );
} else {
  console.log('codec (µs per batch, median of 15)');
  console.log('  codec                    batch                     bytes   encode   decode    total');
  for (const r of codecResults) {
    const total = r.encodeMicros + r.decodeMicros;
    console.log(
      `  ${r.codec.padEnd(24)} ${r.batch.padEnd(24)} ${String(r.bytes).padStart(6)} ${r.encodeMicros.toFixed(1).padStart(8)} ${r.decodeMicros.toFixed(1).padStart(8)} ${total.toFixed(1).padStart(8)}`,
    );
  }
  console.log(`\nloopback throughput, 256-byte entries (${seconds} s each)`);
  console.log('  entries/append   messages/s     entries/s     MB/s  dropped');
  for (const r of throughputResults) {
    console.log(
      `  ${String(r.entriesPerAppend).padStart(14)} ${r.messagesPerSecond.toFixed(0).padStart(12)} ${r.entriesPerSecond.toFixed(0).padStart(13)} ${r.megabytesPerSecond.toFixed(1).padStart(8)} ${String(r.dropped).padStart(8)}`,
    );
  }
  console.log(`\nloopback round trip (heartbeat → response), ${rtt.length} pings`);
  console.log(`  median ${median(rtt).toFixed(0)} µs   p99 ${percentile(rtt, 0.99).toFixed(0)} µs`);
}
