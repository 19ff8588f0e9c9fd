/** The human summary `holdfast check` prints for a valid config. */
import type { ResolvedConfig } from '../config/resolve.js';
import { formatDuration } from '../config/duration.js';
import fs from 'node:fs';
import { inspectHostKey } from '../ssh/host-keys.js';
import { describeHostCertificate, readHostCertificate } from '../ssh/host-certificates.js';
import { parseCaKeys } from '../ssh/user-ca.js';
import { RevocationList } from '../ssh/krl.js';
import { NAT_FORGET_WARN_MS, policyWarnings, TCP_TERMINATING_CAVEAT } from '../keepalive/policy.js';

/**
 * The keepalive warnings `explain` gives, for the defaults and every route. The TCP-terminating
 * middlebox caveat applies to every `ssh -J` upstream leg, so it is said once, naming the routes.
 */
export function keepaliveWarnings(c: ResolvedConfig): string[] {
  const out: string[] = [];
  for (const w of policyWarnings(c.keepalive.client, 'client', 'ssh')) out.push(`warning: defaults (no channel open): ${w}`);
  const tcpRoutes: string[] = [];
  for (const r of c.routes) {
    // via and gateway routes: the upstream leg is holdfast's own SSH connection (keepalive@openssh.com).
    const layer = r.via || r.gateway ? 'ssh' : 'tcp';
    const ws = [...policyWarnings(r.keepalive.client, 'client', 'ssh'), ...policyWarnings(r.keepalive.upstream, 'upstream', layer)];
    for (const w of ws) if (!w.endsWith(TCP_TERMINATING_CAVEAT)) out.push(`warning: route ${r.name}: ${w}`);
    if (layer === 'tcp' && r.keepalive.upstream.interval > 0) tcpRoutes.push(r.name);
  }
  if (tcpRoutes.length) out.push(`note: routes ${tcpRoutes.join(', ')}: upstream leg: ${TCP_TERMINATING_CAVEAT}`);
  out.push(...balancerWarnings(c));
  return out;
}

/**
 * Behind a load balancer (a PROXY listener) the client leg crosses a TCP-terminating middlebox with
 * its own idle timeout: only traffic shorter than that keeps the flow, and holdfast's client-leg
 * keepalive is that traffic.
 */
function balancerWarnings(c: ResolvedConfig): string[] {
  if (!c.listen.some((l) => l.proxyProtocol)) return [];
  const weak = [{ name: 'defaults (no channel open)', p: c.keepalive.client }, ...c.routes.map((r) => ({ name: `route ${r.name}`, p: r.keepalive.client }))].filter(
    ({ p }) => p.interval === 0 || p.interval > NAT_FORGET_WARN_MS,
  );
  return weak.map(
    ({ name, p }) =>
      `warning: ${name}: client leg keepalive ${p.interval === 0 ? 'off' : `every ${formatDuration(p.interval)}`} behind a load balancer (a proxyProtocol listener): ` +
      `the balancer forgets idle flows after its own timeout (haproxy timeout client/server/tunnel, AWS NLB 350 s, Azure 4 min), so keep keepalive.client.interval shorter than it (${formatDuration(NAT_FORGET_WARN_MS)} or less)`,
  );
}

/** What `check` and `explain` say about certificates, revocation and host certificates. */
export function certificateLines(c: ResolvedConfig): string[] {
  const out: string[] = [];
  const cas = c.trustedUserCAKeys ? readCas(c.trustedUserCAKeys) : null;
  out.push(
    c.trustedUserCAKeys
      ? `user certificates: CAs in ${c.trustedUserCAKeys} (${cas}); principal: ${c.authorizedPrincipalsFile ? `a line of ${c.authorizedPrincipalsFile}` : 'the user name'}; also cert-authority lines in authorized_keys`
      : 'user certificates: only from CAs on cert-authority lines in authorized_keys (no trustedUserCAKeys)',
  );
  if (c.revokedKeys) out.push(`revoked keys: ${c.revokedKeys} (${revokedSummary(c.revokedKeys)})`);
  for (const file of c.hostCertificates) {
    const hc = readHostCertificate(file);
    out.push(`host certificate: ${hc.ok ? describeHostCertificate(hc) : hc.why}`);
  }
  return out;
}

function readCas(file: string): string {
  try {
    const m = parseCaKeys(fs.readFileSync(file, 'utf8'));
    return [...m.values()].map((k) => k.fingerprint).join(', ');
  } catch (err) {
    return `unreadable: ${(err as Error).message}`;
  }
}

