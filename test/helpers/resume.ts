/**
 * For the resumable client leg tests: `holdfast connect` as the user's ProxyCommand, the processes
 * it runs (found in /proc), and a raw transport that speaks the framing itself.
 */
import fs from 'node:fs';
import { spawn } from 'node:child_process';
import { BIN } from './holdfast.js';
import { descendants } from './sshd.js';
import { FRAME, FrameReader, jsonFrame, type FrameType } from '../../src/resume/frames.js';

/** `ProxyCommand=holdfast connect -F cfg user@127.0.0.1:port %h %p` (plus helper options). */
export function proxyCommand(cfg: string, user: string, port: number, extra = ''): string {
  return `ProxyCommand=${process.execPath} ${BIN} connect -F ${cfg} ${extra} ${user}@127.0.0.1:${port} %h %p`;
}

const cmdline = (pid: number) => {
  try {
    return fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').join(' ');
  } catch {
    return '';
  }
};

/** The helper (`holdfast connect`) and its transport ssh under the user's ssh process `pid`. */
export function helperProcs(pid: number): { helper?: number; transport?: number } {
  const all = descendants(pid, 1000);
  return { helper: all.find((p) => / connect /.test(cmdline(p))), transport: all.find((p) => cmdline(p).includes('holdfast-resume')) };
}

/** A raw transport: `ssh -s user@jump holdfast-resume`, its frames read back. */
export function rawTransport(cfg: string, user: string, port: number) {
  const p = spawn('ssh', ['-F', cfg, '-T', '-p', String(port), '-s', `${user}@127.0.0.1`, 'holdfast-resume'], { stdio: ['pipe', 'pipe', 'pipe'] });
  const frames: Array<{ type: FrameType; payload: Buffer }> = [];
  const reader = new FrameReader((type, payload) => frames.push({ type, payload: Buffer.from(payload) }));
  p.stdout.on('data', (d: Buffer) => reader.push(d));
  p.stdin.on('error', () => {});
  return {
    proc: p,
    frames,
    hello: (h: unknown) => jsonFrame(FRAME.HELLO, h).forEach((f) => p.stdin.write(f)),
    json: (type: FrameType) => {
      const f = frames.find((x) => x.type === type);
      return f ? (JSON.parse(f.payload.toString()) as Record<string, unknown>) : undefined;
    },
    stop: () => p.kill('SIGKILL'),
  };
}
