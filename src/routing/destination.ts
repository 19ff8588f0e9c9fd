/**
 * `to:` entries of a route: an ssh_config host pattern (`*`, `?`, `!` to exclude) or a CIDR, with an
 * optional `:port` (default 22, `*` any). IPv6 literals and CIDRs take brackets when a port follows:
 * `[2001:db8::/32]:2222`; a bare IPv6 CIDR means port 22.
 *
 * A negated entry with no port excludes the host on every port: `!secret.internal` reads as "never
 * secret.internal", which is what an operator means by it.
 */
import net from 'node:net';
import { wildcardMatch } from './wildcard.js';

export const DEFAULT_SSH_PORT = 22;

export type DestinationPattern = {
  readonly source: string;
  readonly negated: boolean;
  /** '*' = any port. */
  readonly port: number | '*';
} & (
  | { readonly kind: 'host'; readonly pattern: string }
  | { readonly kind: 'cidr'; readonly network: string; readonly prefix: number; readonly blockList: net.BlockList }
);

export type ParseResult<T> = { ok: true; value: T } | { ok: false; message: string };

const HOST_PATTERN = /^[A-Za-z0-9._*?:%-]+$/;

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
  if (!HOST_PATTERN.test(hostPart)) {
    return { ok: false, message: `${q} is not a valid host pattern (letters, digits, ".", "-", "_", "*", "?")` };
  }
  return { ok: true, value: { source, negated, port, kind: 'host', pattern: hostPart } };
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

/** True when `address` is an IP inside the BlockList's subnet. */
export function inBlockList(list: net.BlockList, address: string): boolean {
  const family = net.isIP(address);
  return family !== 0 && list.check(address, family === 6 ? 'ipv6' : 'ipv4');
}

/** A destination as holdfast will connect to it: the name the client asked for and the address it resolved to. */
export interface Destination {
  readonly host: string;
  readonly address: string;
  readonly port: number;
}

export function destinationPatternMatches(p: DestinationPattern, dest: Destination): boolean {
  if (p.port !== '*' && p.port !== dest.port) return false;
  if (p.kind === 'host') {
    // The name the user typed, and the address we will really connect to: an operator who writes
    // "10.1.2.*" means the address, whatever name led there.
    return wildcardMatch(dest.host, p.pattern) || wildcardMatch(dest.address, p.pattern);
  }
  return inBlockList(p.blockList, dest.address);
}

/** A `to:` list: some positive entry matches and no negated one does. */
export function destinationListMatches(list: readonly DestinationPattern[], dest: Destination): boolean {
  let positive = false;
  for (const p of list) {
    const hit = destinationPatternMatches(p, dest);
    if (hit && p.negated) return false;
    if (hit) positive = true;
  }
  return positive;
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
