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
import type { Logger } from '../log.js';
import type { ForwardedAgent } from '../ssh/forwarded-agent.js';
import { KeepaliveMonitor, statsForLog, systemClock, timeoutFields, type MonitorStats } from '../keepalive/monitor.js';
import { describePolicy } from '../keepalive/policy.js';
import { pingClient, transport } from '../ssh/ping.js';
import { gatewayUser } from '../routing/gateway-login.js';
import { formatDestination } from '../routing/route-table.js';
import { canonicalDestination, resolveAndRoute, type Lookup } from './resolve-destination.js';
import type { AddressGuard } from '../routing/guard.js';
import { connectTcp, ConnectError, describeConnectError } from './tcp-upstream.js';
import { dialSsh, UpstreamDialError } from './ssh-dial.js';

export type GatewayCloseReason = 'upstream-keepalive-timeout' | 'upstream-closed' | 'upstream-error' | 'session-closed' | 'client-keepalive-timeout' | 'shutdown';

/** Why the target could not be reached, in words for the user's terminal and the log. */
export class GatewayRefused extends Error {
  override name = 'GatewayRefused';
  constructor(
    readonly code: 'no-route' | 'unresolved' | 'connect-failed' | 'login-failed' | 'closed',
    message: string,
    readonly route?: string,
  ) {
    super(message);
  }
}

export interface GatewayDeps {
  readonly config: ResolvedConfig;
  readonly log: Logger;
  readonly lookup: Lookup;
  /** Addresses wildcards never reach (src/routing/guard.ts). */
  readonly guard: AddressGuard;
  readonly agent: ForwardedAgent;
  readonly fields: Record<string, unknown>;
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
  private monitor: KeepaliveMonitor | undefined;
  private closed = false;
  private closeReason: GatewayCloseReason | undefined;
  private dying: GatewayCloseReason | undefined;
  private readonly abort = new AbortController();
  private readonly onData = () => this.monitor?.received();
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
    const { config, log, fields } = this.deps;
    const routes = config.routes.filter((r) => r.gateway);
    const asked = canonicalDestination(this.host, this.port);
    if (!asked.ok) {
      log.warn('gateway-refused', { ...fields, dst: this.dst, why: `not a destination: ${asked.why}` });
      throw new GatewayRefused('no-route', `${this.dst} is not a valid destination (${asked.why})`);
    }
    const res = await resolveAndRoute(routes, this.user, asked, this.deps.lookup, config.connectTimeoutMs, this.deps.guard);
    if (this.closed) throw new GatewayRefused('closed', 'the session is closing');
    if (res.kind === 'refused') {
      const why = res.decision.misses.length ? res.decision.misses.map((m) => `${m.route}: ${m.why}`).join('; ') : 'no gateway routes configured';
      log.warn('gateway-refused', { ...fields, dst: this.dst, why: `no gateway route allows it (${why})` });
      throw new GatewayRefused('no-route', `no gateway route allows ${this.user} to reach ${this.dst}`);
    }
    if (res.kind === 'unresolved') {
      log.warn('gateway-connect-failed', { ...fields, dst: this.dst, route: res.route.name, why: `cannot resolve: ${res.code}` });
      throw new GatewayRefused('unresolved', `cannot resolve ${this.host}: ${res.code}`, res.route.name);
    }
    const route = res.decision.route;
    const g = route.gateway!;
    this.route = route;
    this.address = res.address;
    this.deps.routed(route);
    let sock;
    try {
      sock = await connectTcp({ address: res.address, port: this.port, timeoutMs: config.connectTimeoutMs }, this.abort.signal);
    } catch (err) {
      const why = describeConnectError(err instanceof ConnectError ? err.code : 'EIO');
      if (!this.closed) log.warn('gateway-connect-failed', { ...fields, dst: this.dst, addr: res.address, route: route.name, why });
      throw new GatewayRefused('connect-failed', `${why} (${formatDestination({ host: this.host, port: this.port, address: res.address })})`, route.name);
    }
    let client: Client_;
    try {
      client = await dialSsh(
        {
          name: this.dst,
          role: 'target',
          host: this.host,
          port: this.port,
          user: gatewayUser(g.user, this.user),
          identity: g.identity,
          agent: this.deps.agent,
          knownHosts: g.knownHosts,
          hostKeyPolicy: g.hostKeyPolicy,
        },
        sock,
        { connectTimeoutMs: config.connectTimeoutMs, ownKnownHosts: config.ownKnownHosts, log },
      );
    } catch (err) {
      sock.destroy();
      const why = err instanceof UpstreamDialError ? err.message : String(err);
      if (!this.closed) log.warn('gateway-connect-failed', { ...fields, dst: this.dst, addr: res.address, route: route.name, why });
      throw new GatewayRefused('login-failed', why, route.name);
    }
    if (this.closed) {
      client.end();
      sock.destroy();
      throw new GatewayRefused('closed', 'the session is closing');
    }
    this.client = client;
    client.on('close', () => this.die('upstream-closed', 'the target closed the connection'));
    client.on('error', (err: Error) => this.die('upstream-error', err.message));
    transport(client).on('data', this.onData);
    const policy = route.keepalive.upstream;
    this.monitor = new KeepaliveMonitor(policy, systemClock, {
      probe: () => pingClient(client, (rtt) => this.monitor?.replied(rtt)),
      dead: (stats) => this.keepaliveDead(stats),
    });
    log.info('gateway-open', {
      ...fields,
      dst: this.dst,
      addr: res.address,
      route: route.name,
      upstreamUser: gatewayUser(g.user, this.user),
      auth: g.identity ? 'identity' : 'agent',
      upstreamKeepalive: { layer: 'ssh', policy: describePolicy(policy) },
    });
    return client;
  }

  private keepaliveDead(stats: MonitorStats): void {
    const p = this.route!.keepalive.upstream;
    this.deps.log.warn('upstream-keepalive-timeout', {
      ...this.deps.fields,
      dst: this.dst,
      addr: this.address,
      route: this.route!.name,
      reason: 'upstream-keepalive-timeout',
      leg: 'upstream',
      layer: 'ssh',
      ...timeoutFields(p, stats),
    });
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

  get keepaliveStats(): MonitorStats | undefined {
    return this.monitor?.stats();
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

  get reason(): GatewayCloseReason | undefined {
    return this.closeReason;
  }

  /** Idempotent; the first reason wins. */
  close(reason: GatewayCloseReason): void {
    if (this.closed) return;
    this.closed = true;
    reason = this.dying ?? reason;
    this.closeReason = reason;
    this.abort.abort();
    this.monitor?.stop();
    this.deps.agent.destroy();
    const client = this.client;
    if (client) {
      transport(client).off('data', this.onData);
      client.end();
      transport(client).destroy();
      this.deps.log.info('gateway-close', {
        ...this.deps.fields,
        dst: this.dst,
        route: this.route?.name,
        reason,
        durationMs: Date.now() - this.openedAt,
        ...(this.monitor ? { upstreamKeepalive: statsForLog(this.monitor.stats()) } : {}),
      });
    }
    this.monitor = undefined;
  }
}
