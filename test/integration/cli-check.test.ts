/**
 * Issue 2, acceptance 4: `holdfast check` exits 78 and prints FILE:LINE:COL for each fault; every
 * example config passes; the published JSON Schema is the one the code generates.
 */
import fs from 'node:fs';
import path from 'node:path';
import { expect } from 'chai';
import { holdfast } from '../helpers/cli.js';
import { ROOT } from '../helpers/holdfast.js';
import { keygen, publicKey, removeTempDirs, tempDir } from '../helpers/tmp.js';
import { makeKrl, signCertificate, sshKeygenFingerprint } from '../helpers/certs.js';

describe('holdfast check', function () {
  let dir: string;

  before(function () {
    dir = tempDir();
    fs.writeFileSync(path.join(dir, 'authorized_keys'), `${publicKey(keygen(dir, 'user'))}\n`);
    fs.mkdirSync(path.join(dir, 'ak'));
  });
  after(removeTempDirs);

  function check(name: string, yaml: string) {
    fs.writeFileSync(path.join(dir, name), yaml);
    return holdfast(['check', '--config', name], { cwd: dir });
  }

  const broken: Array<{ what: string; yaml: string; lines: string[] }> = [
    {
      what: 'a YAML syntax error (tab indentation)',
      yaml: 'listen:\n\t- port: 2222\nroutes: []\n',
      lines: ['bad.yaml:2:1: YAML syntax error: Tabs are not allowed as indentation'],
    },
    {
      what: 'a YAML syntax error (misaligned mapping)',
      yaml: 'authorizedKeys: ak/%u\nroutes:\n  - name: lab\n    to: ["a"]\n  - name: lab2\n  to: x\n',
      lines: ['bad.yaml:6:1: YAML syntax error: All mapping items must start at the same column'],
    },
    {
      what: 'an unknown key, named by its path',
      yaml: 'authorizedKeys: ak/%u\nroutes:\n  - name: lab\n    to: ["*.lab"]\n    kepalive:\n      client: { interval: 10s }\n',
      lines: ['bad.yaml:5:5: routes[0].kepalive: unknown key (allowed here: name, users, to, via, gateway, keepalive, idleTimeout, resume, maxSessionTime)'],
    },
    {
      what: 'an unknown top-level key',
      yaml: 'authorizedKeys: ak/%u\nlisten_port: 22\nroutes: []\n',
      lines: [
        'bad.yaml:2:1: listen_port: unknown key (allowed here: listen, hostKeys, authorizedKeys, trustedUserCAKeys, authorizedPrincipalsFile, revokedKeys, hostCertificates, loginGraceTime, maxAuthTries, maxStartups, perSourceMaxStartups, perSourceNetBlockSize, maxSessions, maxConnectionsPerUser, maxQueuedMiBPerUser, maxQueuedMiB, maxChannels, connectTimeout, shutdownTimeout, drainTimeout, workerStartTimeout, workers, idleTimeout, admin, resume, logLevel, keepalive, upstreams, upstreamPool, routes)',
      ],
    },
    {
      what: 'a bad duration',
      yaml: 'authorizedKeys: ak/%u\nkeepalive:\n  client: { interval: 10 parsecs, countMax: 3 }\nroutes: []\n',
      lines: ['bad.yaml:3:23: keepalive.client.interval: "10 parsecs" is not a valid duration (use seconds, or a string with units: 500ms, 30s, 5m, 1h)'],
    },
    {
      what: 'a bad CIDR and a bad port',
      yaml: 'authorizedKeys: ak/%u\nroutes:\n  - name: lab\n    to:\n      - "*.lab"\n      - "198.18.4.0/33"\n      - "db*:abc"\n',
      lines: [
        'bad.yaml:6:9: routes[0].to[1]: "198.18.4.0/33" is not a valid CIDR (expected e.g. 198.18.4.0/24 or 2001:db8::/32)',
        'bad.yaml:7:9: routes[0].to[2]: "db*:abc" is not a valid port (use 1-65535 or *)',
      ],
    },
    {
      what: 'a missing authorized_keys file',
      yaml: 'listen: [{port: 2222}]\nauthorizedKeys: keys/missing\nroutes: []\n',
      lines: [`bad.yaml:2:17: authorizedKeys: DIR/keys/missing does not exist; create it with the users' public keys (OpenSSH authorized_keys format)`],
    },
    {
      what: 'a host key file that is not a private key',
      yaml: 'authorizedKeys: ak/%u\nhostKeys:\n  - authorized_keys\nroutes: []\n',
      lines: ['bad.yaml:3:5: hostKeys[0]: DIR/authorized_keys holds no private key'],
    },
    {
      what: 'a missing required key and a wrong type',
      yaml: 'authorizedKeys: ak/%u\nmaxAuthTries: many\n',
      lines: ['bad.yaml:1:1: routes: is required', 'bad.yaml:2:15: maxAuthTries: expected number, received string'],
    },
    {
      what: 'a via naming no upstream, and an upstream whose identity key file is missing',
      yaml: 'authorizedKeys: ak/%u\nupstreams:\n  dc2:\n    host: b.example\n    user: hf\n    identity: keys/dc2_ed25519\n    hostKeyPolicy: accept-new\nroutes:\n  - name: a\n    to: [x]\n    via: [dc2, dc3]\n',
      lines: [
        "bad.yaml:6:15: upstreams.dc2.identity: DIR/keys/dc2_ed25519 does not exist (holdfast's private key for this bastion)",
        'bad.yaml:11:16: routes[0].via[1]: no upstream named "dc3" (upstreams: dc2)',
      ],
    },
    {
      what: 'a strict upstream without knownHosts',
      yaml: 'authorizedKeys: ak/%u\nupstreams:\n  dc2:\n    host: b.example\n    user: hf\n    identity: authorized_keys\nroutes: []\n',
      lines: [
        "bad.yaml:4:5: upstreams.dc2: needs knownHosts (or hostKeyPolicy: accept-new) to check the bastion's host key",
        'bad.yaml:6:15: upstreams.dc2.identity: DIR/authorized_keys holds no private key',
      ],
    },
    {
      what: 'a gateway with both identity and agent, with via, and a missing identity file',
      yaml: 'authorizedKeys: ak/%u\nupstreams:\n  dc2:\n    host: b.example\n    user: hf\n    identity: authorized_keys\n    hostKeyPolicy: accept-new\nroutes:\n  - name: g\n    to: [x]\n    via: dc2\n    gateway: {identity: keys/gw, agent: true, hostKeyPolicy: accept-new}\n',
      lines: [
        'bad.yaml:6:15: upstreams.dc2.identity: DIR/authorized_keys holds no private key',
        'bad.yaml:12:14: routes[0].gateway: a gateway route cannot also have `via` (not supported): give the gateway its own route',
        'bad.yaml:12:14: routes[0].gateway: give either identity or agent: true, not both',
        "bad.yaml:12:25: routes[0].gateway.identity: DIR/keys/gw does not exist (holdfast's private key for the gateway targets)",
      ],
    },
    {
      what: 'a misspelt key in a gateway block',
      yaml: 'authorizedKeys: ak/%u\nroutes:\n  - name: g\n    to: [x]\n    gateway:\n      user: root\n      agnet: true\n',
      lines: ['bad.yaml:7:7: routes[0].gateway.agnet: unknown key (allowed here: user, identity, agent, knownHosts, hostKeyPolicy)'],
    },
    {
      what: 'a gateway with neither identity nor agent and no knownHosts under strict',
      yaml: 'authorizedKeys: ak/%u\nroutes:\n  - name: g\n    to: [x]\n    gateway:\n      user: root\n',
      lines: [
        "bad.yaml:6:7: routes[0].gateway: needs identity (holdfast's own key for the targets) or agent: true (the user's forwarded agent)",
        "bad.yaml:6:7: routes[0].gateway: needs knownHosts (or hostKeyPolicy: accept-new) to check the target's host key",
      ],
    },
    {
      what: 'a PROXY listener with a malformed trusted entry, an empty list, and a misspelt key',
      yaml: 'authorizedKeys: ak/%u\nlisten:\n  - port: 2222\n    proxyProtocol: {trusted: [10.0.0.0/33, haproxy.lan]}\n  - port: 2223\n    proxyProtocol: {trusted: []}\n  - port: 2224\n    proxyProtocol: {trustd: [10.0.0.5]}\nroutes: []\n',
      lines: [
        'bad.yaml:4:31: listen[0].proxyProtocol.trusted[0]: "10.0.0.0/33" is not an IP address or CIDR subnet (e.g. 10.0.0.0/8, 2001:db8::/32, 192.0.2.10)',
        'bad.yaml:4:44: listen[0].proxyProtocol.trusted[1]: "haproxy.lan" is not an IP address or CIDR subnet (e.g. 10.0.0.0/8, 2001:db8::/32, 192.0.2.10)',
        'bad.yaml:6:30: listen[1].proxyProtocol.trusted: list the load balancers (an empty list would refuse every connection); remove proxyProtocol for direct clients',
        'bad.yaml:8:20: listen[2].proxyProtocol.trusted: is required',
        'bad.yaml:8:21: listen[2].proxyProtocol.trustd: unknown key (allowed here: trusted)',
      ],
    },
    {
      what: 'a missing trustedUserCAKeys file and a revokedKeys file that is neither a KRL nor public keys',
      yaml: 'authorizedKeys: ak/%u\ntrustedUserCAKeys: cas.pub\nrevokedKeys: bad.yaml\nroutes: []\n',
      lines: [
        'bad.yaml:2:20: trustedUserCAKeys: DIR/cas.pub does not exist (OpenSSH public keys of the user CAs)',
        'bad.yaml:3:14: revokedKeys: DIR/bad.yaml: line 1 is not a public key',
      ],
    },
    {
      what: 'authorizedPrincipalsFile without trustedUserCAKeys, and a host certificate that is a plain key',
      yaml: 'authorizedKeys: ak/%u\nhostKeys: [user]\nauthorizedPrincipalsFile: p/%u\nhostCertificates: [authorized_keys]\nroutes: []\n',
      lines: [
        'bad.yaml:3:27: authorizedPrincipalsFile: only applies to certificates from trustedUserCAKeys, which is not set',
        "bad.yaml:4:20: hostCertificates[0]: DIR/authorized_keys is a plain ssh-ed25519 key, not a certificate: sign the host key's .pub with ssh-keygen -s CA -h",
      ],
    },
    {
      what: 'a users rule with one principals file for every user',
      yaml: 'authorizedKeys: ak/%u\ntrustedUserCAKeys: authorized_keys\nauthorizedPrincipalsFile: principals\nroutes:\n  - name: a\n    users: [alice]\n    to: [x]\n',
      lines: ['bad.yaml:6:12: routes[0].users: users ["alice"] cannot be enforced for certificates: authorizedPrincipalsFile DIR/principals is one file for every user name; put %u in it'],
    },
    {
      what: 'duplicate route names',
      yaml: 'authorizedKeys: ak/%u\nroutes:\n  - name: a\n    to: [x]\n  - name: a\n    to: [y]\n',
      lines: ['bad.yaml:5:11: routes[1].name: duplicate route name "a" (also routes[0])'],
    },
  ];

  for (const b of broken) {
    it(`exits 78 with FILE:LINE:COL on ${b.what}`, function () {
      const r = check('bad.yaml', b.yaml);
      expect(r.code, r.stderr).to.equal(78);
      expect(r.stderr.trimEnd().split('\n')).to.deep.equal(b.lines.map((l) => l.replaceAll('DIR', dir)));
      expect(r.stdout).to.equal('');
    });
  }

  it('check and explain show the certificate setup: CA fingerprints, the principal rule, the KRL, the host certificate', function () {
    const ca = keygen(dir, 'cert_ca');
    const hostKey = keygen(dir, 'host_key');
    const hostCert = signCertificate(dir, ca, hostKey, { name: 'host_key', id: 'jump', principals: 'jump.example.com', host: true, validity: 'always:forever' });
    makeKrl(dir, 'revoked.krl', ['serial: 1-9', 'id: gone'], `${ca}.pub`);
    fs.writeFileSync(path.join(dir, 'cas'), `${publicKey(ca)}\n`);
    const yaml = `authorizedKeys: ak/%u\nhostKeys: [host_key]\ntrustedUserCAKeys: cas\nauthorizedPrincipalsFile: principals/%u\nrevokedKeys: revoked.krl\nhostCertificates: [${path.basename(hostCert)}]\nroutes: [{name: a, to: [db1]}]\n`;
    const r = check('certs.yaml', yaml);
    expect(r.code, r.stderr).to.equal(0);
    const fp = sshKeygenFingerprint(`${ca}.pub`);
    const lines = r.stdout.split('\n');
    expect(lines).to.include(`user certificates: CAs in ${dir}/cas (${fp}); principal: a line of ${dir}/principals/%u; also cert-authority lines in authorized_keys`);
    expect(lines).to.include(`revoked keys: ${dir}/revoked.krl (KRL: 1 serial entries, 1 key IDs, 0 keys, 0 fingerprints, 1 CA sections)`);
    expect(lines).to.include(`host certificate: ${hostCert}: key ${sshKeygenFingerprint(`${hostKey}.pub`)}, CA ${fp}, principals jump.example.com, valid forever`);
    const e = holdfast(['explain', '--config', 'certs.yaml', '--user', 'alice', 'db1'], { cwd: dir });
    expect(e.stdout).to.include(`user certificates: CAs in ${dir}/cas (${fp})`);
  });

  it('hostCertificates: ECDSA and RSA host certificates are shown; a DSA one is refused with the types holdfast presents', function () {
    const ca = keygen(dir, 'hc_ca');
    const ec = keygen(dir, 'hc_ecdsa', 'ecdsa');
    const rsa = keygen(dir, 'hc_rsa', 'rsa');
    const dsa = keygen(dir, 'hc_dsa', 'dsa');
    const ecCert = signCertificate(dir, ca, ec, { name: 'hc_ecdsa', id: 'jump', principals: 'jump.example.com', host: true, validity: 'always:forever' });
    const rsaCert = signCertificate(dir, ca, rsa, { name: 'hc_rsa', id: 'jump', principals: 'jump.example.com', host: true });
    const dsaCert = signCertificate(dir, ca, dsa, { name: 'hc_dsa', id: 'jump', principals: 'jump.example.com', host: true });
    const ok = check('hc.yaml', `authorizedKeys: ak/%u\nhostKeys: [hc_ecdsa]\nhostCertificates: [${path.basename(ecCert)}]\nroutes: []\n`);
    expect(ok.code, ok.stderr).to.equal(0);
    expect(ok.stdout).to.include(`host certificate: ${ecCert}: key ${sshKeygenFingerprint(`${ec}.pub`)}, CA ${sshKeygenFingerprint(`${ca}.pub`)}, principals jump.example.com, valid forever`);
    const okRsa = check('hc.yaml', `authorizedKeys: ak/%u\nhostKeys: [hc_rsa]\nhostCertificates: [${path.basename(rsaCert)}]\nroutes: []\n`);
    expect(okRsa.code, okRsa.stderr).to.equal(0);
    expect(okRsa.stdout).to.include(`host certificate: ${rsaCert}: key ${sshKeygenFingerprint(`${rsa}.pub`)}, CA ${sshKeygenFingerprint(`${ca}.pub`)}, principals jump.example.com`);
    const bad = check('hc.yaml', `authorizedKeys: ak/%u\nhostKeys: [hc_dsa]\nhostCertificates: [${path.basename(dsaCert)}]\nroutes: []\n`);
    expect(bad.code).to.equal(78);
    expect(bad.stderr).to.equal(
      `hc.yaml:3:20: hostCertificates[0]: ${dsaCert} is a ssh-dss-cert-v01@openssh.com: holdfast presents ed25519, ECDSA and RSA host certificates (ssh-ed25519-cert-v01@openssh.com, ecdsa-sha2-nistp256-cert-v01@openssh.com, ecdsa-sha2-nistp384-cert-v01@openssh.com, ecdsa-sha2-nistp521-cert-v01@openssh.com, ssh-rsa-cert-v01@openssh.com)\n`,
    );
  });

  it('warns about a trustedUserCAKeys or revokedKeys file others can write, and proxyProtocol.trusted /0 (trusting everyone); an admin.address that is a name', function () {
    const caKey = keygen(dir, 'warn_ca');
    fs.writeFileSync(path.join(dir, 'open_ca.pub'), `${publicKey(caKey)}\n`);
    fs.chmodSync(path.join(dir, 'open_ca.pub'), 0o666);
    fs.writeFileSync(path.join(dir, 'open.krl'), `${publicKey(caKey)}\n`);
    fs.chmodSync(path.join(dir, 'open.krl'), 0o646);
    const r = check(
      'warn.yaml',
      'listen:\n  - {address: 127.0.0.1, port: 2222, proxyProtocol: {trusted: ["0.0.0.0/0", "10.0.0.0/8"]}}\nauthorizedKeys: ak/%u\ntrustedUserCAKeys: open_ca.pub\nrevokedKeys: open.krl\nadmin: {address: localhost, port: 9750}\nroutes: []\n',
    );
    expect(r.code, r.stderr).to.equal(0);
    expect(r.stdout).to.include(`warning: trustedUserCAKeys: ${dir}/open_ca.pub is writable by group or others (chmod go-w ${dir}/open_ca.pub); whoever can write it decides who logs in`);
    expect(r.stdout).to.include(`warning: revokedKeys: ${dir}/open.krl is writable by group or others`);
    expect(r.stdout).to.include('warning: listen[0].proxyProtocol.trusted: 0.0.0.0/0 trusts every address to say who the client is');
    expect(r.stdout).to.include('warning: admin.address: "localhost" is a name');
  });

  it('admin.tokenFile: missing, short or multi-line tokens are errors; an open token file and a reachable listener without a token are warnings', function () {
    const yaml = (admin: string) => `authorizedKeys: ak/%u\nadmin: ${admin}\nroutes: []\n`;
    fs.writeFileSync(path.join(dir, 'short.token'), 'abc123\n', { mode: 0o600 });
    fs.writeFileSync(path.join(dir, 'two.token'), 'aaaaaaaaaaaaaaaa\nbbbbbbbbbbbbbbbb\n', { mode: 0o600 });
    fs.writeFileSync(path.join(dir, 'good.token'), '0123456789abcdef0123456789abcdef\n', { mode: 0o600 });
    fs.writeFileSync(path.join(dir, 'open.token'), '0123456789abcdef0123456789abcdef\n');
    fs.chmodSync(path.join(dir, 'open.token'), 0o644);
    const errors = [
      ['{port: 9750, tokenFile: none.token}', `admin.tokenFile: ${dir}/none.token does not exist; create one: (umask 077; openssl rand -hex 32 > ${dir}/none.token)`],
      ['{port: 9750, tokenFile: short.token}', `admin.tokenFile: ${dir}/short.token holds a token of 6 characters (at least 16); create one: (umask 077; openssl rand -hex 32 > ${dir}/short.token)`],
      ['{port: 9750, tokenFile: two.token}', `admin.tokenFile: ${dir}/two.token holds a token with spaces or several lines; create one: (umask 077; openssl rand -hex 32 > ${dir}/two.token)`],
    ];
    for (const [admin, message] of errors) {
      const r = check('token.yaml', yaml(admin!));
      expect(r.code, r.stderr).to.equal(78);
      expect(r.stderr).to.equal(`token.yaml:2:32: ${message}\n`);
    }
    const good = check('token.yaml', yaml('{address: 0.0.0.0, port: 9750, tokenFile: good.token}'));
    expect(good.code, good.stderr).to.equal(0);
    expect(good.stdout).to.include(`admin: http://0.0.0.0:9750 (/metrics, /healthz, /sessions; /metrics and /sessions need the bearer token in ${dir}/good.token)`);
    expect(good.stdout).to.not.include('0123456789abcdef');
    expect(good.stdout).to.not.include('warning: admin');
    const open = check('token.yaml', yaml('{port: 9750, tokenFile: open.token}'));
    expect(open.stdout).to.include(`warning: admin.tokenFile: ${dir}/open.token is open to other users (mode 644): chmod 600 ${dir}/open.token`);
    const bare = check('token.yaml', yaml('{address: 0.0.0.0, port: 9750}'));
    expect(bare.code).to.equal(0);
    expect(bare.stdout).to.include('warning: admin: 0.0.0.0:9750 is reachable from other hosts and has no tokenFile: anyone who reaches it reads /sessions (users, client addresses) and /metrics; set admin.tokenFile, or listen on 127.0.0.1');
    expect(check('token.yaml', yaml('{port: 9750}')).stdout, 'loopback without a token: no warning').to.not.include('warning: admin');
  });

  it('exits 78 when the config file does not exist', function () {
    const r = holdfast(['check', '--config', 'nope.yaml'], { cwd: dir });
    expect(r.code).to.equal(78);
    expect(r.stderr).to.equal('nope.yaml:1:1: cannot read config: no such file\n');
  });

  it('accepts every example config', function () {
    const examples = fs.readdirSync(path.join(ROOT, 'examples')).filter((f) => f.endsWith('.yaml'));
    expect(examples.length).to.be.greaterThanOrEqual(2);
    for (const f of examples) {
      const r = holdfast(['check', '--config', path.join(ROOT, 'examples', f)]);
      expect(r.code, `${f}: ${r.stderr}`).to.equal(0);
      expect(r.stdout).to.include(': OK');
    }
  });

  it('summarizes listeners and routes of a valid config, and takes HOLDFAST_CONFIG', function () {
    fs.writeFileSync(
      path.join(dir, 'good.yaml'),
      'listen: [{address: 127.0.0.1, port: 2022}]\nauthorizedKeys: ak/%u\nroutes:\n  - name: lab\n    users: [alice]\n    to: ["*.lab:*"]\n    keepalive: { upstream: { interval: 20s } }\n',
    );
    const r = holdfast(['check'], { cwd: dir, env: { HOLDFAST_CONFIG: 'good.yaml' } });
    expect(r.code, r.stderr).to.equal(0);
    expect(r.stdout).to.include('good.yaml: OK');
    expect(r.stdout).to.include('listen: 127.0.0.1:2022');
    expect(r.stdout).to.include('lab: users alice; to *.lab:*; keepalive client 30s x 3, upstream 20s x 3; idleTimeout off, maxSessionTime none');
    expect(r.stdout).to.include('idleTimeout off (a connection with no channel)');
  });

  it('checks the embedded default when no config is given', function () {
    const home = tempDir();
    const r = holdfast(['check'], { env: { HOME: home, HOLDFAST_STATE_DIR: path.join(home, 'state') } });
    expect(r.code, r.stderr).to.equal(0);
    expect(r.stdout).to.include('<embedded default>: OK');
    expect(r.stdout).to.include('listen: 0.0.0.0:2222');
    expect(r.stdout).to.include('default: users (any); to *:22');
    expect(r.stdout).to.include(`warning: authorizedKeys: ${home}/.ssh/authorized_keys does not exist`);
    expect(fs.existsSync(path.join(home, 'state')), 'check creates nothing').to.equal(false);
  });

  it('prints the JSON Schema, identical to schema/holdfast.schema.json', function () {
    const r = holdfast(['schema']);
    expect(r.code).to.equal(0);
    const schema = JSON.parse(r.stdout) as { properties: Record<string, unknown>; additionalProperties: boolean };
    expect(schema.additionalProperties).to.equal(false);
    expect(Object.keys(schema.properties)).to.include.members(['listen', 'hostKeys', 'authorizedKeys', 'keepalive', 'routes', 'loginGraceTime', 'maxAuthTries']);
    const published = fs.readFileSync(path.join(ROOT, 'schema', 'holdfast.schema.json'), 'utf8');
    expect(published, 'regenerate with: node bin/holdfast.js schema > schema/holdfast.schema.json').to.equal(r.stdout);
  });

  it('a users: rule or a gateway %u login with one shared key file is a config error naming %u (exit 78)', function () {
    const r = check('shared.yaml', 'authorizedKeys: authorized_keys\nroutes:\n  - name: dba\n    users: [alice]\n    to: [db1]\n  - name: gw\n    to: [db2]\n    gateway: { identity: authorized_keys }\n  - name: everyone\n    users: ["*"]\n    to: [db3]\n');
    expect(r.code).to.equal(78);
    const lines = r.stderr.trim().split('\n');
    expect(lines[0]).to.match(/^shared\.yaml:4:12: routes\[0\]\.users: users \["alice"\] cannot be enforced: .* put %u in authorizedKeys/);
    expect(lines.some((l) => /^shared\.yaml:\d+:\d+: routes\[1\]\.gateway: .*%u|routes\[1\]\.gateway\.user/.test(l) || /gateway user "%u"/.test(l)), r.stderr).to.equal(true);
    expect(r.stderr).to.not.include('routes[2]');
  });

  it('refuses a host key others can read (0644) with the path and the mode to set (exit 78, also for serve)', function () {
    const key = keygen(dir, 'loose_host_key');
    fs.chmodSync(key, 0o644);
    const r = check('loose.yaml', `authorizedKeys: ak/%u\nhostKeys: [${key}]\nroutes: []\n`);
    expect(r.code).to.equal(78);
    expect(r.stderr).to.include(`${key} has mode 0644: a private key must not be readable by others; run chmod 600 ${key}`);
    const serve = holdfast(['serve', '--config', 'loose.yaml'], { cwd: dir });
    expect(serve.code).to.equal(78);
    expect(serve.stderr).to.include('chmod 600');
  });

  for (const args of [['serve', '--conifg', 'good.yaml'], ['serve', 'good.yaml'], ['check', '--bogus'], ['serve', '--config']]) {
    it(`usage error ${JSON.stringify(args.join(' '))}: exit 64, nothing served`, function () {
      const r = holdfast(args, { cwd: dir });
      expect(r.code, r.stderr).to.equal(64);
      expect(r.stderr).to.match(/^holdfast: /);
      expect(r.stderr).to.include('Nothing was started');
      expect(r.stdout, 'no log line: nothing started').to.equal('');
    });
  }

  it('rejects an unknown command with usage exit 64', function () {
    const r = holdfast(['frobnicate']);
    expect(r.code).to.equal(64);
    expect(r.stderr).to.include('holdfast --help');
  });
});

