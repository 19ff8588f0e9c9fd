/**
 * A session is one client connection, from TCP accept to close: its client leg (the SSH connection),
 * its jump channels and their upstream legs, and one close(reason) path.
 *
 * Lifecycle: accepted -> (SSH header) attached -> authenticated -> closing -> closed.
 * Timers: `loginGrace` (accept -> authenticated) and `forceClose` (graceful close -> destroy).
 * Every timer and upstream socket is released on close; one summary line is logged when the client
 * socket has closed, with the final byte counts.
 */
import crypto from 'node:crypto';
import type { Connection, ServerChannel, ServerSession, AuthContext, PublicKeyAuthContext } from './ssh/ssh2.js';
import type { ResolvedConfig, ResolvedRoute } from './config/resolve.js';
import type { Logger } from './log.js';
import { matchOfferedKey, signatureValid, type AuthorizedKeysStore } from './ssh/auth.js';
import { permitOpenAllows, type AuthorizedKey } from './ssh/authorized-keys.js';
import { unmapIPv4 } from './routing/canonical.js';
import { disconnect, rejectChannel } from './ssh/server-adapter.js';
import { fingerprintOf } from './ssh/known-hosts.js';
import { connectTcp, ConnectError, describeConnectError } from './legs/tcp-upstream.js';
import { JumpChannel, type ChannelCloseReason } from './legs/jump-channel.js';
import { canonicalDestination, resolveAndRoute, type Lookup } from './legs/resolve-destination.js';
import type { AddressGuard } from './routing/guard.js';
import { formatDestination } from './routing/route-table.js';
import { ClientKeepalive } from './legs/client-keepalive.js';
import { applyTcpKeepalive } from './legs/tcp-keepalive.js';
import { tcpKeepaliveOptions } from './keepalive/tcp-options.js';
import { describePolicy, strictest, type KeepalivePolicy } from './keepalive/policy.js';
import { statsForLog, timeoutFields, type MonitorStats } from './keepalive/monitor.js';
import { UpstreamDialError, type PooledUpstream, type UpstreamPool } from './legs/ssh-upstream.js';
import { findRoute } from './routing/route-table.js';
import { createWindowBudget, CONNECTION_WINDOW_BUDGET, type WindowBudget } from './ssh/channel-window.js';
import net from 'node:net';
import type { Duplex } from 'node:stream';
import { parseGatewayLogin } from './routing/gateway-login.js';
import { coalesceWrites } from './legs/coalesce.js';
import { ForwardedAgent } from './ssh/forwarded-agent.js';
import { GatewayRefused, GatewayUpstream, type GatewayCloseReason } from './legs/ssh-gateway.js';
import { GatewayChannel, type GatewayChannelCloseReason } from './legs/gateway-channel.js';

export type CloseReason =
  | 'peer-closed'
  | 'no-handshake'
  | 'login-grace'
  | 'auth-failed'
  | 'protocol-error'
  | 'shutdown'
  | 'client-keepalive-timeout'
  | 'upstream-keepalive-timeout'
  | 'upstream-closed'
  | 'upstream-error';

export interface SessionContext {
  /** Read at each use, so a reload applies to the next decision. */
  readonly config: () => ResolvedConfig;
  readonly log: Logger;
  readonly keys: AuthorizedKeysStore;
  readonly lookup: Lookup;
  readonly pool: UpstreamPool;
  /** Receive windows beyond ssh2's 2 MiB come out of this (src/ssh/channel-window.ts). */
  readonly windowBudget: WindowBudget;
  /** The user's share of window growth, across their connections; release() when the session ends. */
  readonly userWindowBudget: (user: string) => { readonly budget: WindowBudget; release(): void };
  /** Addresses wildcards never reach (loopback, link-local, holdfast's own: bound once, at start). */
  readonly guard: AddressGuard;
}

const MAX_LOGGED_DESTINATIONS = 20;
const GATEWAY_DRAIN_MS = 1000;
/** Client-caused warn lines logged per connection (refusals, failed logins); the rest are counted. */
const MAX_FAILURE_LINES = 20;

