/**
 * The daemon: listeners, the session registry, start-up checks and graceful shutdown.
 * Sockets are accepted by holdfast's own net.Servers (TCP_NODELAY, counting, login grace from the
 * first byte) and handed to one ssh2 Server with injectSocket().
 */
import { createWindowBudget, UserWindowBudgets, WINDOW_BUDGET } from './ssh/channel-window.js';
import net from 'node:net';
import { VERSION } from './version.js';
import type { Listener, ResolvedConfig } from './config/resolve.js';
import { Events } from './events.js';
import { AuthorizedKeysStore } from './ssh/auth.js';
import { loadHostKeySet } from './ssh/host-key-set.js';
import { bindListener, type BoundAddress } from './ingress/listen.js';
import { EventThrottle } from './event-throttle.js';
import { CertificateFiles, type CertificateSources } from './ssh/user-ca.js';
import { reauthorize } from './session/auth-verdict.js';
import { reapplyAll } from './session/reapply.js';
import { describeDetached } from './resume/describe.js';
import { ResumeRegistry } from './resume/registry.js';
import { QueuedBytes } from './queued-bytes.js';
import { createSsh2Server, serverAlgorithms } from './ssh/server-adapter.js';
import { mlkemSource, nativeCryptoAvailable, type Connection } from './ssh/ssh2.js';
import { Session, type SessionContext } from './session.js';
import type { Peer } from './ingress/proxy-gate.js';
import { Intake } from './ingress/intake.js';
import type { ReapplyCounts } from './events.js';
import { systemLookup, type Lookup } from './routing/resolve-destination.js';
import { warnDegradedRuntime } from './degraded-runtime.js';
import { UpstreamPool } from './legs/ssh-upstream.js';
import { AddressGuard, adminEndpoint, ownAddresses, resolveAdminEndpoint } from './routing/guard.js';
import { describeSession, type SessionInfo } from './session/describe.js';
import type { LiveView } from './metrics/collector.js';
import { StartupGate, type StartupAdmitter } from './startups.js';
import { KeyedCount } from './keyed-count.js';
import { FdBudget, fdLimitWarning, nofileLimit, openFdCount, planFds, setFdBudget, type FdPlan } from './fd-budget.js';

export { VERSION };

export class HoldfastServer {
  private config: ResolvedConfig;
  private readonly listeners: net.Server[] = [];
  private readonly sessions = new Set<Session>();
  /** Resumable sessions (`holdfast connect`): they outlive the connection that opened them. */
  private readonly resumes = new ResumeRegistry();
  private readonly queued = new QueuedBytes(
    () => this.sessions,
    undefined,
    () => this.resumes.all().flatMap((e) => (e.leg.isAttached ? [] : [{ user: e.user, queuedBytes: e.leg.queuedBytes }])),
  );
  private readonly bySocket = new WeakMap<net.Socket, Session>();
  private ssh2: ReturnType<typeof createSsh2Server> | undefined;
  private keys: AuthorizedKeysStore;
  /** trustedUserCAKeys, authorizedPrincipalsFile, revokedKeys (re-read when they change). */
  private certs: CertificateFiles;
  private stopping: Promise<void> | undefined;
  private readonly pool: UpstreamPool;
  private readonly windowBudget = createWindowBudget(WINDOW_BUDGET);
  /** Each user's share of window growth, while they have sessions (src/ssh/channel-window.ts). */
  private readonly userBudgets = new UserWindowBudgets();
  /** Addresses a wildcard route never reaches: loopback, link-local, holdfast's own. */
  private readonly guard: AddressGuard;
  private readonly startedWith: ResolvedConfig;
  private readonly throttle: EventThrottle;
  /** Accepted sockets up to their session: refusals, PROXY headers, startups (src/ingress/intake.ts). */
  private readonly intake: Intake;
  /** What every session is given (src/session/scope.ts). */
  private readonly sessionContext: SessionContext;
  /** File descriptors: the session cap and the sockets' budget (src/fd-budget.ts); set at start. */
  private fds: FdPlan = planFds('auto', Infinity, 0);
  private readonly budget = new FdBudget(Infinity);
  private openAtStart = 0;
  /** Logged-in connections per user (maxConnectionsPerUser). */
  private readonly logins = new KeyedCount();

