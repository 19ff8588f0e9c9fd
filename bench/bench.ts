/**
 * The five rows of the comparison. Each row alternates holdfast and sshd run by run; the direct
 * path (no jump host) is the reference for what this client and target can do at all.
 */
import path from 'node:path';
import type { Lab } from './lab.js';
import { bulk, idle, latency, setup, sha256, writeRandomFile, type IdleResult, type Path } from './measure.js';
import { startDelayRelay } from './delay-relay.js';
import { pairRatios, percentile, stat, type Stat } from './stats.js';
import { setupPqRows } from './setup-pq.js';
import { connectRows } from './connect.js';
import { floodRows } from './flood.js';

export interface BenchConfig {
  readonly rows: ReadonlySet<string>;
  readonly bulkBytes: number;
  readonly bulkRuns: number;
  readonly setupRuns: number;
  readonly latencyRounds: number;
  readonly latencyRuns: number;
  readonly floodRuns: number;
  readonly idleN: readonly number[];
  readonly idleWindowS: number;
  readonly idleSettleS: number;
  readonly lfnBytes: number;
  readonly lfnRuns: number;
  readonly lfnOneWayDelayMs: number;
}

export interface Row {
  readonly id: string;
  readonly figure: string;
  readonly unit: string;
  /** Higher is better (MiB/s) or lower is better (ms, KiB, %). */
  readonly better: 'higher' | 'lower';
  readonly holdfast: Stat;
  readonly sshd?: Stat | undefined;
  readonly direct?: Stat | undefined;
  /** holdfast / sshd, pair by pair. */
  readonly ratio?: Stat | undefined;
  readonly target: string;
  readonly met: boolean;
  readonly note?: string | undefined;
}

export interface BenchResult {
  readonly rows: Row[];
  readonly idle: Array<{ jump: string; n: number } & IdleResult>;
  /** Sessions each jump host actually carried (from its own logs / process table), for the checks. */
  readonly carried: { holdfastChannels: number; sshdLogins: number };
}

const MiB = 1024 * 1024;

/**
 * Rows run in the order of the issue's list, except the idle sessions, which run last: thousands of
 * sessions coming and going leave holdfast's heap (and the machine) in a state the other rows should
 * not inherit. The table keeps the list's order.
 */
