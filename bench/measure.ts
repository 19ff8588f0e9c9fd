/**
 * One measurement each: the OpenSSH client through a jump host (or straight to the target, or
 * through holdfast in gateway mode). Bulk data never passes through this Node process: the shell
 * connects ssh to the file and to sha256sum, so the bench does not compete with what it measures.
 * Every transfer is checked by SHA-256; a mismatch throws.
 */
import fs from 'node:fs';
import { execFileSync, spawn } from 'node:child_process';
import ssh2 from 'ssh2';
import type { Jump, Lab } from './lab.js';
import { BIN } from '../test/helpers/holdfast.js';

/** How the client reaches the target. `port` overrides the jump's (or holdfast's) port: a relay. */
export type Path =
  | { readonly kind: 'direct'; readonly port?: number }
  | { readonly kind: 'jump'; readonly jump: Jump; readonly port?: number; readonly cert?: boolean }
  | { readonly kind: 'gateway'; readonly port?: number }
  /** ssh with ProxyCommand `holdfast connect` (the resumable client leg) through holdfast. */
  | { readonly kind: 'connect' };

export function pathName(p: Path): string {
  return p.kind === 'jump' ? p.jump.name : p.kind === 'gateway' ? 'holdfast (gateway mode)' : p.kind === 'connect' ? 'holdfast connect' : 'direct (no jump host)';
}

/** A jump host's login name: holdfast's authorized_keys are per user; sshd logs in a system user. */
function jumpUser(j: Jump): string {
  return j.name === 'holdfast' ? 'bench' : 'root';
}

export function sshArgs(lab: Lab, p: Path, command: string): string[] {
  const cfg = ['-F', p.kind === 'jump' && p.cert ? lab.sshConfigCert : lab.sshConfig];
  if (p.kind === 'gateway') return [...cfg, '-p', String(p.port ?? lab.jumps.holdfast.port), `bench+127.0.0.1+${lab.target.port}@127.0.0.1`, command];
  const target = ['-p', String(p.kind === 'direct' ? (p.port ?? lab.target.port) : lab.target.port), 'root@127.0.0.1', command];
  if (p.kind === 'direct') return [...cfg, ...target];
  if (p.kind === 'connect') return [...cfg, '-o', connectProxy(lab), ...target];
  return [...cfg, '-J', `${jumpUser(p.jump)}@127.0.0.1:${p.port ?? p.jump.port}`, ...target];
}

/** ProxyCommand=holdfast connect ... (this checkout's bin, the lab's ssh_config). */
export function connectProxy(lab: Lab): string {
  return `ProxyCommand=${process.execPath} ${BIN} connect -F ${lab.sshConfig} bench@127.0.0.1:${lab.jumps.holdfast.port} %h %p`;
}

