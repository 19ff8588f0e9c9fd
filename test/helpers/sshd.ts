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
        ...extra,
        '',
      ].join('\n'),
    );
    const cmd = place.netns ? ['ip', 'netns', 'exec', place.netns, SSHD] : [SSHD];
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

export async function stopProcess(proc: ChildProcess, signal: NodeJS.Signals = 'SIGTERM', timeoutMs = 5000): Promise<void> {
  if (proc.exitCode !== null || proc.signalCode !== null) return;
  const done = new Promise<void>((r) => proc.once('exit', () => r()));
  proc.kill(signal);
  const t = setTimeout(() => proc.kill('SIGKILL'), timeoutMs);
  await done;
  clearTimeout(t);
}
