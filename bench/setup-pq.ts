/**
 * Row `setup-pq`: connection setup (`ssh -J jump target true`) with OpenSSH 10.0's client, the jump
 * leg's key exchange forced to mlkem768x25519-sha256, then to curve25519-sha256, against holdfast and
 * against OpenSSH 10.0's sshd as the jump host (same config as the lab's sshd), runs alternating.
 * Needs the OpenSSH 10 that test/fetch-openssh10.sh unpacks; without it the row says so and is left out.
 */
import fs from 'node:fs';
import path from 'node:path';
import { spawn } from 'node:child_process';
import type { Lab } from './lab.js';
import type { Row } from './bench.js';
import { pairRatios, stat } from './stats.js';
import { startSshd } from '../test/helpers/sshd.js';
import { openssh10 } from '../test/helpers/openssh10.js';

const KEX = ['mlkem768x25519-sha256', 'curve25519-sha256'] as const;

function timed(ssh: string, args: string[]): Promise<number> {
  return new Promise((resolve, reject) => {
    const t0 = performance.now();
    const p = spawn(ssh, args, { stdio: ['ignore', 'ignore', 'pipe'] });
    let err = '';
    p.stderr.on('data', (d) => (err += d));
    const timer = setTimeout(() => p.kill('SIGKILL'), 60_000);
    p.once('close', (code) => {
      clearTimeout(timer);
      if (code === 0) resolve(performance.now() - t0);
      else reject(new Error(`setup-pq: ssh exit ${code}: ${err.trim()}`));
    });
  });
}

export async function setupPqRows(lab: Lab, runs: number, log: (s: string) => void): Promise<Row[]> {
  const o = openssh10();
  if (!o) {
    log('  setup-pq: skipped (no OpenSSH 10: run test/fetch-openssh10.sh)');
    return [];
  }
  const auth = path.join(lab.dir, 'authorized_keys');
  const sshd10 = await startSshd(lab.dir, auth, [...o.sshdExtra, 'AllowTcpForwarding yes', 'MaxStartups 10000:30:10000'], { binary: o.sshd });
  try {
    // The jump host is "localhost" (the key exchange is forced for it), the target 127.0.0.1 (its default).
    const cfg = (kex: string) => {
      const file = path.join(lab.dir, `ssh_config_pq_${kex}`);
      fs.writeFileSync(file, `Host localhost\n  KexAlgorithms ${kex}\n  AddressFamily inet\n${fs.readFileSync(lab.sshConfig, 'utf8')}`);
      return file;
    };
    const files = Object.fromEntries(KEX.map((k) => [k, cfg(k)])) as Record<(typeof KEX)[number], string>;
    const args = (kex: (typeof KEX)[number], jump: string) => ['-F', files[kex], '-J', jump, '-p', String(lab.target.port), 'root@127.0.0.1', 'true'];
    const hfJump = () => `bench@localhost:${lab.jumps.holdfast.port}`;
    const sdJump = `root@localhost:${sshd10.port}`;
    const r: Record<string, number[]> = {};
    for (const k of KEX) for (const j of ['hf', 'sd']) r[`${j}-${k}`] = [];
    for (let i = 0; i < runs; i++) {
      for (const k of i % 2 ? [...KEX].reverse() : KEX) {
        const order: Array<'hf' | 'sd'> = i % 2 ? ['sd', 'hf'] : ['hf', 'sd'];
        for (const j of order) r[`${j}-${k}`]!.push(await timed(o.ssh, args(k, j === 'hf' ? hfJump() : sdJump)));
      }
    }
    const [pq, classic] = KEX;
    const f = (xs: number[]) => stat(xs).median.toFixed(1);
    log(`  setup-pq: holdfast ${f(r[`hf-${pq}`]!)} ms (${classic}: ${f(r[`hf-${classic}`]!)}), OpenSSH 10 sshd ${f(r[`sd-${pq}`]!)} ms (${classic}: ${f(r[`sd-${classic}`]!)})`);
    const ratio = stat(pairRatios(r[`hf-${pq}`]!, r[`sd-${pq}`]!));
    return [
      {
        id: 'setup-pq',
        figure: `connection setup, jump leg ${pq}: OpenSSH 10.0 ssh -J jump target true (${runs} runs; sshd: OpenSSH 10.0)`,
        unit: 'ms',
        better: 'lower',
        holdfast: stat(r[`hf-${pq}`]!),
        sshd: stat(r[`sd-${pq}`]!),
        ratio,
        target: '≤ 0.8 × sshd',
        met: ratio.median <= 0.8,
        note: `same runs with ${classic}: holdfast ${f(r[`hf-${classic}`]!)} ms, sshd ${f(r[`sd-${classic}`]!)} ms (the post-quantum share costs holdfast ${(stat(r[`hf-${pq}`]!).median - stat(r[`hf-${classic}`]!).median).toFixed(1)} ms a login)`,
      },
    ];
  } finally {
    await sshd10.stop();
  }
}