export class Session {
  readonly id = crypto.randomBytes(4).toString('hex');
  readonly src: string;
  /** The client's address, IPv4-mapped ones as IPv4 (from= options, logs). */
  readonly clientIp: string;
  readonly startedAt = Date.now();
  private conn: Connection | undefined;
  private user: string | undefined;
  private authKey: AuthorizedKey | undefined;
  private authFailures = 0;
  private sawNone = false;
  /** Open jump channels and the route each was opened on (the client leg's policy depends on them). */
  private readonly channels = new Map<JumpChannel, ResolvedRoute>();
  private clientKeepalive: ClientKeepalive | undefined;
  /** For channels through a pooled bastion connection: tells the pool the channel is done. */
  private readonly releases = new Map<JumpChannel, () => void>();
  private readonly pending = new AbortController();
  private pendingOpens = 0;
  private nextChannelId = 0;
  private readonly destinations = new Set<string>();
  private channelCount = 0;
  private bytesUp = 0;
  private bytesDown = 0;
  private reason: CloseReason | undefined;
  private detail: string | undefined;
  private loginGrace: NodeJS.Timeout | undefined;
  private forceClose: NodeJS.Timeout | undefined;
  private closing = false;
  private finished = false;
  private protocolError: string | undefined;
  /** Gateway mode (login `user+target[+port]`): the target, the leg to it and its session channels. */
  private gatewayTarget: { readonly host: string; readonly port: number } | undefined;
  private gatewayLoginError: string | undefined;
  private gateway: GatewayUpstream | undefined;
  private gatewayRoute: ResolvedRoute | undefined;
  private readonly gatewayChannels = new Set<GatewayChannel>();
  /** After the gateway leg died: the client gets this long to hang up by itself. */
  private gatewayDrain: NodeJS.Timeout | undefined;
  private pendingReason: CloseReason | undefined;
  /** Session channels accepted only to print "no shell here", until the client closes them. */
  private refusedSessions = 0;
  /** Lines logged through logFailure(); past MAX_FAILURE_LINES they are only counted. */
  private failureLines = 0;
  private readonly connectionBudget = createWindowBudget(CONNECTION_WINDOW_BUDGET);
  private userBudget: { readonly budget: WindowBudget; release(): void } | undefined;

  constructor(
    readonly socket: net.Socket,
    private readonly ctx: SessionContext,
    private readonly onFinished: (s: Session) => void,
    /** The connection stopped being an unauthenticated "startup" (src/startups.ts): called once. */
    private readonly startupEnded: () => void = () => {},
  ) {
    this.clientIp = unmapIPv4(socket.remoteAddress ?? '');
    this.src = `${this.clientIp || '?'}:${socket.remotePort ?? 0}`;
    socket.setNoDelay(true);
    coalesceWrites(socket);
    socket.on('error', (err: NodeJS.ErrnoException) => {
      this.detail ??= err.code ?? err.message;
    });
    socket.once('close', () => this.finish());
    const grace = ctx.config().loginGraceTimeMs;
    if (grace > 0) this.loginGrace = setTimeout(() => this.close('login-grace'), grace);
  }

  get authenticated(): boolean {
    return this.authKey !== undefined;
  }



  /** Called when ssh2 has read the client's SSH identification line. */
  attach(conn: Connection): void {
    this.conn = conn;
    conn.on('error', (err: Error & { level?: string }) => {
      // ssh2's server marks errors of the client's TCP socket with level 'socket' (ECONNRESET when
      // the user's ssh exits with data in flight). The peer went away: that is 'peer-closed', with the
      // socket error as detail. Only faults in the SSH protocol itself make it 'protocol-error'.
      // (The socket's own 'error' handler has already recorded that detail.)
      if (err.level !== 'socket') this.protocolError ??= err.message;
    });
    conn.on('authentication', (authCtx: AuthContext) => this.authenticate(authCtx));
    conn.on('ready', () => {
      clearTimeout(this.loginGrace);
      this.loginGrace = undefined;
      this.startupEnded();
      if (this.closing) return;
      this.clientKeepalive = new ClientKeepalive(conn, this.socket, this.clientPolicy(), {
        dead: (stats) => this.clientDead(stats),
        probe: (n) => this.ctx.log.debug('keepalive-probe', () => ({ session: this.id, leg: 'client', outstanding: n, routes: this.routeNames() })),
      });
      // Gateway logins dial the target at once: the leg is ready (or its failure known) by the time
      // the client's session request arrives.
      if (this.gatewayTarget && !this.authKey?.options.command) this.startGateway(conn, this.gatewayTarget);
    });
    conn.on('tcpip', (accept, reject, info) => {
      void this.openJump(accept, reject, info);
    });
    conn.on('session', (accept, reject) => this.openSession(accept, reject));
    // ssh -R / remote streamlocal forwarding: a jump host listens on nothing for its users. ssh2
    // would refuse these by itself; the listener is here so that each refusal is logged.
    conn.on('request', (_accept, reject, name: string, info: { bindAddr?: string; bindPort?: number; socketPath?: string } | undefined) => {
      const bind = info?.bindAddr !== undefined ? { bind: `${info.bindAddr}:${info.bindPort}` } : info?.socketPath !== undefined ? { bind: info.socketPath } : {};
      if (name === 'tcpip-forward' || name === 'streamlocal-forward@openssh.com') {
        this.logFailure('forward-refused', { session: this.id, user: this.user, src: this.src, kind: name, ...bind, why: 'holdfast does not listen for users (ssh -R is not offered)' });
      }
      reject?.();
    });
  }

