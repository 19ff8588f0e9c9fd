/**
 * Gateway mode's upstream leg: holdfast's own SSH connection to the target, one per client
 * connection (the user's agent may sign it, so it is never shared), with keepalive@openssh.com on it
 * under the route's `keepalive.upstream` policy.
 *
 * Resolve once, match the gateway routes, connect to that address (the address checked is the
 * address connected to), log in with the route's identity or the user's forwarded agent, check the
 * host key like a bastion's. Owns: the TCP socket, the ssh2 Client, the monitor. One close(reason).
 */
import type { ClientChannel, PseudoTtyInfo } from '../ssh/ssh2.js';
import { Client } from '../ssh/ssh2.js';
import type { ResolvedConfig, ResolvedRoute } from '../config/resolve.js';
import type { Events, Who } from '../events.js';
import type { GatewayCloseReason } from '../close-reasons.js';
import type { ForwardedAgent } from '../ssh/forwarded-agent.js';
import { describePolicy, samePolicy, type KeepalivePolicy } from '../keepalive/policy.js';
import { SshLegKeepalive } from '../keepalive/ssh-leg.js';
import { statsForLog, timeoutReport } from '../keepalive/report.js';
import type { MonitorStats } from '../keepalive/monitor.js';
import { clientProbe, transport } from '../ssh/ping.js';
import { gatewayUser } from '../routing/gateway-login.js';
import { formatDestination } from '../routing/route-table.js';
import type { Lookup } from '../routing/resolve-destination.js';
import type { AddressGuard } from '../routing/guard.js';
import { connectTcp, ConnectError, describeConnectError } from './tcp-upstream.js';
import { dialSsh, negotiatedKex, UpstreamDialError } from './ssh-dial.js';
import { planGateway, recheckGateway, type GatewayRefusalCode, type KeyReach } from '../routing/plan.js';

/** Why the target could not be reached, in words for the user's terminal and the log. */
export class GatewayRefused extends Error {
  override name = 'GatewayRefused';
  constructor(
    readonly code: GatewayRefusalCode | 'connect-failed' | 'login-failed' | 'closed',
    message: string,
    readonly route?: string,
  ) {
    super(message);
  }
}

export interface GatewayDeps {
  /** The config the login began with. */
  readonly config: ResolvedConfig;
  /** The config in force now (a reload may come while the target is being resolved). */
  readonly current: () => ResolvedConfig;
  readonly events: Events;
  readonly lookup: Lookup;
  /** Addresses wildcards never reach (src/routing/guard.ts). */
  readonly guard: AddressGuard;
  readonly agent: ForwardedAgent;
  readonly who: Who;
  /** The login key's limits on destinations, as they are now (a reload re-reads authorized_keys). */
  readonly key: () => KeyReach;
  /** The route is known (the client leg's keepalive policy depends on it). */
  readonly routed: (route: ResolvedRoute) => void;
  /** The leg died on its own (keepalive timeout, the target closed it): the session must follow. */
  readonly died: (reason: GatewayCloseReason, detail: string) => void;
}

type Client_ = InstanceType<typeof Client>;

export class GatewayUpstream {
  readonly dst: string;
  route: ResolvedRoute | undefined;
  address: string | undefined;
  private client: Client_ | undefined;
  private keepalive: SshLegKeepalive | undefined;
  private closed = false;
  private dying: GatewayCloseReason | undefined;
  private readonly abort = new AbortController();
  /** Settles once: the logged-in connection, or why there is none. */
  readonly ready: Promise<Client_>;
  readonly openedAt = Date.now();

  constructor(
    readonly user: string,
    readonly host: string,
    readonly port: number,
    private readonly deps: GatewayDeps,
  ) {
    this.dst = formatDestination({ host, port, address: host });
    this.ready = this.connect();
    this.ready.catch(() => {}); // every user of `ready` handles the refusal itself
  }