describe('holdfast explain, and keepalive warnings in check', function () {
  let dir: string;
  before(function () {
    dir = tempDir();
    fs.writeFileSync(path.join(dir, 'authorized_keys'), `${publicKey(keygen(dir, 'user'))}\n`);
    fs.mkdirSync(path.join(dir, 'ak'));
    fs.writeFileSync(
      path.join(dir, 'ka.yaml'),
      `authorizedKeys: ak/%u
keepalive:
  client: { interval: 60s, countMax: 3 }
routes:
  - name: lab
    users: [alice]
    to: ["*.lab", "198.18.4.0/24:*"]
    keepalive:
      client: { interval: 15s, countMax: 4 }
      upstream: { interval: 20s, countMax: 3 }
  - name: chatty
    to: ["chatty.lab"]
    keepalive:
      client: { interval: 2s, countMax: 0 }
      upstream: { interval: 0 }
`,
    );
  });
  after(removeTempDirs);

  it('prints the route, each leg with layer, schedule, detection bound and the TCP caveat', function () {
    const r = holdfast(['explain', '--config', 'ka.yaml', '--user', 'alice', '198.18.4.9:2200'], { cwd: dir });
    expect(r.code, r.stderr).to.equal(0);
    expect(r.stdout).to.include('route: lab');
    expect(r.stdout).to.include('client leg: layer ssh, keepalive@openssh.com global requests\n  policy: interval 15s, countMax 4');
    expect(r.stdout).to.include('probes: after 15s with nothing received, then every 15s while nothing is received');
    expect(r.stdout).to.include('dead peer: noticed at most 1m15s after the last byte received');
    expect(r.stdout).to.include('upstream leg: layer tcp');
    expect(r.stdout).to.include('socket: SO_KEEPALIVE, TCP_KEEPIDLE 20s, TCP_KEEPINTVL 20s, TCP_KEEPCNT 3, TCP_USER_TIMEOUT 1m20s');
    expect(r.stdout).to.include('dead peer: noticed at most 1m20s');
    expect(r.stdout).to.match(/warning: TCP keepalive refreshes kernel NAT\/firewall state.*terminates TCP/);
    expect(r.stdout).to.include('limits: idleTimeout off, maxSessionTime none');
  });

  it('warns about fast probes, countMax 0 and a leg with keepalive off', function () {
    const r = holdfast(['explain', '--config', 'ka.yaml', '--user', 'bob', 'chatty.lab'], { cwd: dir });
    expect(r.code, r.stderr).to.equal(0);
    expect(r.stdout).to.include('route: chatty (after lab: user "bob" is not in users)');
    expect(r.stdout).to.include('warning: interval 2s is below 5s: probes this frequent can look like abuse');
    expect(r.stdout).to.include('warning: countMax 0: probes are sent but a dead peer is never declared dead');
    expect(r.stdout).to.include('dead peer: never declared (countMax 0)');
    expect(r.stdout).to.include('upstream leg: layer tcp');
    expect(r.stdout).to.include('probes: none (keepalive off)');
    expect(r.stdout).to.include('warning: keepalive is off (interval 0)');
  });

  it('says why no route matches, route by route, and exits 1', function () {
    const r = holdfast(['explain', '--config', 'ka.yaml', '--user', 'bob', '--from', '192.0.2.1', '198.18.4.9'], { cwd: dir });
    expect(r.code).to.equal(1);
    expect(r.stdout).to.include('route: none: holdfast answers "administratively prohibited"');
    expect(r.stdout).to.include('  lab: user "bob" is not in users');
    expect(r.stdout).to.include('  chatty: no "to" entry matches 198.18.4.9:22');
    expect(r.stdout).to.include('source: 192.0.2.1');
  });

  it('explain --gateway: gateway routes only, the login holdfast makes, an SSH upstream leg; ssh -J never takes a gateway route', function () {
    fs.writeFileSync(
      path.join(dir, 'gw.yaml'),
      `authorizedKeys: ak/%u
routes:
  - name: gw
    to: ["db?.internal:*"]
    gateway: { user: "ops-%u", agent: true, hostKeyPolicy: accept-new }
    keepalive: { upstream: { interval: 20s, countMax: 2 } }
    idleTimeout: 15m
    maxSessionTime: 8h
`,
    );
    const g = holdfast(['explain', '--config', 'gw.yaml', '--gateway', '--user', 'alice', 'db1.internal:2200'], { cwd: dir });
    expect(g.code, g.stderr).to.equal(0);
    expect(g.stdout).to.include('as a gateway login (ssh -p PORT alice+db1.internal+2200@holdfast)');
    expect(g.stdout).to.include('route: gw');
    expect(g.stdout).to.include("gateway: holdfast logs in as ops-alice with the user's forwarded agent (ssh -A); host keys accept-new");
    expect(g.stdout).to.include("upstream leg: layer ssh, keepalive@openssh.com global requests on holdfast's own SSH connection to the target\n  policy: interval 20s, countMax 2");
    expect(g.stdout).to.not.include('TCP_KEEPIDLE');
    expect(g.stdout).to.include('limits: idleTimeout 15m, maxSessionTime 8h; a channel with no data either way for 15m is closed (keepalive traffic does not count); a connection with a channel on this route is closed 8h after it began; the user is warned on stderr 60 s before (at half a shorter limit)');
    const c = holdfast(['check', '--config', 'gw.yaml'], { cwd: dir });
    expect(c.stdout).to.include('idleTimeout 15m, maxSessionTime 8h');
    const j = holdfast(['explain', '--config', 'gw.yaml', '--user', 'alice', 'db1.internal:2200'], { cwd: dir });
    expect(j.code).to.equal(1);
    expect(j.stdout).to.include('route: none: holdfast answers "administratively prohibited"');
    const none = holdfast(['explain', '--config', 'ka.yaml', '--gateway', '--user', 'alice', 'db1.lab'], { cwd: dir });
    expect(none.code).to.equal(1);
    expect(none.stdout).to.include('the user sees "holdfast: no gateway route allows alice to reach db1.lab:22"');
  });

  it("explain refuses holdfast's own admin port even when a route names it (exit 1)", function () {
    fs.writeFileSync(path.join(dir, 'admin.yaml'), 'authorizedKeys: ak/%u\nadmin: {address: 127.0.0.1, port: 9750}\nroutes: [{name: local, to: ["127.0.0.1:*"]}]\n');
    const r = holdfast(['explain', '--config', 'admin.yaml', '--user', 'alice', '127.0.0.1:9750'], { cwd: dir });
    expect(r.code).to.equal(1);
    expect(r.stdout).to.include("route: none: 127.0.0.1:9750 is holdfast's own admin listener, never a destination (code admin-port), whatever the routes say");
    const other = holdfast(['explain', '--config', 'admin.yaml', '--user', 'alice', '127.0.0.1:9751'], { cwd: dir });
    expect(other.code, other.stderr).to.equal(0);
    expect(other.stdout).to.include('route: local');
    expect(other.stdout).to.not.include('user certificates');
    // admin.address as a name: what it resolves to is the admin listener, as serve has it.
    fs.writeFileSync(path.join(dir, 'admin-name.yaml'), 'authorizedKeys: ak/%u\nadmin: {address: localhost, port: 9750}\nroutes: [{name: local, to: ["127.0.0.1:*"]}]\n');
    const named = holdfast(['explain', '--config', 'admin-name.yaml', '--user', 'alice', '127.0.0.1:9750'], { cwd: dir });
    expect(named.code).to.equal(1);
    expect(named.stdout).to.include("127.0.0.1:9750 is holdfast's own admin listener");
  });

  it('refuses a malformed destination or --from with usage exit 64', function () {
    expect(holdfast(['explain', '--config', 'ka.yaml', 'db:port'], { cwd: dir }).code).to.equal(64);
    expect(holdfast(['explain', '--config', 'ka.yaml', '--from', 'nohost', 'db'], { cwd: dir }).code).to.equal(64);
  });

  it('check prints the same keepalive warnings for the defaults and every route', function () {
    const r = holdfast(['check', '--config', 'ka.yaml'], { cwd: dir });
    expect(r.code, r.stderr).to.equal(0);
    const lines = r.stdout.split('\n');
    expect(lines).to.include('warning: defaults (no channel open): client leg: interval 1m is above 45s: many NATs forget idle flows after 60-120 s');
    expect(lines).to.include('warning: route chatty: client leg: interval 2s is below 5s: probes this frequent can look like abuse');
    expect(lines).to.include('warning: route chatty: client leg: countMax 0: probes are sent but a dead peer is never declared dead');
    expect(lines.some((l) => l.startsWith('warning: route chatty: upstream leg: keepalive is off'))).to.equal(true);
    expect(lines.some((l) => l.startsWith('note: routes lab: upstream leg: TCP keepalive refreshes'))).to.equal(true);
    expect(r.stdout).to.not.include('behind a load balancer');
  });

  it('behind a load balancer: check shows the PROXY listener and warns for client intervals above 45 s or off; explain --from says whose address it is', function () {
    const yaml = fs.readFileSync(path.join(dir, 'ka.yaml'), 'utf8').replace('authorizedKeys: ak/%u', 'authorizedKeys: ak/%u\nlisten: [{address: 0.0.0.0, port: 2222, proxyProtocol: {trusted: [10.0.0.5, 10.1.0.0/16]}}]');
    fs.writeFileSync(path.join(dir, 'lb.yaml'), yaml.replace('client: { interval: 15s, countMax: 4 }', 'client: { interval: 50s, countMax: 4 }'));
    const r = holdfast(['check', '--config', 'lb.yaml'], { cwd: dir });
    expect(r.code, r.stderr).to.equal(0);
    const lines = r.stdout.split('\n');
    expect(lines).to.include('listen: 0.0.0.0:2222 (PROXY protocol from 10.0.0.5, 10.1.0.0/16)');
    const lb = lines.filter((l) => l.includes('behind a load balancer'));
    expect(lb.map((l) => l.slice(0, l.indexOf(' behind')))).to.deep.equal([
      'warning: defaults (no channel open): client leg keepalive every 1m',
      'warning: route lab: client leg keepalive every 50s',
    ]);
    expect(lb[0]).to.include('keep keepalive.client.interval shorter than it (45s or less)');
    const e = holdfast(['explain', '--config', 'lb.yaml', '--user', 'alice', '--from', '192.0.2.7', '198.18.4.9:22'], { cwd: dir });
    expect(e.code, e.stderr).to.equal(0);
    expect(e.stdout).to.include("on 0.0.0.0:2222 (proxyProtocol) this is the client address the load balancer's PROXY header gives, not the balancer's");
  });
});
