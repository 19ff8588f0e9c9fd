import { expect } from 'chai';
import { parseDestinationPattern, type Destination, type DestinationPattern } from '../../src/routing/destination.js';
import { findRoute, whyRouteMisses, type RouteRule } from '../../src/routing/route-table.js';
import { matchPatternList, wildcardMatch } from '../../src/routing/wildcard.js';

function p(s: string): DestinationPattern {
  const r = parseDestinationPattern(s);
  if (!r.ok) throw new Error(r.message);
  return r.value;
}

describe('routing', function () {
  describe('wildcards (ssh_config semantics)', function () {
    const table: Array<[string, string, boolean]> = [
      ['db1.internal', 'db?.internal', true], ['db10.internal', 'db?.internal', false], ['a.lab.example.com', '*.lab.example.com', true],
      ['lab.example.com', '*.lab.example.com', false], ['DB1.Internal', 'db1.internal', true], ['anything', '*', true], ['', '*', true],
      ['abc', 'a*c', true], ['abd', 'a*c', false],
    ];
    for (const [text, pat, want] of table) it(`${text} ~ ${pat} = ${want}`, () => expect(wildcardMatch(text, pat)).to.equal(want));
    it('is linear enough for hostile input', function () {
      const t0 = Date.now();
      expect(wildcardMatch('a'.repeat(5000), '*a*a*a*a*a*a*a*b')).to.equal(false);
      expect(Date.now() - t0).to.be.lessThan(500);
    });
    it('negation excludes', function () {
      expect(matchPatternList(['bob'], ['*', '!bob'])).to.equal(false);
      expect(matchPatternList(['alice'], ['*', '!bob'])).to.equal(true);
      expect(matchPatternList(['alice'], ['!bob'])).to.equal(false);
    });
  });

  describe('to: entries', function () {
    it('parses hosts, CIDRs, ports and IPv6', function () {
      expect(p('db1')).to.include({ kind: 'name', pattern: 'db1', port: 22, negated: false });
      expect(p('db?.internal:*')).to.include({ kind: 'name', port: '*' });
      expect(p('198.18.4.0/24:22')).to.include({ kind: 'cidr', network: '198.18.4.0', prefix: 24, port: 22 });
      expect(p('2001:db8::/32')).to.include({ kind: 'cidr', prefix: 32, port: 22 });
      expect(p('[2001:db8::/32]:2222')).to.include({ kind: 'cidr', port: 2222 });
      expect(p('!secret')).to.include({ negated: true, port: '*' });
      expect(p('!secret:22')).to.include({ negated: true, port: 22 });
    });
    const bad: Array<[string, RegExp]> = [
      ['db*:abc', /"db\*:abc" is not a valid port/], ['x:0', /not a valid port/], ['x:65536', /not a valid port/],
      ['198.18.4.0/33', /not a valid CIDR/], ['300.1.1.1/8', /not a valid CIDR/], ['a b', /not a valid host pattern/],
      ['', /empty/], ['[::1', /without "\]"/], [':22', /has no host/],
    ];
    for (const [s, msg] of bad) {
      it(`refuses ${JSON.stringify(s)}`, function () {
        const r = parseDestinationPattern(s);
        expect(r.ok).to.equal(false);
        if (!r.ok) expect(r.message).to.match(msg);
      });
    }
    it('matches the name or the resolved address; CIDRs the address', function () {
      // A `to:` list as findRoute reads it (the production path): null = the route matches.
      const destinationListMatches = (to: DestinationPattern[], d: Destination) => whyRouteMisses({ name: 't', to }, 'alice', d) === null;
      const list = [p('*.lab:*'), p('10.1.0.0/16'), p('!10.1.9.9')];
      const kind = 'name' as const;
      expect(destinationListMatches(list, { host: 'x.lab', kind, address: '192.0.2.1', port: 80 })).to.equal(true);
      expect(destinationListMatches(list, { host: 'db', kind, address: '10.1.2.3', port: 22 })).to.equal(true);
      expect(destinationListMatches(list, { host: 'db', kind, address: '10.1.2.3', port: 23 })).to.equal(false);
      expect(destinationListMatches(list, { host: 'db', kind, address: '10.1.9.9', port: 22 })).to.equal(false);
      expect(destinationListMatches(list, { host: 'x.lab', kind, address: '10.1.9.9', port: 80 }), 'negation by address wins').to.equal(false);
      expect(destinationListMatches([p('2001:db8::/32')], { host: 'v6', kind, address: '2001:db8::5', port: 22 })).to.equal(true);
      expect(destinationListMatches([p('10.0.0.0/8')], { host: 'v6', kind, address: '2001:db8::5', port: 22 })).to.equal(false);
    });
  });

  describe('route table (first match wins, default deny)', function () {
    const routes: RouteRule[] = [
      { name: 'dba', users: ['alice', 'bob'], to: [p('db?.internal:*')] },
      { name: 'lab', users: ['*', '!contractor-*'], to: [p('*.lab'), p('!secret.lab')] },
      { name: 'all-db', to: [p('db?.internal:5432')] },
    ];
    const d = (host: string, port = 22, address = '192.0.2.7') => ({ host, kind: 'name' as const, port, address });
    it('picks the first route that matches user and destination', function () {
      expect(findRoute(routes, 'alice', d('db1.internal', 5432)).route?.name).to.equal('dba');
      expect(findRoute(routes, 'carol', d('db1.internal', 5432)).route?.name).to.equal('all-db');
      expect(findRoute(routes, 'carol', d('x.lab')).route?.name).to.equal('lab');
    });
    it('refuses with a reason per route', function () {
      const r = findRoute(routes, 'contractor-joe', d('x.lab'));
      expect(r.route).to.equal(null);
      expect(r.misses).to.deep.equal([
        { route: 'dba', why: 'user "contractor-joe" is not in users' },
        { route: 'lab', why: 'user "contractor-joe" is not in users' },
        { route: 'all-db', why: 'no "to" entry matches x.lab:22 (192.0.2.7)' },
      ]);
      expect(findRoute(routes, 'carol', d('secret.lab')).misses[1]).to.deep.equal({ route: 'lab', why: 'excluded by "!secret.lab"' });
      expect(findRoute([], 'carol', d('x')).route).to.equal(null);
    });
  });
});
