import { expect } from 'chai';
import { canonicalHost, unmapIPv4, validPort } from '../../src/routing/canonical.js';
import { parseDestinationPattern, type DestinationPattern } from '../../src/routing/destination.js';
import { findRoute, type RouteRule } from '../../src/routing/route-table.js';
import { canonicalDestination, resolveAndRoute, type Lookup } from '../../src/routing/resolve-destination.js';
import { AddressGuard, BASE_GUARD, OWN_ADDRESSES_MAX_AGE_MS, ownAddresses } from '../../src/routing/guard.js';

function p(s: string): DestinationPattern {
  const r = parseDestinationPattern(s);
  if (!r.ok) throw new Error(r.message);
  return r.value;
}

/** canonicalDestination, then resolveAndRoute: "<route> <address>", or why not ('refused', 'invalid'). */
async function routeOf(routes: RouteRule[], host: string, port: number, dns: Lookup, guard = BASE_GUARD): Promise<string> {
  const asked = canonicalDestination(host, port);
  if (!asked.ok) return 'invalid';
  const r = await resolveAndRoute(routes, 'mallory', asked, dns, 1000, guard);
  return r.kind === 'routed' ? `${r.decision.route.name} ${r.address}` : r.kind;
}

/** A resolver that knows a few names; anything else does not exist. Records what it was asked. */
function fakeDns(table: Record<string, string[]>): Lookup & { asked: string[] } {
  const asked: string[] = [];
  const f = (async (host: string) => {
    asked.push(host);
    const a = table[host];
    if (!a) throw Object.assign(new Error('not found'), { code: 'ENOTFOUND' });
    return a;
  }) as Lookup & { asked: string[] };
  f.asked = asked;
  return f;
}

describe('destination canonicalisation (one spelling before any matching)', function () {
  const same: Array<[string, string, string]> = [
    // [as the client sent it, canonical, kind]
    ['db1.lab.example.com', 'db1.lab.example.com', 'name'],
    ['DB1.Lab.Example.COM', 'db1.lab.example.com', 'name'],
    ['db1.lab.example.com.', 'db1.lab.example.com', 'name'],
    ['ｓｅｃｒｅｔ.lab', 'secret.lab', 'name'], // full-width letters
    ['secret。lab', 'secret.lab', 'name'], // ideographic full stop
    ['secret｡lab', 'secret.lab', 'name'], // half-width ideographic full stop
    ['secret．lab', 'secret.lab', 'name'], // full-width full stop
    ['ＳＥＣＲＥＴ．ＬＡＢ', 'secret.lab', 'name'],
    ['bücher.example', 'xn--bcher-kva.example', 'name'],
    ['xn--bcher-kva.example', 'xn--bcher-kva.example', 'name'],
    ['_ldap.example', '_ldap.example', 'name'],
    ['10.1.2.3.attacker.tld', '10.1.2.3.attacker.tld', 'name'],
    ['10.1.2.7', '10.1.2.7', 'ipv4'],
    ['10.1.2.7.', '10.1.2.7', 'ipv4'],
    ['167838215', '10.1.2.7', 'ipv4'], // one 32-bit number, as inet_aton reads it
    ['0xa.1.2.7', '10.1.2.7', 'ipv4'],
    ['0xa010207', '10.1.2.7', 'ipv4'],
    ['012.1.2.7', '10.1.2.7', 'ipv4'], // octal
    ['10.1.519', '10.1.2.7', 'ipv4'],
    ['10.66055', '10.1.2.7', 'ipv4'],
    ['127.1', '127.0.0.1', 'ipv4'],
    ['::ffff:10.1.2.7', '10.1.2.7', 'ipv4'],
    ['::FFFF:10.1.2.7', '10.1.2.7', 'ipv4'],
    ['::ffff:a01:207', '10.1.2.7', 'ipv4'],
    ['0:0:0:0:0:ffff:0a01:0207', '10.1.2.7', 'ipv4'],
    ['0000:0000:0000:0000:0000:FFFF:10.1.2.7', '10.1.2.7', 'ipv4'],
    ['2001:DB8:0:0:0:0:0:1', '2001:db8::1', 'ipv6'],
    ['2001:db8::0001', '2001:db8::1', 'ipv6'],
    ['::1', '::1', 'ipv6'],
  ];
  for (const [raw, want, kind] of same) {
    it(`${JSON.stringify(raw)} -> ${want} (${kind})`, function () {
      expect(canonicalHost(raw)).to.deep.equal({ ok: true, host: want, kind });
    });
  }
  const refused: string[] = [
    'X\u0000.lab.example.com', 'x\u0000', 'secret.lab\u0000.other', 'a\tb', 'a b', 'a\nb', 'a\rb', '\u001b[31m.lab', 'x\u007f.lab',
    'ex%41mple.com', 'a@b', 'a/b', 'a\\b', 'a?b', 'a#b', '[::1]', 'a*b', 'a!b', 'a,b', 'a;b', "a'b", 'a"b',
    'a..b', '.a', 'a.b..', '-a.b', 'a-.b', '', 'a'.repeat(64) + '.b', `${'a.'.repeat(127)}ab`, 'ａ％４１.com',
    'fe80::1%eth0', '1:2:3', ':::', '1.2.3.4..', '1.2.3.4.5.6', '256.1.1.1', 'x.0x', 'x.123',
  ];
  for (const raw of refused) {
    it(`refuses ${JSON.stringify(raw).slice(0, 60)}`, function () {
      expect(canonicalHost(raw).ok).to.equal(false);
    });
  }
  it('ports outside 1-65535 are not ports', function () {
    for (const bad of [0, 65536, 4294967295, -1, 1.5]) expect(validPort(bad), String(bad)).to.equal(false);
    for (const good of [1, 22, 65535]) expect(validPort(good)).to.equal(true);
  });
  it('unmaps IPv4-mapped addresses in every spelling and leaves the rest alone', function () {
    expect(unmapIPv4('::ffff:127.0.0.1')).to.equal('127.0.0.1');
    expect(unmapIPv4('::ffff:7f00:1')).to.equal('127.0.0.1');
    expect(unmapIPv4('0:0::ffff:7f00:0001')).to.equal('127.0.0.1');
    expect(unmapIPv4('2001:db8::1')).to.equal('2001:db8::1');
    expect(unmapIPv4('10.0.0.1')).to.equal('10.0.0.1');
  });
});

