/**
 * Deciding a channel: request + config -> plan | refusal. The one place routes are decided, for
 * `ssh -J` channels and for gateway logins alike. No sockets and no ssh2 here (the DNS lookup is
 * injected), so every refusal is unit-tested (test/unit/plan.test.ts).
 *
 * Order, as sshd checks: the destination's one spelling first (src/routing/canonical.ts), then the
 * key's options, then the channel limit, then the routes. Routes with `via` are matched on the name
 * (or the literal address): the last bastion resolves the name, which may exist only in its network.
 * Any other route is matched on the name and on each resolved address, and holdfast then connects to
 * exactly the address the route allowed.
 */
import type { ResolvedConfig, ResolvedRoute } from '../config/resolve.js';
import type { KeyOptions } from '../ssh/authorized-keys.js';
import { permitOpenAllows } from '../ssh/authorized-keys.js';
import type { OpenFailure } from '../ssh/server-adapter.js';
import { findRoute, formatDestination } from './route-table.js';
import type { AddressGuard } from './guard.js';
import { canonicalDestination, resolveAndRoute, type Canonical, type Lookup } from './resolve-destination.js';

export type RefusalCode = 'invalid-destination' | 'port-forwarding-disabled' | 'permitopen' | 'max-channels' | 'queued-bytes' | 'no-route' | 'unresolved' | 'admin-port';

/** The refusals a gateway login can get (planGateway). */
export type GatewayRefusalCode = Extract<RefusalCode, 'invalid-destination' | 'permitopen' | 'no-route' | 'unresolved' | 'admin-port'>;

/** What a key's options allow of destinations (authorized_keys, or a certificate's principals line). */
export type KeyReach = Pick<KeyOptions, 'portForwarding' | 'permitOpen'>;

/** permitopen=: the host and port as asked, as sshd matches them (one rule for ssh -J and gateway logins). */
function notPermitted(key: KeyReach, host: string, port: number, dst: string): Refusal<'permitopen'> | undefined {
  if (permitOpenAllows(key, host, port)) return undefined;
  return refusal('permitopen', dst, "not allowed by the key's permitopen=", `${dst} is not allowed by permitopen for this key`);
}


const ADMIN_WHY = "holdfast's own admin listener is never a destination";

export interface Refusal<C extends RefusalCode = RefusalCode> {
  readonly kind: 'refused';
  readonly code: C;
  /** For the log line. */
  readonly why: string;
  /** What the user's ssh prints ("open failed: <failure>: <told>"). */
  readonly told: string;
  readonly failure: OpenFailure;
  readonly dst: string;
  readonly route?: string | undefined;
}

export type ChannelPlan =
  /** ssh -J: a raw TCP connection to `address`, the address the route was matched on. */
  | { readonly kind: 'tcp'; readonly route: ResolvedRoute; readonly host: string; readonly port: number; readonly dst: string; readonly address: string }
  /** ssh -J through the route's bastions: the last one opens host:port. */
  | { readonly kind: 'via'; readonly route: ResolvedRoute; readonly host: string; readonly port: number; readonly dst: string }
  /** ssh -L in a gateway session: the target opens it, and its sshd decides (AllowTcpForwarding). */
  | { readonly kind: 'gateway'; readonly host: string; readonly port: number; readonly dst: string };

/** A gateway login's target: holdfast connects to `address` and logs in there. */
export interface GatewayPlan {
  readonly kind: 'gateway-target';
  readonly route: ResolvedRoute;
  readonly address: string;
  readonly dst: string;
}

export interface ChannelRequest {
  readonly user: string;
  /** As the client sent it (destIP / destPort of direct-tcpip). */
  readonly host: string;
  readonly port: number;
  readonly key: KeyReach;
  /** Channels the connection holds now (open, being opened, refused session channels). */
  readonly openChannels: number;
  /** Bytes held for targets that are not reading, by the user's channels and by all (undefined: not checked). */
  readonly queued?: { readonly user: number; readonly process: number } | undefined;
  /** The connection is a gateway login: its channels go through the gateway leg. */
  readonly gatewayLogin: boolean;
}

export interface PlanEnv {
  readonly config: ResolvedConfig;
  readonly lookup: Lookup;
  readonly guard: AddressGuard;
}

/** Routes with `gateway` serve gateway logins only; the others ssh -J only. */
export function routesFor(config: ResolvedConfig, mode: 'jump' | 'gateway'): ResolvedRoute[] {
  return config.routes.filter((r) => (r.gateway !== undefined) === (mode === 'gateway'));
}

function refusal<C extends RefusalCode>(code: C, dst: string, why: string, told: string, failure: OpenFailure = 'prohibited', route?: string): Refusal<C> {
  return { kind: 'refused', code, why, told, failure, dst, route };
}

