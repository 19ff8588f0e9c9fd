/**
 * The primary process: systemd's MainPID, and nothing but a keeper of workers. It serves no SSH and
 * holds no session; the cluster module keeps the listening sockets here and hands each accepted
 * connection to a worker (src/daemon/worker.ts), so a listener outlives any one worker.
 *
 * Why the cluster module (docs/architecture.md): an upgrade in place must load new code for new
 * connections while old sessions keep the old code, in the same MainPID, with no connection refused.
 * Forking a new generation of workers from the path the operator named (a symlink switched to the new
 * release is followed at each fork), waiting until it listens, then draining the old generation does
 * exactly that: the shared listening socket never closes, and a draining worker only stops accepting.
 *
 * Signals: SIGUSR2 = upgrade; SIGHUP = reload (forwarded to every worker, draining ones too: a route
 * removed must stop new channels on old sessions as well); SIGTERM/SIGINT = shut down (every worker
 * closes its sessions within shutdownTimeout; a second signal cuts at once). A worker that dies
 * unasked is replaced (after a pause when it keeps dying) and logged.
 */
import cluster, { type Worker } from 'node:cluster';
import fs from 'node:fs';
import path from 'node:path';
import { loadConfig, type LoadedConfig } from '../config/load.js';
import { ConfigError, formatProblem } from '../config/errors.js';
import { createLogger } from '../log.js';
import { Events } from '../events.js';
import { EXIT_OK, EXIT_SOFTWARE } from '../cli/exit-codes.js';
import { isFromWorker, type FromWorker, type ToWorker } from './messages.js';
import { answers, askEvery } from './answers.js';
import { CrashLog } from './crash-backoff.js';
import { whenServing, WorkerFailed, WorkerHung } from './worker-start.js';
import { whenNpmParentGone } from './parent-watch.js';
import { PrimaryMetrics } from '../metrics/primary-metrics.js';
import { SdNotify, monotonicUsec } from './sd-notify.js';
import { AggregatorRegistry } from 'prom-client';
import { ADMIN_TIMEOUT_MS, type AdminSources } from './admin.js';
import { AdminHolder } from './admin-holder.js';
import type { SessionInfo } from '../session/describe.js';
import { StartupLedger } from './shared-startups.js';

/** After SIGTERM: beyond shutdownTimeout, how long workers get before they are killed. */
const SHUTDOWN_GRACE_MS = 5_000;

interface Generation {
  readonly n: number;
  readonly workers: Set<Worker>;
}

export function runPrimary(file: string | undefined, loaded: LoadedConfig): Promise<number> {
  const events = Events.loggingTo(createLogger({ level: loaded.config.logLevel, base: { worker: 0 } }));
  for (const w of loaded.warnings) events.emit('config-warning', { warning: w });
  if (loaded.config.embedded) {
    events.emit('embedded-default', {
      why: 'no --config and no HOLDFAST_CONFIG: serving the embedded default',
      listen: loaded.config.listen,
      hostKeys: loaded.config.hostKeys,
      authorizedKeys: loaded.config.authorizedKeys,
      routes: loaded.config.routes.map((r) => `${r.name}: ${r.to.map((t) => t.source).join(', ')}`),
    });
  }
  // The entry as named (not its real path): after `ln -sfn holdfast-X.Y.Z /opt/holdfast`, the next
  // fork loads the new release.
  // Workers accept for themselves (SCHED_NONE), never round-robin. With round-robin the primary
  // accepts and passes each connection to a worker as a 'net.Native' handle; if the worker is out of
  // descriptors then, recvmsg drops the handle (MSG_CTRUNC), the worker answers NODE_HANDLE_NACK, and
  // Node (20-26) neither retransmits a net.Native handle nor delivers the cluster's 'newconn' message
  // that came with it. The primary waits for that message's answer before it hands the worker
  // anything more, so the worker is never given another connection, and the primary keeps every
  // later one (checked: a worker at its limit for one handoff served nothing again, after its fds were
  // freed; with SCHED_NONE the next connection was served 7 ms after). A worker that accepts for
  // itself at its limit has libuv close the connection (the EMFILE trick) and serves again as soon as
  // a descriptor is free; src/fd-budget.ts refuses well before that point.
  cluster.schedulingPolicy = cluster.SCHED_NONE;
  // Started by a release folder's launcher (bin/holdfast): its own Node, by the path as named too, so
  // the first fork after a switched symlink runs the new release's Node with the new release's code.
  const release = process.env.HOLDFAST_RELEASE;
  if (release && fs.existsSync(path.join(release, 'node', 'bin', 'node'))) process.execPath = path.join(release, 'node', 'bin', 'node');
  cluster.setupPrimary({ exec: process.argv[1]!, args: process.argv.slice(2) });
  return new Keeper(file, loaded, events).run();
}