  /**
   * Warn lines a client can cause at will (refused channels and requests, failed logins): the first
   * MAX_FAILURE_LINES of a connection are logged, the rest only counted in its session-close line,
   * so one connection cannot flood the log.
   */
  private logFailure(event: string, fields: Record<string, unknown>, level: 'warn' | 'info' = 'warn'): void {
    if (++this.failureLines > MAX_FAILURE_LINES) return;
    this.ctx.log[level](event, fields);
  }

  private openSession(accept: () => unknown, reject: () => void): void {
    if (this.closing) return reject();
    // Session channels count against maxChannels like forwarded ones, refused ones included (each
    // holds ssh2 state until the client closes it).
    const config = this.ctx.config();
    if (this.openChannels() >= config.maxChannels) {
      this.logFailure('channel-refused', { session: this.id, user: this.user, src: this.src, kind: 'session', why: `maxChannels ${config.maxChannels} reached` });
      return rejectChannel(this.conn!, reject, 'resource-shortage', `too many open channels (limit ${config.maxChannels})`);
    }
    if (this.gatewayLoginError) return this.refuseSession(accept, `holdfast: ${this.gatewayLoginError}\r\n`);
    if (this.gatewayTarget && this.authKey?.options.command !== undefined) {
      return this.refuseSession(accept, 'holdfast: your key has a forced command (command= in authorized_keys), so it gets no gateway session\r\n');
    }
    if (!this.gateway) return this.refuseSession(accept);
    const session = accept() as ServerSession | undefined;
    if (!session) return;
    const gateway = this.gateway;
    const opts = this.authKey!.options;
    const base = () => ({ session: this.id, user: this.user, src: this.src, dst: gateway.dst, addr: gateway.address, route: gateway.route?.name });
    const gc = new GatewayChannel({ id: this.nextChannelId++, kind: 'session' }, session, gateway, opts, this.windowBudgets(), {
      started: (c) => {
        if (this.destinations.size < MAX_LOGGED_DESTINATIONS) this.destinations.add(gateway.dst);
        this.ctx.log.info('channel-open', {
          ...base(),
          channel: c.info.id,
          kind: c.info.kind,
          ...(c.info.command !== undefined ? { command: c.info.command } : {}),
          clientKeepalive: this.clientKeepalive ? describePolicy(this.clientKeepalive.policy) : undefined,
          upstreamKeepalive: gateway.route ? { layer: 'ssh', policy: describePolicy(gateway.route.keepalive.upstream) } : undefined,
        });
      },
      refused: (c, what) => this.logFailure('gateway-request-refused', { ...base(), channel: c.info.id, what }),
      closed: (c, reason, detail) => this.gatewayChannelClosed(c, reason, detail),
    });
    this.gatewayChannels.add(gc);
    this.channelCount++;
  }

  private gatewayChannelClosed(c: GatewayChannel, reason: GatewayChannelCloseReason, detail?: string): void {
    this.gatewayChannels.delete(c);
    this.bytesUp += c.bytesUp;
    this.bytesDown += c.bytesDown;
    this.ctx.log.info('channel-close', {
      session: this.id,
      user: this.user,
      src: this.src,
      dst: this.gateway?.dst,
      route: this.gateway?.route?.name,
      channel: c.info.id,
      kind: c.info.kind,
      reason,
      ...(detail ? { detail } : {}),
      bytesUp: c.bytesUp,
      bytesDown: c.bytesDown,
      durationMs: Date.now() - c.openedAt,
    });
  }

