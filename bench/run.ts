/**
 * `npm run bench`: holdfast against OpenSSH's sshd as the jump host, side by side, on this machine.
 * Same target sshd, same client, same cipher; runs alternate (holdfast, sshd, holdfast, ...) so
 * drift hits both. Figures are medians with min and max; ratios are holdfast / sshd, pair by pair.
 *
 * Options (environment): BENCH_QUICK=1 (tiny sizes: checks the benchmark, measures nothing),
 * BENCH_ROWS=bulk,setup,connect,latency,flood,idle,lfn (a subset), BENCH_IDLE_N=1000,5000, BENCH_IDLE_WINDOW_S=120 (split in windows of 30 s, the lab's keepalive interval).
 */
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { startLab, machine, type Lab } from './lab.js';
import { runBench, type BenchConfig } from './bench.js';
import { toMarkdown, withTable } from './report.js';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');

function config(): BenchConfig {
  const quick = process.env.BENCH_QUICK === '1';
  const rows = (process.env.BENCH_ROWS ?? 'bulk,setup,connect,latency,flood,idle,lfn').split(',').map((s) => s.trim());
  const idleN = (process.env.BENCH_IDLE_N ?? (quick ? '5' : '1000,5000')).split(',').map(Number);
  return {
    rows: new Set(rows),
    bulkBytes: quick ? 1024 * 1024 : 256 * 1024 * 1024,
    bulkRuns: quick ? 1 : 5,
    setupRuns: quick ? 2 : 20,
    latencyRounds: quick ? 20 : 1000,
    latencyRuns: quick ? 1 : 3,
    floodRuns: quick ? 1 : 5,
    idleN,
    idleWindowS: Number(process.env.BENCH_IDLE_WINDOW_S ?? (quick ? 1 : 120)),
    idleSettleS: quick ? 0 : 45,
    lfnBytes: quick ? 1024 * 1024 : 128 * 1024 * 1024,
    lfnRuns: quick ? 1 : 3,
    lfnOneWayDelayMs: 25,
  };
}

async function main(): Promise<number> {
  for (const bin of ['/usr/sbin/sshd', 'ssh', 'sha256sum', 'bash']) {
    const found = bin.startsWith('/') ? fs.existsSync(bin) : process.env.PATH?.split(':').some((d) => fs.existsSync(path.join(d, bin)));
    if (!found) {
      process.stderr.write(`bench: needs ${bin} (${bin.includes('sshd') ? "Debian package openssh-server: apt-get install openssh-server" : 'install it'}); nothing was installed\n`);
      return 1;
    }
  }
  const cfg = config();
  const log = (s: string) => process.stderr.write(`${s}\n`);
  log(`bench: ${[...cfg.rows].join(', ')}; bulk ${cfg.bulkBytes / 1048576} MiB x ${cfg.bulkRuns}, setup x ${cfg.setupRuns}, latency ${cfg.latencyRounds} rounds x ${cfg.latencyRuns}, flood x ${cfg.floodRuns}, idle N=${cfg.idleN.join('/')} over ${cfg.idleWindowS} s, long fat link ${cfg.lfnBytes / 1048576} MiB x ${cfg.lfnRuns}`);
  let lab: Lab | undefined;
  try {
    lab = await startLab();
    const result = await runBench(lab, cfg, log);
    const report = { date: new Date().toISOString(), machine: machine(), config: { ...cfg, rows: [...cfg.rows] }, ...result };
    const md = toMarkdown(report);
    process.stdout.write(`${md}\n`);
    if (process.env.BENCH_QUICK !== '1') {
      const dir = path.join(ROOT, 'bench', 'results');
      fs.mkdirSync(dir, { recursive: true });
      fs.writeFileSync(path.join(dir, 'latest.md'), `${md}\n`);
      fs.writeFileSync(path.join(dir, 'latest.json'), `${JSON.stringify(report, null, 2)}\n`);
      // docs/performance.md's table is the whole bench: a run of some rows (or other sizes) leaves it alone.
      const whole = ['BENCH_ROWS', 'BENCH_IDLE_N', 'BENCH_IDLE_WINDOW_S'].every((k) => process.env[k] === undefined);
      if (whole) {
        const readme = path.join(ROOT, 'docs', 'performance.md');
        fs.writeFileSync(readme, withTable(fs.readFileSync(readme, 'utf8'), md));
      }
      log(`bench: written to bench/results/latest.md and latest.json${whole ? ', and into docs/performance.md' : ' (not docs/performance.md: BENCH_ROWS, BENCH_IDLE_N or BENCH_IDLE_WINDOW_S set)'}`);
    }
    return 0;
  } finally {
    await lab?.stop();
  }
}

main().then(
  (code) => process.exit(code),
  (err: unknown) => {
    process.stderr.write(`bench: failed: ${err instanceof Error ? err.message : String(err)}\n`);
    process.exit(1);
  },
);