class Keeper {
  private current: Generation = { n: 0, workers: new Set() };
  /** Workers of older generations, draining. */
  private readonly old = new Set<Worker>();
  private readonly generationOf = new Map<Worker, number>();
  private readonly ready = new Set<Worker>();
  /**
   * Workers that were starting when a SIGHUP came: they may have read the config before it changed,
   * so they reload as soon as they serve. (A worker logs `started` before its `ready` message
   * reaches the primary: a reload right after start would otherwise be lost.)
   */
  private readonly reloadWhenReady = new Set<Worker>();
  /** The version each worker reported: the package.json of the code it loaded. */
  private readonly versions = new Map<Worker, string>();
  private readonly crashes = new CrashLog();
  private upgrading = false;
  /** A generation being started (SIGTERM must reach it too). */
  private starting: Generation | undefined;
  private stopping = false;
  private finish: (code: number) => void = () => {};
  private admin: AdminHolder | undefined;
  /** maxStartups and perSourceMaxStartups, counted once for every worker. */
  private readonly startups = new StartupLedger();
  private readonly notify: SdNotify;
  private readonly metrics: PrimaryMetrics;

  constructor(
    private readonly file: string | undefined,
    private loaded: LoadedConfig,
    private readonly events: Events,
  ) {
    this.notify = new SdNotify(events);
    this.metrics = new PrimaryMetrics(events);
  }

  async run(): Promise<number> {
    const done = new Promise<number>((resolve) => (this.finish = resolve));
    // Before the first fork: a signal that arrives while the workers start must not kill the primary
    // by its default action (SIGHUP and SIGUSR2 would).
    process.on('SIGUSR2', () => void this.upgrade());
    process.on('SIGHUP', () => void this.reload().catch((err: unknown) => this.events.emit('worker-ipc-error', { worker: 0, error: `reload: ${String(err)}` })));
    process.on('SIGTERM', () => this.shutdown('SIGTERM'));
    process.on('SIGINT', () => this.shutdown('SIGINT'));
    whenNpmParentGone(() => {
      this.events.emit('parent-gone', { parent: 'npm (npm_command set)', effect: 'stopping as on SIGTERM' });
      this.shutdown('SIGTERM');
    });
    this.upgrading = true; // no upgrade before the first generation serves
    try {
      this.current = await this.startGeneration(1, this.loaded.config.workers);
    } catch (err) {
      if (this.stopping) return EXIT_OK;
      // The first generation could not serve (the port is taken, ...): the worker said why.
      if (err instanceof WorkerHung) this.events.emit('start-failed', { why: err.message });
      return err instanceof WorkerFailed ? err.code : EXIT_SOFTWARE;
    } finally {
      this.upgrading = false;
    }
    if (!this.stopping) {
      this.admin = new AdminHolder(this.adminSources(), this.events);
      await this.admin.apply(this.loaded.config.admin);
      void this.notify.send('READY=1', this.status());
    }
    return done;
  }

  private status(): string {
    return `STATUS=serving: generation ${this.current.n}, ${this.current.workers.size} worker(s)`;
  }

  /**
   * SIGHUP in the primary: what it holds itself follows the file too (the admin listener, the
   * shutdown and worker-start bounds); `workers` waits for the next SIGUSR2, and says so. A config
   * with errors changes nothing here (each worker logs reload-failed with the problems).
   */
  private async reload(): Promise<void> {
    // systemd: reloading until every worker and the primary itself have re-read the file.
    void this.notify.send('RELOADING=1', monotonicUsec());
    const workers = this.serving(this.current.workers);
    const acks = answers(workers, (m) => (m.holdfast === 'reloaded' ? true : undefined), ADMIN_TIMEOUT_MS, false);
    this.tellAll({ holdfast: 'reload' });
    await this.reloadOwn();
    await acks;
    if (!this.stopping) void this.notify.send('READY=1', this.status());
  }

