/**
 * Gateway mode for one client connection (login `user+target[+port]`): holdfast's SSH leg to the
 * target (src/legs/ssh-gateway.ts), started at `ready`, and the session channels relayed to it
 * (src/legs/gateway-channel.ts), one registry record each. Owns the leg and the `drain` timer.
 *
 * When the leg dies, each session channel tells the user in one line while the client leg still
 * works; then the session closes with the same reason. OpenSSH's client drops channel output it has
 * not yet written when a DISCONNECT arrives in the same read, so the line would be lost: the client
 * gets GATEWAY_DRAIN_MS to see its last channel close and hang up by itself first.
 */
import type { ResolvedRoute } from '../config/resolve.js';
import { sessionReasonFor, type ChildReason, type GatewayCloseReason, type SessionCloseReason } from '../close-reasons.js';
import type { ResolvedConfig } from '../config/resolve.js';
import type { AddressGuard } from '../routing/guard.js';
import { recheckGateway } from '../routing/plan.js';
import type { ServerSession } from '../ssh/ssh2.js';
import { ForwardedAgent } from '../ssh/forwarded-agent.js';
import { describePolicy } from '../keepalive/policy.js';
import { formatDestination } from '../routing/route-table.js';
import { GatewayUpstream } from '../legs/ssh-gateway.js';
import { GatewayChannel } from '../legs/gateway-channel.js';
import type { ChannelRecord } from './registry.js';
import type { SessionScope } from './scope.js';
import { refuseSession } from './not-offered.js';

const GATEWAY_DRAIN_MS = 1000;

/** Channel reasons the user is told about on the channel's stderr. */
function told(reason: string): reason is 'access-revoked' | 'idle-timeout' | 'session-time-limit' {
  return reason === 'access-revoked' || reason === 'idle-timeout' || reason === 'session-time-limit';
}

export type GatewayLogin = { readonly target: { readonly host: string; readonly port: number } } | { readonly error: string };

export class GatewaySession {
  leg: GatewayUpstream | undefined;
  /** The leg died and the session follows with this reason (also if the client hangs up first). */
  diedReason: SessionCloseReason | undefined;
  diedDetail: string | undefined;
  private drain: NodeJS.Timeout | undefined;
  /** The session channels relayed to the target, with their registry records. */
  private readonly channels = new Map<GatewayChannel, ChannelRecord>();

  constructor(readonly login: GatewayLogin) {}

  /** For the auth lines: the target as asked. */
  get target(): string | undefined {
    return 'target' in this.login ? formatDestination({ ...this.login.target, address: this.login.target.host }) : undefined;
  }

  get loginError(): string | undefined {
    return 'error' in this.login ? this.login.error : undefined;
  }

  /** At `ready`: dial the target at once, so the leg is up (or its failure known) when the session request comes. */
  start(s: SessionScope, routed: (route: ResolvedRoute) => void): void {
    if (!('target' in this.login) || s.key.options.command !== undefined) return;
    this.leg = new GatewayUpstream(s.user, this.login.target.host, this.login.target.port, {
      config: s.ctx.config(),
      current: () => s.ctx.config(),
      events: s.ctx.events,
      lookup: s.ctx.lookup,
      guard: s.ctx.guard,
      agent: new ForwardedAgent(s.conn),
      who: s.who(),
      key: () => s.key.options,
      routed,
      died: (reason, detail) => this.died(s, reason, detail),
    });
  }

