import { spawnSync } from 'node:child_process';
import { BIN } from './holdfast.js';

export interface CliResult {
  readonly code: number | null;
  readonly stdout: string;
  readonly stderr: string;
}

/** Runs `holdfast ARGS` to completion (for check, schema, --help). */
export function holdfast(args: string[], opts: { cwd?: string; env?: NodeJS.ProcessEnv; asUid?: number } = {}): CliResult {
  // asUid: run as that user (and its group), as systemd's User= would: setpriv(1), from util-linux.
  const argv = [process.execPath, BIN, ...args];
  if (opts.asUid !== undefined) argv.unshift('setpriv', `--reuid=${opts.asUid}`, `--regid=${opts.asUid}`, '--clear-groups', '--');
  const r = spawnSync(argv[0]!, argv.slice(1), {
    cwd: opts.cwd,
    env: { ...process.env, HOLDFAST_CONFIG: '', ...opts.env },
    encoding: 'utf8',
    timeout: 30_000,
  });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}
