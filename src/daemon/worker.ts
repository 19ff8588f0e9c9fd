/**
 * A worker: one HoldfastServer in a cluster worker process, serving sessions. The primary
 * (src/daemon/primary.ts) tells it what to do (src/daemon/messages.ts): reload on SIGHUP; drain after
 * an upgrade (stop accepting; its sessions carry on until they end, or until drainTimeout closes them
 * with reason `shutdown`); shut down on SIGTERM. Signals are the primary's (systemd's KillMode=mixed
 * sends them to MainPID only); a worker sent SIGTERM directly shuts down the same way. A worker whose
 * primary has died cannot: Node's cluster module calls process.exit(0) in it as soon as the IPC
 * channel closes unasked, right after emitting 'disconnect' on cluster.worker. That event is where
 * the worker says so (`primary-gone`, with the sessions that end with it): stdout is a pipe or
 * journald's socket, written synchronously on Linux, so the line is out before the exit.
 */
import cluster from 'node:cluster';
import { loadConfig, type LoadedConfig } from '../config/load.js';
import { ConfigError, formatProblem } from '../config/errors.js';
import { createLogger, type Logger } from '../log.js';
import { Events } from '../events.js';
import { HoldfastServer } from '../server.js';
import { ListenError } from '../ingress/listen.js';
import { HostKeyError } from '../ssh/host-keys.js';
import { VERSION } from '../version.js';
import { EXIT_CANTCREAT, EXIT_FAILURE, EXIT_OK } from '../cli/exit-codes.js';
import { isToWorker, type FromWorker } from './messages.js';
import { Metrics } from '../metrics/collector.js';
import { serveMetricsToPrimary } from './admin.js';
import { SharedStartups } from './shared-startups.js';

export async function runWorker(file: string | undefined, loaded: LoadedConfig): Promise<number> {
  const log = createLogger({ level: loaded.config.logLevel, base: { worker: cluster.worker?.id ?? 0 } });
  const events = Events.loggingTo(log);
  // One startup gate for every worker: the primary's (src/daemon/shared-startups.ts).
  const startups = new SharedStartups((m) => process.send?.(m));
  const server = new HoldfastServer(loaded.config, events, undefined, startups);
  // The primary's admin listener aggregates every worker's registry (src/daemon/admin.ts).
  serveMetricsToPrimary(new Metrics(events, server.live, cluster.worker?.id ?? 0));
  try {
    await server.start();
  } catch (err) {
    if (err instanceof ListenError) {
      events.emit('listen-failed', { error: err.message });
      return EXIT_FAILURE;
    }
    if (err instanceof HostKeyError) {
      events.emit('host-key-failed', { error: err.message });
      return EXIT_CANTCREAT;
    }
    throw err;
  }
  const ready: FromWorker = { holdfast: 'ready', version: VERSION, pid: process.pid };
  process.send?.(ready);
  return new Promise<number>((resolve) => {
    let ending = false;
    const end = (how: Promise<void>) => {
      if (ending) return;
      ending = true;
      void how.then(() => resolve(EXIT_OK));
    };
    process.on('message', (m: unknown) => {
      if (!isToWorker(m)) return;
      if (m.holdfast === 'startup-verdict') startups.verdict(m);
      else if (m.holdfast === 'reload') {
        reload(server, file, log);
        process.send?.({ holdfast: 'reloaded' } satisfies FromWorker);
      }
      else if (m.holdfast === 'sessions') {
        const answer: FromWorker = { holdfast: 'sessions', id: m.id, sessions: server.describeSessions().map((s) => ({ ...s, worker: cluster.worker?.id ?? 0 })) };
        process.send?.(answer);
      }
      else if (m.holdfast === 'close-session') process.send?.({ holdfast: 'closed', id: m.id, found: server.closeSession(m.session, m.why) } satisfies FromWorker);
      else if (m.holdfast === 'drain') end(server.drain(m.timeoutMs));
      else end(server.stop());
    });
    process.on('SIGTERM', () => end(server.stop()));
    // A terminal's Ctrl-C reaches the whole process group: the primary decides for everyone.
    for (const sig of ['SIGINT', 'SIGHUP', 'SIGUSR2'] as const) process.on(sig, () => {});
    cluster.worker?.once('disconnect', () => {
      if (cluster.worker?.exitedAfterDisconnect) return;
      const ids = server.describeSessions().map((d) => d.id);
      events.emit('primary-gone', { sessions: ids.length, ids });
    });
  });
}

/** Re-read the config: routes, keys, limits and keepalive apply to the next decision. */
function reload(server: HoldfastServer, file: string | undefined, log: Logger): void {
  try {
    const loaded = loadConfig(file);
    for (const w of loaded.warnings) server.events.emit('config-warning', { warning: w });
    log.setLevel(loaded.config.logLevel);
    const { restartNeededFor, live } = server.reload(loaded.config);
    server.events.emit('reloaded', { config: loaded.config.source, ...live, ...(restartNeededFor.length ? { restartNeededFor } : {}) });
  } catch (err) {
    if (err instanceof ConfigError) {
      server.events.emit('reload-failed', { why: 'config has errors; still running the previous config', problems: err.problems.map(formatProblem) });
      return;
    }
    server.events.emit('reload-failed', { error: String(err) });
  }
}
