/**
 * One spelling per destination, decided once, before any route is matched: the string matched is the
 * string resolved, and the address matched is the address connected to.
 *
 * Why the WHATWG URL host parser (Node's `domainToASCII` / `new URL`): it is what Node's own
 * `dns.lookup` applies to a name before getaddrinfo (IDNA UTS #46 with compatibility mapping, so
 * full-width letters and the ideographic full stop become ASCII), and it reads IPv4 numbers the way
 * inet_aton does (`2130706433`, `0x7f.1`, `127.1`, `010.1.2.3` are addresses, not names). Matching
 * what the resolver will see closes the gap between "matched" and "resolved". Anything the parser
 * would decode (`%41`) or treat as URL syntax (`@`, `/`, `?`, `#`, `\`) is refused before it runs.
 */
import net from 'node:net';
import { domainToASCII } from 'node:url';

export type HostKind = 'name' | 'ipv4' | 'ipv6';

export type CanonicalHost =
  | { readonly ok: true; readonly host: string; readonly kind: HostKind }
  | { readonly ok: false; readonly why: string };

/** Longest host name DNS can carry (RFC 1035 §2.3.4, without the trailing dot). */
const MAX_NAME = 253;
const LABEL = /^[a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9_])?$/;
/** Characters a host name or address literal never has; '%' and URL syntax among them. */
const FORBIDDEN = /[\u0000-\u0020\u007f-\u009f%@/\\?#[\]<>"'`^{|}~!$&()*+,;=]/u;

/**
 * An address as holdfast compares it: IPv4 as a dotted quad, IPv4-mapped IPv6 (`::ffff:a.b.c.d`, in
 * any spelling) as that IPv4 address, other IPv6 in RFC 5952 form. Anything else is returned as is.
 */
export function canonicalAddress(ip: string): string {
  if (net.isIP(ip) !== 6) return ip;
  // The common case, a dual-stack listener's view of an IPv4 client, without a parse.
  if (ip.startsWith('::ffff:') && net.isIPv4(ip.slice(7))) return ip.slice(7);
  const v6 = new URL(`http://[${ip}]/`).hostname.slice(1, -1);
  const m = /^::ffff:([0-9a-f]{1,4}):([0-9a-f]{1,4})$/.exec(v6);
  if (!m) return v6;
  const hi = parseInt(m[1]!, 16);
  const lo = parseInt(m[2]!, 16);
  return `${hi >> 8}.${hi & 255}.${lo >> 8}.${lo & 255}`;
}

/** IPv4-mapped IPv6 as the IPv4 address; every other string unchanged. */
export function unmapIPv4(ip: string): string {
  const a = canonicalAddress(ip);
  return net.isIPv4(a) ? a : ip;
}

/**
 * The destination a client asked for (`ssh -W host:port`, a gateway login's target), as the one
 * spelling every later step uses: a lower-case ASCII name without a trailing dot, a dotted-quad IPv4
 * address, or an RFC 5952 IPv6 address (IPv4-mapped ones as IPv4). Anything else is refused with why.
 */
export function canonicalHost(raw: string): CanonicalHost {
  if (raw.length === 0) return { ok: false, why: 'empty host' };
  if (raw.length > 1024) return { ok: false, why: 'host is too long' };
  if (raw.includes(':')) {
    // Only an IPv6 literal has colons. Zone ids (fe80::1%eth0) name an interface of holdfast's host.
    if (raw.includes('%')) return { ok: false, why: 'IPv6 zone ids are not accepted' };
    if (!net.isIPv6(raw)) return { ok: false, why: 'not a valid IPv6 address' };
    const address = canonicalAddress(raw);
    return { ok: true, host: address, kind: net.isIPv4(address) ? 'ipv4' : 'ipv6' };
  }
  if (/[\u0000-\u001f\u007f-\u009f]/u.test(raw)) return { ok: false, why: 'control character in host' };
  if (FORBIDDEN.test(raw)) return { ok: false, why: 'character not allowed in a host name' };
  const ascii = domainToASCII(raw);
  if (ascii === '') return { ok: false, why: 'not a valid host name (IDNA)' };
  if (net.isIPv4(ascii)) return { ok: true, host: ascii, kind: 'ipv4' };
  // One trailing dot (the fully-qualified spelling) is the same name; two are not a name.
  const name = ascii.endsWith('.') ? ascii.slice(0, -1) : ascii;
  if (name.length === 0 || name.length > MAX_NAME) return { ok: false, why: 'not a valid host name (length)' };
  const labels = name.split('.');
  if (!labels.every((l) => LABEL.test(l))) return { ok: false, why: 'not a valid host name' };
  // A last label of digits would be read as an IPv4 number by some resolvers; the URL parser has
  // already turned real numbers into addresses, so what is left here is ambiguous: refuse it.
  if (/^(?:\d+|0x[0-9a-f]*)$/.test(labels[labels.length - 1]!)) return { ok: false, why: 'not a valid host name (numeric last label)' };
  return { ok: true, host: name, kind: 'name' };
}

/** Ports a destination may have; anything else is refused before any connect. */
export function validPort(port: number): boolean {
  return Number.isInteger(port) && port >= 1 && port <= 65535;
}