  constructor(
    config: ResolvedConfig,
    /** Every event of the daemon; the logger is one subscriber (src/events.ts). */
    readonly events: Events,
    lookup: Lookup = systemLookup,
    /** Where startups are admitted: this process alone, or the primary for every worker. */
    startups: StartupAdmitter = new StartupGate(),
  ) {
    this.config = config;
    this.startedWith = config;
    this.throttle = new EventThrottle(events);
    // Listeners are bound once (a listen change needs a restart); the interfaces they stand for
    // (0.0.0.0, ::) change while holdfast runs, so the guard reads them again (src/routing/guard.ts).
    const listen = config.listen;
    this.guard = new AddressGuard(() => ownAddresses(listen), adminEndpoint(config.admin));
    this.keys = this.newKeyStore(config.authorizedKeys);
    this.certs = new CertificateFiles(certificateSources(config));
    this.pool = new UpstreamPool({
      max: config.upstreamPool.max,
      idleTimeoutMs: config.upstreamPool.idleTimeoutMs,
      connectTimeoutMs: config.connectTimeoutMs,
      ownKnownHosts: config.ownKnownHosts,
      events,
    });
    this.intake = new Intake({
      config: () => this.config,
      listener: (index) => this.listenerNow(index),
      fds: () => this.fds,
      budget: this.budget,
      startups,
      throttle: this.throttle,
      events,
      stopping: () => this.stopping !== undefined,
      sessions: () => this.sessions.size,
      start: (sock, peer, release) => this.startSession(sock, peer, release),
    });
    this.sessionContext = {
      config: () => this.config,
      events,
      keys: () => this.keys,
      certificates: () => this.certs,
      lookup,
      pool: this.pool,
      windowBudget: this.windowBudget,
      userWindowBudget: (user) => this.userBudgets.take(user),
      guard: this.guard,
      holdLogin: (user) => this.holdLogin(user),
      queued: (user) => this.queued.of(user),
      resumes: this.resumes,
    };
  }

  /** maxConnectionsPerUser, counted in this worker. */
  private holdLogin(user: string): (() => void) | { held: number; max: number } {
    const max = this.config.maxConnectionsPerUser;
    const held = this.logins.held(user);
    return held >= max ? { held, max } : this.logins.take(user);
  }

  private newKeyStore(template: string): AuthorizedKeysStore {
    return new AuthorizedKeysStore(template, (file, skipped) => {
      for (const s of skipped) this.events.emit('authorized-keys-line-skipped', { file, line: s.line, why: s.why });
    });
  }

  get sessionCount(): number {
    return this.sessions.size;
  }

  /** What a metrics scrape reads of the live sessions (src/metrics/collector.ts). */
  readonly live: LiveView = {
    visit: (session, channel) => {
      for (const s of this.sessions) {
        const mode = s.mode;
        session(mode);
        if (mode) s.registry.forEach((r) => channel(r.route?.name, r.relay.bytesUp, r.relay.bytesDown));
      }
    },
    resumables: () => {
      let attached = 0;
      for (const e of this.resumes.all()) if (e.leg.isAttached) attached++;
      return { attached, detached: this.resumes.size - attached };
    },
  };

  /** The admin side ends session `id` (a live connection, or a detached resumable session). */
  closeSession(id: string, why: string): boolean {
    for (const s of this.sessions) {
      if (s.id !== id) continue;
      s.close('admin-closed', why);
      return true;
    }
    const e = this.resumes.all().find((r) => r.id === id);
    if (!e) return false;
    e.leg.close('admin-closed', why);
    return true;
  }

  /** The live sessions, for the admin API's /sessions. */
  describeSessions(): SessionInfo[] {
    const detached = this.resumes.all().filter((e) => !e.leg.isAttached);
    return [...[...this.sessions].map(describeSession), ...detached.map(describeDetached)];
  }