function revokedSummary(file: string): string {
  try {
    const s = RevocationList.parse(fs.readFileSync(file)).summary;
    return s.format === 'krl' ? `KRL: ${s.serials} serial entries, ${s.keyIds} key IDs, ${s.keys} keys, ${s.fingerprints} fingerprints, ${s.cas} CA sections` : `${s.keys} public keys`;
  } catch (err) {
    return `unreadable: ${(err as Error).message}`;
  }
}

/** A route's resumable sessions (holdfast connect), as `check` and `explain` show them. */
export function resumeText(r: { readonly resume: { readonly detachTimeoutMs: number; readonly sameSource: boolean } }): string {
  return `resume (holdfast connect): detached sessions kept ${formatDuration(r.resume.detachTimeoutMs)}, resumed from ${r.resume.sameSource ? 'the same address only' : 'any address'}`;
}

/** A route's channel idle limit and session time limit, as `check` and `explain` show them. */
export function limitsText(r: { readonly idleTimeoutMs: number; readonly maxSessionTimeMs: number }): string {
  return `idleTimeout ${r.idleTimeoutMs ? formatDuration(r.idleTimeoutMs) : 'off'}, maxSessionTime ${r.maxSessionTimeMs ? formatDuration(r.maxSessionTimeMs) : 'none'}`;
}

export function summarizeConfig(c: ResolvedConfig, warnings: readonly string[]): string {
  const lines: string[] = [];
  lines.push(`${c.source}: OK`);
  lines.push(`listen: ${c.listen.map((l) => `${l.address.includes(':') ? `[${l.address}]` : l.address}:${l.port}${l.proxyProtocol ? ` (PROXY protocol from ${l.proxyProtocol.trusted.join(', ')})` : ''}`).join(', ')}`);
  for (const k of c.hostKeys) {
    const s = inspectHostKey(k);
    lines.push(`host key: ${k} (${s.state === 'ok' ? s.type : 'will be created: ssh-ed25519'})`);
  }
  lines.push(`authorized keys: ${c.authorizedKeys}`);
  lines.push(...certificateLines(c));
  lines.push(
    `limits: loginGraceTime ${formatDuration(c.loginGraceTimeMs)}, maxAuthTries ${c.maxAuthTries}, ` +
      `maxChannels ${c.maxChannels}, connectTimeout ${formatDuration(c.connectTimeoutMs)}, ` +
      `maxStartups ${c.startups.start}:${c.startups.rate}:${c.startups.full}, perSourceMaxStartups ${c.startups.perSource || 'none'} (/${c.startups.v4Bits}, /${c.startups.v6Bits}), ` +
      `idleTimeout ${c.idleTimeoutMs ? formatDuration(c.idleTimeoutMs) : 'off'} (a connection with no channel)`,
  );
  if (c.admin) {
    const a = c.admin;
    lines.push(`admin: http://${a.address.includes(':') ? `[${a.address}]` : a.address}:${a.port} (/metrics, /healthz, /sessions; ${a.auth ? `/metrics and /sessions need the bearer token in ${a.auth.tokenFile}` : 'no token'})`);
  }
  lines.push(`routes (${c.routes.length}, first match wins):`);
  for (const r of c.routes) {
    const ka = (p: { interval: number; countMax: number }) => (p.interval === 0 ? 'off' : `${formatDuration(p.interval)} x ${p.countMax}`);
    lines.push(
      `  ${r.name}: users ${r.users ? r.users.join(',') : '(any)'}; to ${r.to.map((t) => t.source).join(', ')}; ` +
        `keepalive client ${ka(r.keepalive.client)}, upstream ${ka(r.keepalive.upstream)}; ${limitsText(r)}` +
        (r.gateway ? '' : `; ${resumeText(r)}`) +
        (r.via ? `; via ${r.via.map((u) => u.name).join(' > ')}` : '') +
        (r.gateway ? `; gateway as ${r.gateway.user} (${r.gateway.identity ? `key ${r.gateway.identity}` : "the user's forwarded agent"}, host keys ${r.gateway.hostKeyPolicy})` : ''),
    );
  }
  lines.push(
    'note: wildcards (`*`, `10.*`, wide CIDRs) never reach the jump host itself: loopback, link-local (169.254.169.254), ' +
      "unspecified and holdfast's own addresses need an entry naming the address or a CIDR inside its block",
  );
  for (const w of warnings) lines.push(`warning: ${w}`);
  lines.push(...keepaliveWarnings(c));
  return lines.join('\n');
}
