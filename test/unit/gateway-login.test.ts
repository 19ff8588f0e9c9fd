import { expect } from 'chai';
import { gatewayUser, parseGatewayLogin } from '../../src/routing/gateway-login.js';

describe('gateway login names (user+target[+port])', function () {
  const ok: Array<[string, string, { host: string; port: number } | undefined]> = [
    ['alice', 'alice', undefined],
    ['alice+db1.internal', 'alice', { host: 'db1.internal', port: 22 }],
    ['alice+db1.internal+2200', 'alice', { host: 'db1.internal', port: 2200 }],
    ['alice+10.0.0.7', 'alice', { host: '10.0.0.7', port: 22 }],
    ['alice+[2001:db8::7]', 'alice', { host: '2001:db8::7', port: 22 }],
    ['alice+[2001:db8::7]+2200', 'alice', { host: '2001:db8::7', port: 2200 }],
    ['a.b-c+db_1', 'a.b-c', { host: 'db_1', port: 22 }],
  ];
  for (const [name, user, target] of ok) {
    it(`reads ${name}`, function () {
      const r = parseGatewayLogin(name);
      expect(r).to.deep.equal({ ok: true, value: target ? { user, target } : { user } });
    });
  }

  const bad: Array<[string, RegExp]> = [
    ['+db1', /no user name before the \+/],
    ['alice+', /no target after the \+/],
    ['alice+db1+x', /bad port "x"/],
    ['alice+db1+0', /bad port "0"/],
    ['alice+db1+65536', /bad port "65536"/],
    ['alice+db1+22+33', /too many \+ signs/],
    ['alice+[db1]', /db1 is not an IPv6 address/],
    ['alice+[::1', /missing \]/],
    ['alice+[::1]22', /expected \+port after \]/],
    ['alice+db 1', /"db 1" is not a host name or address/],
    ['alice+-oProxyCommand=x', /is not a host name or address/],
  ];
  for (const [name, why] of bad) {
    it(`refuses ${JSON.stringify(name)} with a message that shows the form`, function () {
      const r = parseGatewayLogin(name);
      expect(r.ok).to.equal(false);
      if (r.ok) return;
      expect(r.message).to.match(why);
      expect(r.message).to.include('write user+host or user+host+port');
    });
  }

  it('%u in the gateway user is the user before the +; %% is a %', function () {
    expect(gatewayUser('%u', 'alice')).to.equal('alice');
    expect(gatewayUser('ops-%u', 'alice')).to.equal('ops-alice');
    expect(gatewayUser('root', 'alice')).to.equal('root');
    expect(gatewayUser('100%%', 'alice')).to.equal('100%');
  });
});