  async start(): Promise<BoundAddress[]> {
    const c = this.config;
    const tcpKa = warnDegradedRuntime(this.events);
    const hostKeys = loadHostKeySet(c, this.events);
    // admin.address may be a name (localhost): what it resolves to is never a destination either.
    if (c.admin && !net.isIP(c.admin.address)) this.guard.setAdmin(await resolveAdminEndpoint(c.admin));
    this.openAtStart = openFdCount();
    setFdBudget(this.budget);
    this.planFds(c);
    this.ssh2 = createSsh2Server(hostKeys, `holdfast_${VERSION}`, (conn, socket) => this.onSsh(conn, socket));

    const bound: BoundAddress[] = [];
    try {
      for (const [i, l] of c.listen.entries()) bound.push(await this.listen(l.address, l.port, i));
    } catch (err) {
      this.closeListeners();
      throw err;
    }
    this.events.emit('started', {
      version: VERSION,
      pid: process.pid,
      config: c.source,
      listen: bound.map((b) => `${b.address.includes(':') ? `[${b.address}]` : b.address}:${b.port}`),
      hostKeys: c.hostKeys,
      authorizedKeys: c.authorizedKeys,
      routes: c.routes.map((r) => r.name),
      nativeCrypto: nativeCryptoAvailable(),
      kex: serverAlgorithms().kex,
      mlkem: mlkemSource(),
      tcpKeepalive: tcpKa === null,
      maxSessions: Number.isFinite(this.fds.maxSessions) ? this.fds.maxSessions : null,
      fdLimit: Number.isFinite(this.fds.limit) ? this.fds.limit : null,
    });
    return bound;
  }

  /** maxSessions and the sockets' budget from RLIMIT_NOFILE (at start, and again at a reload). */
  private planFds(c: ResolvedConfig): void {
    this.fds = planFds(c.maxSessions, nofileLimit(), this.openAtStart);
    this.budget.sockets = this.fds.sockets;
    const low = fdLimitWarning(this.fds, this.openAtStart);
    if (low) this.events.emit('fd-limit-low', low);
  }

  private async listen(address: string, port: number, index: number): Promise<BoundAddress> {
    const { server, bound } = await bindListener(
      address,
      port,
      (sock) => this.intake.accept(sock, index),
      (err) => {
        // Out of file descriptors: the connection could not even be accepted (libuv closes it).
        if (err.code === 'EMFILE' || err.code === 'ENFILE') {
          this.throttle.emit('fd-exhausted', { why: `${err.code}: cannot accept a connection (out of file descriptors)`, sessions: this.sessions.size, fix: 'raise LimitNOFILE in the systemd unit, or lower maxStartups' });
        } else this.events.emit('listener-error', { error: String(err) });
      },
    );
    this.listeners.push(server);
    this.events.emit('listening', bound);
    return bound;
  }

  private startSession(sock: net.Socket, peer: Peer, release: () => void): void {
    const session = new Session(sock, this.sessionContext, peer, release);
    this.sessions.add(session);
    void session.closed.then(() => this.sessions.delete(session));
    this.bySocket.set(sock, session);
    this.events.emit('session-start', { session: session.id, src: session.src, ...(peer.via ? { via: peer.via } : {}) });
    this.ssh2!.injectSocket(sock);
  }

  /** Listener `index` as the config now in force has it (a reload changes proxyProtocol), or as bound. */
  private listenerNow(index: number): Listener {
    const bound = this.startedWith.listen[index]!;
    const now = this.config.listen[index];
    return now && now.address === bound.address && now.port === bound.port ? now : bound;
  }

  private onSsh(conn: Connection, socket: net.Socket): void {
    const session = this.bySocket.get(socket);
    if (!session) {
      socket.destroy();
      return;
    }
    session.attach(conn);
  }

