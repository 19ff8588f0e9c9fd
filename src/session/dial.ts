/**
 * Dialling a channel's upstream leg from its plan: a TCP connection to the planned address (with the
 * route's TCP keepalive set and read back), a channel on the pooled bastion connection, or a channel
 * the gateway leg's target opens. The leg's release() gives back what it holds in a pool; onLost()
 * tells the relay when the leg ends from its own side (the bastion connection died).
 */
import type { Duplex } from 'node:stream';
import type { ResolvedRoute } from '../config/resolve.js';
import type { ChannelCloseReason } from '../close-reasons.js';
import { connectTcp, ConnectError, describeConnectError } from '../legs/tcp-upstream.js';
import { applyTcpKeepalive, type AppliedTcpKeepalive } from '../legs/tcp-keepalive.js';
import { tcpKeepaliveOptions, type TcpKeepaliveOptions } from '../keepalive/tcp-options.js';
import { describePolicy, type KeepalivePolicy } from '../keepalive/policy.js';
import { formatDestination } from '../routing/route-table.js';
import { UpstreamDialError, type UpstreamPool } from '../legs/ssh-upstream.js';
import type { GatewayUpstream } from '../legs/ssh-gateway.js';
import type { ChannelPlan } from '../routing/plan.js';

export interface UpstreamLeg {
  readonly stream: Duplex;
  /** The route whose policies the leg runs under (the gateway route for a gateway forward). */
  readonly route: ResolvedRoute;
  /** For logs: the address connected to, or "via <bastions>". */
  readonly addr: string;
  /** The raw TCP leg's keepalive as read back from the socket (again after a retune); null on an SSH leg. */
  readonly tcp: AppliedTcpKeepalive | null;
  onLost(fn: (reason: ChannelCloseReason, detail?: string) => void): void;
  release(): void;
  /**
   * A reload: run under this upstream policy from now on (set again on the live socket and read
   * back, or the pooled bastion connection re-planned). What changed, or null when nothing did; a
   * gateway forward follows the gateway leg and never changes here.
   */
  retune(policy: KeepalivePolicy, route: string): Retuned | null;
}

export type Retuned = { readonly layer: 'tcp'; readonly tcp: AppliedTcpKeepalive } | { readonly layer: 'ssh'; readonly policy: string };

export type DialFailureCode = 'connect-failed' | 'bastion-failed' | 'gateway-failed';

export class DialFailed extends Error {
  override name = 'DialFailed';
  constructor(
    readonly code: DialFailureCode,
    /** For the log line. */
    readonly why: string,
    /** What the user's ssh prints. */
    readonly told: string,
    readonly fields: { addr?: string; route?: string; upstream?: string; via?: string },
  ) {
    super(why);
  }
}

export interface DialEnv {
  readonly pool: UpstreamPool;
  readonly gateway: GatewayUpstream | undefined;
  /** Why a gateway login has no gateway leg (its login name was not a valid target). */
  readonly gatewayMissing?: string | undefined;
  readonly connectTimeoutMs: number;
  readonly signal: AbortSignal;
  /** The client's side of the forward, as direct-tcpip carries it. */
  readonly origin: { readonly ip: string; readonly port: number };
}

const nothing = () => {};

function sameOptions(a: TcpKeepaliveOptions, b: TcpKeepaliveOptions): boolean {
  return a.enable === b.enable && a.idleS === b.idleS && a.intervalS === b.intervalS && a.count === b.count && a.userTimeoutMs === b.userTimeoutMs;
}

export async function dial(plan: ChannelPlan, env: DialEnv): Promise<UpstreamLeg> {
  if (plan.kind === 'tcp') {
    const { route, address, port } = plan;
    let sock;
    try {
      sock = await connectTcp({ address, port, timeoutMs: env.connectTimeoutMs }, env.signal);
    } catch (err) {
      const why = describeConnectError(err instanceof ConnectError ? err.code : 'EIO');
      throw new DialFailed('connect-failed', why, `${why} (${formatDestination({ host: plan.host, port, address })})`, { addr: address, route: route.name });
    }
    // The raw TCP leg's keepalive is the kernel's, from the route's upstream policy.
    let options = tcpKeepaliveOptions(route.keepalive.upstream);
    const leg = {
      stream: sock,
      route,
      addr: address,
      tcp: applyTcpKeepalive(sock, options),
      onLost: nothing,
      release: nothing,
      retune: (policy: KeepalivePolicy): Retuned | null => {
        const next = tcpKeepaliveOptions(policy);
        if (sameOptions(next, options)) return null;
        options = next;
        leg.tcp = applyTcpKeepalive(sock, next);
        return { layer: 'tcp', tcp: leg.tcp };
      },
    };
    return leg;
  }
  if (plan.kind === 'via') {
    const chain = plan.route.via!;
    const upstream = chain.map((u) => u.name).join('>');
    try {
      const pooled = await env.pool.acquire(chain);
      const ch = await pooled.open(plan.host, plan.port, env.origin.ip, env.origin.port, plan.route.keepalive.upstream, plan.route.name);
      return {
        stream: ch.stream,
        route: plan.route,
        addr: `via ${upstream}`,
        tcp: null,
        onLost: (fn) => ch.onLost(fn),
        release: () => ch.release(),
        retune: (policy, route) => (ch.setPolicy(policy, route) ? { layer: 'ssh', policy: describePolicy(policy) } : null),
      };
    } catch (err) {
      const why = err instanceof UpstreamDialError ? err.message : String(err);
      throw new DialFailed('bastion-failed', why, why, { route: plan.route.name, upstream });
    }
  }
  const gateway = env.gateway;
  try {
    if (!gateway) throw new Error(env.gatewayMissing ?? 'no gateway leg');
    const stream = await gateway.forwardOut(env.origin.ip, env.origin.port, plan.host, plan.port);
    return { stream, route: gateway.route!, addr: `via ${gateway.dst}`, tcp: null, onLost: nothing, release: nothing, retune: () => null };
  } catch (err) {
    const why = err instanceof Error ? err.message : String(err);
    throw new DialFailed('gateway-failed', why, why, { via: gateway?.dst, route: gateway?.route?.name });
  }
}
