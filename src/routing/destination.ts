/**
 * `to:` entries of a route: an ssh_config host pattern (`*`, `?`, `!` to exclude) or a CIDR, with an
 * optional `:port` (default 22, `*` any). IPv6 literals and CIDRs take brackets when a port follows:
 * `[2001:db8::/32]:2222`; a bare IPv6 CIDR means port 22.
 *
 * Names and addresses are matched each in their own way: a pattern made of digits, dots and
 * wildcards (`10.1.2.*`), or one with colons (IPv6), is an address pattern and is matched against the
 * address holdfast connects to, never against a name (so `10.1.2.*` does not match
 * `10.1.2.3.attacker.tld`); any other pattern is a name pattern and is matched against the canonical
 * name the client asked for (src/routing/canonical.ts), never against an address.
 *
 * A negated entry with no port excludes the host on every port: `!secret.internal` reads as "never
 * secret.internal", which is what an operator means by it.
 *
 * Wildcards never reach the jump host itself: a loopback, link-local or unspecified address, or one
 * of holdfast's own addresses (src/routing/guard.ts), is reached only through an entry that names it
 * explicitly: the address itself, or a CIDR inside its block.
 */
import net from 'node:net';
import { wildcardMatch } from './wildcard.js';
import { canonicalAddress, type HostKind } from './canonical.js';
import type { Protection } from './guard.js';

export const DEFAULT_SSH_PORT = 22;

export type DestinationPattern = {
  readonly source: string;
  readonly negated: boolean;
  /** '*' = any port. */
  readonly port: number | '*';
} & (
  | { readonly kind: 'name'; readonly pattern: string }
  /** Only wildcards (`*`): any name, and any address. */
  | { readonly kind: 'any'; readonly pattern: string }
  | { readonly kind: 'address'; readonly pattern: string; readonly exact: boolean }
  | { readonly kind: 'cidr'; readonly network: string; readonly prefix: number; readonly blockList: net.BlockList }
);

export type ParseResult<T> = { ok: true; value: T } | { ok: false; message: string };

const NAME_PATTERN = /^[a-z0-9._*?-]+$/;
const IPV4_PATTERN = /^[0-9.*?]+$/;
const IPV6_PATTERN = /^[0-9a-f:.*?]+$/;

export function parseDestinationPattern(source: string): ParseResult<DestinationPattern> {
  const q = JSON.stringify(source);
  let text = source.trim();
  const negated = text.startsWith('!');
  if (negated) text = text.slice(1);
  if (text === '') return { ok: false, message: `${q} is empty` };

  let hostPart: string;
  let portPart: string | undefined;
  if (text.startsWith('[')) {
    const close = text.indexOf(']');
    if (close < 0) return { ok: false, message: `${q} has "[" without "]"` };
    hostPart = text.slice(1, close);
    const rest = text.slice(close + 1);
    if (rest !== '' && !rest.startsWith(':')) return { ok: false, message: `${q}: expected ":port" after "]"` };
    portPart = rest === '' ? undefined : rest.slice(1);
  } else if ((text.match(/:/g) ?? []).length > 1) {
    hostPart = text; // bare IPv6 address or CIDR: no port
  } else {
    const colon = text.lastIndexOf(':');
    hostPart = colon < 0 ? text : text.slice(0, colon);
    portPart = colon < 0 ? undefined : text.slice(colon + 1);
  }

  let port: number | '*';
  if (portPart === undefined) port = negated ? '*' : DEFAULT_SSH_PORT;
  else if (portPart === '*') port = '*';
  else if (/^\d{1,5}$/.test(portPart) && Number(portPart) >= 1 && Number(portPart) <= 65535) port = Number(portPart);
  else return { ok: false, message: `${q} is not a valid port (use 1-65535 or *)` };

  if (hostPart === '') return { ok: false, message: `${q} has no host` };
  if (hostPart.includes('/')) {
    const cidr = parseCidr(hostPart);
    if (!cidr) return { ok: false, message: `${q} is not a valid CIDR (expected e.g. 198.18.4.0/24 or 2001:db8::/32)` };
    return { ok: true, value: { source, negated, port, kind: 'cidr', ...cidr } };
  }
  return parseHostPattern(q, hostPart.toLowerCase(), { source, negated, port });
}

function parseHostPattern(
  q: string,
  host: string,
  base: { source: string; negated: boolean; port: number | '*' },
): ParseResult<DestinationPattern> {
  const wild = /[*?]/.test(host);
  if (/^[*?]+$/.test(host)) return { ok: true, value: { ...base, kind: 'any', pattern: host } };
  if (host.includes(':')) {
    if (!IPV6_PATTERN.test(host) || (!wild && !net.isIPv6(host))) return { ok: false, message: `${q} is not a valid IPv6 address or pattern` };
    const pattern = wild ? host : canonicalAddress(host);
    return { ok: true, value: { ...base, kind: 'address', pattern, exact: !wild } };
  }
  if (IPV4_PATTERN.test(host) && /\d/.test(host)) {
    if (!wild && !net.isIPv4(host)) return { ok: false, message: `${q} is not a valid IPv4 address (write a dotted quad, e.g. 10.1.2.7)` };
    return { ok: true, value: { ...base, kind: 'address', pattern: host, exact: !wild } };
  }
  // One trailing dot is the fully-qualified spelling of the same name.
  const name = host.endsWith('.') && host.length > 1 ? host.slice(0, -1) : host;
  if (!NAME_PATTERN.test(name)) {
    return { ok: false, message: `${q} is not a valid host pattern (ASCII letters, digits, ".", "-", "_", "*", "?"; write internationalized names in their xn-- form)` };
  }
  return { ok: true, value: { ...base, kind: 'name', pattern: name } };
}