  private async reloadOwn(): Promise<void> {
    let next: LoadedConfig;
    try {
      next = loadConfig(this.file);
    } catch {
      return this.metrics.reload('failed');
    }
    if (this.stopping) return;
    const workersBefore = this.loaded.config.workers;
    this.loaded = next;
    const admin = this.admin ? await this.admin.apply(next.config.admin) : 'unchanged';
    const workers = next.config.workers !== workersBefore ? { workersAtNextUpgrade: next.config.workers } : {};
    this.events.emit('primary-reloaded', { config: next.config.source, admin, ...workers });
  }

  /** What the admin listener serves: every worker's metrics and sessions, and the primary's state. */
  private adminSources(): AdminSources {
    const aggregator = new AggregatorRegistry();
    return {
      metrics: async () => `${await aggregator.clusterMetrics()}\n${await this.metrics.text()}`,
      sessions: () => this.askSessions(),
      close: async (session, why) =>
        (await this.askEvery((id) => ({ holdfast: 'close-session', id, session, why }), (m, id) => (m.holdfast === 'closed' && m.id === id ? m.found : undefined))).some(Boolean),
      health: () =>
        this.stopping
          ? { ok: false, state: 'shutting down' }
          : [...this.current.workers].some((w) => this.ready.has(w))
            ? { ok: true, state: 'serving' }
            : { ok: false, state: 'starting' },
    };
  }

  /** Every serving worker's live sessions (draining ones included), within ADMIN_TIMEOUT_MS. */
  private async askSessions(): Promise<SessionInfo[]> {
    return (await this.askEvery((id) => ({ holdfast: 'sessions', id }), (m, id) => (m.holdfast === 'sessions' && m.id === id ? m.sessions : undefined))).flat();
  }

  /** One request to every serving worker (draining ones included), each answer within ADMIN_TIMEOUT_MS. */
  private askEvery<T>(request: (id: number) => ToWorker, pick: (m: FromWorker, id: number) => T | undefined): Promise<T[]> {
    return askEvery(this.serving(this.all()), request, pick, ADMIN_TIMEOUT_MS);
  }

  /** Of `workers`, those that serve and can be told something now. */
  private serving(workers: Iterable<Worker>): Worker[] {
    return [...workers].filter((w) => this.ready.has(w) && w.isConnected());
  }

  /** The first worker alone (it creates missing host keys), then the rest at once. */
  private async startGeneration(n: number, count: number): Promise<Generation> {
    const gen: Generation = { n, workers: new Set() };
    this.starting = gen;
    try {
      await this.fork(gen);
      await Promise.all(Array.from({ length: count - 1 }, () => this.fork(gen)));
    } catch (err) {
      for (const w of gen.workers) w.kill('SIGKILL');
      throw err;
    } finally {
      this.starting = undefined;
    }
    return gen;
  }

  private fork(gen: Generation): Promise<Worker> {
    const w = cluster.fork({ HOLDFAST_GENERATION: String(gen.n) });
    gen.workers.add(w);
    this.generationOf.set(w, gen.n);
    w.on('exit', (code, signal) => this.exited(w, code, signal));
    // A message to a worker whose IPC channel closes meanwhile (it is exiting) fails with an 'error'
    // on the worker; with no listener that would be an uncaught exception in the primary (exit 70).
    w.on('error', (err: Error) => this.events.emit('worker-ipc-error', { worker: w.id, error: err.message }));
    w.on('message', (m: unknown) => {
      if (!isFromWorker(m)) return;
      // A worker gone (or going) gets no admission: nothing it could never give back.
      if (m.holdfast === 'startup' && w.isConnected()) w.send(this.startups.request(w.id, m) satisfies ToWorker);
      else if (m.holdfast === 'startup-end') this.startups.end(w.id, m.id);
    });
    return whenServing(w, this.loaded.config.workerStartTimeoutMs).then((m) => {
      this.ready.add(w);
      this.versions.set(w, m.version);
      this.events.emit('worker-started', { worker: w.id, pid: m.pid, generation: gen.n, version: m.version });
      if (this.reloadWhenReady.delete(w)) this.tell(w, { holdfast: 'reload' });
      return w;
    });
  }