/** Each route's reason for not matching, for the log ("r1: ...; r2: ..."). */
function missesText(misses: readonly { route: string; why: string }[], none: string): string {
  return misses.length ? misses.map((m) => `${m.route}: ${m.why}`).join('; ') : none;
}

/** A direct-tcpip channel (ssh -J, ssh -W, ssh -L): the plan, or why not. */
export async function planChannel(req: ChannelRequest, env: PlanEnv): Promise<ChannelPlan | Refusal> {
  const checked = checkDestination(req, env.config);
  if (checked.kind === 'refused') return checked;
  const { dst, canonical } = checked;
  const { host, port } = canonical;
  if (req.gatewayLogin) return { kind: 'gateway', host, port, dst };
  const routes = routesFor(env.config, 'jump');
  const literal = canonical.kind === 'name' ? '' : host;
  const byName = findRoute(routes, req.user, { host, kind: canonical.kind, port, address: literal, protection: env.guard.protection(literal) });
  if (byName.route?.via) return { kind: 'via', route: byName.route, host, port, dst };
  const res = await resolveAndRoute(routes, req.user, canonical, env.lookup, env.config.connectTimeoutMs, env.guard);
  if (res.kind === 'refused') {
    return refusal('no-route', dst, `no route allows it (${missesText(res.decision.misses, 'no routes configured')})`, `holdfast: no route allows ${req.user} to reach ${dst}`);
  }
  if (res.kind === 'unresolved') {
    return refusal('unresolved', dst, `cannot resolve: ${res.code}`, `cannot resolve ${host}: ${res.code}`, 'connect-failed', res.route.name);
  }
  if (env.guard.isAdmin(res.address, port)) return refusal('admin-port', dst, ADMIN_WHY, `holdfast: ${dst} is the jump host's admin port`);
  return { kind: 'tcp', route: res.decision.route, host, port, dst, address: res.address };
}

/** The pre-lookup checks as a value: the refusal, or the canonical destination. */
export function checkDestination(req: ChannelRequest, config: ResolvedConfig): Refusal | { readonly kind: 'checked'; readonly dst: string; readonly canonical: Canonical } {
  const asked = canonicalDestination(req.host, req.port);
  const host = asked.ok ? asked.host : req.host;
  const dst = formatDestination({ host, port: req.port, address: host });
  if (!asked.ok) return refusal('invalid-destination', dst, `not a destination: ${asked.why}`, `holdfast: not a valid destination (${asked.why})`);
  if (!req.key.portForwarding) return refusal('port-forwarding-disabled', dst, 'key has no-port-forwarding/restrict', 'port forwarding is disabled for this key');
  const byKey = notPermitted(req.key, host, req.port, dst);
  if (byKey) return byKey;
  if (req.openChannels >= config.maxChannels) {
    return refusal('max-channels', dst, `maxChannels ${config.maxChannels} reached`, `too many open channels (limit ${config.maxChannels})`, 'resource-shortage');
  }
  const q = req.queued;
  if (q && q.user >= config.maxQueuedBytesPerUser) {
    const held = `holdfast holds ${mib(q.user)} MiB for ${req.user}'s targets that are not reading (maxQueuedMiBPerUser ${mib(config.maxQueuedBytesPerUser)})`;
    return refusal('queued-bytes', dst, held, `${held}: close the channels whose target is stuck`, 'resource-shortage');
  }
  if (q && q.process >= config.maxQueuedBytes) {
    const held = `holdfast holds ${mib(q.process)} MiB for targets that are not reading (maxQueuedMiB ${mib(config.maxQueuedBytes)})`;
    return refusal('queued-bytes', dst, held, `${held}: try again later`, 'resource-shortage');
  }
  return { kind: 'checked', dst, canonical: { host: asked.host, kind: asked.kind, port: asked.port } };
}