  private startGateway(conn: Connection, target: { host: string; port: number }): void {
    const fields = { session: this.id, user: this.user, src: this.src };
    this.gateway = new GatewayUpstream(this.user!, target.host, target.port, {
      config: this.ctx.config(),
      log: this.ctx.log,
      lookup: this.ctx.lookup,
      guard: this.ctx.guard,
      agent: new ForwardedAgent(conn),
      fields,
      routed: (route) => {
        this.gatewayRoute = route;
        this.clientKeepalive?.setPolicy(this.clientPolicy());
      },
      died: (reason, detail) => this.gatewayDied(reason, detail),
    });
  }

  /**
   * The upstream leg died: each session channel tells the user in one line while the client leg still
   * works, then the client connection is closed with the same reason.
   */
  private gatewayDied(reason: GatewayCloseReason, detail: string): void {
    const message = `lost the connection to ${this.gateway!.dst}: ${reason} (${detail})`;
    const told = this.gatewayChannels.size;
    for (const gc of [...this.gatewayChannels]) gc.abandon(message);
    this.detail ??= detail;
    const sessionReason: CloseReason = reason === 'upstream-keepalive-timeout' || reason === 'upstream-closed' ? reason : 'upstream-error';
    if (told === 0) return this.close(sessionReason, { graceful: true });
    // OpenSSH's client drops channel output it has not yet written when a DISCONNECT arrives in the
    // same read, so the line would be lost: let the client print it, see its last channel close and
    // hang up by itself; disconnect only if it has not done so after `drainMs`.
    this.pendingReason = sessionReason;
    this.gatewayDrain = setTimeout(() => this.close(sessionReason, { graceful: true }), GATEWAY_DRAIN_MS);
  }

  /** Window growth comes out of the process's, this user's and this connection's budgets at once. */
  private windowBudgets(): WindowBudget[] {
    this.userBudget ??= this.ctx.userWindowBudget(this.user!);
    return [this.ctx.windowBudget, this.userBudget.budget, this.connectionBudget];
  }

  private openChannels(): number {
    return this.channels.size + this.gatewayChannels.size + this.pendingOpens + this.refusedSessions;
  }

  private authenticate(authCtx: AuthContext): void {
    const config = this.ctx.config();
    // `alice+db1.internal[+port]` is alice asking for gateway mode to db1.internal: alice is who
    // authenticates; the target is checked against the gateway routes when the leg is dialled.
    const login = parseGatewayLogin(authCtx.username);
    const user = login.ok ? login.value.user : login.user || authCtx.username;
    this.user = user;
    this.gatewayTarget = login.ok ? login.value.target : undefined;
    this.gatewayLoginError = login.ok ? undefined : login.message;
    if (this.closing) return authCtx.reject();
    const target = this.gatewayTarget ? { target: formatDestination({ ...this.gatewayTarget, address: this.gatewayTarget.host }) } : {};
    const fields = { session: this.id, user, src: this.src, method: authCtx.method, ...target };
    if (authCtx.method !== 'publickey') {
      // The first "none" is how every client asks which methods exist; sshd does not count it.
      if (authCtx.method === 'none' && !this.sawNone) this.sawNone = true;
      else this.failAuth(`${authCtx.method} authentication is not offered`, fields, config.maxAuthTries);
      if (!this.closing) authCtx.reject(['publickey']);
      return;
    }
    const pk = authCtx as PublicKeyAuthContext;
    const offered = { algo: pk.key.algo, data: pk.key.data };
    const keyFields = { ...fields, keyType: pk.key.algo, fingerprint: fingerprintOf(pk.key.data) };
    if (pk.key.algo === 'ssh-rsa' && pk.hashAlgo !== 'sha256' && pk.hashAlgo !== 'sha512') {
      // Asked or signed with the SHA-1 "ssh-rsa" algorithm (refused by OpenSSH too since 8.8).
      this.failAuth('ssh-rsa (SHA-1) signatures are refused; the client must use rsa-sha2-256 or rsa-sha2-512', keyFields, config.maxAuthTries);
      if (!this.closing) authCtx.reject(['publickey']);
      return;
    }
    const lookup = this.ctx.keys.lookup(user);
    if (!lookup.ok) {
      this.failAuth(lookup.why, keyFields, config.maxAuthTries);
      if (!this.closing) authCtx.reject(['publickey']);
      return;
    }
    const match = matchOfferedKey(lookup.keys, offered, this.clientIp, new Date());
    if (!match.ok) {
      this.failAuth(match.why, keyFields, config.maxAuthTries);
      if (!this.closing) authCtx.reject(['publickey']);
      return;
    }
    if (!pk.signature) {
      authCtx.accept(); // "this key would do": the client signs next (RFC 4252 §7)
      return;
    }
    if (!pk.blob || !signatureValid(match.entry, pk.blob, pk.signature, pk.hashAlgo)) {
      this.failAuth('signature did not verify', keyFields, config.maxAuthTries);
      if (!this.closing) authCtx.reject(['publickey']);
      return;
    }
    this.authKey = match.entry;
    this.ctx.log.info('auth-accepted', { ...keyFields, keyFile: lookup.file, keyLine: match.entry.line });
    authCtx.accept();
  }

