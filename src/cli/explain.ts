/**
 * `holdfast explain DEST[:PORT]`: which route a destination takes (or why none does), and for each
 * leg its layer, policy, probe schedule, worst-case time to notice a dead peer, and warnings.
 */
import net from 'node:net';
import type { ResolvedConfig } from '../config/resolve.js';
import { formatDuration } from '../config/duration.js';
import { canonicalDestination, resolveAndRoute, systemLookup, type Lookup } from '../routing/resolve-destination.js';
import { routesFor } from '../routing/plan.js';
import { formatDestination } from '../routing/route-table.js';
import { detectionBoundMs, describePolicy, policyWarnings, type KeepalivePolicy, type Layer, type Leg } from '../keepalive/policy.js';
import { tcpKeepaliveOptions } from '../keepalive/tcp-options.js';
import { gatewayUser } from '../routing/gateway-login.js';
import { certificateLines, limitsText, resumeText } from './summary.js';
import { AddressGuard, ownAddresses, resolveAdminEndpoint } from '../routing/guard.js';

export interface ExplainRequest {
  readonly host: string;
  readonly port: number;
  readonly user: string;
  readonly from?: string | undefined;
  /** Explain the gateway login `user+host+port` (routes with `gateway`) instead of `ssh -J`. */
  readonly gateway?: boolean | undefined;
}

export async function explain(config: ResolvedConfig, req: ExplainRequest, lookup: Lookup = systemLookup): Promise<{ text: string; matched: boolean }> {
  const out: string[] = [];
  const dst = formatDestination({ host: req.host, port: req.port, address: req.host });
  out.push(`destination: ${dst}, user: ${req.user}, as ${req.gateway ? `a gateway login (ssh -p PORT ${req.user}+${req.port === 22 ? req.host : `${req.host}+${req.port}`}@holdfast)` : 'ssh -J'}`);
  if (req.from) {
    out.push(
      `source: ${req.from} (routes do not restrict by source address; a key's from= option in authorized_keys does)`,
    );
    const proxied = config.listen.filter((l) => l.proxyProtocol);
    if (proxied.length) {
      out.push(`  on ${proxied.map((l) => `${l.address}:${l.port}`).join(', ')} (proxyProtocol) this is the client address the load balancer's PROXY header gives, not the balancer's`);
    }
  }
  if (config.trustedUserCAKeys || config.revokedKeys || config.hostCertificates.length) out.push(...certificateLines(config));
  if (config.trustedUserCAKeys && !config.authorizedPrincipalsFile) out.push(`  as ${req.user}: a certificate from those CAs must list the principal "${req.user}"`);
  const routes = routesFor(config, req.gateway ? 'gateway' : 'jump');
  const asked = canonicalDestination(req.host, req.port);
  if (!asked.ok) {
    out.push(`route: none: ${req.host} is not a destination (${asked.why}); holdfast refuses it before any route is matched`);
    return { text: out.join('\n'), matched: false };
  }
  // As serve does: a named admin.address (localhost) protects every address it resolves to.
  const guard = new AddressGuard(ownAddresses(config.listen), await resolveAdminEndpoint(config.admin));
  const res = await resolveAndRoute(routes, req.user, asked, lookup, config.connectTimeoutMs, guard);
  if (res.host !== req.host) out.push(`canonical: ${res.host} (the one spelling holdfast matches, resolves and logs)`);
  if (res.kind === 'refused') {
    out.push(req.gateway ? `route: none: the user sees "holdfast: no gateway route allows ${req.user} to reach ${dst}"` : `route: none: holdfast answers "administratively prohibited"`);
    if (res.decision.misses.length === 0) out.push(req.gateway ? '  no gateway routes are configured' : '  no routes are configured');
    for (const m of res.decision.misses) out.push(`  ${m.route}: ${m.why}`);
    return { text: out.join('\n'), matched: false };
  }
  if (res.kind === 'routed' && guard.isAdmin(res.address, req.port)) {
    out.push(`route: none: ${dst} is holdfast's own admin listener, never a destination (code admin-port), whatever the routes say`);
    return { text: out.join('\n'), matched: false };
  }
  const route = res.kind === 'routed' ? res.decision.route : res.route;
  if (res.kind === 'unresolved') {
    out.push(`address: ${req.host} does not resolve here (${res.code}): matched on the name only; holdfast would answer "connect failed"`);
  } else if (!net.isIP(res.host)) {
    out.push(`address: ${res.address} (resolved once; holdfast connects to exactly this address)`);
  }
  const skipped = res.decision.misses;
  out.push(`route: ${route.name}${skipped.length ? ` (after ${skipped.map((m) => `${m.route}: ${m.why}`).join('; ')})` : ''}`);
  if (route.via) out.push(`via: ${route.via.map((u) => `${u.name} (${u.user}@${u.host}:${u.port})`).join(' > ')}, one pooled SSH connection`);
  if (route.gateway) {
    const g = route.gateway;
    out.push(`gateway: holdfast logs in as ${gatewayUser(g.user, req.user)} with ${g.identity ? `its key ${g.identity}` : "the user's forwarded agent (ssh -A)"}; host keys ${g.hostKeyPolicy}${g.knownHosts ? ` against ${g.knownHosts}` : ''}`);
  }
  out.push(...legLines('client', 'ssh', route.keepalive.client, config));
  out.push(...legLines('upstream', route.via || route.gateway ? 'ssh' : 'tcp', route.keepalive.upstream, config, route.via ? 'bastion' : 'target'));
  out.push(
    `limits: ${limitsText(route)}` +
      (route.idleTimeoutMs ? `; a channel with no data either way for ${formatDuration(route.idleTimeoutMs)} is closed (keepalive traffic does not count)` : '') +
      (route.maxSessionTimeMs ? `; a connection with a channel on this route is closed ${formatDuration(route.maxSessionTimeMs)} after it began` : '') +
      (route.gateway && (route.idleTimeoutMs || route.maxSessionTimeMs) ? '; the user is warned on stderr 60 s before (at half a shorter limit)' : ''),
  );
  if (!route.gateway) out.push(`${resumeText(route)}; buffer ${config.resume.bufferBytes / (1024 * 1024)} MiB each way`);
  return { text: out.join('\n'), matched: true };
}