export async function runBench(lab: Lab, cfg: BenchConfig, log: (s: string) => void): Promise<BenchResult> {
  const rows: Row[] = [];
  const idleResults: BenchResult['idle'] = [];
  const hf: Path = { kind: 'jump', jump: lab.jumps.holdfast };
  const sd: Path = { kind: 'jump', jump: lab.jumps.sshd };
  const direct: Path = { kind: 'direct' };

  if (cfg.rows.has('bulk')) {
    const file = path.join(lab.dir, 'bulk.bin');
    writeRandomFile(file, cfg.bulkBytes);
    const hash = await sha256(file);
    for (const dir of ['up', 'down'] as const) {
      const r: Record<'hf' | 'sd' | 'direct', number[]> = { hf: [], sd: [], direct: [] };
      for (let i = 0; i < cfg.bulkRuns; i++) {
        // Alternate the order too, so whichever runs first does not always get a cold cache.
        const order: Array<['hf' | 'sd' | 'direct', Path]> = i % 2 ? [['sd', sd], ['hf', hf], ['direct', direct]] : [['hf', hf], ['sd', sd], ['direct', direct]];
        for (const [k, p] of order) r[k].push(cfg.bulkBytes / MiB / (await bulk(lab, p, dir, file, hash)));
      }
      log(`  bulk ${dir}: holdfast ${fmt(stat(r.hf).median)} MiB/s, sshd ${fmt(stat(r.sd).median)}, direct ${fmt(stat(r.direct).median)}`);
      const ratio = stat(pairRatios(r.hf, r.sd));
      const vsDirect = stat(r.hf).median / stat(r.direct).median;
      rows.push({
        id: `bulk-${dir}`,
        figure: `bulk ${dir === 'up' ? 'upload' : 'download'} ${cfg.bulkBytes / MiB} MiB (ssh -J, SHA-256 checked)`,
        unit: 'MiB/s',
        better: 'higher',
        holdfast: stat(r.hf),
        sshd: stat(r.sd),
        direct: stat(r.direct),
        ratio,
        target: '≥ 1.25 × sshd and ≥ 0.85 × direct',
        met: ratio.median >= 1.25 && vsDirect >= 0.85,
        note: `holdfast / direct = ${fmt(vsDirect, 2)}`,
      });
    }
  }

  if (cfg.rows.has('bulk')) {
    // Two transfers at once: one worker relays both on one core; `workers: 2` spreads them.
    const file = path.join(lab.dir, 'bulk.bin');
    const hash = await sha256(file);
    const pair = async (p: Path) => (2 * cfg.bulkBytes) / MiB / Math.max(...(await Promise.all([bulk(lab, p, 'up', file, hash), bulk(lab, p, 'up', file, hash)])));
    const one: number[] = [];
    const two: number[] = [];
    const sdPair: number[] = [];
    for (let i = 0; i < cfg.bulkRuns; i++) {
      one.push(await pair(hf));
      sdPair.push(await pair(sd));
    }
    await lab.restartHoldfast('workers: 2\n');
    for (let i = 0; i < cfg.bulkRuns; i++) {
      two.push(await pair(hf));
      sdPair.push(await pair(sd));
    }
    await lab.restartHoldfast();
    log(`  2 uploads at once: holdfast workers: 2 ${fmt(stat(two).median)} MiB/s, workers: 1 ${fmt(stat(one).median)}, sshd ${fmt(stat(sdPair).median)}`);
    rows.push({
      id: 'bulk-workers',
      figure: `2 uploads of ${cfg.bulkBytes / MiB} MiB at once, aggregate (holdfast with workers: 2)`,
      unit: 'MiB/s',
      better: 'higher',
      holdfast: stat(two),
      sshd: stat(sdPair),
      ratio: stat(two.map((v, i) => v / sdPair[cfg.bulkRuns + i]!)),
      target: '≥ 1.25 × sshd',
      met: stat(two).median >= 1.25 * stat(sdPair).median,
      note: `workers: 1 = ${fmt(stat(one).median)} MiB/s; workers: 2 / workers: 1 = ${fmt(stat(two).median / stat(one).median, 2)}`,
    });
  }

  if (cfg.rows.has('setup')) {
    // Plain keys (the target), then user certificates on both legs (reported: what verifying a
    // certificate costs each jump host).
    for (const cert of [false, true]) {
      const hfc: Path = { ...hf, cert } as Path;
      const sdc: Path = { ...sd, cert } as Path;
      const r = { hf: [] as number[], sd: [] as number[] };
      for (let i = 0; i < cfg.setupRuns; i++) {
        if (i % 2) {
          r.sd.push(await setup(lab, sdc));
          r.hf.push(await setup(lab, hfc));
        } else {
          r.hf.push(await setup(lab, hfc));
          r.sd.push(await setup(lab, sdc));
        }
      }
      const ratio = stat(pairRatios(r.hf, r.sd));
      log(`  setup${cert ? ' (certificates)' : ''}: holdfast ${fmt(stat(r.hf).median)} ms, sshd ${fmt(stat(r.sd).median)} ms`);
      rows.push({
        id: cert ? 'setup-cert' : 'setup',
        figure: cert
          ? `connection setup with an ed25519 user certificate (ed25519 CA) on both legs: ssh -J jump target true (${cfg.setupRuns} runs)`
          : `connection setup: ssh -J jump target true (${cfg.setupRuns} runs)`,
        unit: 'ms',
        better: 'lower',
        holdfast: stat(r.hf),
        sshd: stat(r.sd),
        ratio,
        target: cert ? '(reported)' : '≤ 0.8 × sshd',
        met: !cert && ratio.median <= 0.8,
      });
    }
  }

  if (cfg.rows.has('setup')) rows.push(...(await setupPqRows(lab, cfg.setupRuns, log)));

  if (cfg.rows.has('connect')) rows.push(...(await connectRows(lab, cfg.bulkBytes, cfg.bulkRuns, log)));

  if (cfg.rows.has('latency')) {
    const p50 = { hf: [] as number[], sd: [] as number[] };
    const p99 = { hf: [] as number[], sd: [] as number[] };
    for (let i = 0; i < cfg.latencyRuns; i++) {
      for (const [k, p] of (i % 2 ? [['sd', sd], ['hf', hf]] : [['hf', hf], ['sd', sd]]) as Array<['hf' | 'sd', Path]>) {
        const rtts = await latency(lab, p, cfg.latencyRounds);
        p50[k].push(percentile(rtts, 50));
        p99[k].push(percentile(rtts, 99));
      }
    }
    log(`  latency p50: holdfast ${fmt(stat(p50.hf).median, 3)} ms, sshd ${fmt(stat(p50.sd).median, 3)} ms`);
    const diff = stat(p50.hf).median - stat(p50.sd).median;
    rows.push({
      id: 'latency-p50',
      figure: `interactive latency p50: 1 byte echoed, ${cfg.latencyRounds} rounds`,
      unit: 'ms',
      better: 'lower',
      holdfast: stat(p50.hf),
      sshd: stat(p50.sd),
      ratio: stat(pairRatios(p50.hf, p50.sd)),
      target: '≤ sshd + 0.1 ms',
      met: diff <= 0.1,
      note: `holdfast − sshd = ${fmt(diff, 3)} ms`,
    });
    rows.push({
      id: 'latency-p99',
      figure: `interactive latency p99`,
      unit: 'ms',
      better: 'lower',
      holdfast: stat(p99.hf),
      sshd: stat(p99.sd),
      ratio: stat(pairRatios(p99.hf, p99.sd)),
      target: '(reported)',
      met: true,
    });
  }

  if (cfg.rows.has('flood')) rows.push(...(await floodRows(lab, { hf, sd }, cfg.latencyRounds, cfg.floodRuns, log)));

  if (cfg.rows.has('lfn')) {
    const file = path.join(lab.dir, 'lfn.bin');
    writeRandomFile(file, cfg.lfnBytes);
    const hash = await sha256(file);
    const relays = {
      hf: await startDelayRelay(lab.jumps.holdfast.port, cfg.lfnOneWayDelayMs),
      sd: await startDelayRelay(lab.jumps.sshd.port, cfg.lfnOneWayDelayMs),
      direct: await startDelayRelay(lab.target.port, cfg.lfnOneWayDelayMs),
    };
    try {
      const paths: Record<'hf' | 'sd' | 'gw' | 'direct', Path> = {
        hf: { kind: 'jump', jump: lab.jumps.holdfast, port: relays.hf.port },
        sd: { kind: 'jump', jump: lab.jumps.sshd, port: relays.sd.port },
        gw: { kind: 'gateway', port: relays.hf.port },
        direct: { kind: 'direct', port: relays.direct.port },
      };
      const r: Record<'hf' | 'sd' | 'gw' | 'direct', number[]> = { hf: [], sd: [], gw: [], direct: [] };
      for (let i = 0; i < cfg.lfnRuns; i++) {
        const order = (i % 2 ? ['sd', 'gw', 'hf', 'direct'] : ['hf', 'gw', 'sd', 'direct']) as Array<keyof typeof paths>;
        for (const k of order) r[k].push(cfg.lfnBytes / MiB / (await bulk(lab, paths[k], 'up', file, hash)));
      }
      const rtt = 2 * cfg.lfnOneWayDelayMs;
      log(`  ${rtt} ms RTT upload: holdfast -J ${fmt(stat(r.hf).median)} MiB/s, gateway ${fmt(stat(r.gw).median)}, sshd -J ${fmt(stat(r.sd).median)}, direct ${fmt(stat(r.direct).median)}`);
      const ratio = stat(pairRatios(r.gw, r.sd));
      rows.push({
        id: 'lfn-jump',
        figure: `${rtt} ms RTT upload ${cfg.lfnBytes / MiB} MiB, ssh -J (relay before the jump host)`,
        unit: 'MiB/s',
        better: 'higher',
        holdfast: stat(r.hf),
        sshd: stat(r.sd),
        direct: stat(r.direct),
        ratio: stat(pairRatios(r.hf, r.sd)),
        target: '(reported: the target sshd\'s own 2 MiB session window, end to end, bounds every -J path)',
        met: true,
      });
      rows.push({
        id: 'lfn-gateway',
        figure: `${rtt} ms RTT upload ${cfg.lfnBytes / MiB} MiB, holdfast gateway mode vs sshd -J`,
        unit: 'MiB/s',
        better: 'higher',
        holdfast: stat(r.gw),
        sshd: stat(r.sd),
        direct: stat(r.direct),
        ratio,
        target: '≥ 2 × sshd',
        met: ratio.median >= 2,
      });
    } finally {
      for (const rl of Object.values(relays)) await rl.close();
    }
  }

  if (cfg.rows.has('idle')) {
    for (const n of cfg.idleN) {
      const r: Record<'holdfast' | 'sshd', IdleResult> = {} as never;
      // A fresh holdfast for each N: its RSS before the sessions is a clean start, not a heap grown
      // by the rows before (sshd forks a fresh process per connection anyway).
      await lab.restartHoldfast();
      for (const j of ['holdfast', 'sshd'] as const) {
        r[j] = await idle(lab, lab.jumps[j], n, cfg.idleWindowS, log, cfg.idleSettleS);
        idleResults.push({ jump: j, n, ...r[j] });
        log(`  idle ${j} N=${n}: ${fmt(r[j].rssPerSessionKiB)} KiB/session, ${fmt(r[j].cpuPctOfCore, 3)} % of a core (per ${fmt(r[j].subS)} s: ${r[j].cpuSubPct.map((x) => fmt(x, 3)).join(', ')}; ${r[j].processes} processes)`);
      }
      const one = (x: number): Stat => ({ median: x, min: x, max: x, n: 1 });
      const biggest = n === Math.max(...cfg.idleN);
      rows.push({
        id: `idle-rss-${n}`,
        figure: `idle sessions, N = ${n}: resident memory per session`,
        unit: 'KiB',
        better: 'lower',
        holdfast: one(r.holdfast.rssPerSessionKiB),
        sshd: one(r.sshd.rssPerSessionKiB),
        ratio: one(r.holdfast.rssPerSessionKiB / r.sshd.rssPerSessionKiB),
        target: '≤ 64 KiB per session',
        met: r.holdfast.rssPerSessionKiB <= 64,
        note: `sshd: summed RSS of ${r.sshd.processes} processes`,
      });
      rows.push({
        id: `idle-cpu-${n}`,
        figure: `idle sessions, N = ${n}: CPU at idle (client keepalive on)`,
        unit: '% of one core',
        better: 'lower',
        holdfast: stat(r.holdfast.cpuSubPct),
        sshd: stat(r.sshd.cpuSubPct),
        target: biggest ? '< 1 % of one core' : '(reported)',
        met: stat(r.holdfast.cpuSubPct).median < 1,
        note: `median (range) of ${r.holdfast.cpuSubPct.length} windows of ${fmt(r.holdfast.subS)} s (one keepalive round each); mean over all ${cfg.idleWindowS} s: holdfast ${fmt(r.holdfast.cpuPctOfCore, 3)}, sshd ${fmt(r.sshd.cpuPctOfCore, 3)} (a window with one of V8's memory-reducer collections after the open burst reads 5-10 x the others)${r.holdfast.scrapeMs !== undefined ? `; GET /metrics with the ${n} sessions open: ${fmt(r.holdfast.scrapeMs)} ms (median of 5)` : ''}`,
      });
    }
  }

  const holdfastChannels = lab.holdfastEvents('channel-open');
  const sshdLogins = (lab.jumpSshd.log().match(/Accepted publickey for root/g) ?? []).length;
  const order = (id: string) => ['bulk', 'setup', 'connect', 'latency', 'flood', 'idle', 'lfn'].findIndex((p) => id.startsWith(p));
  rows.sort((a, b) => order(a.id) - order(b.id));
  return { rows, idle: idleResults, carried: { holdfastChannels, sshdLogins } };
}

export function fmt(x: number, digits = 1): string {
  return x.toFixed(digits);
}