  private failAuth(why: string, fields: Record<string, unknown>, maxAuthTries: number): void {
    this.authFailures++;
    this.logFailure('auth-failed', { ...fields, why, failures: this.authFailures }, 'info');
    if (this.authFailures >= maxAuthTries) {
      this.detail = `${this.authFailures} failed authentication attempts (maxAuthTries ${maxAuthTries})`;
      this.close('auth-failed');
    }
  }

  /**
   * The client leg's policy: the defaults while no channel is open; with channels open, the strictest
   * of their routes' `keepalive.client` (shortest interval; on a tie the shorter detection bound).
   */
  private clientPolicy(): KeepalivePolicy {
    return strictest(this.activeRoutes().map((r) => r.keepalive.client)) ?? this.ctx.config().keepalive.client;
  }

  /** Routes in use: those of the open jump channels, and the gateway route. */
  private activeRoutes(): ResolvedRoute[] {
    return [...this.channels.values(), ...(this.gatewayRoute ? [this.gatewayRoute] : [])];
  }

  private routeNames(): string[] {
    return [...new Set(this.activeRoutes().map((r) => r.name))];
  }

  private clientDead(stats: MonitorStats): void {
    const p = this.clientKeepalive!.policy;
    this.ctx.log.warn('client-keepalive-timeout', {
      session: this.id,
      user: this.user,
      src: this.src,
      reason: 'client-keepalive-timeout',
      leg: 'client',
      routes: this.routeNames(),
      ...timeoutFields(p, stats),
    });
    this.close('client-keepalive-timeout');
  }

  private refuseSession(accept: () => unknown, why?: string): void {
    const session = accept() as (NodeJS.EventEmitter & Record<string, unknown>) | undefined;
    if (!session) return;
    this.refusedSessions++;
    session.once('close', () => this.refusedSessions--);
    const port = this.socket.localPort ?? 2222;
    const user = this.user ?? 'you';
    const message =
      why ??
      `holdfast: this is an SSH jump host; it runs no shell or command.\r\n` +
        `holdfast: use it with -J, e.g.  ssh -J ${user}@<this-host>:${port} user@target\r\n`;
    const answer = (acceptReq?: () => unknown) => acceptReq?.();
    session.on('pty', answer);
    session.on('env', answer);
    session.on('window-change', answer);
    const refuse = (acceptReq?: () => unknown) => {
      // accept() synchronously (ssh2 drops data before accept), then one line on stderr and exit 1.
      const ch = acceptReq?.() as ServerChannel | undefined;
      if (!ch) return;
      ch.stderr.write(message);
      ch.exit(1);
      ch.end();
    };
    session.on('shell', refuse);
    session.on('exec', refuse);
    session.on('subsystem', refuse);
    this.logFailure('session-channel-refused', { session: this.id, user: this.user, src: this.src, ...(why ? { why: why.replace(/^holdfast: |\r\n$/g, '') } : {}) }, 'info');
  }