  private exited(w: Worker, code: number | null, signal: string | null): void {
    this.startups.workerGone(w.id);
    const generation = this.generationOf.get(w) ?? 0;
    const wasReady = this.ready.delete(w);
    this.reloadWhenReady.delete(w);
    this.starting?.workers.delete(w);
    this.generationOf.delete(w);
    this.versions.delete(w);
    const base = { worker: w.id, pid: w.process.pid, generation, code, signal };
    if (this.old.delete(w) || this.stopping || !this.current.workers.has(w)) {
      this.current.workers.delete(w);
      if (wasReady) this.events.emit('worker-exit', base);
      return this.maybeDone();
    }
    this.current.workers.delete(w);
    if (!wasReady) return; // a start that failed: startGeneration reports it
    const wait = this.crashes.crashed([...this.current.workers].filter((x) => this.ready.has(x)).length);
    this.events.emit('worker-lost', { ...base, replaceInMs: wait });
    const gen = this.current;
    setTimeout(() => {
      if (this.stopping || gen !== this.current) return;
      this.fork(gen).catch((err: unknown) => this.events.emit('upgrade-failed', { why: `a replacement worker did not start (${String(err)})` }));
    }, wait).unref();
  }

  /** SIGUSR2: a new generation from the code and config on disk; the old one drains once it serves. */
  private async upgrade(): Promise<void> {
    if (this.stopping || this.upgrading) {
      const why = this.stopping
        ? 'holdfast is stopping'
        : this.current.n === 0
          ? 'the first generation is still starting: send SIGUSR2 again once worker-started is logged'
          : `an upgrade to generation ${this.current.n + 1} is under way: send SIGUSR2 again after its upgrade-complete or upgrade-failed`;
      return this.events.emit('upgrade-ignored', { why });
    }
    this.upgrading = true;
    try {
      try {
        this.loaded = loadConfig(this.file);
      } catch (err) {
        const problems = err instanceof ConfigError ? err.problems.map(formatProblem) : [String(err)];
        return this.events.emit('upgrade-failed', { why: 'the config has errors: the running generation stays', problems });
      }
      const { workers, drainTimeoutMs } = this.loaded.config;
      const prev = this.current;
      this.events.emit('upgrade-begin', { from: prev.n, to: prev.n + 1, workers });
      let next: Generation;
      try {
        next = await this.startGeneration(prev.n + 1, workers);
      } catch (err) {
        const why = err instanceof WorkerFailed ? `a new worker exited ${err.code} before serving (its log says why)` : err instanceof Error ? err.message : String(err);
        return this.events.emit('upgrade-failed', { why: `${why}: the running generation stays` });
      }
      if (this.stopping) return;
      this.current = next;
      for (const w of prev.workers) {
        this.old.add(w);
        this.tell(w, { holdfast: 'drain', timeoutMs: drainTimeoutMs });
      }
      const version = this.versionOf(next);
      this.events.emit('upgrade-complete', { generation: next.n, version, workers: next.workers.size, draining: prev.workers.size, drainTimeoutMs });
    } finally {
      this.upgrading = false;
    }
  }

  private versionOf(gen: Generation): string {
    return [...gen.workers].map((w) => this.versions.get(w)).find(Boolean) ?? '?';
  }

  private shutdown(signal: NodeJS.Signals): void {
    if (this.stopping) {
      this.events.emit('shutdown-forced', { signal });
      for (const w of this.all()) w.process.kill('SIGKILL');
      return this.finish(EXIT_OK);
    }
    this.stopping = true;
    this.events.emit('signal', { signal });
    void this.notify.send('STOPPING=1', 'STATUS=stopping: sessions are told, then closed');
    // Health says 503 from now on; the listener closes once every worker is gone.
    this.admin?.closeIdle();
    this.tellAll({ holdfast: 'shutdown' });
    setTimeout(() => {
      for (const w of this.all()) w.process.kill('SIGKILL');
      this.finish(EXIT_OK);
    }, this.loaded.config.shutdownTimeoutMs + SHUTDOWN_GRACE_MS).unref();
    this.maybeDone();
  }

  private maybeDone(): void {
    if (!this.stopping || this.all().length > 0) return;
    this.admin?.close();
    this.finish(EXIT_OK);
  }

  private all(): Worker[] {
    return [...new Set([...this.current.workers, ...(this.starting?.workers ?? []), ...this.old])];
  }

  private tellAll(m: ToWorker): void {
    for (const w of this.all()) this.tell(w, m);
  }

  /**
   * A worker not serving yet has no handler for messages: a reload waits until it serves; anything
   * else (shutdown, drain) stops it with SIGTERM instead.
   */
  private tell(w: Worker, m: ToWorker): void {
    if (w.isConnected() && this.ready.has(w)) w.send(m);
    else if (m.holdfast === 'reload') this.reloadWhenReady.add(w);
    else w.process.kill('SIGTERM');
  }
}
