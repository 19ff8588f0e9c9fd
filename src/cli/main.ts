/**
 * holdfast's command line: serve, check, explain, sessions, connect, schema. Exit codes: 0 ok, 1 runtime failure (e.g. cannot
 * listen), 64 usage, 70 internal error, 73 a file it must create cannot be (a host key), 78 config error
 * (systemd's RestartPreventExitStatus).
 */
import yargs from 'yargs';
import { hideBin } from 'yargs/helpers';
import { loadConfig, type LoadedConfig } from '../config/load.js';
import { ConfigError, formatProblem } from '../config/errors.js';
import { configJsonSchema } from '../config/schema.js';
import cluster from 'node:cluster';
import { VERSION } from '../version.js';
import net from 'node:net';
import os from 'node:os';
import { summarizeConfig } from './summary.js';
import { connectCommand, runConnect } from './connect.js';
import { explain } from './explain.js';
import { runSessions } from './sessions.js';
import { parseTarget } from '../routing/destination.js';
import { EXIT_CONFIG, EXIT_FAILURE, EXIT_OK, EXIT_SOFTWARE, EXIT_USAGE } from './exit-codes.js';

function configFile(argv: Record<string, unknown>): string | undefined {
  return (argv.config as string | undefined) ?? (process.env.HOLDFAST_CONFIG || undefined);
}

/** Loads or prints every problem (FILE:LINE:COL: ...) on stderr and returns null. */
function tryLoad(file: string | undefined): LoadedConfig | null {
  try {
    return loadConfig(file);
  } catch (err) {
    if (err instanceof ConfigError) {
      for (const p of err.problems) process.stderr.write(`${formatProblem(p)}\n`);
      return null;
    }
    throw err;
  }
}

/**
 * `serve`: the primary keeps the workers (src/daemon/primary.ts), each worker serves
 * (src/daemon/worker.ts). Both load the config first: a bad one exits 78 before anything is started.
 */
async function serve(file: string | undefined): Promise<number> {
  const loaded = tryLoad(file);
  if (!loaded) return EXIT_CONFIG;
  if (cluster.isPrimary) return (await import('../daemon/primary.js')).runPrimary(file, loaded);
  return (await import('../daemon/worker.js')).runWorker(file, loaded);
}

async function runExplain(file: string | undefined, dest: string, user: string | undefined, from: string | undefined, gateway: boolean): Promise<number> {
  const target = parseTarget(dest);
  if (!target.ok) {
    process.stderr.write(`holdfast: ${target.message}\n`);
    return EXIT_USAGE;
  }
  if (from !== undefined && net.isIP(from) === 0) {
    process.stderr.write(`holdfast: --from ${JSON.stringify(from)} is not an IP address\n`);
    return EXIT_USAGE;
  }
  const loaded = tryLoad(file);
  if (!loaded) return EXIT_CONFIG;
  const r = await explain(loaded.config, { ...target.value, user: user ?? os.userInfo().username, from, gateway });
  process.stdout.write(`${r.text}\n`);
  return r.matched ? EXIT_OK : EXIT_FAILURE;
}