const q = (s: string) => `'${s.replace(/'/g, `'\\''`)}'`;

function sh(script: string, timeoutMs: number): Promise<{ code: number | null; stdout: string; stderr: string; ms: number }> {
  return new Promise((resolve) => {
    const t0 = performance.now();
    const proc = spawn('bash', ['-c', script], { stdio: ['ignore', 'pipe', 'pipe'], detached: true });
    let stdout = '';
    let stderr = '';
    proc.stdout.on('data', (d) => (stdout += d));
    proc.stderr.on('data', (d) => (stderr += d));
    const timer = setTimeout(() => {
      try {
        process.kill(-proc.pid!, 'SIGKILL');
      } catch {
        /* gone */
      }
    }, timeoutMs);
    proc.once('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr, ms: performance.now() - t0 });
    });
  });
}

export function writeRandomFile(file: string, bytes: number): void {
  const fd = fs.openSync(file, 'w');
  const chunk = Buffer.alloc(1024 * 1024);
  for (let left = bytes; left > 0; left -= chunk.length) {
    // Fresh random bytes per MiB so nothing compresses or dedupes.
    for (let i = 0; i < chunk.length; i += 65536) chunk.set(cryptoRandom(65536), i);
    fs.writeSync(fd, chunk, 0, Math.min(chunk.length, left));
  }
  fs.closeSync(fd);
}

function cryptoRandom(n: number): Buffer {
  return Buffer.from(globalThis.crypto.getRandomValues(new Uint8Array(n)));
}

export function sha256(file: string): Promise<string> {
  return sh(`sha256sum ${q(file)}`, 120_000).then((r) => r.stdout.split(' ')[0]!);
}

/** Seconds to move `file` up (client -> target, `sha256sum` there) or down (`cat` there). */
export async function bulk(lab: Lab, p: Path, dir: 'up' | 'down', file: string, hash: string, timeoutMs = 300_000): Promise<number> {
  const args = (cmd: string) => sshArgs(lab, p, cmd).map(q).join(' ');
  const script = dir === 'up' ? `ssh ${args('sha256sum')} < ${q(file)}` : `ssh ${args(`cat ${q(file)}`)} | sha256sum`;
  const r = await sh(script, timeoutMs);
  const got = r.stdout.split(' ')[0];
  if (r.code !== 0 || got !== hash) throw new Error(`${pathName(p)} ${dir}: exit ${r.code}, sha256 ${got ?? '-'} != ${hash}: ${r.stderr.trim()}`);
  return r.ms / 1000;
}

/** Milliseconds for `ssh -J jump target true`: handshakes, two logins, one command. */
export async function setup(lab: Lab, p: Path): Promise<number> {
  const r = await sh(`ssh ${sshArgs(lab, p, 'true').map(q).join(' ')}`, 60_000);
  if (r.code !== 0) throw new Error(`${pathName(p)} setup: exit ${r.code}: ${r.stderr.trim()}`);
  return r.ms;
}

/** Round trips of one byte echoed by `cat` on the target, in ms (after one warm-up round). */
export function latency(lab: Lab, p: Path, rounds: number): Promise<number[]> {
  return new Promise((resolve, reject) => {
    const proc = spawn('ssh', sshArgs(lab, p, 'cat'), { stdio: ['pipe', 'pipe', 'pipe'] });
    const out: number[] = [];
    let stderr = '';
    let sentAt = 0;
    let i = -1;
    const timer = setTimeout(() => {
      proc.kill('SIGKILL');
      reject(new Error(`${pathName(p)} latency: no answer after ${out.length} rounds: ${stderr}`));
    }, 60_000 + rounds * 50);
    const send = () => {
      sentAt = performance.now();
      proc.stdin.write('x');
    };
    proc.stderr.on('data', (d) => (stderr += d));
    proc.stdout.on('data', (d: Buffer) => {
      for (let k = 0; k < d.length; k++) {
        if (i >= 0) out.push(performance.now() - sentAt);
        i++;
        if (i < rounds) send();
        else {
          clearTimeout(timer);
          proc.stdin.end();
        }
      }
    });
    proc.once('close', () => {
      clearTimeout(timer);
      if (out.length === rounds) resolve(out);
      else reject(new Error(`${pathName(p)} latency: ${out.length}/${rounds} rounds, ssh exited: ${stderr.trim()}`));
    });
    send();
  });
}

export interface IdleResult {
  readonly sessions: number;
  readonly rssBeforeKiB: number;
  readonly rssWithKiB: number;
  readonly rssPerSessionKiB: number;
  /** CPU time of the jump host over the whole idle window, as % of one core. */
  readonly cpuPctOfCore: number;
  /**
   * The same, per sub-window of `subS` (the lab's keepalive interval, so each holds one round of
   * probes): a one-off garbage collection shows as one high sub-window instead of moving the whole.
   */
  readonly cpuSubPct: readonly number[];
  readonly windowS: number;
  readonly subS: number;
  readonly processes: number;
  readonly openMs: number;
  /** holdfast only: median time for GET /metrics with the sessions open (5 scrapes). */
  readonly scrapeMs?: number;
}

function rssKiB(pids: number[]): number {
  let sum = 0;
  for (const pid of pids) {
    try {
      const m = fs.readFileSync(`/proc/${pid}/status`, 'utf8').match(/VmRSS:\s+(\d+) kB/);
      if (m) sum += Number(m[1]);
    } catch {
      /* exited */
    }
  }
  return sum;
}

/** utime + stime of the processes, in seconds. */
function cpuSeconds(pids: number[]): number {
  let ticks = 0;
  for (const pid of pids) {
    try {
      const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
      const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      ticks += Number(f[11]) + Number(f[12]);
    } catch {
      /* exited */
    }
  }
  return ticks / 100; // USER_HZ is 100 on Linux
}

/**
 * N concurrent `-J` sessions held open and idle: a load generator of ssh2 clients in this process,
 * each logged in to the jump host with one direct-tcpip channel to the lab's sink. Measures the
 * jump host's resident memory per session and its CPU over `windowS` of idleness (its client-leg
 * keepalive runs meanwhile), then closes everything and waits until the jump host has let go.
 */
export async function idle(lab: Lab, jump: Jump, n: number, windowS: number, log: (s: string) => void = () => {}, settleS = 10, subS = 30): Promise<IdleResult> {
  const key = fs.readFileSync(lab.key);
  const baseSink = lab.sink.count();
  const pidsBefore = jump.pids();
  const rssBeforeKiB = rssKiB(pidsBefore);
  const clients: InstanceType<typeof ssh2.Client>[] = [];
  const t0 = performance.now();
  const concurrency = 48; // under sshd's MaxStartups and holdfast's accept rate alike
  let next = 0;
  let failed: Error | undefined;
  const openOne = (): Promise<void> =>
    new Promise((resolve) => {
      const c = new ssh2.Client();
      clients.push(c);
      c.on('error', (err) => {
        failed ??= err;
        resolve();
      });
      c.on('ready', () => {
        c.forwardOut('127.0.0.1', 0, '127.0.0.1', lab.sink.port, (err) => {
          if (err) failed ??= err;
          resolve();
        });
      });
      c.connect({ host: '127.0.0.1', port: jump.port, username: jumpUser(jump), privateKey: key, readyTimeout: 120_000, keepaliveInterval: 0, algorithms: { cipher: ['aes128-gcm@openssh.com'] } });
    });
  const worker = async () => {
    while (next < n && !failed) {
      next++;
      await openOne();
    }
  };
  await Promise.all(Array.from({ length: concurrency }, worker));
  if (failed) throw new Error(`${jump.name} idle: opening ${n} sessions: ${failed.message}`);
  const deadline = Date.now() + 60_000;
  while (lab.sink.count() - baseSink < n && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
  const sessions = lab.sink.count() - baseSink;
  if (sessions !== n) throw new Error(`${jump.name} idle: ${sessions}/${n} sessions reached the sink`);
  const openMs = performance.now() - t0;
  log(`    ${jump.name}: ${n} sessions open in ${(openMs / 1000).toFixed(1)} s; settling ${settleS} s, then idle for ${windowS} s`);
  // Let the handshakes' aftermath pass before measuring (for holdfast: V8's memory reducer runs GCs
  // for some seconds after a burst of allocation), the same wait for both jump hosts.
  await new Promise((r) => setTimeout(r, settleS * 1000));
  const pids = jump.pids();
  const rssWithKiB = rssKiB(pids);
  const c0 = cpuSeconds(pids);
  const cpuSubPct: number[] = [];
  const subs = Math.max(1, Math.round(windowS / Math.min(subS, windowS)));
  const sub = windowS / subs;
  let last = c0;
  for (let i = 0; i < subs; i++) {
    await new Promise((r) => setTimeout(r, sub * 1000));
    const c = cpuSeconds(jump.pids());
    cpuSubPct.push(((c - last) / sub) * 100);
    last = c;
  }
  const c1 = last;
  // What a Prometheus scrape costs with the sessions open (after the CPU window: not counted in it).
  let scrapeMs: number | undefined;
  if (jump.admin) {
    // From another process: this one is busy with the N client connections.
    const script = `const t=[];for(let i=0;i<5;i++){const s=performance.now();await (await fetch('http://${jump.admin}/metrics')).text();t.push(performance.now()-s)}console.log(t.sort((a,b)=>a-b)[2])`;
    scrapeMs = Number(execFileSync(process.execPath, ['--input-type=module', '-e', script], { encoding: 'utf8' }).trim());
  }
  for (const c of clients) c.destroy();
  const gone = Date.now() + 60_000;
  // Until the sessions are gone: sshd's per-connection processes have exited (holdfast's primary and
  // workers stay).
  while ((lab.sink.count() > baseSink || jump.pids().length > pidsBefore.length) && Date.now() < gone) await new Promise((r) => setTimeout(r, 100));
  return {
    sessions,
    rssBeforeKiB,
    rssWithKiB,
    rssPerSessionKiB: (rssWithKiB - rssBeforeKiB) / n,
    cpuPctOfCore: ((c1 - c0) / windowS) * 100,
    cpuSubPct,
    windowS,
    subS: sub,
    processes: pids.length,
    openMs,
    ...(scrapeMs !== undefined ? { scrapeMs } : {}),
  };
}
