/**
 * `npm run bench:growth`: loads each system in turn and reports; see bench/growth.ts for
 * what it measures.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { cpus, release, totalmem } from 'node:os';
import { join } from 'node:path';
import { buildNeutral } from '../vs-etcd/clients.js';
import { etcdVersion } from '../vs-etcd/main.js';
import { log, run, type System } from '../vs-etcd/processes.js';
import { writeResults } from '../vs-etcd/report.js';
import { parseArgs } from './args.js';
import { loadSystem, type SystemResult } from './load.js';
import { growthJson, growthMarkdown } from './report.js';

function heading(): string {
  const cpuList = cpus();
  const date = new Date().toISOString().replace(/\.\d+Z$/, 'Z');
  const machine = `${cpuList.length} x ${cpuList[0]?.model.trim() ?? 'unknown CPU'}, ${Math.round(totalmem() / 2 ** 30)} GiB, Linux ${release()}`;
  return `### bench:growth, ${date}\n\n${machine}; etcd ${etcdVersion()}, Node ${process.versions.node}.`;
}

export async function main(): Promise<void> {
  const args = parseArgs(process.argv.slice(2));
  log('building etcd-load (bench/etcd-load/build.sh)...');
  const binary = await buildNeutral();
  const root = await mkdtemp(join(args.dir, 'flotilla-growth-'));
  run.root = root;
  log(`data under ${root}`);
  const systems: Partial<Record<System, SystemResult>> = {};
  for (const system of args.systems) {
    log(`loading ${args.keys} keys of ${args.valueSize} B into a 3-node ${system}...`);
    systems[system] = await loadSystem(system, binary, args, root);
    // One system's data never shares the disk with the next one's load.
    await rm(join(root, system), { recursive: true, force: true });
  }
  const json = growthJson(args, systems);
  const section = growthMarkdown(args, json, heading());
  if (args.write) log(`wrote ${await writeResults(section, 'growth')}`);
  console.log(section);
  if (args.json) console.log(JSON.stringify(json));
}