export async function main(args: string[]): Promise<number> {
  // Handlers only choose what to run; it runs after parsing, and never after a usage error (yargs
  // calls a command's handler even when strict() then reports an unknown argument).
  let chosen: (() => number | Promise<number>) | undefined;
  let usageError = false;
  const parser = yargs(args)
    .scriptName('holdfast')
    .usage('$0 <command> [options]\n\nAn SSH jump host that keeps sessions alive through idle-killing middleboxes.')
    .option('config', {
      alias: 'c',
      type: 'string',
      requiresArg: true,
      describe: 'YAML config file (default: $HOLDFAST_CONFIG, else the embedded default)',
    })
    .command('serve', 'Run the jump host (with --config FILE, else $HOLDFAST_CONFIG, else the embedded default)', {}, (argv) => {
      chosen = () => serve(configFile(argv));
    })
    .command('check', 'Validate the config without opening sockets (exit 78 on errors)', {}, (argv) => {
      chosen = () => {
        const loaded = tryLoad(configFile(argv));
        if (!loaded) return EXIT_CONFIG;
        process.stdout.write(`${summarizeConfig(loaded.config, loaded.warnings)}\n`);
        return EXIT_OK;
      };
    })
    .command(
      'explain <destination>',
      'Show the route DEST[:PORT] takes and each leg\'s keepalive (exit 1 when no route allows it)',
      (y) =>
        y
          .positional('destination', { type: 'string', describe: 'host, host:port or [IPv6]:port (port default 22)' })
          .option('user', { alias: 'u', type: 'string', describe: 'authenticated user name (default: the current user)' })
          .option('from', { type: 'string', describe: 'client address' })
          .option('gateway', { type: 'boolean', default: false, describe: 'explain the gateway login USER+DEST instead of ssh -J' }),
      (argv) => {
        chosen = () => runExplain(configFile(argv), String(argv.destination), argv.user, argv.from, argv.gateway);
      },
    )
    .command(
      'sessions',
      "List the live sessions (from the admin listener named in the config, or --admin HOST:PORT); --close ID ends one",
      (y) =>
        y
          .option('admin', { type: 'string', requiresArg: true, describe: 'the admin listener, HOST:PORT (instead of reading the config)' })
          .option('token-file', { type: 'string', requiresArg: true, describe: "with --admin: the file holding the listener's bearer token (admin.tokenFile)" })
          .option('json', { type: 'boolean', default: false, describe: 'print JSON instead of a table' })
          .option('close', { type: 'string', requiresArg: true, describe: 'end the session with this ID (needs admin.tokenFile); its user sees --why' })
          .option('why', { type: 'string', requiresArg: true, describe: 'with --close: the reason the user\'s ssh prints' }),
      (argv) => {
        chosen = () => runSessions({ admin: argv.admin, tokenFile: argv['token-file'], json: argv.json, close: argv.close, why: argv.why, load: () => tryLoad(configFile(argv)) });
      },
    )
    .command(connectCommand.command, connectCommand.describe, connectCommand.builder, (argv) => {
      chosen = () => runConnect(connectCommand.args(argv));
    })
    .command('schema', 'Print the config JSON Schema (for editors)', {}, () => {
      chosen = () => {
        process.stdout.write(`${JSON.stringify(configJsonSchema(), null, 2)}\n`);
        return EXIT_OK;
      };
    })
    .demandCommand(1, 'Name a command: serve, check, explain, sessions, connect or schema.')
    .strict()
    .version(VERSION)
    .help()
    .fail((msg, err) => {
      // yargs reports some usage errors (an option missing its value) as a YError: still usage.
      if (err && err.name !== 'YError') throw err;
      msg ??= err?.message ?? 'usage error';
      if (usageError) return;
      usageError = true;
      const stray = /^Unknown arguments?: (.*)$/.exec(msg ?? '')?.[1]?.split(', ').find((a) => /\.ya?ml$/i.test(a) || a.includes('/'));
      const hint = stray ? `\nTo use ${stray} as the config: holdfast ${args[0] ?? 'serve'} --config ${stray}` : '';
      process.stderr.write(`holdfast: ${msg}${hint}\nRun "holdfast --help" for usage. Nothing was started.\n`);
    });
  await parser.parseAsync();
  if (usageError) return EXIT_USAGE;
  return chosen ? await chosen() : EXIT_OK;
}

export function run(): void {
  process.on('uncaughtException', (err) => {
    process.stderr.write(`${JSON.stringify({ time: new Date().toISOString(), level: 'error', event: 'internal-error', error: String(err), stack: err.stack })}\n`);
    process.exit(EXIT_SOFTWARE);
  });
  main(hideBin(process.argv)).then(
    (code) => process.exit(code),
    (err: unknown) => {
      process.stderr.write(`holdfast: internal error: ${String(err)}\n`);
      process.exit(EXIT_SOFTWARE);
    },
  );
}
