/**
 * A session is one client connection, from TCP accept to close. This file is its lifecycle only: the
 * state, the two timers, the accounting and the one summary line. The decisions and relays are
 * parts (src/session/): the login (login.ts, on auth verdicts), channel plans and dials, the channel
 * registry (with each channel's idle watch), gateway mode, what is not offered (no shell, no -R), the
 * client leg's keepalive (client-leg.ts), the session's own limits (limits.ts) and what a reload does
 * to a live session (reapply.ts).
 *
 *   handshake --(SSH identification: attach)--> auth --(key accepted, ssh2 'ready')--> ready
 *        \________________________\_______________________________\--> closing --> closed
 *
 * `close(reason)` is graceful (SSH_MSG_DISCONNECT with a line the user's ssh prints; the socket is
 * destroyed after FORCE_CLOSE_MS at the latest); `destroy(reason)` drops the socket at once (a dead
 * or hostile peer). Both are idempotent; the first reason wins. `closed` settles when the socket has
 * closed and the summary line is out. Timers: `loginGrace` (accept -> ready), `forceClose`; its
 * parts own theirs (SessionLimits: `deadline`, `unused`), all released by releaseParts().
 */
import { LineBudget } from './session/line-budget.js';
import crypto from 'node:crypto';
import type net from 'node:net';
import type { Connection, AuthContext } from './ssh/ssh2.js';
import type { LoginKey } from './ssh/authorized-keys.js';
import { disconnect, rejectChannel } from './ssh/server-adapter.js';
import { serverProbe } from './ssh/ping.js';
import { createWindowBudget, CONNECTION_WINDOW_BUDGET, type WindowBudget } from './ssh/channel-window.js';
import { unmapIPv4 } from './routing/canonical.js';
import { parseGatewayLogin } from './routing/gateway-login.js';
import { coalesceWrites } from './legs/coalesce.js';
import { statsForLog, timeoutReport } from './keepalive/report.js';
import { childReason, disconnectText, type ChildReason, type SessionCloseReason } from './close-reasons.js';
import type { EventMap, EventName, Who } from './events.js';
import { formatDuration } from './config/duration.js';
import { NO_ROUTE } from './metrics/declarations.js';
import { Login } from './session/login.js';
import { ChannelRegistry } from './session/registry.js';
import { roughly, SessionLimits } from './session/limits.js';
import { ClientLeg } from './session/client-leg.js';
import { reapply, type LiveSession, type Reapplied } from './session/reapply.js';
import { GatewaySession } from './session/gateway.js';
import { openJump } from './session/jump.js';
import { refuseGlobalRequest, refuseSession, type ForwardRequest } from './session/not-offered.js';
import type { SessionContext } from './session/scope.js';
import type { Peer } from './ingress/proxy-gate.js';

export type { SessionContext };
export type SessionState = 'handshake' | 'auth' | 'ready' | 'closing' | 'closed';

/** Client-caused warn lines logged per connection (refusals, failed logins); the rest are counted. */
const MAX_FAILURE_LINES = 20;
/** 100 channels opened and closed: past that, one connection's channel lines are only counted. */
const MAX_CHANNEL_LINES = 200;
/** After a graceful close, how long the DISCONNECT may take to drain before the socket is dropped. */
const FORCE_CLOSE_MS = 1000;
/** Why the session's pending lookups and connects are aborted (abort() with no reason builds a DOMException, its stack included, each time). */
const SESSION_ENDED = new Error('the session ended');

