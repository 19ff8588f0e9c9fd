import fs from 'node:fs';
import path from 'node:path';
import { expect } from 'chai';
import { loadConfigText } from '../../src/config/load.js';
import type { ResolvedConfig } from '../../src/config/resolve.js';
import { planChannel, planGateway, recheckChannel, recheckGateway, routedChannel, routesFor, type ChannelRequest, type PlanEnv } from '../../src/routing/plan.js';
import { AddressGuard } from '../../src/routing/guard.js';
import type { Lookup } from '../../src/routing/resolve-destination.js';
import { keygen, removeTempDirs, tempDir } from '../helpers/tmp.js';

/** The channel plan: request + config -> plan | refusal, with a fake DNS and no connection at all. */
const ANY_KEY = { portForwarding: true } as const;

describe('channel plan (src/routing/plan.ts)', function () {
  let config: ResolvedConfig;
  let env: PlanEnv;
  const dns: Record<string, string[]> = { 'db1.internal': ['10.1.0.5'], 'www.lab': ['192.0.2.9'], 'self.lab': ['127.0.0.1'], 'gw1.lab': ['10.2.0.1'] };
  const lookups: string[] = [];
  const lookup: Lookup = async (host) => {
    lookups.push(host);
    const a = dns[host];
    if (!a) throw Object.assign(new Error('not found'), { code: 'ENOTFOUND' });
    return a;
  };

  before(function () {
    const dir = tempDir();
    fs.mkdirSync(path.join(dir, 'ak'));
    keygen(dir, 'bastion_key');
    fs.writeFileSync(path.join(dir, 'known_hosts'), '');
    config = loadConfigText(
      `authorizedKeys: ak/%u
maxChannels: 3
maxQueuedMiBPerUser: 64
maxQueuedMiB: 256
upstreams:
  b1: { host: 10.9.0.1, user: root, identity: bastion_key, knownHosts: known_hosts }
routes:
  - name: dba
    users: [alice]
    to: ["db?.internal:5432", "10.1.0.0/16:22"]
  - name: behind-b1
    to: ["*.far:22"]
    via: b1
  - name: lab
    to: ["*.lab:22", "!secret.lab"]
  - name: gw
    users: [alice]
    to: ["*.lab:22"]
    gateway: { user: root, agent: true, knownHosts: known_hosts }
`,
      { displayName: 'plan.yaml', baseDir: dir, embedded: false, env: {} },
    ).config;
    env = { config, lookup, guard: new AddressGuard([]) };
  });
  after(removeTempDirs);

  const req = (host: string, port: number, over: Partial<ChannelRequest> = {}): ChannelRequest => ({
    user: 'alice',
    host,
    port,
    key: { portForwarding: true },
    openChannels: 0,
    gatewayLogin: false,
    ...over,
  });

  describe('refusals, one per code, in the order sshd checks', function () {
    it('invalid-destination: a spelling that is not a host (before any lookup)', async function () {
      lookups.length = 0;
      const r = await planChannel(req('db1.internal\u0000.evil', 22), env);
      expect(r).to.include({ kind: 'refused', code: 'invalid-destination', failure: 'prohibited' });
      if (r.kind === 'refused') expect(r.told).to.match(/^holdfast: not a valid destination/);
      expect(lookups).to.deep.equal([]);
    });
    it('invalid-destination: port 0', async function () {
      expect(await planChannel(req('db1.internal', 0), env)).to.include({ code: 'invalid-destination' });
    });
    it('port-forwarding-disabled: the key has restrict / no-port-forwarding', async function () {
      const r = await planChannel(req('db1.internal', 5432, { key: { portForwarding: false } }), env);
      expect(r).to.include({ code: 'port-forwarding-disabled', told: 'port forwarding is disabled for this key' });
    });
    it("permitopen: the key's permitopen= does not name it", async function () {
      const r = await planChannel(req('db1.internal', 5432, { key: { portForwarding: true, permitOpen: [{ host: 'db2.internal', port: 5432 }] } }), env);
      expect(r).to.include({ code: 'permitopen', told: 'db1.internal:5432 is not allowed by permitopen for this key' });
    });
    it('max-channels: resource-shortage at the limit, before any lookup', async function () {
      lookups.length = 0;
      const r = await planChannel(req('db1.internal', 5432, { openChannels: 3 }), env);
      expect(r).to.include({ code: 'max-channels', failure: 'resource-shortage', told: 'too many open channels (limit 3)' });
      expect(lookups).to.deep.equal([]);
    });
    it("queued-bytes: resource-shortage past the user's bound, then past the process's, before any lookup", async function () {
      lookups.length = 0;
      const MiB = 1024 * 1024;
      const mine = await planChannel(req('db1.internal', 5432, { queued: { user: 64 * MiB, process: 64 * MiB } }), env);
      expect(mine).to.include({
        code: 'queued-bytes',
        failure: 'resource-shortage',
        told: "holdfast holds 64 MiB for alice's targets that are not reading (maxQueuedMiBPerUser 64): close the channels whose target is stuck",
      });
      const all = await planChannel(req('db1.internal', 5432, { queued: { user: 1 * MiB, process: 300 * MiB } }), env);
      expect(all).to.include({ code: 'queued-bytes', told: 'holdfast holds 300 MiB for targets that are not reading (maxQueuedMiB 256): try again later' });
      expect(lookups).to.deep.equal([]);
      expect(await planChannel(req('db1.internal', 5432, { queued: { user: 63 * MiB, process: 255 * MiB } }), env)).to.include({ kind: 'tcp' });
    });
    it('no-route: prohibited, each route saying why', async function () {
      const r = await planChannel(req('secret.lab', 22, { user: 'bob' }), env);
      expect(r).to.include({ code: 'no-route', failure: 'prohibited', told: 'holdfast: no route allows bob to reach secret.lab:22' });
      if (r.kind === 'refused') expect(r.why).to.include('dba: user "bob" is not in users').and.include('lab: excluded by "!secret.lab"');
    });
    it('no-route: a wildcard never reaches loopback (the guard)', async function () {
      const r = await planChannel(req('self.lab', 22), env);
      expect(r).to.include({ code: 'no-route' });
      if (r.kind === 'refused') expect(r.why).to.include('is a loopback address');
    });
    it('no-route: gateway routes serve gateway logins only', async function () {
      const r = await planChannel(req('gw1.lab', 2222), env);
      expect(r).to.include({ code: 'no-route' });
      if (r.kind === 'refused') expect(r.why).not.to.include('gw:');
    });
    it('unresolved: connect-failed naming the route, only when a route could allow the name', async function () {
      const r = await planChannel(req('nowhere.lab', 22), env);
      expect(r).to.include({ code: 'unresolved', failure: 'connect-failed', route: 'lab', told: 'cannot resolve nowhere.lab: ENOTFOUND' });
      // A name no route could allow is "prohibited", so a user cannot probe which names exist.
      expect(await planChannel(req('nowhere.else', 22), env)).to.include({ code: 'no-route' });
    });
  });

  describe('plans', function () {
    it('tcp: the address the route matched on (resolved once), canonical spelling', async function () {
      lookups.length = 0;
      const p = await planChannel(req('DB1.Internal.', 5432), env);
      expect(p).to.deep.include({ kind: 'tcp', host: 'db1.internal', port: 5432, address: '10.1.0.5', dst: 'db1.internal:5432' });
      if (p.kind === 'tcp') expect(p.route.name).to.equal('dba');
      expect(lookups).to.deep.equal(['db1.internal']);
    });
    it('tcp: an address matched by CIDR, no lookup', async function () {
      lookups.length = 0;
      const p = await planChannel(req('10.1.200.7', 22), env);
      expect(p).to.include({ kind: 'tcp', address: '10.1.200.7' });
      expect(lookups).to.deep.equal([]);
    });
    it('via: matched on the name, never resolved here (the bastion resolves it)', async function () {
      lookups.length = 0;
      const p = await planChannel(req('db.far', 22), env);
      expect(p).to.include({ kind: 'via', host: 'db.far', port: 22 });
      if (p.kind === 'via') expect(p.route.via!.map((u) => u.name)).to.deep.equal(['b1']);
      expect(lookups).to.deep.equal([]);
    });
    it('gateway: a gateway login forwards through its leg (the target decides)', async function () {
      expect(await planChannel(req('anything.example', 80, { gatewayLogin: true }), env)).to.include({ kind: 'gateway', host: 'anything.example', port: 80 });
    });
    it('routesFor splits jump and gateway routes', function () {
      expect(routesFor(config, 'jump').map((r) => r.name)).to.deep.equal(['dba', 'behind-b1', 'lab']);
      expect(routesFor(config, 'gateway').map((r) => r.name)).to.deep.equal(['gw']);
    });
  });

  describe('gateway logins (planGateway)', function () {
    it('routes the target on gateway routes only', async function () {
      const p = await planGateway('alice', ANY_KEY, { host: 'gw1.lab', port: 22 }, env);
      expect(p).to.include({ kind: 'gateway-target', address: '10.2.0.1', dst: 'gw1.lab:22' });
      if (p.kind === 'gateway-target') expect(p.route.name).to.equal('gw');
    });
    it('refuses: invalid, no gateway route, unresolved', async function () {
      expect(await planGateway('alice', ANY_KEY, { host: 'a b', port: 22 }, env)).to.include({ code: 'invalid-destination' });
      const none = await planGateway('bob', ANY_KEY, { host: 'gw1.lab', port: 22 }, env);
      expect(none).to.include({ code: 'no-route', told: 'no gateway route allows bob to reach gw1.lab:22' });
      expect(await planGateway('alice', ANY_KEY, { host: 'db1.internal', port: 5432 }, env)).to.include({ code: 'no-route' });
      expect(await planGateway('alice', ANY_KEY, { host: 'gone.lab', port: 22 }, env)).to.include({ code: 'unresolved', route: 'gw' });
    });
    it("obeys the key's permitopen= (the only targets it may log in to, before any lookup); restrict keeps a session, as sshd", async function () {
      const only = { portForwarding: true, permitOpen: [{ host: 'gw2.lab', port: 22 }] };
      const elsewhere = await planGateway('alice', only, { host: 'gw1.lab', port: 22 }, env);
      expect(elsewhere).to.include({ code: 'permitopen', told: 'gw1.lab:22 is not allowed by permitopen for this key' });
      expect(await planGateway('alice', only, { host: 'GW1.lab', port: 2200 }, env)).to.include({ code: 'permitopen' });
      const there = await planGateway('alice', { portForwarding: true, permitOpen: [{ host: 'gw1.lab', port: 22 }] }, { host: 'gw1.lab', port: 22 }, env);
      expect(there).to.include({ kind: 'gateway-target', address: '10.2.0.1' });
      expect(await planGateway('alice', { portForwarding: false }, { host: 'gw1.lab', port: 22 }, env)).to.include({ kind: 'gateway-target' });
      expect(await planGateway('alice', { portForwarding: true, permitOpen: [{ host: 'gw2.lab', port: 22 }] }, { host: 'gone.lab', port: 22 }, env)).to.include({ code: 'permitopen' });
    });
  });

  describe('after a reload (recheckChannel, recheckGateway): no lookup, the same matching', function () {
    const reloaded = (yaml: string) =>
      loadConfigText(yaml, { displayName: 'plan2.yaml', baseDir: path.dirname(path.dirname(config.authorizedKeys)), embedded: false, env: {} }).config;

    it('a TCP channel is re-matched on its name and the address it connected to', async function () {
      const p = await planChannel(req('db1.internal', 5432), env);
      if (p.kind !== 'tcp') throw new Error(p.kind);
      const ch = routedChannel(p);
      expect(ch).to.deep.equal({ host: 'db1.internal', port: 5432, path: { kind: 'tcp', address: '10.1.0.5' } });
      lookups.length = 0;
      const same = recheckChannel('alice', { portForwarding: true }, ch, config, env.guard);
      expect(same.kind === 'route' && same.route.name).to.equal('dba');
      // A new config: the route that carries it is now "db-new", with other keepalive; by address only.
      const next = reloaded(`authorizedKeys: ak/%u
routes:
  - name: db-new
    to: ["10.1.0.5:5432"]
    keepalive: { upstream: { interval: 7s } }
`);
      const moved = recheckChannel('alice', { portForwarding: true }, ch, next, env.guard);
      expect(moved.kind === 'route' && moved.route.name).to.equal('db-new');
      expect(moved.kind === 'route' && moved.route.keepalive.upstream.interval).to.equal(7000);
      expect(lookups, 'no DNS lookup on a reload').to.deep.equal([]);
    });

    it('narrowed: no route allows it any more, or the key does not (permitopen, no-port-forwarding), or the user is no longer listed', async function () {
      const p = await planChannel(req('db1.internal', 5432), env);
      if (p.kind !== 'tcp') throw new Error(p.kind);
      const ch = routedChannel(p);
      const narrowed = reloaded(`authorizedKeys: ak/%u
routes:
  - name: dba
    users: [alice]
    to: ["10.1.0.0/16:22"]
`);
      const gone = recheckChannel('alice', { portForwarding: true }, ch, narrowed, env.guard);
      expect(gone).to.include({ kind: 'refused', code: 'no-route', dst: 'db1.internal:5432' });
      if (gone.kind === 'refused') expect(gone.why).to.match(/^no route allows it any more \(dba: no "to" entry matches/);
      expect(recheckChannel('bob', { portForwarding: true }, ch, config, env.guard)).to.include({ code: 'no-route' });
      expect(recheckChannel('alice', { portForwarding: false }, ch, config, env.guard)).to.include({ code: 'port-forwarding-disabled' });
      expect(recheckChannel('alice', { portForwarding: true, permitOpen: [{ host: 'db2.internal', port: 5432 }] }, ch, config, env.guard)).to.include({ code: 'permitopen' });
    });

    it('a channel keeps its path: a TCP channel never moves behind a bastion, a bastion channel only to a route with the same chain', async function () {
      const tcp = routedChannel({ kind: 'tcp', route: config.routes[0]!, host: 'db1.internal', port: 22, dst: 'db1.internal:22', address: '10.1.0.5' });
      const viaOnly = reloaded(`authorizedKeys: ak/%u
upstreams:
  b1: { host: 10.9.0.1, user: root, identity: bastion_key, knownHosts: known_hosts }
routes:
  - name: behind-b1
    to: ["*"]
    via: b1
`);
      expect(recheckChannel('alice', { portForwarding: true }, tcp, viaOnly, env.guard)).to.include({ code: 'no-route' });
      const p = await planChannel(req('db.far', 22), env);
      if (p.kind !== 'via') throw new Error(p.kind);
      const via = routedChannel(p);
      expect(via.path).to.deep.equal({ kind: 'via', chain: 'b1' });
      const v = recheckChannel('alice', { portForwarding: true }, via, viaOnly, env.guard);
      expect(v.kind === 'route' && v.route.name).to.equal('behind-b1');
      expect(recheckChannel('alice', { portForwarding: true }, via, reloaded('authorizedKeys: ak/%u\nroutes:\n  - name: all\n    to: ["*"]\n'), env.guard)).to.include({ code: 'no-route' });
    });

    it('a gateway leg is re-matched on its target and address; gone when no gateway route allows it', function () {
      const ok = recheckGateway('alice', ANY_KEY, { host: 'gw1.lab', port: 22 }, '10.2.0.1', config, env.guard);
      expect(ok.kind === 'route' && ok.route.name).to.equal('gw');
      const gone = recheckGateway('bob', ANY_KEY, { host: 'gw1.lab', port: 22 }, '10.2.0.1', config, env.guard);
      expect(gone).to.include({ code: 'no-route', told: 'no gateway route allows bob to reach gw1.lab:22 any more' });
      // The key's options as they are after the reload: permitopen= added to the key ends the leg.
      expect(recheckGateway('alice', { portForwarding: true, permitOpen: [{ host: 'gw2.lab', port: 22 }] }, { host: 'gw1.lab', port: 22 }, '10.2.0.1', config, env.guard)).to.include({ code: 'permitopen' });
    });
  });
});