/** "addr/bits" as a BlockList, or null when it is not a valid IPv4/IPv6 CIDR. */
export function parseCidr(text: string): { network: string; prefix: number; blockList: net.BlockList } | null {
  const [addr, bits, extra] = text.split('/');
  const family = net.isIP(addr ?? '');
  if (extra !== undefined || family === 0 || !/^\d{1,3}$/.test(bits ?? '') || Number(bits) > (family === 6 ? 128 : 32)) return null;
  const blockList = new net.BlockList();
  blockList.addSubnet(addr!, Number(bits), family === 6 ? 'ipv6' : 'ipv4');
  return { network: addr!, prefix: Number(bits), blockList };
}

/** A subnet as "addr/bits" or one address (a /32 or /128); null when it is neither. */
export function parseSubnet(text: string): ReturnType<typeof parseCidr> {
  return parseCidr(text.includes('/') ? text : `${text}/${net.isIPv6(text) ? 128 : 32}`);
}

/**
 * True when `address` is an IP inside the subnet. The families must match, as in OpenSSH's
 * addr_match_cidr_list: Node's BlockList checks an IPv4 address against an IPv6 subnet through its
 * IPv4-mapped form, so `::/0` (or `::ffff:0:0/96`) took every IPv4 client.
 */
export function inBlockList(subnet: { readonly network: string; readonly blockList: net.BlockList }, address: string): boolean {
  const family = net.isIP(address);
  return family !== 0 && family === net.isIP(subnet.network) && subnet.blockList.check(address, family === 6 ? 'ipv6' : 'ipv4');
}

/**
 * A destination as holdfast will connect to it: the canonical host the client asked for
 * (src/routing/canonical.ts), the address it resolved to ('' while unknown: not resolved, or resolved
 * by a bastion), and whether that address is protected (the jump host itself).
 */
export interface Destination {
  readonly host: string;
  /** How the client named it: name patterns match names only, address patterns addresses only. */
  readonly kind: HostKind;
  readonly address: string;
  readonly port: number;
  readonly protection?: Protection | null;
}

export type PatternMatch = 'hit' | 'miss' | 'guarded';

export function destinationPatternMatches(p: DestinationPattern, dest: Destination): PatternMatch {
  if (p.port !== '*' && p.port !== dest.port) return 'miss';
  const byName = dest.kind === 'name';
  let hit: boolean;
  if (p.kind === 'any') hit = wildcardMatch(byName ? dest.host : dest.address || dest.host, p.pattern);
  else if (p.kind === 'name') hit = byName && wildcardMatch(dest.host, p.pattern);
  else if (p.kind === 'address') hit = dest.address !== '' && (p.exact ? p.pattern === dest.address : wildcardMatch(dest.address, p.pattern));
  else hit = dest.address !== '' && inBlockList(p, dest.address);
  if (!hit) return 'miss';
  // An exclusion always applies; an inclusion reaches a protected address only by naming it.
  if (!p.negated && dest.protection && !namesExplicitly(p, dest.protection)) return 'guarded';
  return 'hit';
}

/** The entry names the protected address itself, or a CIDR lying wholly inside its block. */
function namesExplicitly(p: DestinationPattern, protection: Protection): boolean {
  if (p.kind === 'address') return p.exact;
  if (p.kind === 'cidr') return p.prefix >= protection.prefix && inBlockList(protection, p.network);
  return false;
}

/** A destination as a user writes it for `holdfast explain`: host, host:port, [v6]:port or a bare IPv6. */
export function parseTarget(text: string): ParseResult<{ host: string; port: number }> {
  const q = JSON.stringify(text);
  let host = text.trim();
  let port = DEFAULT_SSH_PORT;
  const bracket = /^\[([^\]]+)\](?::(\d+))?$/.exec(host);
  if (bracket) {
    host = bracket[1]!;
    if (bracket[2]) port = Number(bracket[2]);
  } else if ((host.match(/:/g) ?? []).length === 1) {
    const [h, p] = host.split(':');
    if (!/^\d{1,5}$/.test(p ?? '')) return { ok: false, message: `${q}: "${p}" is not a port` };
    host = h!;
    port = Number(p);
  }
  if (!host || /\s/.test(host)) return { ok: false, message: `${q} is not a destination (host, host:port or [IPv6]:port)` };
  if (port < 1 || port > 65535) return { ok: false, message: `${q}: port must be 1-65535` };
  return { ok: true, value: { host, port } };
}
