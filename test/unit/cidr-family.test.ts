/**
 * Issue 22, item 8: an IPv6 CIDR never matches an IPv4 address (nor the other way round), as in
 * OpenSSH's addr_match_cidr_list. Node's BlockList matched `::/0` against every IPv4 address through
 * its IPv4-mapped form: in `from=`, a certificate's `source-address`, `proxyProtocol.trusted` and a
 * route's destination CIDR.
 */
import { expect } from 'chai';
import { fromAllows, parseOptions, type KeyOptions } from '../../src/ssh/authorized-keys.js';
import { ProxyTrust } from '../../src/ingress/proxy-reader.js';
import { destinationPatternMatches, inBlockList, parseDestinationPattern, parseSubnet } from '../../src/routing/destination.js';

function keyOptions(text: string): KeyOptions {
  const r = parseOptions(text);
  if ('why' in r) throw new Error(r.why);
  return r.options;
}

describe('CIDR families must match (from=, source-address, trusted, route destinations)', function () {
  it('inBlockList: ::/0 and ::ffff:0:0/96 take no IPv4 address; 0.0.0.0/0 takes no IPv6 one', function () {
    expect(inBlockList(parseSubnet('::/0')!, '192.0.2.1')).to.equal(false);
    expect(inBlockList(parseSubnet('::ffff:0:0/96')!, '192.0.2.1')).to.equal(false);
    expect(inBlockList(parseSubnet('::/0')!, '2001:db8::1')).to.equal(true);
    expect(inBlockList(parseSubnet('0.0.0.0/0')!, '2001:db8::1')).to.equal(false);
    expect(inBlockList(parseSubnet('0.0.0.0/0')!, '192.0.2.1')).to.equal(true);
  });

  it('from="::/0" lets no IPv4 client in; from="0.0.0.0/0" no IPv6 one', function () {
    expect(fromAllows(keyOptions('from="::/0"'), '192.0.2.1')).to.equal(false);
    expect(fromAllows(keyOptions('from="::/0"'), '::ffff:192.0.2.1')).to.equal(false);
    expect(fromAllows(keyOptions('from="::/0"'), '2001:db8::1')).to.equal(true);
    expect(fromAllows(keyOptions('from="0.0.0.0/0"'), '2001:db8::1')).to.equal(false);
  });

  it('proxyProtocol.trusted: [::/0] trusts no IPv4 balancer', function () {
    expect(new ProxyTrust(['::/0']).trusts('10.0.0.7')).to.equal(false);
    expect(new ProxyTrust(['::/0']).trusts('::ffff:10.0.0.7')).to.equal(false);
    expect(new ProxyTrust(['::/0', '10.0.0.0/8']).trusts('10.0.0.7')).to.equal(true);
  });

  it('a route to ::/0 reaches no IPv4 destination', function () {
    const p = parseDestinationPattern('[::/0]:22');
    if (!p.ok) throw new Error(p.message);
    expect(destinationPatternMatches(p.value, { host: '192.0.2.1', kind: 'ipv4', address: '192.0.2.1', port: 22, protection: null })).to.equal('miss');
    expect(destinationPatternMatches(p.value, { host: '2001:db8::1', kind: 'ipv6', address: '2001:db8::1', port: 22, protection: null })).to.equal('hit');
  });
});