  private async openJump(
    accept: () => ServerChannel | undefined,
    reject: () => void,
    info: { destIP: string; destPort: number; srcIP: string; srcPort: number },
  ): Promise<void> {
    const config = this.ctx.config();
    const conn = this.conn!;
    const user = this.user!;
    // One spelling of the destination, decided before anything else looks at it (canonical.ts).
    const asked = canonicalDestination(info.destIP, info.destPort);
    const host = asked.ok ? asked.host : info.destIP;
    const port = info.destPort;
    const dst = formatDestination({ host, port, address: host });
    const base = { session: this.id, user, src: this.src, dst };
    const refuse = (why: string, description: string) => {
      this.logFailure('channel-refused', { ...base, why });
      rejectChannel(conn, reject, 'prohibited', description);
    };
    if (!asked.ok) return refuse(`not a destination: ${asked.why}`, `holdfast: not a valid destination (${asked.why})`);
    const canonical = asked;

    const opts = this.authKey!.options;
    if (!opts.portForwarding) return refuse('key has no-port-forwarding/restrict', 'port forwarding is disabled for this key');
    if (!permitOpenAllows(opts, host, port)) return refuse('not allowed by the key\'s permitopen=', `${dst} is not allowed by permitopen for this key`);
    if (this.openChannels() >= config.maxChannels) {
      this.logFailure('channel-refused', { ...base, why: `maxChannels ${config.maxChannels} reached` });
      return rejectChannel(conn, reject, 'resource-shortage', `too many open channels (limit ${config.maxChannels})`);
    }

    this.pendingOpens++;
    try {
      if (this.gatewayTarget || this.gatewayLoginError) return await this.openGatewayForward(accept, reject, info, dst, base);
      // Gateway routes serve gateway logins only.
      const routes = config.routes.filter((r) => !r.gateway);
      // Routes with `via` are matched on the name (or the literal address): the last bastion
      // resolves the name, which may exist only in its network.
      const literal = canonical.kind === 'name' ? '' : host;
      const byName = findRoute(routes, user, { host, kind: canonical.kind, port, address: literal, protection: this.ctx.guard.protection(literal) });
      if (byName.route?.via) return await this.openVia(byName.route, accept, reject, { ...info, destIP: host }, dst, base);
      const res = await resolveAndRoute(routes, user, canonical, this.ctx.lookup, config.connectTimeoutMs, this.ctx.guard);
      if (this.closing) return rejectChannel(conn, reject, 'connect-failed', 'session is closing');
      if (res.kind === 'refused') {
        const why = res.decision.misses.length ? res.decision.misses.map((m) => `${m.route}: ${m.why}`).join('; ') : 'no routes configured';
        return refuse(`no route allows it (${why})`, `holdfast: no route allows ${user} to reach ${dst}`);
      }
      if (res.kind === 'unresolved') {
        return this.connectFailed(reject, { ...base, route: res.route.name }, `cannot resolve: ${res.code}`, `cannot resolve ${host}: ${res.code}`);
      }
      const route = res.decision.route;
      const address = res.address;
      let sock: net.Socket;
      try {
        sock = await connectTcp({ address, port, timeoutMs: config.connectTimeoutMs }, this.pending.signal);
      } catch (err) {
        const why = describeConnectError(err instanceof ConnectError ? err.code : 'EIO');
        return this.connectFailed(reject, { ...base, addr: address, route: route.name }, why, `${why} (${formatDestination({ host, port, address })})`);
      }
      this.acceptAndRelay(accept, reject, sock, route, dst, address);
    } finally {
      this.pendingOpens--;
    }
  }

  /**
   * `ssh -L` (a direct-tcpip channel) in a gateway session: opened by the target, over holdfast's
   * SSH connection to it; the target's sshd decides what it may reach (AllowTcpForwarding, PermitOpen).
   */
  private async openGatewayForward(
    accept: () => ServerChannel | undefined,
    reject: () => void,
    info: { destIP: string; destPort: number; srcIP: string; srcPort: number },
    dst: string,
    base: Record<string, unknown>,
  ): Promise<void> {
    const gateway = this.gateway;
    let stream: Duplex;
    try {
      if (!gateway) throw new GatewayRefused('closed', this.gatewayLoginError ?? 'no gateway leg');
      stream = await gateway.forwardOut(info.srcIP, info.srcPort, info.destIP, info.destPort);
    } catch (err) {
      return this.connectFailed(reject, { ...base, via: gateway?.dst, route: gateway?.route?.name }, err instanceof Error ? err.message : String(err));
    }
    this.acceptAndRelay(accept, reject, stream, gateway.route!, dst, `via ${gateway.dst}`);
  }