function legLines(leg: Leg, layer: Layer, p: KeepalivePolicy, config: ResolvedConfig, peer = 'target'): string[] {
  const how =
    layer === 'tcp'
      ? 'TCP keepalive (raw TCP: the user\'s SSH is end-to-end inside it)'
      : leg === 'client'
        ? 'keepalive@openssh.com global requests'
        : `keepalive@openssh.com global requests on holdfast's own SSH connection to the ${peer}`;
  const out = [`${leg} leg: layer ${layer}, ${how}`];
  out.push(`  policy: ${p.interval === 0 ? 'off (interval 0)' : `interval ${formatDuration(p.interval)}, countMax ${p.countMax}`}`);
  if (p.interval > 0) {
    out.push(`  probes: after ${formatDuration(p.interval)} with nothing received, then every ${formatDuration(p.interval)} while nothing is received; anything received resets the count`);
    const bound = detectionBoundMs(p);
    out.push(bound === null ? '  dead peer: never declared (countMax 0)' : `  dead peer: noticed at most ${formatDuration(bound)} after the last byte received (interval x (countMax + 1))`);
  } else {
    out.push('  probes: none (keepalive off)');
  }
  if (layer === 'tcp' && p.interval > 0) {
    const o = tcpKeepaliveOptions(p);
    out.push(`  socket: SO_KEEPALIVE, TCP_KEEPIDLE ${o.idleS}s, TCP_KEEPINTVL ${o.intervalS}s, TCP_KEEPCNT ${o.count}, TCP_USER_TIMEOUT ${o.userTimeoutMs === 0 ? 'off' : formatDuration(o.userTimeoutMs)}`);
  }
  if (leg === 'client') {
    out.push(
      `  note: a connection with several channels uses the strictest client policy of their routes; with none open, the defaults (${describePolicy(config.keepalive.client)})`,
    );
  }
  for (const w of policyWarnings(p, leg, layer)) out.push(`  warning: ${w.replace(`${leg} leg: `, '')}`);
  return out;
}