  private async connect(): Promise<Client_> {
    const { config, events, who } = this.deps;
    const began = performance.now();
    const plan = await planGateway(this.user, this.deps.key(), { host: this.host, port: this.port }, this.deps);
    if (this.closed) throw new GatewayRefused('closed', 'the session is closing');
    if (plan.kind === 'refused') {
      if (plan.code === 'unresolved') events.emit('gateway-connect-failed', { ...who, dst: this.dst, route: plan.route!, why: plan.why, code: plan.code });
      else events.emit('gateway-refused', { ...who, dst: this.dst, why: plan.why, code: plan.code });
      throw new GatewayRefused(plan.code, plan.told, plan.route);
    }
    const { address } = plan;
    let { route } = plan;
    // A reload while the target was being resolved (this leg had no route yet for it to re-match):
    // match it now, on the config in force, as a reload does for a live gateway leg.
    const now = this.deps.current();
    if (now !== config) {
      const v = recheckGateway(this.user, this.deps.key(), { host: this.host, port: this.port }, address, now, this.deps.guard);
      if (v.kind === 'refused') {
        events.emit('gateway-refused', { ...who, dst: this.dst, why: v.why, code: v.code });
        throw new GatewayRefused(v.code, v.told, v.route);
      }
      route = v.route;
    }
    const g = route.gateway!;
    this.route = route;
    this.address = address;
    this.deps.routed(route);
    const failed = (code: 'connect-failed' | 'login-failed', why: string, told: string) => {
      if (!this.closed) events.emit('gateway-connect-failed', { ...who, dst: this.dst, addr: address, route: route.name, why, code });
      return new GatewayRefused(code, told, route.name);
    };
    let sock;
    try {
      sock = await connectTcp({ address, port: this.port, timeoutMs: config.connectTimeoutMs }, this.abort.signal);
    } catch (err) {
      const why = describeConnectError(err instanceof ConnectError ? err.code : 'EIO');
      throw failed('connect-failed', why, `${why} (${formatDestination({ host: this.host, port: this.port, address })})`);
    }
    let client: Client_;
    const upstreamUser = gatewayUser(g.user, this.user);
    try {
      const target = { name: this.dst, role: 'target' as const, host: this.host, port: this.port, user: upstreamUser, identity: g.identity, agent: this.deps.agent, knownHosts: g.knownHosts, hostKeyPolicy: g.hostKeyPolicy };
      client = await dialSsh(target, sock, { connectTimeoutMs: config.connectTimeoutMs, ownKnownHosts: config.ownKnownHosts, events });
    } catch (err) {
      sock.destroy();
      const why = err instanceof UpstreamDialError ? err.message : String(err);
      throw failed('login-failed', why, why);
    }
    if (this.closed) {
      client.end();
      sock.destroy();
      throw new GatewayRefused('closed', 'the session is closing');
    }
    this.client = client;
    client.on('close', () => this.die('upstream-closed', 'the target closed the connection'));
    client.on('error', (err: Error) => this.die('upstream-error', err.message));
    // The route now in force: a reload during the login may have re-matched it.
    const policy = this.route.keepalive.upstream;
    const leg = () => ({ session: who.session, leg: 'upstream' as const, route: this.route!.name, dst: this.dst });
    this.keepalive = new SshLegKeepalive(policy, transport(client), clientProbe(client), {
      dead: (stats, p) => this.keepaliveDead(stats, p),
      probed: (n) => events.emit('keepalive-probe', () => ({ ...leg(), outstanding: n })),
      replied: (rttMs) => events.emit('keepalive-reply', () => ({ ...leg(), rttMs })),
    });
    events.emit('gateway-open', {
      ...who,
      dst: this.dst,
      addr: address,
      route: route.name,
      upstreamUser,
      auth: g.identity ? 'identity' : 'agent',
      kex: negotiatedKex(client),
      connectMs: Math.round(performance.now() - began),
      upstreamKeepalive: { layer: 'ssh', policy: describePolicy(policy) },
    });
    return client;
  }

