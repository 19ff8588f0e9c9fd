/**
 * The pre-identification flood row (issue 22, acceptance 4): another user's interactive latency
 * through the jump host while 8 connections stream bytes before an SSH identification line, each
 * reconnecting 100 ms after the jump host closes it. Figure: p99 during the flood / p99 alone, run
 * by run, for holdfast and for sshd as the jump host. The attackers are test/helpers/cr-streams.ts in
 * a process of their own, on the same cores (as an attacker on the same host would be).
 */
import { spawn } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Jump, Lab } from './lab.js';
import type { Row } from './bench.js';
import { latency, type Path } from './measure.js';
import { percentile, stat } from './stats.js';

const ATTACKERS = path.join(path.dirname(fileURLToPath(import.meta.url)), '..', 'test', 'helpers', 'cr-streams.js');
const STREAMS = 8;

/** What cr-streams prints: its connections, and the ms until each was closed (p50, max). */
interface FloodCounts {
  readonly connections: number;
  readonly p50Ms: number;
  readonly maxMs: number;
}

/** Starts the attackers against PORT; stop() ends them (SIGTERM: they print their counts and exit). */
function startFlood(port: number): { stop(): Promise<FloodCounts> } {
  const proc = spawn(process.execPath, [ATTACKERS, String(port), String(STREAMS), '120'], { stdio: ['ignore', 'pipe', 'inherit'] });
  let out = '';
  proc.stdout.on('data', (d) => (out += d));
  proc.on('error', () => {});
  // 'close', not 'exit': the counts line may still be in the pipe when the process has exited.
  const exited = new Promise<void>((r) => proc.once('close', () => r()));
  return {
    stop: async () => {
      proc.kill('SIGTERM');
      await exited;
      try {
        return JSON.parse(out) as FloodCounts;
      } catch {
        throw new Error(`the flood's attackers printed no counts: ${JSON.stringify(out)}`);
      }
    },
  };
}

/** After a flood: until the jump host is back to the processes it had before (sshd's children of the attackers' connections exit), at most 20 s. */
async function settled(jump: Jump, procs: number): Promise<void> {
  const until = Date.now() + 20_000;
  while (jump.pids().length > procs && Date.now() < until) await new Promise((r) => setTimeout(r, 100));
}

export async function floodRows(lab: Lab, paths: Record<'hf' | 'sd', Path>, rounds: number, runs: number, log: (s: string) => void): Promise<Row[]> {
  const ratio = { hf: [] as number[], sd: [] as number[] };
  const during = { hf: [] as number[], sd: [] as number[] };
  const closedMs = { hf: [] as number[], sd: [] as number[] };
  for (let i = 0; i < runs; i++) {
    for (const k of (i % 2 ? ['sd', 'hf'] : ['hf', 'sd']) as Array<'hf' | 'sd'>) {
      const jump = k === 'hf' ? lab.jumps.holdfast : lab.jumps.sshd;
      const procs = jump.pids().length;
      await latency(lab, paths[k], Math.min(rounds, 100)); // warm-up, not counted
      const alone = percentile(await latency(lab, paths[k], rounds), 99);
      const flood = startFlood(jump.port);
      await new Promise((r) => setTimeout(r, 1000)); // the flood in its steady state, not its first burst
      let beside: number;
      let got: FloodCounts;
      try {
        beside = percentile(await latency(lab, paths[k], rounds), 99);
      } finally {
        got = await flood.stop();
      }
      await settled(jump, procs);
      closedMs[k].push(got.p50Ms);
      during[k].push(beside);
      ratio[k].push(beside / alone);
      log(`  flood ${k === 'hf' ? 'holdfast' : 'sshd'}: latency p99 ${alone.toFixed(2)} ms alone, ${beside.toFixed(2)} ms beside the flood (${(beside / alone).toFixed(2)} x; ${got.connections} attacker connections, each closed after p50 ${got.p50Ms} ms)`);
    }
  }
  return [
    {
      id: 'latency-flood',
      figure: `interactive latency p99 beside ${STREAMS} streams of bytes before the identification line, ÷ p99 alone`,
      unit: '×',
      better: 'lower',
      holdfast: stat(ratio.hf),
      sshd: stat(ratio.sd),
      target: '≤ 2 × alone',
      met: stat(ratio.hf).median <= 2,
      note: `p99 beside the flood: holdfast ${stat(during.hf).median.toFixed(2)} ms, sshd ${stat(during.sd).median.toFixed(2)} ms; an attacker's connection closed after p50 ${stat(closedMs.hf).median} ms (holdfast), ${stat(closedMs.sd).median} ms (sshd)`,
    },
  ];
}
