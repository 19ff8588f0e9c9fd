/**
 * A real OpenSSH sshd on 127.0.0.1 with a temporary config: the target (and bastion) of the tests.
 */
import fs from 'node:fs';
import path from 'node:path';
import { spawn, type ChildProcess } from 'node:child_process';
import { freePort } from './ports.js';
import { keygen } from './tmp.js';
import { waitFor } from './wait.js';

export const SSHD = '/usr/sbin/sshd';

export function sshdAvailable(): boolean {
  return fs.existsSync(SSHD);
}

export interface Sshd {
  readonly port: number;
  readonly proc: ChildProcess;
  readonly log: () => string;
  stop(): Promise<void>;
}

export interface SshdPlace {
  /** Run inside this network namespace (ip netns exec). */
  readonly netns?: string;
  readonly address?: string;
  readonly port?: number;
  /** Another sshd binary (an OpenSSH 10 unpacked by test/fetch-openssh10.sh: test/helpers/openssh10.ts). */
  readonly binary?: string;
}

export async function startSshd(dir: string, authorizedKeys: string, extra: string[] = [], place: SshdPlace = {}): Promise<Sshd> {
  fs.mkdirSync('/run/sshd', { recursive: true, mode: 0o755 });
  const hostKey = fs.existsSync(path.join(dir, 'sshd_host_key')) ? path.join(dir, 'sshd_host_key') : keygen(dir, 'sshd_host_key');
  for (let attempt = 0; attempt < 5; attempt++) {
    const port = place.port ?? (await freePort());
    const cfg = path.join(dir, `sshd_config.${port}`);
    fs.writeFileSync(
      cfg,
      [
        `ListenAddress ${place.address ?? '127.0.0.1'}:${port}`,
        `HostKey ${hostKey}`,
        `AuthorizedKeysFile ${authorizedKeys}`,
        'PermitRootLogin prohibit-password',
        'PasswordAuthentication no',
        'KbdInteractiveAuthentication no',
        'UsePAM no',
        'StrictModes no',
        'PidFile none',
        'LogLevel VERBOSE',
        'MaxStartups 100:30:200',
        'MaxSessions 100',
        'Subsystem sftp internal-sftp',
        ...extra.map((l) => l.replaceAll('$PORT', String(port))),
        '',
      ].join('\n'),
    );
    const bin = place.binary ?? SSHD;
    const cmd = place.netns ? ['ip', 'netns', 'exec', place.netns, bin] : [bin];
    const proc = spawn(cmd[0]!, [...cmd.slice(1), '-D', '-e', '-f', cfg], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    proc.stdout!.on('data', (d) => (out += d));
    proc.stderr!.on('data', (d) => (out += d));
    let exited = false;
    proc.once('exit', () => (exited = true));
    try {
      await waitFor(() => exited || out.includes('Server listening'), { timeoutMs: 5000, what: 'sshd to listen' });
    } catch {
      /* fallthrough */
    }
    if (!exited && out.includes('Server listening')) {
      return {
        port,
        proc,
        log: () => out,
        stop: () => stopProcess(proc),
      };
    }
    proc.kill('SIGKILL');
  }
  throw new Error('could not start sshd');
}

/** All descendants of pid (children first found via /proc/PID/task/TID/children), bounded. */
export function descendants(pid: number, limit = 10_000): number[] {
  const out: number[] = [];
  const queue = [pid];
  for (let i = 0; i < limit && queue.length > 0; i++) {
    const p = queue.shift()!;
    let tasks: string[] = [];
    try {
      tasks = fs.readdirSync(`/proc/${p}/task`);
    } catch {
      continue;
    }
    for (const t of tasks) {
      let kids = '';
      try {
        kids = fs.readFileSync(`/proc/${p}/task/${t}/children`, 'utf8');
      } catch {
        continue;
      }
      for (const k of kids.trim().split(/\s+/).filter(Boolean).map(Number)) {
        out.push(k);
        queue.push(k);
      }
    }
  }
  return out;
}

/**
 * Stops a process we started and everything it forked (sshd leaves one child per connection, and a
 * session whose peer vanished behind a middlebox would otherwise live on, holding our pipes).
 */
export async function stopProcess(proc: ChildProcess, signal: NodeJS.Signals = 'SIGTERM', timeoutMs = 5000): Promise<void> {
  const kids = proc.pid ? descendants(proc.pid) : [];
  if (proc.exitCode === null && proc.signalCode === null) {
    const done = new Promise<void>((r) => proc.once('exit', () => r()));
    proc.kill(signal);
    const t = setTimeout(() => proc.kill('SIGKILL'), timeoutMs);
    await done;
    clearTimeout(t);
  }
  for (const k of kids) {
    try {
      process.kill(k, 'SIGKILL');
    } catch {
      /* already gone */
    }
  }
  proc.stdout?.destroy();
  proc.stderr?.destroy();
}