export class Session implements LiveSession {
  readonly id = crypto.randomBytes(4).toString('hex');
  readonly src: string;
  /** The client's address, IPv4-mapped ones as IPv4 (from= options, logs). */
  readonly clientIp: string;
  readonly localPort: number;
  readonly startedAt = Date.now();
  state: SessionState = 'handshake';
  /** Settles once the socket has closed and the summary line is out. */
  readonly closed: Promise<void>;
  private settle!: () => void;
  private connection: Connection | undefined;
  /** The key exchange the client's first handshake negotiated (mlkem768x25519-sha256: post-quantum). */
  private kex: string | undefined;
  private userName: string | undefined;
  /** Attempts, failures, the accepted key (src/session/login.ts). */
  private readonly login = new Login();
  /** The client leg serves every open channel's route: it runs the strictest policy (the default with none). */
  readonly clientLeg = new ClientLeg(() => this.ctx.config().keepalive.client);
  readonly registry = new ChannelRegistry(this.clientLeg.policies, {
    changed: () => this.limitsChanged(),
    idle: (rec, ms) => rec.close('idle-timeout', `no channel data for ${formatDuration(ms)} (idleTimeout)`),
    idleWarning: (rec, left, ms) => {
      rec.notice?.(`no activity for ${roughly(ms - left)}: this channel closes in ${roughly(left)} unless there is some (idleTimeout ${formatDuration(ms)})`);
      this.ctx.events.emit('limit-warning', { ...this.who(), limit: 'idle-timeout', inMs: Math.round(left), channel: rec.id });
    },
  });
  /** maxSessionTime, and idleTimeout while no channel is held (src/session/limits.ts). */
  private readonly limits = new SessionLimits(performance.now(), {
    timeWarning: (left, ms) => {
      if (!this.gateway?.hasChannels) return;
      this.gateway.notice(`this session reaches its time limit (maxSessionTime ${formatDuration(ms)}) in ${roughly(left)}`);
      this.ctx.events.emit('limit-warning', { ...this.who(), limit: 'session-time-limit', inMs: Math.round(left) });
    },
    timeLimit: (route, ms) => this.endBy('session-time-limit', `maxSessionTime ${formatDuration(ms)} of route ${route} reached`),
    unused: (ms) => this.close('idle-timeout', `no channel for ${formatDuration(ms)} (idleTimeout)`),
  });
  gateway: GatewaySession | undefined;
  private readonly abort = new AbortController();
  private reason: SessionCloseReason | undefined;
  private detail: string | undefined;
  private protocolError: string | undefined;
  private loginGrace: NodeJS.Timeout | undefined;
  private forceClose: NodeJS.Timeout | undefined;
  /** Lines emitted through failure() and channelLine(); past their budgets they are only counted. */
  private readonly failureLines = new LineBudget(MAX_FAILURE_LINES);
  private readonly channelLines = new LineBudget(MAX_CHANNEL_LINES);
  private readonly connectionBudget = createWindowBudget(CONNECTION_WINDOW_BUDGET);
  private userBudget: { readonly budget: WindowBudget; release(): void } | undefined;

  constructor(
    readonly socket: net.Socket,
    readonly ctx: SessionContext,
    /** Who the client is: the socket's peer, or what a trusted balancer's PROXY header said. */
    readonly peer: Peer,
    /** The connection stopped being an unauthenticated "startup" (src/startups.ts): called once. */
    private readonly startupEnded: () => void = () => {},
  ) {
    this.closed = new Promise((resolve) => (this.settle = resolve));
    this.clientIp = unmapIPv4(peer.ip);
    this.src = `${this.clientIp || '?'}:${peer.port}`;
    this.localPort = socket.localPort ?? 0;
    socket.setNoDelay(true);
    coalesceWrites(socket);
    socket.on('error', (err: NodeJS.ErrnoException) => {
      this.detail ??= err.code ?? err.message;
    });
    socket.once('close', () => this.finish());
    // After a protocol error ssh2 ends its side and goes on reading, and dropping, whatever the peer
    // sends: a peer that never logged in could keep holdfast busy reading at full speed until
    // loginGraceTime. sshd closes such a connection at once; so does holdfast, once ours is flushed.
    socket.once('finish', () => {
      if (this.login.key === undefined) socket.destroy();
    });
    const grace = ctx.config().loginGraceTimeMs;
    if (grace > 0) this.loginGrace = setTimeout(() => this.destroy('login-grace'), grace);
  }

  get conn(): Connection {
    return this.connection!;
  }
  get user(): string {
    return this.userName!;
  }
  get key(): LoginKey {
    return this.login.key!;
  }
  get closing(): boolean {
    return this.state === 'closing' || this.state === 'closed';
  }
  get signal(): AbortSignal {
    return this.abort.signal;
  }
  /** How the user logged in (gateway: `user+target`); undefined until authenticated. */
  get mode(): 'jump' | 'gateway' | undefined {
    return this.login.key === undefined ? undefined : this.gateway ? 'gateway' : 'jump';
  }

  who(): Who {
    return { session: this.id, user: this.userName, src: this.src };
  }

  /**
   * Lines a client can cause at will (refused channels and requests, failed logins): the first
   * MAX_FAILURE_LINES of a connection are logged, the rest only counted in its session-close line.
   */
  failure<K extends EventName>(event: K, fields: EventMap[K]): void {
    this.ctx.events.emit(event, fields, { log: this.failureLines.take() });
  }