  /**
   * Applies a re-read config to new decisions (routes, authorized keys, limits, keepalive) and to the
   * live sessions (Session.reapply: access re-checked, legs re-planned). Listeners and host keys are
   * bound at start; `restartNeededFor` names what only a restart changes.
   */
  reload(next: ResolvedConfig): { restartNeededFor: string[]; live: ReapplyCounts } {
    // Compared with what the process started with (what is bound now), not with the previous
    // reload: a change that was undone needs no restart any more.
    const restart: string[] = [];
    const bound = (c: ResolvedConfig) => JSON.stringify(c.listen.map((l) => [l.address, l.port]));
    if (bound(next) !== bound(this.startedWith)) restart.push('listen');
    if (JSON.stringify(next.hostKeys) !== JSON.stringify(this.startedWith.hostKeys)) restart.push('hostKeys');
    if (JSON.stringify(next.hostCertificates) !== JSON.stringify(this.startedWith.hostCertificates)) restart.push('hostCertificates');
    if (next.authorizedKeys !== this.config.authorizedKeys) this.keys = this.newKeyStore(next.authorizedKeys);
    if (JSON.stringify(certificateSources(next)) !== JSON.stringify(this.certs.sources)) this.certs = new CertificateFiles(certificateSources(next));
    // Planned again only when the setting changed (the planned number is not the setting for auto).
    const replan = next.maxSessions !== this.config.maxSessions;
    this.config = next;
    if (replan) this.planFds(next);
    const live = reapplyAll(this.sessions);
    // A resumable session answers to its key too, attached or not (its key left, expired, or its
    // from= no longer matches the address it was last used from: it ends).
    for (const e of this.resumes.all()) {
      const access = reauthorize(this.keys, e.user, e.key, e.clientIp, new Date(), this.certs);
      if (access.ok) continue;
      this.events.emit('access-revoked', { session: e.id, user: e.user, src: e.src, dst: e.dst, why: access.why });
      e.leg.close('access-revoked', access.why);
      live.channelsRevoked++;
    }
    return { restartNeededFor: restart, live };
  }

  /**
   * After an upgrade (src/daemon/worker.ts): stop accepting at once; the sessions carry on until they
   * end, or until `timeoutMs`, when the rest are closed like at shutdown (reason `shutdown`).
   */
  async drain(timeoutMs: number): Promise<void> {
    this.closeListeners();
    this.events.emit('drain-begin', { sessions: this.sessions.size, timeoutMs });
    await within(this.allClosed(), timeoutMs);
    await this.stop();
  }

  /** Resolves when no session is left (one handed over while the listeners closed included). */
  private async allClosed(): Promise<void> {
    while (this.sessions.size > 0) await Promise.all([...this.sessions].map((s) => s.closed));
  }

  /**
   * Stop accepting, close every session gracefully (the user's ssh prints why), destroy those still
   * open after `shutdownTimeout`, and resolve when every session has closed. Idempotent.
   */
  stop(reason: 'shutdown' = 'shutdown'): Promise<void> {
    this.stopping ??= (async () => {
      const timeoutMs = this.config.shutdownTimeoutMs;
      this.events.emit('shutdown-begin', { sessions: this.sessions.size, timeoutMs });
      this.closeListeners();
      // Resumable sessions end with the process (no transport could come back to it).
      for (const e of this.resumes.all()) e.leg.close('shutdown');
      for (const s of this.sessions) s.close(reason);
      await within(this.allClosed(), timeoutMs);
      for (const s of [...this.sessions]) s.destroy(reason);
      this.pool.closeAll('shutdown');
      // A destroyed socket emits 'close' on a later turn of the loop.
      await within(this.allClosed(), 1000);
      this.events.emit('shutdown-complete', { leftover: this.sessions.size });
    })();
    return this.stopping;
  }

  private closeListeners(): void {
    for (const l of this.listeners.splice(0)) l.close();
    this.intake.closeAll();
  }
}

function certificateSources(c: ResolvedConfig): CertificateSources {
  return { trustedUserCAKeys: c.trustedUserCAKeys, authorizedPrincipalsFile: c.authorizedPrincipalsFile, revokedKeys: c.revokedKeys };
}

/** Waits for `p`, but not longer than `ms`. */
async function within(p: Promise<unknown>, ms: number): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  await Promise.race([p, new Promise((r) => (timer = setTimeout(r, ms)))]);
  clearTimeout(timer);
}
