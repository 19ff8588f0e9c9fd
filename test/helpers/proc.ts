import fs from 'node:fs';
import { execFileSync } from 'node:child_process';

/** Open file descriptors of a process (Linux /proc). */
export function openFds(pid: number): number {
  return fs.readdirSync(`/proc/${pid}/fd`).length;
}

/** TCP connections of `pid` whose remote port is `port` (any state but LISTEN), from `ss -tanp`. */
export function tcpConnectionsTo(pid: number, port: number, withTimers = false): string[] {
  const out = execFileSync('ss', ['-H', withTimers ? '-tanpo' : '-tanp', 'dport', `= :${port}`], { encoding: 'utf8' });
  return out.split('\n').filter((l) => l.includes(`pid=${pid},`));
}

/** Resident memory of a process in MiB (Linux /proc). */
export function rssMiB(pid: number): number {
  return Number(fs.readFileSync(`/proc/${pid}/status`, 'utf8').match(/VmRSS:\s+(\d+) kB/)![1]) / 1024;
}