  /** channel-open and channel-close: the first MAX_CHANNEL_LINES of a connection are logged. */
  channelLine<K extends 'channel-open' | 'channel-close'>(event: K, fields: EventMap[K]): void {
    this.ctx.events.emit(event, fields, { log: this.channelLines.take() });
  }

  clientKeepalive(): string | undefined {
    return this.clientLeg.describe();
  }

  windowBudgets(): WindowBudget[] {
    this.userBudget ??= this.ctx.userWindowBudget(this.user);
    return [this.ctx.windowBudget, this.userBudget.budget, this.connectionBudget];
  }

  /** Called when ssh2 has read the client's SSH identification line. */
  attach(conn: Connection): void {
    this.connection = conn;
    if (this.state === 'handshake') this.state = 'auth';
    conn.on('error', (err: Error & { level?: string }) => {
      // ssh2 marks errors of the client's TCP socket with level 'socket' (ECONNRESET when the user's
      // ssh exits with data in flight): the peer went away, 'peer-closed' with the socket error as
      // detail (the socket's own handler recorded it). Only SSH protocol faults are 'protocol-error'.
      if (err.level !== 'socket') this.protocolError ??= err.message;
    });
    conn.once('handshake', (negotiated: { kex: string }) => (this.kex = negotiated.kex));
    conn.on('authentication', (authCtx: AuthContext) => this.authenticate(authCtx));
    conn.on('ready', () => this.ready(conn));
    conn.on('tcpip', (accept, reject, info) => {
      const g = this.gateway;
      void openJump(this, accept, reject, info, { leg: g?.leg, missing: g?.loginError, login: g !== undefined });
    });
    conn.on('session', (accept, reject) => this.openSession(accept, reject));
    conn.on('request', (_accept, reject, name: string, info: ForwardRequest | undefined) => refuseGlobalRequest(this, name, info, reject));
  }

  private ready(conn: Connection): void {
    clearTimeout(this.loginGrace);
    this.loginGrace = undefined;
    this.startupEnded();
    if (this.closing) return;
    this.state = 'ready';
    const routes = () => this.clientLeg.policies.labels();
    const route = () => this.clientLeg.policies.currentLabel() ?? NO_ROUTE;
    this.clientLeg.start(this.socket, serverProbe(conn), {
      dead: (stats, p) => {
        this.ctx.events.emit('client-keepalive-timeout', { ...this.who(), route: route(), routes: routes(), ...timeoutReport('client', 'ssh', p, stats) });
        this.destroy('client-keepalive-timeout');
      },
      probed: (n) => this.ctx.events.emit('keepalive-probe', () => ({ session: this.id, leg: 'client' as const, route: route(), outstanding: n, routes: routes() })),
      replied: (rttMs) => this.ctx.events.emit('keepalive-reply', () => ({ session: this.id, leg: 'client' as const, route: route(), rttMs })),
    });
    const g = this.gateway;
    g?.start(this, (route) => {
      this.clientLeg.policies.add(g, route.keepalive.client, route.name);
      this.limitsChanged();
    });
    this.limitsChanged();
  }

  /** The session's own limits follow its channels and their routes (the gateway route included). */
  limitsChanged(): void {
    if (this.state !== 'ready') return;
    const routes = this.registry.routes();
    const g = this.gateway?.leg?.route;
    this.limits.update(g ? [...routes, g] : routes, this.registry.held, this.ctx.config().idleTimeoutMs);
  }

  /** holdfast ends the session (access revoked, a limit): in gateway mode each channel says why first. */
  endBy(reason: 'access-revoked' | 'session-time-limit', detail: string): void {
    if (this.closing) return;
    if (this.gateway?.hasChannels) this.gateway.end(this, reason, `${reason}: ${detail}`, detail);
    else this.close(reason, detail);
  }

  rekey(entry: LoginKey): void {
    this.login.key = entry;
  }

  /** A reload (SIGHUP) reaches this session (src/session/reapply.ts); null before it is ready. */
  reapply(): Reapplied | null {
    return this.state === 'ready' ? reapply(this) : null;
  }