  private keepaliveDead(stats: MonitorStats, p: KeepalivePolicy): void {
    this.deps.events.emit('upstream-keepalive-timeout', { ...this.deps.who, dst: this.dst, addr: this.address, route: this.route!.name, ...timeoutReport('upstream', 'ssh', p, stats) });
    this.die('upstream-keepalive-timeout', `no answer from ${this.dst} to ${stats.probesSent} keepalives in ${Math.round(stats.idleMs / 100) / 10}s`);
  }

  private die(reason: GatewayCloseReason, detail: string): void {
    if (this.closed || this.dying) return;
    // The session hears it first, while the channels to the target are still up: closing the
    // client would end them and their relays would mistake that for a normal exit. The session's
    // close comes back here as close('session-closed'); this reason wins.
    this.dying = reason;
    this.deps.died(reason, detail);
    this.close(reason);
  }

  /** A session channel on the target: exec, shell or a subsystem, with what the user asked for before. */
  async openSession(
    kind: 'exec' | 'shell' | 'subsystem',
    arg: string,
    opts: { env: Record<string, string>; pty: PseudoTtyInfo | undefined; agentForward: boolean },
  ): Promise<ClientChannel> {
    const client = await this.ready;
    return new Promise((resolve, reject) => {
      const done = (err: Error | undefined, ch: ClientChannel) => (err ? reject(new GatewayRefused('connect-failed', `the target refused the ${kind}: ${err.message}`)) : resolve(ch));
      const env = Object.keys(opts.env).length ? opts.env : undefined;
      try {
        if (kind === 'exec') client.exec(arg, { env, pty: opts.pty, agentForward: opts.agentForward } as never, done);
        else if (kind === 'shell') client.shell((opts.pty ?? false) as never, { env, agentForward: opts.agentForward } as never, done);
        else client.subsys(arg, done);
      } catch (err) {
        reject(new GatewayRefused('closed', `the connection to ${this.dst} is gone (${String(err)})`));
      }
    });
  }

  /** `ssh -L` through the gateway: a direct-tcpip channel opened by the target. */
  async forwardOut(srcIP: string, srcPort: number, host: string, port: number): Promise<ClientChannel> {
    const client = await this.ready;
    return new Promise((resolve, reject) => {
      try {
        client.forwardOut(srcIP, srcPort, host, port, (err, ch) => (err ? reject(new GatewayRefused('connect-failed', `${this.dst} could not open ${host}:${port}: ${err.message}`)) : resolve(ch)));
      } catch (err) {
        reject(new GatewayRefused('closed', `the connection to ${this.dst} is gone (${String(err)})`));
      }
    });
  }

  /** The leg's keepalive figures (RTT, probes); undefined until it is logged in. */
  stats(): MonitorStats | undefined {
    return this.keepalive?.stats();
  }

  /** A reload re-matched the leg to `route`: its keepalive follows the route's upstream policy. The new policy when it changed. */
  retune(route: ResolvedRoute): string | null {
    if (this.closed || !this.route) return null;
    this.route = route;
    const before = this.keepalive?.policy;
    const next = route.keepalive.upstream;
    if (!this.keepalive || (before && samePolicy(before, next))) return null;
    this.keepalive.setPolicy(next);
    return describePolicy(next);
  }

  /** Idempotent; the first reason wins. */
  close(reason: GatewayCloseReason): void {
    if (this.closed) return;
    this.closed = true;
    reason = this.dying ?? reason;
    this.abort.abort();
    this.keepalive?.stop();
    this.deps.agent.destroy();
    const client = this.client;
    if (client) {
      client.end();
      transport(client).destroy();
      this.deps.events.emit('gateway-close', {
        ...this.deps.who,
        dst: this.dst,
        route: this.route?.name,
        reason,
        durationMs: Date.now() - this.openedAt,
        ...(this.keepalive ? { upstreamKeepalive: statsForLog(this.keepalive.stats()) } : {}),
      });
    }
    this.keepalive = undefined;
  }
}
