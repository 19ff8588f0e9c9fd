import net from 'node:net';
import { expect } from 'chai';
import { parseProxyHeader, V1_MAX_BYTES, V2_MAX_BYTES, type ProxyParse } from '../../src/ingress/proxy-protocol.js';
import { ProxyTrust, readProxyHeader, type ProxyRead } from '../../src/ingress/proxy-reader.js';
import { waitFor } from '../helpers/wait.js';
import { mutate, prng } from '../helpers/mutate.js';

const SIG = Buffer.from('0d0a0d0a000d0a515549540a', 'hex');
const SSH = Buffer.from('SSH-2.0-OpenSSH_9.2p1 Debian-2+deb12u7\r\n');

/** A v2 header: ver_cmd, fam, then `body` (addresses and TLVs) with its length. */
function v2(verCmd: number, fam: number, body: Buffer, lenOverride?: number): Buffer {
  const len = Buffer.alloc(2);
  len.writeUInt16BE(lenOverride ?? body.length);
  return Buffer.concat([SIG, Buffer.from([verCmd, fam]), len, body]);
}
function inet(src: number[], dst: number[], sport: number, dport: number): Buffer {
  const b = Buffer.alloc(12);
  Buffer.from(src).copy(b, 0);
  Buffer.from(dst).copy(b, 4);
  b.writeUInt16BE(sport, 8);
  b.writeUInt16BE(dport, 10);
  return b;
}
function inet6(src: string, dst: string, sport: number, dport: number): Buffer {
  const b = Buffer.alloc(36);
  hex6(src).copy(b, 0);
  hex6(dst).copy(b, 16);
  b.writeUInt16BE(sport, 32);
  b.writeUInt16BE(dport, 34);
  return b;
}
/** A full 8-group IPv6 address as 16 bytes. */
function hex6(a: string): Buffer {
  return Buffer.from(a.split(':').map((g) => g.padStart(4, '0')).join(''), 'hex');
}
/** A TLV: type, 2-byte length, value. */
function tlv(type: number, value: Buffer): Buffer {
  const h = Buffer.alloc(3);
  h[0] = type;
  h.writeUInt16BE(value.length, 1);
  return Buffer.concat([h, value]);
}

function summary(r: ProxyParse): string {
  if (r.status !== 'complete') return r.status;
  const h = r.header;
  if (h.command === 'proxy') return `v${h.version} ${h.source.ip}:${h.source.port} -> ${h.destination.ip}:${h.destination.port} (${r.length})`;
  if (h.command === 'unknown') return `v${h.version} unknown: ${h.what} (${r.length})`;
  return `v2 local (${r.length})`;
}

const FFFF = 'ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff';
const V1_TCP6_WORST = `PROXY TCP6 ${FFFF} ${FFFF} 65535 65535\r\n`;
/** The specification's longest v1 line: 107 bytes. */
const V1_WORST = `PROXY UNKNOWN ${FFFF} ${FFFF} 65535 65535\r\n`;