  private authenticate(authCtx: AuthContext): void {
    // `alice+db1.internal[+port]` is alice asking for gateway mode to db1.internal: alice is who
    // authenticates; the target is checked against the gateway routes when the leg is dialled.
    const login = parseGatewayLogin(authCtx.username);
    this.userName = login.ok ? login.value.user : login.user || authCtx.username;
    const target = login.ok ? login.value.target : undefined;
    this.gateway = !login.ok ? new GatewaySession({ error: login.message }) : target ? new GatewaySession({ target }) : undefined;
    this.login.attempt(this, authCtx, { target: this.gateway?.target, kex: this.kex });
  }

  private openSession(accept: () => unknown, reject: () => void): void {
    if (this.closing) return reject();
    // Session channels count against maxChannels like forwarded ones, refused ones included (each
    // holds ssh2 state until the client closes it).
    const max = this.ctx.config().maxChannels;
    if (this.registry.held >= max) {
      this.failure('channel-refused', { ...this.who(), kind: 'session', why: `maxChannels ${max} reached`, code: 'max-channels' });
      return rejectChannel(this.conn, reject, 'resource-shortage', `too many open channels (limit ${max})`);
    }
    if (this.gateway) return this.gateway.openSession(this, accept);
    refuseSession(this, accept);
  }

  /** Graceful: the user's ssh prints why ("Received disconnect from …"); dropped after FORCE_CLOSE_MS at the latest. */
  close(reason: SessionCloseReason, detail?: string): void {
    if (this.closing) return;
    this.begin(reason, detail);
    if (!this.connection) return void this.socket.destroy();
    disconnect(this.connection, reason === 'auth-failed' ? 'too-many-auth-failures' : 'by-application', disconnectText(reason, this.detail));
    this.forceClose = setTimeout(() => this.socket.destroy(), FORCE_CLOSE_MS);
  }

  /** At once: the socket is destroyed (a dead or hostile peer, or a close that took too long). */
  destroy(reason: SessionCloseReason = 'shutdown'): void {
    if (this.state === 'closed') return;
    if (!this.closing) this.begin(reason);
    this.socket.destroy();
  }

  private begin(reason: SessionCloseReason, detail?: string): void {
    this.state = 'closing';
    this.reason = reason;
    this.detail ??= detail;
    this.releaseParts(childReason(reason));
  }

  /** Everything the session holds except its socket, newest first. Idempotent. */
  private releaseParts(reason: ChildReason): void {
    clearTimeout(this.loginGrace);
    this.loginGrace = undefined;
    this.limits.stop();
    this.clientLeg.stop();
    this.abort.abort(SESSION_ENDED);
    this.registry.closeAll(reason);
    this.gateway?.close(reason);
  }

  private finish(): void {
    if (this.state === 'closed') return;
    if (!this.closing) {
      // Not 'ready' any more while the parts go: nothing re-arms a limit for a session that is ending.
      this.state = 'closing';
      this.releaseParts('session-closed');
    }
    this.state = 'closed';
    this.startupEnded();
    clearTimeout(this.forceClose);
    this.forceClose = undefined;
    const authenticated = this.login.key !== undefined;
    const reason: SessionCloseReason =
      this.reason ??
      this.gateway?.diedReason ??
      (!this.connection ? 'no-handshake' : this.protocolError ? 'protocol-error' : !authenticated && this.login.failures > 0 ? 'auth-failed' : 'peer-closed');
    this.reason = reason;
    this.detail ??= this.gateway?.diedDetail ?? (reason === 'protocol-error' ? this.protocolError : reason === 'peer-closed' && this.connection && !this.kex ? 'the client left during the key exchange' : undefined);
    this.userBudget?.release();
    this.login.release();
    const r = this.registry;
    this.ctx.events.emit('session-close', {
      session: this.id,
      user: this.userName ?? null,
      src: this.src,
      ...(this.peer.via ? { via: this.peer.via } : {}),
      authenticated,
      reason,
      ...(this.detail ? { detail: this.detail } : {}),
      kex: this.kex ?? null,
      authFailures: this.login.failures,
      ...(this.failureLines.suppressed ? { linesSuppressed: this.failureLines.suppressed } : {}),
      ...(this.channelLines.suppressed ? { channelLinesSuppressed: this.channelLines.suppressed } : {}),
      channels: r.opened,
      dsts: [...r.destinations],
      ...(this.gateway?.leg ? { gateway: this.gateway.leg.dst } : {}),
      bytesUp: r.bytesUp,
      bytesDown: r.bytesDown,
      durationMs: Date.now() - this.startedAt,
      ...(this.clientLeg.started ? { clientKeepalive: statsForLog(this.clientLeg.stats()!) } : {}),
    });
    this.settle();
  }
}

