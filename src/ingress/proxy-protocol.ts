/**
 * The PROXY protocol header a load balancer puts before the client's first byte (haproxy's
 * doc/proxy-protocol.txt, versions 1 and 2). Pure: bytes in, a verdict out; `proxy-reader.ts` feeds
 * it from a socket. Strict where the specification is: the v1 line ends within 107 bytes, v2 starts
 * with the 12-byte signature, unknown versions, commands and families are invalid. TLVs are skipped.
 *
 *   v1: "PROXY TCP4 192.0.2.7 198.51.100.1 51234 22\r\n", "PROXY UNKNOWN ...\r\n"
 *   v2: signature(12) ver_cmd(1) fam(1) len(2, big-endian) addresses(len: 12 inet, 36 inet6, ...) TLVs
 */
import net from 'node:net';
import { canonicalAddress } from '../routing/canonical.js';

export interface ProxyAddress {
  readonly ip: string;
  readonly port: number;
}

export type ProxyHeader =
  /** The client's address as the balancer saw it. */
  | { readonly version: 1 | 2; readonly command: 'proxy'; readonly source: ProxyAddress; readonly destination: ProxyAddress }
  /** v1 UNKNOWN, v2 PROXY with family UNSPEC, UNIX or a datagram protocol: no usable client address. */
  | { readonly version: 1 | 2; readonly command: 'unknown'; readonly what: string }
  /** v2 LOCAL: the balancer's own connection (a health check). */
  | { readonly version: 2; readonly command: 'local' };

export type ProxyParse =
  | { readonly status: 'incomplete' }
  | { readonly status: 'invalid'; readonly why: string }
  | { readonly status: 'complete'; readonly header: ProxyHeader; readonly length: number };

/** v1's longest line, CRLF included (the specification's limit). */
export const V1_MAX_BYTES = 107;
/** The largest v2 header holdfast reads (16-byte fixed part, addresses and TLVs); larger is refused. */
export const V2_MAX_BYTES = 4096;

const V1_PREFIX = Buffer.from('PROXY ');
const V2_SIGNATURE = Buffer.from([0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d, 0x0a, 0x51, 0x55, 0x49, 0x54, 0x0a]);
const SSH_PREFIX = Buffer.from('SSH-');
const PRINTABLE = /^[\x20-\x7e]*$/;
const INCOMPLETE: ProxyParse = { status: 'incomplete' };

/** Reads the header at the start of `buf` (all bytes received so far). */
export function parseProxyHeader(buf: Buffer): ProxyParse {
  if (buf.length === 0) return INCOMPLETE;
  if (startsLike(buf, V1_PREFIX)) return buf.length < V1_PREFIX.length ? INCOMPLETE : parseV1(buf);
  if (startsLike(buf, V2_SIGNATURE)) return buf.length < 16 ? INCOMPLETE : parseV2(buf);
  if (startsLike(buf, SSH_PREFIX)) {
    return invalid('SSH bytes where a PROXY protocol header should be: the client connected straight to a PROXY listener, not through the load balancer');
  }
  return invalid(`no PROXY protocol header (first bytes ${buf.subarray(0, 8).toString('hex')})`);
}

/** Whether `buf` is a prefix of `sig` or begins with it. */
function startsLike(buf: Buffer, sig: Buffer): boolean {
  const n = Math.min(buf.length, sig.length);
  return buf.compare(sig, 0, n, 0, n) === 0;
}

function invalid(why: string): ProxyParse {
  return { status: 'invalid', why };
}

