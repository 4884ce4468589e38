/**
 * The machine's physical limits, measured in the same run: the rate of 4 KiB write +
 * fdatasync on the data disk, and the round trip of a 1-byte ping-pong between two
 * processes over loopback TCP.
 */
import { execFileSync, spawn } from 'node:child_process';
import { closeSync, fdatasyncSync, openSync, writeSync } from 'node:fs';
import { connect as tcpConnect } from 'node:net';
import { join } from 'node:path';
import { track } from './processes.js';

export interface Limits {
  fdatasync_per_s: number;
  fdatasync_ms: number;
  tcp_round_trips_per_s: number;
  tcp_rtt_us: number;
  tcp_rtt_p99_us: number;
  disk: string;
}

/** 4 KiB write + fdatasync in a loop for `seconds`, into a preallocated file. */
function measureFdatasync(directory: string, seconds: number): { perSecond: number; ms: number } {
  const path = join(directory, 'fdatasync.probe');
  const fd = openSync(path, 'w+');
  const block = Buffer.alloc(4096, 0xab);
  const fileBytes = 16 * 1024 * 1024;
  try {
    const zeros = Buffer.alloc(1024 * 1024);
    for (let at = 0; at < fileBytes; at += zeros.length) writeSync(fd, zeros, 0, zeros.length, at);
    fdatasyncSync(fd);
    let writes = 0;
    const start = performance.now();
    const end = start + seconds * 1000;
    while (performance.now() < end) {
      writeSync(fd, block, 0, block.length, (writes * block.length) % fileBytes);
      fdatasyncSync(fd);
      writes++;
    }
    const elapsed = (performance.now() - start) / 1000;
    return { perSecond: writes / elapsed, ms: (elapsed * 1000) / writes };
  } finally {
    closeSync(fd);
  }
}

/** Ping-pong of one byte with an echo server in another process, for `seconds`. */
async function measureLoopback(
  seconds: number,
): Promise<{ perSecond: number; meanUs: number; p99Us: number }> {
  const server = track(
    spawn(
      process.execPath,
      [
        '-e',
        "const s=require('net').createServer(c=>{c.setNoDelay(true);c.on('data',d=>c.write(d))});" +
          "s.listen(0,'127.0.0.1',()=>console.log(s.address().port))",
      ],
      { stdio: ['ignore', 'pipe', 'inherit'] },
    ),
  );
  try {
    const port = await new Promise<number>((resolve, reject) => {
      server.stdout?.once('data', (d: Buffer) => resolve(Number(d.toString().trim())));
      server.once('exit', () => reject(new Error('the echo server exited')));
    });
    const socket = tcpConnect({ host: '127.0.0.1', port, noDelay: true });
    await new Promise<void>((resolve, reject) => {
      socket.once('connect', resolve);
      socket.once('error', reject);
    });
    const samples: number[] = [];
    const start = performance.now();
    const end = start + seconds * 1000;
    const ping = Buffer.from([1]);
    await new Promise<void>((resolve) => {
      let sent = performance.now();
      socket.on('data', () => {
        const now = performance.now();
        samples.push((now - sent) * 1000);
        if (now >= end) {
          resolve();
          return;
        }
        sent = performance.now();
        socket.write(ping);
      });
      socket.write(ping);
    });
    const elapsed = (performance.now() - start) / 1000;
    socket.destroy();
    samples.sort((a, b) => a - b);
    return {
      perSecond: samples.length / elapsed,
      meanUs: samples.reduce((a, b) => a + b, 0) / samples.length,
      p99Us: samples[Math.floor(samples.length * 0.99)] ?? 0,
    };
  } finally {
    server.kill('SIGKILL');
  }
}

function diskOf(directory: string): string {
  try {
    const line = execFileSync('df', ['-PT', directory], { encoding: 'utf8' }).trim().split('\n')[1] ?? '';
    const [device, type] = line.split(/\s+/);
    return `${device ?? '?'} (${type ?? '?'})`;
  } catch {
    return 'unknown';
  }
}

/** Measures the limits, `seconds` each, on the disk holding `directory`. */
export async function measureLimits(directory: string, seconds: number): Promise<Limits> {
  const sync = measureFdatasync(directory, seconds);
  const loop = await measureLoopback(seconds);
  return {
    fdatasync_per_s: Math.round(sync.perSecond),
    fdatasync_ms: Math.round(sync.ms * 1000) / 1000,
    tcp_round_trips_per_s: Math.round(loop.perSecond),
    tcp_rtt_us: Math.round(loop.meanUs * 10) / 10,
    tcp_rtt_p99_us: Math.round(loop.p99Us * 10) / 10,
    disk: diskOf(directory),
  };
}