  private async openVia(
    route: ResolvedRoute,
    accept: () => ServerChannel | undefined,
    reject: () => void,
    info: { destIP: string; destPort: number; srcIP: string; srcPort: number },
    dst: string,
    base: Record<string, unknown>,
  ): Promise<void> {
    const chain = route.via!;
    const upstream = chain.map((u) => u.name).join('>');
    let jc: JumpChannel | undefined;
    let stream: Duplex;
    let pooled: PooledUpstream;
    try {
      pooled = await this.ctx.pool.acquire(chain);
      stream = await pooled.open(info.destIP, info.destPort, info.srcIP, info.srcPort, route.keepalive.upstream, (reason, detail) =>
        jc?.close(reason, detail),
      );
    } catch (err) {
      return this.connectFailed(reject, { ...base, route: route.name, upstream }, err instanceof UpstreamDialError ? err.message : String(err));
    }
    jc = this.acceptAndRelay(accept, reject, stream, route, dst, `via ${upstream}`);
    const release = () => pooled.release(stream);
    if (!jc || jc.isClosed) release();
    else this.releases.set(jc, release);
  }

  /**
   * The upstream leg could not be had: one `channel-connect-failed` line (none while the session is
   * closing: that is why) and "connect failed" to the client with `told` (default: `why`).
   */
  private connectFailed(reject: () => void, fields: Record<string, unknown>, why: string, told = why): void {
    if (!this.closing) this.logFailure('channel-connect-failed', { ...fields, why });
    rejectChannel(this.conn!, reject, 'connect-failed', told);
  }

  /** The upstream is connected: confirm the channel to the client and start relaying (or let go). */
  private acceptAndRelay(
    accept: () => ServerChannel | undefined,
    reject: () => void,
    upstream: Duplex,
    route: ResolvedRoute,
    dst: string,
    addr: string,
  ): JumpChannel | undefined {
    if (this.closing) {
      upstream.destroy();
      rejectChannel(this.conn!, reject, 'connect-failed', 'session is closing');
      return undefined;
    }
    const channel = accept();
    if (!channel) {
      upstream.destroy();
      return undefined;
    }
    return this.startRelay(channel, upstream, route, dst, addr);
  }

  private startRelay(channel: ServerChannel, sock: Duplex, route: ResolvedRoute, dst: string, addr: string): JumpChannel {
    const id = this.nextChannelId++;
    const upstream = route.keepalive.upstream;
    // Raw TCP upstream: kernel keepalive options. SSH upstream (via): the pooled connection's own
    // keepalive@openssh.com monitor, planned from the policies of the channels on it.
    const tcp = sock instanceof net.Socket ? applyTcpKeepalive(sock, tcpKeepaliveOptions(upstream)) : null;
    const jc = new JumpChannel(
      { id, dst, addr, route: route.name, upstreamKeepalive: tcp?.enabled ?? false },
      channel,
      sock,
      (c, reason, error) => this.channelClosed(c, reason, error),
      this.windowBudgets(),
    );
    this.channels.set(jc, route);
    this.channelCount++;
    if (this.destinations.size < MAX_LOGGED_DESTINATIONS) this.destinations.add(dst);
    this.clientKeepalive?.setPolicy(this.clientPolicy());
    this.ctx.log.info('channel-open', {
      session: this.id,
      user: this.user,
      src: this.src,
      dst,
      addr,
      route: route.name,
      channel: id,
      clientKeepalive: this.clientKeepalive ? describePolicy(this.clientKeepalive.policy) : undefined,
      upstreamKeepalive: tcp ?? { layer: 'ssh', policy: describePolicy(upstream) },
    });
    return jc;
  }

  private channelClosed(c: JumpChannel, reason: ChannelCloseReason, error?: string): void {
    const route = this.channels.get(c);
    this.channels.delete(c);
    this.releases.get(c)?.();
    this.releases.delete(c);
    if (!this.closing) this.clientKeepalive?.setPolicy(this.clientPolicy());
    if (reason === 'upstream-keepalive-timeout' && route && !route.via) {
      const p = route.keepalive.upstream;
      const opts = tcpKeepaliveOptions(p);
      this.ctx.log.warn('upstream-keepalive-timeout', {
        session: this.id,
        user: this.user,
        src: this.src,
        dst: c.info.dst,
        addr: c.info.addr,
        reason,
        route: route.name,
        leg: 'upstream',
        layer: 'tcp',
        interval: p.interval,
        countMax: p.countMax,
        // The kernel declares the leg dead only after TCP_KEEPCNT unanswered probes (or
        // TCP_USER_TIMEOUT with data unacknowledged); it does not report RTTs to userspace.
        probesSent: opts.count,
        probesAnswered: 0,
        lastRttMs: null,
        idleMs: Math.round(performance.now() - c.lastUpstreamRx),
      });
    }
    this.bytesUp += c.bytesUp;
    this.bytesDown += c.bytesDown;
    this.ctx.log.info('channel-close', {
      session: this.id,
      user: this.user,
      src: this.src,
      dst: c.info.dst,
      addr: c.info.addr,
      route: c.info.route,
      channel: c.info.id,
      reason,
      ...(error ? { error } : {}),
      bytesUp: c.bytesUp,
      bytesDown: c.bytesDown,
      durationMs: Date.now() - c.openedAt,
      windowMiB: Math.round((c.maxWindow / 1048576) * 10) / 10,
    });
  }