  /** A session channel (shell, exec, subsystem) for the target, or one line saying why not. */
  openSession(s: SessionScope, accept: () => unknown): void {
    if (this.loginError) return refuseSession(s, accept, `holdfast: ${this.loginError}\r\n`);
    if (s.key.options.command !== undefined) {
      return refuseSession(s, accept, 'holdfast: your key has a forced command (command= in authorized_keys, or a certificate\'s force-command), so it gets no gateway session\r\n');
    }
    const leg = this.leg;
    if (!leg) return refuseSession(s, accept);
    const session = accept() as ServerSession | undefined;
    if (!session) return;
    const id = s.registry.newId();
    const fields = () => ({ ...s.who(), dst: leg.dst, addr: leg.address, route: leg.route?.name });
    const gc = new GatewayChannel({ id, kind: 'session' }, session, leg, s.key.options, s.windowBudgets(), {
      started: (c) => {
        s.registry.noteDestination(leg.dst);
        // The target's channel is open, so the leg is routed: the channel's idle limit is the route's.
        if (leg.route) s.registry.setRoute(rec, leg.route);
        s.channelLine('channel-open', {
          ...fields(),
          channel: id,
          kind: c.info.kind,
          ...(c.info.command !== undefined ? { command: c.info.command } : {}),
          clientKeepalive: s.clientKeepalive(),
          upstreamKeepalive: leg.route ? { layer: 'ssh', policy: describePolicy(leg.route.keepalive.upstream) } : undefined,
        });
      },
      refused: (_c, what) => s.failure('gateway-request-refused', { ...fields(), channel: id, what }),
      closed: (c, reason, detail) => {
        this.channels.delete(c);
        s.registry.remove(rec);
        const { addr: _addr, ...f } = fields();
        s.channelLine('channel-close', {
          ...f,
          channel: id,
          kind: c.info.kind,
          reason,
          ...(detail ? { detail } : {}),
          bytesUp: c.bytesUp,
          bytesDown: c.bytesDown,
          durationMs: Date.now() - c.openedAt,
        });
      },
    });
    // The route comes with the target's channel (started); the gateway route is in the client leg's
    // policy set from `routed` on.
    const rec: ChannelRecord = {
      id,
      dst: leg.dst,
      route: undefined,
      relay: gc,
      close: (reason, detail) => (told(reason) ? gc.abandon(`${reason}: ${detail ?? ''}`, reason) : gc.close('session-closed')),
      release: () => {},
      notice: (line) => gc.notice(line),
    };
    this.channels.set(gc, rec);
    s.registry.add(rec, false);
  }

  /** A line on every session channel's stderr (a limit is near). */
  notice(line: string): void {
    for (const gc of this.channels.keys()) gc.notice(line);
  }

  get hasChannels(): boolean {
    return this.channels.size > 0;
  }

  /**
   * A reload: the route the leg runs under now (re-matched on its target and the address it connected
   * to), its keepalive re-planned, its channels moved to it; or why the route is gone. Returns the new
   * route with the new upstream policy when it changed, or the revocation.
   */
  reapply(s: SessionScope, config: ResolvedConfig, guard: AddressGuard): { route: ResolvedRoute; upstream: string | null } | { revoked: string } | null {
    const leg = this.leg;
    if (!leg?.route || leg.address === undefined) return null;
    const v = recheckGateway(s.user, s.key.options, { host: leg.host, port: leg.port }, leg.address, config, guard);
    if (v.kind === 'refused') return { revoked: v.why };
    const upstream = leg.retune(v.route);
    for (const rec of this.channels.values()) if (rec.route) s.registry.setRoute(rec, v.route);
    return { route: v.route, upstream };
  }

  private died(s: SessionScope, reason: GatewayCloseReason, detail: string): void {
    this.end(s, sessionReasonFor(reason), `lost the connection to ${this.leg!.dst}: ${reason} (${detail})`, detail);
  }

  /**
   * The session ends from holdfast's side (the leg died, access revoked, a limit): each session
   * channel tells the user in one line, then the session closes with `reason` after the drain.
   */
  end(s: SessionScope, reason: SessionCloseReason, message: string, detail: string): void {
    const told = this.channels.size;
    const channelReason = reason === 'access-revoked' || reason === 'session-time-limit' ? reason : 'upstream-gone';
    for (const gc of [...this.channels.keys()]) gc.abandon(message, channelReason);
    this.diedDetail = detail;
    if (told === 0) return s.close(reason, detail);
    this.diedReason = reason;
    clearTimeout(this.drain);
    this.drain = setTimeout(() => s.close(reason, detail), GATEWAY_DRAIN_MS);
  }

  /** The session is closing: the drain timer and the leg go. Idempotent. */
  close(reason: ChildReason): void {
    clearTimeout(this.drain);
    this.drain = undefined;
    this.leg?.close(reason);
  }
}
