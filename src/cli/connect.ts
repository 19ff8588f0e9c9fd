/**
 * `holdfast connect [options] [user@]jump[:port] host port`: a ProxyCommand helper with a resumable
 * client leg (src/resume/client.ts). `ssh -o ProxyCommand='holdfast connect alice@jump %h %p' db1`.
 * Its transport is the user's own ssh to the jump host (`-s ... holdfast-resume`): -F, -i and -o
 * pass on to it as `ssh -J` users expect. Writes nothing but the SSH stream on stdout.
 */
import { ResumeClient } from '../resume/client.js';
import { RESUME_SUBSYSTEM } from '../resume/frames.js';
import yargs, { type Argv } from 'yargs';
import { EXIT_SOFTWARE, EXIT_USAGE } from './exit-codes.js';

export interface ConnectArgs {
  readonly jump: string;
  readonly host: string;
  readonly port: number;
  readonly configFile?: string | undefined;
  readonly identities: readonly string[];
  readonly options: readonly string[];
  readonly quiet: boolean;
  readonly heartbeatMs: number;
  readonly bufferMiB: number;
  readonly ssh: string;
}

/** `[user@]host[:port]`, `[user@][v6]:port`: the ssh argv parts (user stays in the destination). */
export function jumpArgs(jump: string): { dest: string; port?: string } | { error: string } {
  const m = /^(?:([^@\s]+)@)?(\[[^\]]+\]|[^:\s@]+)(?::(\d{1,5}))?$/.exec(jump);
  if (!m) return { error: `not [user@]host[:port]: ${JSON.stringify(jump)}` };
  const host = m[2]!.replace(/^\[|\]$/g, '');
  const port = m[3];
  if (port !== undefined && (Number(port) < 1 || Number(port) > 65535)) return { error: `port ${port} is not 1-65535` };
  return { dest: `${m[1] ? `${m[1]}@` : ''}${host}`, ...(port ? { port } : {}) };
}

export function transportArgv(a: ConnectArgs, j: { dest: string; port?: string }): string[] {
  return [
    a.ssh,
    ...(a.configFile ? ['-F', a.configFile] : []),
    ...a.identities.flatMap((i) => ['-i', i]),
    ...a.options.flatMap((o) => ['-o', o]),
    ...(a.quiet ? ['-q'] : []),
    '-T',
    '-o',
    'ControlPath=none',
    '-o',
    'ControlMaster=no',
    ...(j.port ? ['-p', j.port] : []),
    '-s',
    j.dest,
    RESUME_SUBSYSTEM,
  ];
}

export async function runConnect(a: ConnectArgs): Promise<number> {
  const j = jumpArgs(a.jump);
  if ('error' in j) {
    process.stderr.write(`holdfast connect: ${j.error}\n`);
    return EXIT_USAGE;
  }
  if (!Number.isInteger(a.port) || a.port < 1 || a.port > 65535) {
    process.stderr.write(`holdfast connect: port ${a.port} is not 1-65535\n`);
    return EXIT_USAGE;
  }
  const client = new ResumeClient({
    transport: transportArgv(a, j),
    dst: { host: a.host, port: a.port },
    bufferBytes: a.bufferMiB * 1024 * 1024,
    heartbeatMs: a.heartbeatMs,
    quiet: a.quiet,
    input: process.stdin,
    output: process.stdout,
    log: (line) => process.stderr.write(`${line}\n`),
  });
  client.start();
  for (const sig of ['SIGHUP', 'SIGTERM', 'SIGINT'] as const) process.once(sig, () => client.stop());
  return client.exit;
}

/** The yargs command, shared by `holdfast --help` (src/cli/main.ts) and the light entry below. */
export const connectCommand = {
  command: 'connect <jump> <host> <port>',
  describe: "ProxyCommand helper with a resumable client leg: ssh -o ProxyCommand='holdfast connect [user@]jump[:port] %h %p' target",
  builder: (y: Argv) =>
    y
      .positional('jump', { type: 'string', describe: '[user@]jump-host[:port]' })
      .positional('host', { type: 'string', describe: 'the target (%h)' })
      .positional('port', { type: 'number', describe: 'its port (%p)' })
      .option('F', { type: 'string', requiresArg: true, describe: "ssh_config file for the transport's ssh" })
      .option('i', { type: 'string', array: true, requiresArg: true, describe: 'identity file for the transport (repeatable)' })
      .option('o', { type: 'string', array: true, requiresArg: true, describe: 'ssh option for the transport (repeatable)' })
      .option('q', { type: 'boolean', default: false, describe: 'quiet: no reconnect lines (and ssh -q)' })
      .option('heartbeat', { type: 'number', default: 3000, describe: 'ms between heartbeats; 3 unanswered = the transport is dead' })
      .option('buffer', { type: 'number', default: 4, describe: 'MiB kept toward holdfast until acknowledged' })
      .option('ssh', { type: 'string', default: process.env.HOLDFAST_SSH || 'ssh', describe: 'the ssh client to run' }),
  args: (argv: Record<string, unknown>): ConnectArgs => ({
    jump: String(argv.jump),
    host: String(argv.host),
    port: Number(argv.port),
    configFile: argv.F as string | undefined,
    identities: (argv.i as string[] | undefined) ?? [],
    options: (argv.o as string[] | undefined) ?? [],
    quiet: argv.q === true,
    heartbeatMs: Math.max(100, Number(argv.heartbeat)),
    bufferMiB: Math.max(1, Number(argv.buffer)),
    ssh: String(argv.ssh),
  }),
};

/**
 * bin/holdfast.js comes here for `holdfast connect` without loading the server (no ssh2, no native
 * addon): the helper runs wherever Node does.
 */
export async function connectMain(args: string[]): Promise<number> {
  let chosen: ConnectArgs | undefined;
  let usage: string | undefined;
  await yargs(args)
    .scriptName('holdfast')
    .command(connectCommand.command, connectCommand.describe, connectCommand.builder, (argv) => {
      chosen = connectCommand.args(argv);
    })
    .strict()
    .help()
    .fail((msg, err) => {
      if (err && err.name !== 'YError') throw err;
      usage ??= msg ?? err?.message ?? 'usage error';
    })
    .parseAsync();
  if (usage) {
    process.stderr.write(`holdfast connect: ${usage}\nRun "holdfast connect --help" for usage.\n`);
    return EXIT_USAGE;
  }
  return chosen ? runConnect(chosen) : 0;
}

export function runConnectMain(args: string[]): void {
  connectMain(args).then(
    (code) => process.exit(code),
    (err: unknown) => {
      process.stderr.write(`holdfast connect: internal error: ${String(err)}\n`);
      process.exit(EXIT_SOFTWARE);
    },
  );
}