describe('PROXY protocol header parser (doc/proxy-protocol.txt)', () => {
  const complete: [string, Buffer, string][] = [
    ['v1 TCP4 (the specification example)', Buffer.from('PROXY TCP4 192.168.0.1 192.168.0.11 56324 443\r\n'), 'v1 192.168.0.1:56324 -> 192.168.0.11:443 (47)'],
    ['v1 TCP6', Buffer.from('PROXY TCP6 2001:db8::1 2001:DB8:0:0::2 51000 22\r\n'), 'v1 2001:db8::1:51000 -> 2001:db8::2:22 (49)'],
    ['v1 TCP6, its longest', Buffer.from(V1_TCP6_WORST), `v1 ${FFFF}:65535 -> ${FFFF}:65535 (104)`],
    ['v1 UNKNOWN, the 107-byte worst case', Buffer.from(V1_WORST), `v1 unknown: PROXY v1 UNKNOWN (${V1_MAX_BYTES})`],
    ['v1 TCP6 with an IPv4-mapped client', Buffer.from('PROXY TCP6 ::ffff:192.0.2.7 ::1 40000 22\r\n'), 'v1 192.0.2.7:40000 -> ::1:22 (42)'],
    ['v1 UNKNOWN', Buffer.from('PROXY UNKNOWN\r\n'), 'v1 unknown: PROXY v1 UNKNOWN (15)'],
    ['v1 UNKNOWN with addresses', Buffer.from('PROXY UNKNOWN ffff:f::1 ffff:f::2 65535 65535\r\n'), 'v1 unknown: PROXY v1 UNKNOWN (47)'],
    ['v1 followed by the SSH identification', Buffer.concat([Buffer.from('PROXY TCP4 10.0.0.5 10.0.0.1 1234 22\r\n'), SSH]), 'v1 10.0.0.5:1234 -> 10.0.0.1:22 (38)'],
    ['v2 PROXY TCP over IPv4', v2(0x21, 0x11, inet([127, 0, 0, 5], [127, 0, 0, 1], 45678, 2222)), 'v2 127.0.0.5:45678 -> 127.0.0.1:2222 (28)'],
    ['v2 PROXY TCP over IPv6', v2(0x21, 0x21, inet6('2001:db8:0:0:0:0:0:7', '2001:db8:0:0:0:0:0:1', 50000, 22)), 'v2 2001:db8::7:50000 -> 2001:db8::1:22 (52)'],
    ['v2 IPv6 with an IPv4-mapped client', v2(0x21, 0x21, inet6('0:0:0:0:0:ffff:c000:207', '0:0:0:0:0:0:0:1', 1, 2)), 'v2 192.0.2.7:1 -> ::1:2 (52)'],
    [
      'v2 with TLVs (ALPN, AUTHORITY, an AWS VPC endpoint, NOOP) skipped',
      v2(0x21, 0x11, Buffer.concat([inet([192, 0, 2, 9], [10, 0, 0, 1], 1000, 22), tlv(0x01, Buffer.from('ssh')), tlv(0x02, Buffer.from('jump.example.com')), tlv(0xea, Buffer.from('\x01vpce-08d2bf15fac5001c9')), tlv(0x04, Buffer.alloc(5))])),
      'v2 192.0.2.9:1000 -> 10.0.0.1:22 (87)',
    ],
    ['v2 LOCAL (a health check)', v2(0x20, 0x00, Buffer.alloc(0)), 'v2 local (16)'],
    ['v2 LOCAL with addresses (ignored)', v2(0x20, 0x11, inet([1, 2, 3, 4], [5, 6, 7, 8], 1, 2)), 'v2 local (28)'],
    ['v2 PROXY UNSPEC', v2(0x21, 0x00, Buffer.alloc(0)), 'v2 unknown: PROXY v2 family UNSPEC/UNSPEC (16)'],
    ['v2 PROXY UNIX stream', v2(0x21, 0x31, Buffer.alloc(216)), 'v2 unknown: PROXY v2 family UNIX/STREAM (232)'],
    ['v2 PROXY UDP over IPv4', v2(0x21, 0x12, inet([1, 2, 3, 4], [5, 6, 7, 8], 1, 2)), 'v2 unknown: PROXY v2 family INET/DGRAM (28)'],
    ['v2 followed by the SSH identification', Buffer.concat([v2(0x21, 0x11, inet([127, 0, 0, 6], [127, 0, 0, 1], 7, 22)), SSH]), 'v2 127.0.0.6:7 -> 127.0.0.1:22 (28)'],
  ];
  for (const [name, bytes, want] of complete) {
    it(`reads ${name}`, () => {
      expect(summary(parseProxyHeader(bytes))).to.equal(want);
    });
  }

  it('says "incomplete" for every prefix of a header, byte by byte, then reads it whole', () => {
    for (const [, bytes, want] of complete) {
      const r = parseProxyHeader(bytes);
      const length = r.status === 'complete' ? r.length : 0;
      for (let n = 0; n < length; n++) expect(parseProxyHeader(bytes.subarray(0, n)).status, `${want}: ${n} bytes`).to.equal('incomplete');
      expect(summary(parseProxyHeader(bytes.subarray(0, length)))).to.equal(want);
    }
  });

  const refused: [string, Buffer, RegExp][] = [
    ['SSH bytes where a header should be', SSH, /SSH bytes where a PROXY protocol header should be/],
    ['the first SSH byte alone', Buffer.from('S'), /SSH bytes/],
    ['garbage', Buffer.from('GET / HTTP/1.1\r\n'), /no PROXY protocol header \(first bytes 474554202f204854\)/],
    ['a TLS ClientHello', Buffer.from('160301020001', 'hex'), /no PROXY protocol header/],
    ['v1 longer than 107 bytes', Buffer.from(`PROXY TCP6 ${'f'.repeat(120)}`), /longer than 107 bytes/],
    ['v1 whose CRLF comes after byte 107', Buffer.from(V1_WORST.replace(' 65535\r\n', ' 165535\r\n')), /longer than 107 bytes/],
    ['v1 with a bare LF', Buffer.from('PROXY TCP4 1.2.3.4 5.6.7.8 1 2\n'), /control or non-ASCII/],
    ['v1 with a NUL', Buffer.from('PROXY TCP4 1.2.3.4\0'), /control or non-ASCII/],
    ['v1 TCP5', Buffer.from('PROXY TCP5 1.2.3.4 5.6.7.8 1 2\r\n'), /protocol "TCP5"/],
    ['v1 with five fields', Buffer.from('PROXY TCP4 1.2.3.4 5.6.7.8 1\r\n'), /5 fields, not 6/],
    ['v1 with two spaces', Buffer.from('PROXY TCP4  1.2.3.4 5.6.7.8 1 2\r\n'), /7 fields, not 6/],
    ['v1 TCP4 with an IPv6 address', Buffer.from('PROXY TCP4 ::1 ::1 1 2\r\n'), /"::1" is not an IPv4 address/],
    ['v1 TCP6 with a zone', Buffer.from('PROXY TCP6 fe80::1%eth0 ::1 1 2\r\n'), /not an IPv6 address/],
    ['v1 TCP4 with a leading-zero octet', Buffer.from('PROXY TCP4 010.0.0.1 10.0.0.2 1 2\r\n'), /not an IPv4 address/],
    ['v1 port 65536', Buffer.from('PROXY TCP4 1.2.3.4 5.6.7.8 65536 22\r\n'), /port "65536"/],
    ['v1 port with a leading zero', Buffer.from('PROXY TCP4 1.2.3.4 5.6.7.8 1 022\r\n'), /port "022"/],
    ['v1 negative port', Buffer.from('PROXY TCP4 1.2.3.4 5.6.7.8 -1 22\r\n'), /port "-1"/],
    ['v2 with version 1', v2(0x11, 0x11, inet([1, 2, 3, 4], [5, 6, 7, 8], 1, 2)), /version 1/],
    ['v2 with command 2', v2(0x22, 0x11, inet([1, 2, 3, 4], [5, 6, 7, 8], 1, 2)), /command 2/],
    ['v2 with family 4', v2(0x21, 0x41, Buffer.alloc(12)), /family byte 0x41/],
    ['v2 with protocol 3', v2(0x21, 0x13, Buffer.alloc(12)), /family byte 0x13/],
    ['v2 INET with 8 address bytes', v2(0x21, 0x11, Buffer.alloc(8)), /INET addresses need 12 bytes, the header has 8/],
    ['v2 INET6 with 12 address bytes', v2(0x21, 0x21, Buffer.alloc(12)), /INET6 addresses need 36 bytes/],
    ['v2 oversized (only its length field seen)', v2(0x21, 0x11, Buffer.alloc(0), 65535), new RegExp(`65551 bytes \\(at most ${V2_MAX_BYTES}`)],
    ['v2 one byte over the limit', v2(0x21, 0x11, Buffer.alloc(V2_MAX_BYTES - 15)), /4097 bytes/],
    ['a broken v2 signature', Buffer.concat([SIG.subarray(0, 6), Buffer.from('SSH-2.0')]), /no PROXY protocol header/],
  ];
  for (const [name, bytes, why] of refused) {
    it(`refuses ${name}`, () => {
      const r = parseProxyHeader(bytes);
      expect(r.status, summary(r)).to.equal('invalid');
      expect(r.status === 'invalid' && r.why).to.match(why);
    });
  }

  it('accepts the largest v2 header it reads, TLVs and all', () => {
    const body = Buffer.concat([inet([192, 0, 2, 1], [192, 0, 2, 2], 1, 2), tlv(0x04, Buffer.alloc(V2_MAX_BYTES - 16 - 12 - 3))]);
    expect(summary(parseProxyHeader(v2(0x21, 0x11, body)))).to.equal(`v2 192.0.2.1:1 -> 192.0.2.2:2 (${V2_MAX_BYTES})`);
  });

  it('truncated headers are only ever incomplete (the reader ends them by time or close)', () => {
    expect(parseProxyHeader(Buffer.from('PROXY TCP4 1.2.3.4 5.6.7.8 1 2\r')).status).to.equal('incomplete');
    expect(parseProxyHeader(v2(0x21, 0x11, inet([1, 2, 3, 4], [5, 6, 7, 8], 1, 2)).subarray(0, 27)).status).to.equal('incomplete');
  });

  it('never throws on 200,000 seeded mutations of the headers above: each is complete, incomplete or invalid', () => {
    const random = prng(13);
    const seen = { complete: 0, incomplete: 0, invalid: 0 };
    for (let i = 0; i < 200_000; i++) {
      const bytes = mutate(complete[i % complete.length]![1], random);
      let r: ProxyParse;
      try {
        r = parseProxyHeader(bytes);
      } catch (err) {
        expect.fail(`mutation ${i} (${bytes.toString('hex')}) threw ${String(err)}`);
      }
      seen[r.status]++;
      if (r.status === 'complete') {
        expect(r.length, `mutation ${i}`).to.be.within(1, Math.min(bytes.length, V2_MAX_BYTES));
        if (r.header.command === 'proxy') expect(net.isIP(r.header.source.ip), `mutation ${i}: ${r.header.source.ip}`).to.not.equal(0);
      }
    }
    // Every outcome is reached, so the mutations reach past the first bytes.
    expect(Object.values(seen).every((n) => n > 1000), JSON.stringify(seen)).to.equal(true);
  });
});