/** A gateway login `user+host[+port]`: the target's route and address, or why not (told on the user's terminal). */
export async function planGateway(user: string, key: KeyReach, target: { host: string; port: number }, env: PlanEnv): Promise<GatewayPlan | Refusal<GatewayRefusalCode>> {
  const dst = formatDestination({ ...target, address: target.host });
  const asked = canonicalDestination(target.host, target.port);
  if (!asked.ok) return refusal('invalid-destination', dst, `not a destination: ${asked.why}`, `${dst} is not a valid destination (${asked.why})`);
  // The key's permitopen= names the only targets it may log in to: an operator who writes it means
  // "this key reaches only there". no-port-forwarding and restrict do not refuse the login: it is a
  // session, which sshd gives such a key too, without a pty or agent forwarding, and every forward
  // inside it (ssh -L) is refused.
  const byKey = notPermitted(key, asked.host, target.port, dst);
  if (byKey) return byKey;
  const res = await resolveAndRoute(routesFor(env.config, 'gateway'), user, asked, env.lookup, env.config.connectTimeoutMs, env.guard);
  if (res.kind === 'refused') {
    return refusal('no-route', dst, `no gateway route allows it (${missesText(res.decision.misses, 'no gateway routes configured')})`, `no gateway route allows ${user} to reach ${dst}`);
  }
  if (res.kind === 'unresolved') return refusal('unresolved', dst, `cannot resolve: ${res.code}`, `cannot resolve ${target.host}: ${res.code}`, 'connect-failed', res.route.name);
  if (env.guard.isAdmin(res.address, target.port)) return refusal('admin-port', dst, ADMIN_WHY, `${dst} is the jump host's admin port`);
  return { kind: 'gateway-target', route: res.decision.route, address: res.address, dst };
}

/**
 * How a live channel was routed, to re-match it after a reload with no DNS lookup: a raw TCP channel
 * by its name and the address it connected to, a bastion channel by its name and its chain.
 */
export interface RoutedChannel {
  readonly host: string;
  readonly port: number;
  readonly path: { readonly kind: 'tcp'; readonly address: string } | { readonly kind: 'via'; readonly chain: string };
}

export function chainOf(route: ResolvedRoute): string {
  return (route.via ?? []).map((u) => u.name).join('>');
}

/** What a plan tells a reload about the channel it made. */
export function routedChannel(plan: Extract<ChannelPlan, { kind: 'tcp' | 'via' }>): RoutedChannel {
  return { host: plan.host, port: plan.port, path: plan.kind === 'tcp' ? { kind: 'tcp', address: plan.address } : { kind: 'via', chain: chainOf(plan.route) } };
}

/**
 * After a reload: the route a live `ssh -J` channel runs under now, or why it may not carry on. The
 * same checks as planChannel (the key's options as they are now, then the routes, first match), among
 * the routes that would carry it the same way (a raw TCP channel cannot move behind a bastion):
 * direct routes for a TCP channel, routes with the same `via` chain for a bastion channel.
 */
export function recheckChannel(
  user: string,
  key: ChannelRequest['key'],
  ch: RoutedChannel,
  config: ResolvedConfig,
  guard: AddressGuard,
): { readonly kind: 'route'; readonly route: ResolvedRoute } | Refusal {
  const checked = checkDestination({ user, host: ch.host, port: ch.port, key, openChannels: 0, gatewayLogin: false }, config);
  if (checked.kind === 'refused') return checked;
  const { dst, canonical } = checked;
  const { host, kind, port } = canonical;
  const path = ch.path;
  const candidates = routesFor(config, 'jump').filter((r) => (path.kind === 'tcp' ? !r.via : r.via !== undefined && chainOf(r) === path.chain));
  const address = path.kind === 'tcp' ? path.address : kind === 'name' ? '' : host;
  const decision = findRoute(candidates, user, { host, kind, port, address, protection: guard.protection(address) });
  if (decision.route) return { kind: 'route', route: decision.route };
  const none = path.kind === 'tcp' ? 'no direct route left' : `no route through ${path.chain} left`;
  return refusal('no-route', dst, `no route allows it any more (${missesText(decision.misses, none)})`, `holdfast: no route allows ${user} to reach ${dst} any more`);
}

/** After a reload: the gateway route a live gateway leg runs under now (matched on its target and the address it connected to), or why not. */
export function recheckGateway(
  user: string,
  key: KeyReach,
  target: { readonly host: string; readonly port: number },
  address: string,
  config: ResolvedConfig,
  guard: AddressGuard,
): { readonly kind: 'route'; readonly route: ResolvedRoute } | Refusal<GatewayRefusalCode> {
  const dst = formatDestination({ ...target, address: target.host });
  const asked = canonicalDestination(target.host, target.port);
  if (!asked.ok) return refusal('invalid-destination', dst, `not a destination: ${asked.why}`, `${dst} is not a valid destination (${asked.why})`);
  const byKey = notPermitted(key, asked.host, target.port, dst);
  if (byKey) return byKey;
  const decision = findRoute(routesFor(config, 'gateway'), user, { host: asked.host, kind: asked.kind, port: asked.port, address, protection: guard.protection(address) });
  if (decision.route) return { kind: 'route', route: decision.route };
  return refusal('no-route', dst, `no gateway route allows it any more (${missesText(decision.misses, 'no gateway routes left')})`, `no gateway route allows ${user} to reach ${dst} any more`);
}

const mib = (bytes: number): number => Math.round(bytes / (1024 * 1024));