function parseV1(buf: Buffer): ProxyParse {
  const scanned = buf.subarray(0, V1_MAX_BYTES);
  const end = scanned.indexOf('\r\n', 0, 'latin1');
  if (end < 0) {
    if (buf.length >= V1_MAX_BYTES) return invalid(`PROXY v1 line longer than ${V1_MAX_BYTES} bytes`);
    // A byte no v1 line holds: refuse now rather than wait for a CRLF that will not come.
    const text = scanned.at(-1) === 0x0d ? scanned.subarray(0, -1) : scanned;
    if (!PRINTABLE.test(text.toString('latin1'))) return invalid('PROXY v1 line with a control or non-ASCII byte');
    return INCOMPLETE;
  }
  const line = buf.toString('latin1', 0, end);
  if (!PRINTABLE.test(line)) return invalid('PROXY v1 line with a control or non-ASCII byte');
  const parts = line.split(' ');
  const length = end + 2;
  if (parts[1] === 'UNKNOWN') return { status: 'complete', length, header: { version: 1, command: 'unknown', what: 'PROXY v1 UNKNOWN' } };
  if (parts.length !== 6) return invalid(`PROXY v1 line with ${parts.length} fields, not 6: ${JSON.stringify(line)}`);
  const [, proto, src, dst, sport, dport] = parts as [string, string, string, string, string, string];
  const family = proto === 'TCP4' ? 4 : proto === 'TCP6' ? 6 : 0;
  if (!family) return invalid(`PROXY v1 protocol ${JSON.stringify(proto)} (TCP4, TCP6 or UNKNOWN)`);
  for (const a of [src, dst]) if (net.isIP(a) !== family || a.includes('%')) return invalid(`PROXY v1 ${proto} address ${JSON.stringify(a)} is not an IPv${family} address`);
  const ports = [sport, dport].map(portOf);
  if (ports.some((p) => p === null)) return invalid(`PROXY v1 port ${JSON.stringify(ports[0] === null ? sport : dport)} is not 0-65535`);
  return {
    status: 'complete',
    length,
    header: { version: 1, command: 'proxy', source: { ip: canonicalAddress(src), port: ports[0]! }, destination: { ip: canonicalAddress(dst), port: ports[1]! } },
  };
}

/** A decimal port as v1 spells it: no sign, no leading zero. */
function portOf(s: string): number | null {
  if (!/^(0|[1-9][0-9]{0,4})$/.test(s)) return null;
  const n = Number(s);
  return n <= 65535 ? n : null;
}

function parseV2(buf: Buffer): ProxyParse {
  const verCmd = buf[12]!;
  const fam = buf[13]!;
  const len = buf.readUInt16BE(14);
  if (verCmd >> 4 !== 2) return invalid(`PROXY v2 signature with version ${verCmd >> 4}`);
  const cmd = verCmd & 0x0f;
  if (cmd > 1) return invalid(`PROXY v2 command ${cmd} (0 LOCAL or 1 PROXY)`);
  const af = fam >> 4;
  const proto = fam & 0x0f;
  if (af > 3 || proto > 2) return invalid(`PROXY v2 family byte 0x${fam.toString(16).padStart(2, '0')} is not defined`);
  const length = 16 + len;
  if (length > V2_MAX_BYTES) return invalid(`PROXY v2 header of ${length} bytes (at most ${V2_MAX_BYTES} are read)`);
  if (buf.length < length) return INCOMPLETE;
  if (cmd === 0) return { status: 'complete', length, header: { version: 2, command: 'local' } };
  const need = af === 1 ? 12 : af === 2 ? 36 : af === 3 ? 216 : 0;
  if (len < need) return invalid(`PROXY v2 ${['UNSPEC', 'INET', 'INET6', 'UNIX'][af]} addresses need ${need} bytes, the header has ${len}`);
  if ((af !== 1 && af !== 2) || proto !== 1) {
    const what = `PROXY v2 family ${['UNSPEC', 'INET', 'INET6', 'UNIX'][af]}/${['UNSPEC', 'STREAM', 'DGRAM'][proto]}`;
    return { status: 'complete', length, header: { version: 2, command: 'unknown', what } };
  }
  const size = af === 1 ? 4 : 16;
  const at = 16;
  const src = ipFrom(buf.subarray(at, at + size));
  const dst = ipFrom(buf.subarray(at + size, at + 2 * size));
  const ports = at + 2 * size;
  return {
    status: 'complete',
    length,
    header: { version: 2, command: 'proxy', source: { ip: src, port: buf.readUInt16BE(ports) }, destination: { ip: dst, port: buf.readUInt16BE(ports + 2) } },
  };
}

function ipFrom(b: Buffer): string {
  if (b.length === 4) return `${b[0]}.${b[1]}.${b[2]}.${b[3]}`;
  const groups: string[] = [];
  for (let i = 0; i < 16; i += 2) groups.push(b.readUInt16BE(i).toString(16));
  return canonicalAddress(groups.join(':'));
}