describe('route matching: names and addresses each their own way', function () {
  it('an address pattern never matches a name, a name pattern never an address', function () {
    const ip = { kind: 'ipv4' as const };
    const routes: RouteRule[] = [{ name: 'net', to: [p('10.1.2.*')] }];
    expect(findRoute(routes, 'u', { host: '10.1.2.3.attacker.tld', kind: 'name', address: '203.0.113.9', port: 22 }).route).to.equal(null);
    expect(findRoute(routes, 'u', { host: 'db', kind: 'name', address: '10.1.2.3', port: 22 }).route?.name).to.equal('net');
    expect(findRoute(routes, 'u', { host: '10.1.2.3', ...ip, address: '10.1.2.3', port: 22 }).route?.name).to.equal('net');
    const named: RouteRule[] = [{ name: 'n', to: [p('db*')] }];
    expect(findRoute(named, 'u', { host: 'db1', kind: 'name', address: '10.0.0.1', port: 22 }).route?.name).to.equal('n');
    expect(findRoute(named, 'u', { host: '10.0.0.1', ...ip, address: '10.0.0.1', port: 22 }).route).to.equal(null);
  });
  it('parses address patterns, name patterns and wildcards apart', function () {
    expect(p('10.1.2.*')).to.include({ kind: 'address', exact: false });
    expect(p('10.1.2.7')).to.include({ kind: 'address', exact: true, pattern: '10.1.2.7' });
    expect(p('::ffff:10.1.2.7')).to.include({ kind: 'address', exact: true, pattern: '10.1.2.7' });
    expect(p('[2001:DB8::0001]:22')).to.include({ kind: 'address', pattern: '2001:db8::1' });
    expect(p('DB1.Example.')).to.include({ kind: 'name', pattern: 'db1.example' });
    expect(p('*')).to.include({ kind: 'any' });
    expect(parseDestinationPattern('10.1.2.300').ok).to.equal(false);
    expect(parseDestinationPattern('ｄｂ.lab').ok).to.equal(false);
  });
});

describe('bypass classes, end to end through resolveAndRoute (fake DNS)', function () {
  const dns = fakeDns({
    'x.lab.example.com': ['198.51.100.10'],
    'secret.lab': ['198.51.100.66'],
    'pub.lab': ['198.51.100.11'],
    '10.1.2.3.attacker.tld': ['203.0.113.66'],
    'evil.example': ['127.0.0.1'],
    'meta.example': ['169.254.169.254'],
    'mapped.example': ['::ffff:127.0.0.1'],
  });
  const routes = [
    { name: 'lab', to: [p('*.lab'), p('!secret.lab'), p('*.lab.example.com')] },
    { name: 'net', to: [p('10.1.2.*'), p('!10.1.2.7'), p('198.18.0.0/15')] },
  ];
  const route = (host: string, port = 22) => routeOf(routes, host, port, dns);
  const never: Array<[string, number]> = [
    ['X\u0000.lab.example.com', 22], ['secret.lab', 22], ['ｓｅｃｒｅｔ.lab', 22], ['secret。lab', 22], ['SECRET.LAB.', 22],
    ['ＳＥＣＲＥＴ．ＬＡＢ', 22], ['10.1.2.7', 22], ['::ffff:10.1.2.7', 22], ['::ffff:a01:207', 22], ['0:0:0:0:0:ffff:a01:207', 22],
    ['167838215', 22], ['012.1.2.7', 22], ['10.1.519', 22], ['127.0.0.1', 22], ['127.1', 22], ['2130706433', 22], ['0x7f.1', 22],
    ['::1', 22], ['::ffff:127.0.0.1', 22], ['localhost', 22], ['evil.example', 22], ['mapped.example', 22], ['169.254.169.254', 22],
    ['meta.example', 22], ['0.0.0.0', 22], ['0', 22], ['::', 22], ['fe80::1', 22], ['x.lab.example.com', 0], ['x.lab.example.com', 65536],
    ['x.lab.example.com', 4294967295 + 23],
  ];
  for (const [host, port] of never) {
    it(`never routes ${JSON.stringify(host)}:${port}`, async function () {
      const r = await route(host, port);
      expect(r === 'refused' || r === 'invalid', r).to.equal(true);
    });
  }
  it('10.1.2.* does not match a name that starts like an address', async function () {
    expect(await route('10.1.2.3.attacker.tld', 2222)).to.equal('refused');
  });
  it('still allows what the routes allow', async function () {
    expect(await route('x.lab.example.com', 22)).to.equal('lab 198.51.100.10');
    expect(await route('X.LAB.example.com.', 22)).to.equal('lab 198.51.100.10');
    expect(await route('pub.lab', 22)).to.equal('lab 198.51.100.11');
    expect(await route('10.1.2.8', 22)).to.equal('net 10.1.2.8');
    expect(await route('::ffff:10.1.2.8', 22)).to.equal('net 10.1.2.8');
    expect(await route('198.19.255.1', 22)).to.equal('net 198.19.255.1');
  });
  it('the name looked up is the canonical name', async function () {
    dns.asked.length = 0;
    await route('ｐｕｂ.LAB.', 22);
    expect(dns.asked).to.deep.equal(['pub.lab']);
  });
});

