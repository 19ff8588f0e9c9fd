/**
 * The real OpenSSH client. Tests write an ssh_config (passed with -F, which OpenSSH also hands to the
 * ProxyJump child) with the test identity, and never any ServerAlive option.
 */
import fs from 'node:fs';
import path from 'node:path';
import { spawn } from 'node:child_process';

export interface SshResult {
  readonly code: number | null;
  readonly stdout: Buffer;
  readonly stderr: string;
}

export function writeSshConfig(dir: string, identity: string, name = 'ssh_config', extra: string[] = []): string {
  const file = path.join(dir, name);
  fs.writeFileSync(
    file,
    [
      ...extra,
      'Host *',
      `  IdentityFile ${identity}`,
      '  IdentitiesOnly yes',
      '  IdentityAgent none',
      '  UserKnownHostsFile /dev/null',
      '  StrictHostKeyChecking no',
      '  BatchMode yes',
      '  LogLevel ERROR',
      '  ConnectTimeout 10',
      '',
    ].join('\n'),
  );
  return file;
}

export function run(cmd: string, args: string[], opts: { input?: Buffer | string | NodeJS.ReadableStream; timeoutMs?: number; stdoutTo?: NodeJS.WritableStream } = {}): Promise<SshResult> {
  return new Promise((resolve) => {
    // Own process group, so a timeout also kills the ProxyJump child that holds our pipes open.
    const proc = spawn(cmd, args, { stdio: ['pipe', 'pipe', 'pipe'], detached: true });
    const out: Buffer[] = [];
    let err = '';
    if (opts.stdoutTo) proc.stdout.pipe(opts.stdoutTo);
    else proc.stdout.on('data', (d: Buffer) => out.push(d));
    proc.stderr.on('data', (d) => (err += d));
    proc.stdin.on('error', () => {});
    const t = setTimeout(() => {
      try {
        process.kill(-proc.pid!, 'SIGKILL');
      } catch {
        proc.kill('SIGKILL');
      }
    }, opts.timeoutMs ?? 60_000);
    proc.once('close', (code) => {
      clearTimeout(t);
      resolve({ code, stdout: Buffer.concat(out), stderr: err });
    });
    if (opts.input === undefined) proc.stdin.end();
    else if (typeof opts.input === 'string' || Buffer.isBuffer(opts.input)) proc.stdin.end(opts.input);
    else opts.input.pipe(proc.stdin);
  });
}

/** `ssh -F cfg -J user@127.0.0.1:jumpPort -p targetPort root@127.0.0.1 command`. */
export function sshJump(cfg: string, jumpUser: string, jumpPort: number, targetPort: number, command: string, opts: Parameters<typeof run>[2] = {}, target = '127.0.0.1'): Promise<SshResult> {
  return run('ssh', ['-F', cfg, '-J', `${jumpUser}@127.0.0.1:${jumpPort}`, '-p', String(targetPort), `root@${target}`, command], opts);
}