  /**
   * The one way out. Idempotent: the first reason wins. `graceful` sends SSH_MSG_DISCONNECT and lets
   * the socket drain (bounded by a 1 s timer); otherwise the socket is destroyed at once, which is
   * what a dead or hostile peer gets.
   */
  close(reason: CloseReason, opts: { graceful?: boolean } = {}): void {
    if (this.closing || this.finished) {
      if (!opts.graceful) this.socket.destroy();
      return;
    }
    this.closing = true;
    this.reason = reason;
    this.releaseChildren(reason === 'shutdown' ? 'shutdown' : reason === 'client-keepalive-timeout' ? 'client-keepalive-timeout' : 'session-closed');
    if (opts.graceful && this.conn) {
      // The user's ssh prints this line ("Received disconnect from …: <text>").
      disconnect(this.conn, 'by-application', disconnectText(reason, this.detail));
      this.forceClose = setTimeout(() => this.socket.destroy(), 1000);
    } else if (reason === 'auth-failed' && this.conn) {
      disconnect(this.conn, 'too-many-auth-failures', 'holdfast: too many authentication failures');
      this.forceClose = setTimeout(() => this.socket.destroy(), 1000);
    } else {
      this.socket.destroy();
    }
  }

  private releaseChildren(channelReason: ChannelCloseReason): void {
    clearTimeout(this.loginGrace);
    this.loginGrace = undefined;
    clearTimeout(this.gatewayDrain);
    this.gatewayDrain = undefined;
    this.clientKeepalive?.stop();
    this.pending.abort();
    for (const ch of [...this.channels.keys()]) ch.close(channelReason);
    for (const gc of [...this.gatewayChannels]) gc.close('session-closed');
    this.gateway?.close(channelReason === 'shutdown' || channelReason === 'client-keepalive-timeout' ? channelReason : 'session-closed');
  }

  private finish(): void {
    if (this.finished) return;
    this.releaseChildren(this.reason === 'shutdown' ? 'shutdown' : 'session-closed');
    this.finished = true;
    this.startupEnded();
    clearTimeout(this.forceClose);
    this.forceClose = undefined;
    const reason: CloseReason =
      this.reason ??
      this.pendingReason ??
      (!this.conn
        ? 'no-handshake'
        : this.protocolError
          ? 'protocol-error'
          : !this.authenticated && this.authFailures > 0
            ? 'auth-failed'
            : 'peer-closed');
    this.reason = reason;
    this.userBudget?.release();
    if (reason === 'protocol-error') this.detail ??= this.protocolError;
    this.ctx.log.info('session-close', {
      session: this.id,
      user: this.user ?? null,
      src: this.src,
      authenticated: this.authenticated,
      reason,
      ...(this.detail ? { detail: this.detail } : {}),
      authFailures: this.authFailures,
      ...(this.failureLines > MAX_FAILURE_LINES ? { linesSuppressed: this.failureLines - MAX_FAILURE_LINES } : {}),
      channels: this.channelCount,
      dsts: [...this.destinations],
      ...(this.gateway ? { gateway: this.gateway.dst } : {}),
      bytesUp: this.bytesUp,
      bytesDown: this.bytesDown,
      durationMs: Date.now() - this.startedAt,
      ...(this.clientKeepalive ? { clientKeepalive: statsForLog(this.clientKeepalive.stats()) } : {}),
    });
    this.onFinished(this);
  }
}

/** The one line a user's ssh prints when holdfast hangs up on purpose. */
function disconnectText(reason: CloseReason, detail: string | undefined): string {
  if (reason === 'shutdown') return 'holdfast: the jump host is shutting down; reconnect in a moment';
  return `holdfast: ${reason}${detail ? ` (${detail})` : ''}`;
}
