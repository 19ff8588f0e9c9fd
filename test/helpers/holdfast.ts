/**
 * Runs the real `holdfast serve` (bin/holdfast.js) as a child process with a temporary config and
 * reads its JSON log lines.
 */
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { spawn, type ChildProcess } from 'node:child_process';
import { GaveUp, waitFor } from './wait.js';
import { stopProcess } from './sshd.js';

export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../..');
export const BIN = path.join(ROOT, 'bin', 'holdfast.js');

export type LogLine = Record<string, unknown> & { event: string; level: string };

export interface Holdfast {
  /** The primary process (systemd's MainPID): it keeps the workers. */
  readonly proc: ChildProcess;
  /** The worker that serves sessions (the first one, with several): its sockets, memory and fds. */
  readonly pid: number;
  readonly port: number;
  readonly logs: LogLine[];
  readonly stderr: () => string;
  /** Bytes holdfast has written to stdout (its log) so far. */
  readonly logBytes: () => number;
  waitForLog(pred: (l: LogLine) => boolean, timeoutMs?: number, what?: string): Promise<LogLine>;
  stop(signal?: NodeJS.Signals): Promise<number | null>;
}

export interface StartOptions {
  readonly env?: NodeJS.ProcessEnv;
  readonly args?: string[];
  /** Options for node itself, before the script (e.g. --cpu-prof). */
  readonly nodeArgs?: string[];
  /** Run inside this network namespace (ip netns exec keeps the pid). */
  readonly netns?: string;
  /** File descriptor limit for holdfast (prlimit execs it: the pid stays holdfast's). */
  readonly nofile?: number;
  /** The entry script (default: this checkout's bin/holdfast.js), e.g. a release behind a symlink. */
  readonly bin?: string;
  /** An executable that runs holdfast by itself (a release's bin/holdfast launcher), instead of node BIN. */
  readonly launcher?: string;
  /** A command line holdfast's runs under (it must exec holdfast, keeping the pid), e.g. a sandbox. */
  readonly wrap?: string[];
}

/** Starts holdfast with `yaml` written to DIR/holdfast.yaml (null = no --config). */
export async function startHoldfast(dir: string, yaml: string | null, opts: StartOptions = {}): Promise<Holdfast> {
  const args = [opts.bin ?? BIN, 'serve'];
  if (yaml !== null) {
    const file = path.join(dir, 'holdfast.yaml');
    fs.writeFileSync(file, yaml);
    args.push('--config', file);
  }
  const argv = opts.launcher ? [opts.launcher, ...args.slice(1), ...(opts.args ?? [])] : [process.execPath, ...(opts.nodeArgs ?? []), ...args, ...(opts.args ?? [])];
  if (opts.netns) argv.unshift('ip', 'netns', 'exec', opts.netns);
  if (opts.nofile) argv.unshift('prlimit', `--nofile=${opts.nofile}:${opts.nofile}`, '--');
  if (opts.wrap) argv.unshift(...opts.wrap);
  const proc = spawn(argv[0]!, argv.slice(1), {
    cwd: dir,
    env: { ...process.env, HOLDFAST_CONFIG: '', ...opts.env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const logs: LogLine[] = [];
  let err = '';
  let buf = '';
  let bytes = 0;
  proc.stdout!.setEncoding('utf8');
  proc.stdout!.on('data', (d: string) => {
    bytes += Buffer.byteLength(d);
    buf += d;
    let nl: number;
    while ((nl = buf.indexOf('\n')) >= 0) {
      const line = buf.slice(0, nl);
      buf = buf.slice(nl + 1);
      try {
        logs.push(JSON.parse(line) as LogLine);
      } catch {
        err += `[stdout, not JSON] ${line}\n`;
      }
    }
  });
  proc.stderr!.on('data', (d) => (err += d));
  // Gone for good: exited, and every line it wrote read (its exit may come before the last lines).
  let outEnded = false;
  proc.stdout!.once('end', () => (outEnded = true));
  const gone = () => outEnded && (proc.exitCode !== null || proc.signalCode !== null);
  const waitForLog = (pred: (l: LogLine) => boolean, timeoutMs = 10_000, what = 'a log line') =>
    waitFor(() => logs.find(pred) ?? (gone() ? Promise.reject(new GaveUp(`holdfast exited ${proc.exitCode ?? proc.signalCode} while waiting for ${what}: ${[...logs.filter((l) => l.level === 'error').map((l) => JSON.stringify(l)), err.trim()].filter(Boolean).join('; ')}`)) : undefined), {
      timeoutMs,
      what,
    });
  let started: LogLine;
  try {
    started = await waitForLog((l) => l.event === 'started', 30_000, 'holdfast to start');
  } catch (e) {
    // Leave nothing running behind a failed start (the primary takes its workers with it).
    await stopProcess(proc, 'SIGTERM', 5000).catch(() => {});
    throw new Error(`${(e as Error).message}${err ? `; holdfast's stderr: ${err.slice(0, 2000)}` : ''}`);
  }
  const port = Number(String((started.listen as string[])[0]).split(':').pop());
  return {
    proc,
    pid: Number(started.pid),
    port,
    logs,
    stderr: () => err,
    logBytes: () => bytes,
    waitForLog,
    async stop(signal: NodeJS.Signals = 'SIGTERM') {
      await stopProcess(proc, signal, 15_000);
      return proc.exitCode;
    },
  };
}