describe('wildcards never reach the jump host itself', function () {
  const explicit = [
    { name: 'local-ssh', to: [p('127.0.0.1:22')] },
    { name: 'loop-net', to: [p('127.0.0.0/24:2222')] },
    { name: 'any', to: [p('*:*'), p('10.0.0.0/8:*'), p('0.0.0.0/0:*')] },
  ];
  const guard = new AddressGuard(['192.0.2.50']);
  const dns = fakeDns({ 'self.example': ['192.0.2.50'] });
  const route = async (host: string, port: number) => (await routeOf(explicit, host, port, dns, guard)).split(' ')[0];
  it('an exact address or a CIDR inside the block reaches it; wildcards and wide CIDRs do not', async function () {
    expect(await route('127.0.0.1', 22)).to.equal('local-ssh');
    expect(await route('127.0.0.9', 2222)).to.equal('loop-net');
    expect(await route('127.0.0.9', 22)).to.equal('refused');
    expect(await route('169.254.169.254', 80)).to.equal('refused');
    expect(await route('192.0.2.50', 22)).to.equal('refused');
    expect(await route('self.example', 22)).to.equal('refused');
    expect(await route('192.0.2.51', 22)).to.equal('any');
    expect(await route('10.9.9.9', 22)).to.equal('any');
  });
  it('says why a wildcard did not reach it', async function () {
    const r = await resolveAndRoute(explicit, 'u', { host: '169.254.169.254', kind: 'ipv4', port: 80 }, fakeDns({}), 1000, guard);
    expect(r.kind).to.equal('refused');
    if (r.kind === 'refused') expect(r.decision.misses[2]!.why).to.match(/169\.254\.169\.254 is a link-local address .*only an entry naming that address/);
  });
  it("own addresses: every interface address when listening on 0.0.0.0", function () {
    const own = ownAddresses([{ address: '0.0.0.0' }], { lo: [{ address: '127.0.0.1' } as never], eth0: [{ address: '192.0.2.50' } as never, { address: 'fe80::1%eth0' } as never] });
    expect(own).to.have.members(['127.0.0.1', '192.0.2.50', 'fe80::1']);
    expect(ownAddresses([{ address: '198.51.100.1' }])).to.deep.equal(['198.51.100.1']);
  });
  it('own addresses are read again at a decision once the last read is older than the bound: an address added later is protected, a removed one no longer', function () {
    let t = 0;
    let reads = 0;
    let list = ['192.0.2.50'];
    let broken = false;
    const guard = new AddressGuard(() => {
      reads++;
      if (broken) throw new Error('getifaddrs failed');
      return list;
    }, undefined, () => t);
    expect(guard.protection('192.0.2.50')?.what).to.equal("one of holdfast's own addresses");
    expect(guard.protection('192.0.2.77')).to.equal(null);
    list = ['192.0.2.50', '192.0.2.77'];
    t = OWN_ADDRESSES_MAX_AGE_MS - 1;
    expect(guard.protection('192.0.2.77'), 'not read again within the bound').to.equal(null);
    expect(reads).to.equal(1);
    t = OWN_ADDRESSES_MAX_AGE_MS;
    expect(guard.protection('192.0.2.77')?.what).to.equal("one of holdfast's own addresses");
    expect(reads).to.equal(2);
    list = ['192.0.2.77'];
    t += OWN_ADDRESSES_MAX_AGE_MS;
    expect(guard.protection('192.0.2.50')).to.equal(null);
    // Interfaces that cannot be read keep the last list.
    broken = true;
    t += OWN_ADDRESSES_MAX_AGE_MS;
    expect(guard.protection('192.0.2.77')?.what).to.equal("one of holdfast's own addresses");
    expect(reads).to.equal(4);
  });
});
