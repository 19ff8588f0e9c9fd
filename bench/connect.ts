/**
 * Rows `connect-up`, `connect-down` and `connect-resume`: the resumable client leg (`holdfast
 * connect` as ProxyCommand) beside plain `ssh -J` through the same holdfast, in the same runs, and
 * how long a resume takes: from the transport's loss (its ssh SIGKILLed mid-download) to the next
 * byte at the user's ssh, with default settings. holdfast runs `workers: 1` for these rows (a resume
 * must reach the worker that holds the session).
 */
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import type { Lab } from './lab.js';
import type { Row } from './bench.js';
import { bulk, connectProxy, sha256, writeRandomFile, type Path } from './measure.js';
import { pairRatios, stat } from './stats.js';
import { descendants } from '../test/helpers/sshd.js';

const MiB = 1024 * 1024;

/**
 * One resume: ms from the SIGKILL of the transport to the helper's "resumed" (its WELCOME: the
 * replay and the next bytes follow at once). Timed by the helper itself (stderr), since bytes
 * already in the pipes when the transport died arrive after the kill too.
 */
function resumeOnce(lab: Lab, file: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const p = spawn('ssh', ['-F', lab.sshConfig, '-o', connectProxy(lab), '-p', String(lab.target.port), 'root@127.0.0.1', `cat ${file}`], { stdio: ['ignore', 'pipe', 'pipe'] });
    let bytes = 0;
    let killed = false;
    let err = '';
    let result = -1;
    const timer = setTimeout(() => p.kill('SIGKILL'), 60_000);
    p.stderr.on('data', (d) => {
      err += d;
      const m = /resumed after ([\d.]+) s/.exec(err);
      if (m && result < 0) {
        result = Number(m[1]) * 1000;
        p.kill('SIGKILL');
      }
    });
    p.stdout.on('data', (d: Buffer) => {
      bytes += d.length;
      if (killed || bytes < 4 * MiB) return;
      const t = descendants(p.pid!, 100).find((pid) => {
        try {
          return fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8').includes('holdfast-resume');
        } catch {
          return false;
        }
      });
      if (!t) return;
      killed = true;
      process.kill(t, 'SIGKILL');
    });
    p.once('close', () => {
      clearTimeout(timer);
      if (result >= 0) resolve(result);
      else reject(new Error(`connect-resume: no resume (${err.trim()})`));
    });
  });
}

export async function connectRows(lab: Lab, bulkBytes: number, runs: number, log: (s: string) => void): Promise<Row[]> {
  await lab.restartHoldfast('workers: 1\n');
  const rows: Row[] = [];
  try {
    const file = path.join(lab.dir, 'connect.bin');
    writeRandomFile(file, bulkBytes);
    const hash = await sha256(file);
    const con: Path = { kind: 'connect' };
    const jump: Path = { kind: 'jump', jump: lab.jumps.holdfast };
    for (const dir of ['up', 'down'] as const) {
      const r = { con: [] as number[], jump: [] as number[] };
      for (let i = 0; i < runs; i++) {
        const order: Array<['con' | 'jump', Path]> = i % 2 ? [['jump', jump], ['con', con]] : [['con', con], ['jump', jump]];
        for (const [k, p] of order) r[k].push(bulkBytes / MiB / (await bulk(lab, p, dir, file, hash)));
      }
      const ratio = stat(pairRatios(r.con, r.jump));
      log(`  connect ${dir}: holdfast connect ${stat(r.con).median.toFixed(1)} MiB/s, ssh -J ${stat(r.jump).median.toFixed(1)} MiB/s`);
      rows.push({
        id: `connect-${dir}`,
        figure: `bulk ${dir === 'up' ? 'upload' : 'download'} ${bulkBytes / MiB} MiB through holdfast connect (ProxyCommand); "sshd" column: plain ssh -J through the same holdfast`,
        unit: 'MiB/s',
        better: 'higher',
        holdfast: stat(r.con),
        sshd: stat(r.jump),
        ratio,
        target: '≥ 0.9 × ssh -J',
        met: ratio.median >= 0.9,
      });
    }
    // Its own file, big enough to be mid-download at the kill whatever bulkBytes is.
    const resumeFile = path.join(lab.dir, 'connect-resume.bin');
    writeRandomFile(resumeFile, 32 * MiB);
    const gaps: number[] = [];
    for (let i = 0; i < Math.max(3, runs * 2); i++) gaps.push(await resumeOnce(lab, resumeFile));
    log(`  connect resume: ${stat(gaps).median.toFixed(0)} ms from the transport's loss to the resume`);
    rows.push({
      id: 'connect-resume',
      figure: "holdfast connect: from the transport's loss (its ssh SIGKILLed mid-download) to the resume (the helper's own timing; the replay follows), default settings: the first reconnect 125-250 ms after the loss, then a full ssh login",
      unit: 'ms',
      better: 'lower',
      holdfast: stat(gaps),
      target: '(reported)',
      met: true,
    });
  } finally {
    await lab.restartHoldfast();
  }
  return rows;
}