describe('PROXY header reader on a real socket', () => {
  let server: net.Server;
  let accepted: net.Socket[] = [];
  let port = 0;
  beforeEach(async () => {
    accepted = [];
    server = net.createServer((s) => accepted.push(s));
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    port = (server.address() as net.AddressInfo).port;
  });
  afterEach(async () => {
    for (const s of accepted) s.destroy();
    await new Promise((r) => server.close(r));
  });

  async function pair(): Promise<{ client: net.Socket; served: net.Socket }> {
    const client = net.connect({ port, host: '127.0.0.1', noDelay: true });
    await new Promise((r) => client.once('connect', r));
    const served = await waitFor(() => accepted.at(-1), { timeoutMs: 2000, what: 'the accepted socket' });
    return { client, served };
  }

  /** Everything the socket yields after the header, until `n` bytes. */
  async function readAfter(s: net.Socket, n: number): Promise<Buffer> {
    const chunks: Buffer[] = [];
    s.on('data', (d: Buffer) => chunks.push(d));
    s.resume();
    return waitFor(() => (Buffer.concat(chunks).length >= n ? Buffer.concat(chunks) : undefined), { timeoutMs: 2000, what: `${n} bytes` });
  }

  it('reads a header split across TCP segments and hands every later byte on, in order', async () => {
    const { client, served } = await pair();
    const header = v2(0x21, 0x11, Buffer.concat([inet([127, 0, 0, 5], [127, 0, 0, 1], 40000, 22), tlv(0x01, Buffer.from('ssh'))]));
    const reading = readProxyHeader(served, 2000);
    // Three segments: part of the signature, the rest of the header with the first SSH bytes, the rest.
    const all = Buffer.concat([header, SSH]);
    const cuts = [5, header.length + 4, all.length];
    let at = 0;
    for (const cut of cuts) {
      client.write(all.subarray(at, cut));
      at = cut;
      // Each write arrives on its own before the next is sent (TCP_NODELAY: one segment each).
      await waitFor(() => served.bytesRead >= cut, { timeoutMs: 2000, what: `${cut} bytes read` });
    }
    const r = await reading;
    expect(r.ok && r.header.command === 'proxy' && r.header.source).to.deep.equal({ ip: '127.0.0.5', port: 40000 });
    expect((await readAfter(served, SSH.length)).equals(SSH)).to.equal(true);
    client.destroy();
  });

  const failures: [string, (c: net.Socket) => void, Partial<ProxyRead>, RegExp][] = [
    ['SSH bytes where the header should be', (c) => c.write(SSH), { ok: false, cause: 'invalid' }, /SSH bytes/],
    ['nothing at all (time runs out)', () => {}, { ok: false, cause: 'timeout' }, /no whole PROXY protocol header within 300 ms \(0 bytes received\)/],
    ['a truncated header, then silence', (c) => c.write('PROXY TCP4 1.2.3.4 '), { ok: false, cause: 'timeout' }, /\(19 bytes received\)/],
    ['a truncated header, then the peer leaves', (c) => c.end('PROXY TCP4 1.2.3.4 '), { ok: false, cause: 'closed' }, /closed after 19 bytes/],
  ];
  for (const [name, send, want, why] of failures) {
    it(`ends on ${name}`, async () => {
      const { client, served } = await pair();
      const t0 = performance.now();
      const reading = readProxyHeader(served, 300);
      send(client);
      const r = await reading;
      expect(r).to.include(want);
      expect(!r.ok && r.why).to.match(why);
      expect(performance.now() - t0).to.be.below(2000);
      served.destroy();
      client.destroy();
    });
  }

  it('trusts only the listed balancers (addresses, CIDRs, IPv4-mapped spellings)', () => {
    const t = new ProxyTrust(['127.0.0.1', '10.1.0.0/16', '2001:db8::/32']);
    expect(['127.0.0.1', '::ffff:127.0.0.1', '10.1.255.3', '2001:db8:1::9'].map((a) => t.trusts(a))).to.deep.equal([true, true, true, true]);
    expect(['127.0.0.2', '10.2.0.1', '2001:db9::1', '::1', ''].map((a) => t.trusts(a))).to.deep.equal([false, false, false, false, false]);
  });
});
