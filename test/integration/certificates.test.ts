/**
 * Issue 14: OpenSSH certificates through the real daemon, with certificates, KRLs and host
 * certificates made by ssh-keygen and used by the real OpenSSH client.
 */
import fs from 'node:fs';
import path from 'node:path';
import { execFileSync } from 'node:child_process';
import { PassThrough } from 'node:stream';
import { expect } from 'chai';
import { CONFIG_HEAD, makeScene, requireSshd, sshdHostKey, type Scene } from '../helpers/fixture.js';
import { startHoldfast, type Holdfast, type LogLine } from '../helpers/holdfast.js';
import { keygen, keyBlob, knownHostsLine, publicKey } from '../helpers/tmp.js';
import { run, writeSshConfig } from '../helpers/ssh.js';
import { makeKrl, signCertificate, sshKeygenFingerprint, type CertSpec } from '../helpers/certs.js';
import { waitFor } from '../helpers/wait.js';

describe('OpenSSH certificates: user CAs, principals, revocation, and a host certificate', function () {
  let scene: Scene;
  let hf: Holdfast;
  let ca: string;
  let rogue: string;
  let teamCa: string;
  let hostCa: string;
  let rsaUser: string;
  let gwKey: string;

  before(async function () {
    this.timeout(90_000);
    requireSshd(this);
    scene = await makeScene(['alice', 'bob', 'dave', 'erin']);
    const d = scene.dir;
    ca = keygen(d, 'user_ca');
    rogue = keygen(d, 'rogue_ca');
    teamCa = keygen(d, 'team_ca');
    hostCa = keygen(d, 'host_ca');
    rsaUser = keygen(d, 'id_rita', 'rsa');
    gwKey = keygen(d, 'holdfast_gateway_key');
    // The target (sshd) knows every user's plain key and holdfast's gateway key; it trusts no CA.
    fs.appendFileSync(path.join(d, 'target_authorized_keys'), `${publicKey(rsaUser)}\n${publicKey(gwKey)}\n`);
    fs.writeFileSync(path.join(d, 'known_hosts'), `${knownHostsLine(sshdHostKey(scene), scene.sshd.port)}\n`);
    fs.writeFileSync(path.join(d, 'user_ca.keys'), `# the user CA\n${publicKey(ca)}\n`);
    // dave's own authorized_keys trusts the team CA for principal "ops" only; nobody lists a plain key.
    scene.authorize('dave', [`cert-authority,principals="ops" ${publicKey(teamCa)}`]);
    makeKrl(d, 'revoked.krl', ['serial: 666', 'id: stolen-laptop'], `${ca}.pub`);
    // holdfast's host key, made now so the host CA can sign it before holdfast starts.
    fs.mkdirSync(path.join(d, 'hk'), { mode: 0o700 });
    execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', path.join(d, 'hk', 'key')]);
    signCertificate(path.join(d, 'hk'), hostCa, path.join(d, 'hk', 'key'), { name: 'key', id: 'holdfast-host', principals: '127.0.0.1,localhost', host: true });
    // And an ECDSA host key with its certificate, for clients that prefer ECDSA.
    execFileSync('ssh-keygen', ['-q', '-t', 'ecdsa', '-N', '', '-f', path.join(d, 'hk', 'ecdsa')]);
    signCertificate(path.join(d, 'hk'), hostCa, path.join(d, 'hk', 'ecdsa'), { name: 'ecdsa', id: 'holdfast-host-ecdsa', principals: '127.0.0.1,localhost', host: true });
    // And an RSA host key: ssh-keygen names its certificate ssh-rsa-cert-v01; holdfast offers it as rsa-sha2-512/256-cert-v01.
    execFileSync('ssh-keygen', ['-q', '-t', 'rsa', '-b', '3072', '-N', '', '-f', path.join(d, 'hk', 'rsa')]);
    signCertificate(path.join(d, 'hk'), hostCa, path.join(d, 'hk', 'rsa'), { name: 'rsa', id: 'holdfast-host-rsa', principals: '127.0.0.1,localhost', host: true });
    hf = await startHoldfast(
      d,
      `${CONFIG_HEAD.replace('hostKeys: [hk/key]', 'hostKeys: [hk/key, hk/ecdsa, hk/rsa]')}trustedUserCAKeys: user_ca.keys
revokedKeys: revoked.krl
hostCertificates: [hk/key-cert.pub, hk/ecdsa-cert.pub, hk/rsa-cert.pub]
routes:
  - name: db
    to: ["127.0.0.1:${scene.sshd.port}"]
  - name: gw
    to: ["127.0.0.1:${scene.sshd.port}"]
    gateway: { user: root, identity: holdfast_gateway_key, knownHosts: known_hosts }
`,
    );
  });

  afterEach(function () {
    if (this.currentTest?.state === 'failed' && hf) fs.writeFileSync('/tmp/certificates-failed-logs.jsonl', hf.logs.map((l) => JSON.stringify(l)).join('\n'));
  });

  after(async function () {
    await hf?.stop();
    await scene?.stop();
  });

  /** An ssh_config using `identity` with the certificate `cert` (tried first, then the plain key). */
  const withCert = (identity: string, cert: string, name: string, extra: string[] = []) =>
    writeSshConfig(scene.dir, identity, `ssh_config_${name}`, [`CertificateFile ${cert}`, ...extra]);
  const jump = (cfg: string, user: string, cmd = 'echo ok') =>
    run('ssh', ['-F', cfg, '-J', `${user}@127.0.0.1:${hf.port}`, '-p', String(scene.sshd.port), 'root@127.0.0.1', cmd], { timeoutMs: 30_000 });
  const lastFor = (event: string, user: string, since: number): LogLine | undefined => hf.logs.slice(since).filter((l) => l.event === event && l.user === user).at(-1);

  /** Signs `identity`'s key with `signer`, logs in through holdfast as `user` and returns what happened. */
  async function attempt(user: string, identity: string, signer: string, spec: Omit<CertSpec, 'id'> & { id?: string }, cmd = 'echo ok') {
    const cert = signCertificate(scene.dir, signer, identity, { id: spec.id ?? spec.name, ...spec });
    const from = hf.logs.length;
    const r = await jump(withCert(identity, cert, spec.name), user, cmd);
    const accepted = await waitFor(() => lastFor('session-close', user, from), { what: `${user}'s session-close` }).then(() => lastFor('auth-accepted', user, from));
    return { r, cert, accepted, failed: hf.logs.slice(from).filter((l) => l.event === 'auth-failed' && l.user === user), from };
  }

  it('ssh -J with a valid ed25519 certificate logs in; the log names key ID, serial, principal, CA and the fingerprint ssh-keygen -lf prints', async function () {
    this.timeout(30_000);
    const a = await attempt('alice', scene.keys.alice!, ca, { name: 'alice-ok', id: 'alice@corp', principals: 'alice', serial: 101, validity: '-5m:+1h' });
    expect(a.r.stdout.toString(), a.r.stderr).to.equal('ok\n');
    expect(a.accepted).to.deep.include({ keyType: 'ssh-ed25519-cert-v01@openssh.com', fingerprint: sshKeygenFingerprint(a.cert), keyLine: 0 });
    expect(a.accepted!.certificate).to.deep.equal({
      keyId: 'alice@corp',
      serial: '101',
      principal: 'alice',
      caFingerprint: sshKeygenFingerprint(`${ca}.pub`),
      trustedBy: `trustedUserCAKeys ${path.join(scene.dir, 'user_ca.keys')}:2`,
    });
    expect(a.failed).to.deep.equal([]);
  });

  it('ssh -J with a valid RSA certificate logs in (an rsa-sha2 signature, never SHA-1)', async function () {
    this.timeout(30_000);
    const a = await attempt('rita', rsaUser, ca, { name: 'rita-ok', principals: 'rita' });
    expect(a.r.stdout.toString(), a.r.stderr).to.equal('ok\n');
    expect(String(a.accepted!.keyType)).to.match(/^rsa-sha2-(256|512)-cert-v01@openssh\.com$/);
    expect((a.accepted!.certificate as { principal: string }).principal).to.equal('rita');
  });

  it("a cert-authority line with principals=\"ops\" in dave's authorized_keys: the team CA's certificate for ops logs in as dave", async function () {
    this.timeout(30_000);
    const a = await attempt('dave', scene.keys.dave!, teamCa, { name: 'dave-ops', principals: 'ops' });
    expect(a.r.stdout.toString(), a.r.stderr).to.equal('ok\n');
    expect((a.accepted!.certificate as { trustedBy: string }).trustedBy).to.equal(`${path.join(scene.dir, 'ak', 'dave')}:1 (cert-authority)`);
  });

  const refusals: [string, string, () => string, Omit<CertSpec, 'id'>, string, RegExp][] = [
    ['a wrong principal', 'alice', () => ca, { name: 'wrong-principal', principals: 'bob' }, 'principal', /user alice is not among the certificate's principals \(bob\)/],
    ['an expired certificate', 'alice', () => ca, { name: 'expired', principals: 'alice', validity: '20200101:20200102' }, 'expired', /certificate expired at 2020-01-02/],
    ['a certificate not yet valid', 'alice', () => ca, { name: 'future', principals: 'alice', validity: '+1d:+2d' }, 'not-yet-valid', /certificate valid from/],
    ['a certificate signed by another CA', 'alice', () => rogue, { name: 'rogue', principals: 'alice' }, 'untrusted-ca', /CA SHA256:\S+ is not trusted/],
    ['a certificate revoked by serial (KRL)', 'alice', () => ca, { name: 'serial-666', principals: 'alice', serial: 666 }, 'revoked', /certificate serial 666 is revoked/],
    ['a certificate revoked by key ID (KRL)', 'alice', () => ca, { name: 'stolen-laptop', principals: 'alice', serial: 7 }, 'revoked', /certificate key ID "stolen-laptop" is revoked/],
    ['source-address not matching', 'alice', () => ca, { name: 'src', principals: 'alice', options: ['source-address=10.0.0.0/8'] }, 'source-address', /client address 127\.0\.0\.1 not in the certificate's source-address 10\.0\.0\.0\/8/],
    ["the team CA's certificate for a principal other than ops", 'dave', () => teamCa, { name: 'dave-dba', principals: 'dave,dba' }, 'principal', /none of the certificate's principals \(dave, dba\) is in principals="ops"/],
  ];
  for (const [what, user, signer, spec, rule, why] of refusals) {
    it(`refuses ${what}, logging rule ${rule}`, async function () {
      this.timeout(30_000);
      const a = await attempt(user, scene.keys[user]!, signer(), spec);
      expect(a.r.code).to.equal(255);
      expect(a.r.stdout.toString()).to.equal('');
      expect(a.accepted).to.equal(undefined);
      const f = a.failed.find((l) => l.rule === rule);
      expect(f, JSON.stringify(a.failed)).to.not.equal(undefined);
      expect(String(f!.why)).to.match(why);
      expect((f!.certificate as { keyId: string }).keyId).to.equal(spec.name === 'stolen-laptop' ? 'stolen-laptop' : spec.name);
    });
  }

  it('a certificate without permit-port-forwarding logs in, but its ssh -J channel is refused', async function () {
    this.timeout(30_000);
    const a = await attempt('alice', scene.keys.alice!, ca, { name: 'no-pf', principals: 'alice', options: ['no-port-forwarding'] });
    expect(a.accepted).to.not.equal(undefined);
    expect(a.r.code).to.equal(255);
    const refused = hf.logs.slice(a.from).find((l) => l.event === 'channel-refused' && l.user === 'alice');
    expect(refused?.code).to.equal('port-forwarding-disabled');
  });

  it('force-command allows ssh -J but no gateway session', async function () {
    this.timeout(30_000);
    const a = await attempt('erin', scene.keys.erin!, ca, { name: 'forced', principals: 'erin', options: ['force-command=/usr/bin/uptime'] });
    expect(a.r.stdout.toString(), a.r.stderr).to.equal('ok\n');
    const cfg = withCert(scene.keys.erin!, path.join(scene.dir, 'forced-cert.pub'), 'forced-gw');
    const gw = await run('ssh', ['-F', cfg, '-p', String(hf.port), `erin+127.0.0.1+${scene.sshd.port}@127.0.0.1`, 'echo via-gateway'], { timeoutMs: 30_000 });
    expect(gw.stdout.toString()).to.equal('');
    expect(gw.code).to.not.equal(0);
    expect(gw.stderr).to.match(/forced command/i);
  });

  it('a client with only @cert-authority for the host CA and StrictHostKeyChecking=yes connects without a prompt; without that line it is refused', async function () {
    this.timeout(30_000);
    const kh = path.join(scene.dir, 'known_hosts_ca');
    fs.writeFileSync(kh, `@cert-authority * ${keyBlob(hostCa)}\n${knownHostsLine(sshdHostKey(scene), scene.sshd.port)}\n`);
    const strict = (file: string, name: string) => writeSshConfig(scene.dir, scene.keys.alice!, `ssh_config_${name}`, ['StrictHostKeyChecking yes', `UserKnownHostsFile ${file}`, 'GlobalKnownHostsFile /dev/null']);
    const cert = signCertificate(scene.dir, ca, scene.keys.alice!, { name: 'alice-host-test', id: 'a', principals: 'alice' });
    const cfg = strict(kh, 'hostca');
    fs.appendFileSync(cfg, `  CertificateFile ${cert}\n`);
    const ok = await jump(cfg, 'alice');
    expect(ok.stdout.toString(), ok.stderr).to.equal('ok\n');
    expect(ok.code).to.equal(0);
    const bare = path.join(scene.dir, 'known_hosts_bare');
    fs.writeFileSync(bare, `${knownHostsLine(sshdHostKey(scene), scene.sshd.port)}\n`);
    const cfgBare = strict(bare, 'hostca-bare');
    fs.appendFileSync(cfgBare, `  CertificateFile ${cert}\n`);
    const refused = await jump(cfgBare, 'alice');
    expect(refused.code).to.equal(255);
    expect(refused.stderr).to.match(/Host key verification failed|No .* host key is known/);
    expect(hf.logs.find((l) => l.event === 'host-certificate')?.detail).to.match(/principals 127\.0\.0\.1,localhost, valid forever/);
  });

  it('an ECDSA host certificate too: a client that prefers it gets it, checks it against the host CA, and ssh -J works', async function () {
    this.timeout(30_000);
    const kh = path.join(scene.dir, 'known_hosts_ca_ecdsa');
    fs.writeFileSync(kh, `@cert-authority * ${keyBlob(hostCa)}\n${knownHostsLine(sshdHostKey(scene), scene.sshd.port)}\n`);
    const cert = signCertificate(scene.dir, ca, scene.keys.alice!, { name: 'alice-ecdsa-host-test', id: 'a', principals: 'alice' });
    const cfg = writeSshConfig(scene.dir, scene.keys.alice!, 'ssh_config_hostca_ecdsa', [
      'StrictHostKeyChecking yes',
      `UserKnownHostsFile ${kh}`,
      'GlobalKnownHostsFile /dev/null',
      // holdfast's leg gets the ECDSA certificate; the target's leg its plain ed25519 key.
      'HostKeyAlgorithms ecdsa-sha2-nistp256-cert-v01@openssh.com,ssh-ed25519',
      `CertificateFile ${cert}`,
    ]);
    const ok = await jump(cfg, 'alice');
    expect(ok.stdout.toString(), ok.stderr).to.equal('ok\n');
    // The handshake with holdfast alone, verbose: which host key it presented, and that it was trusted.
    const v = await run('ssh', ['-v', '-F', cfg, '-p', String(hf.port), 'alice@127.0.0.1', 'true'], { timeoutMs: 20_000 });
    const err = v.stderr.toString();
    expect(err).to.match(/Server host certificate: ecdsa-sha2-nistp256-cert-v01@openssh\.com .* ID "holdfast-host-ecdsa" CA ssh-ed25519/);
    expect(err).to.include('matches the ECDSA-CERT host certificate');
    expect(err).to.not.include('verification failed');
    expect(hf.logs.filter((l) => l.event === 'host-certificate').map((l) => String(l.file).split('/').pop())).to.deep.equal(['key-cert.pub', 'ecdsa-cert.pub', 'rsa-cert.pub']);
  });

  for (const algo of ['rsa-sha2-512', 'rsa-sha2-256']) {
    it(`an RSA host certificate as ${algo}-cert-v01: the client checks it against the host CA and the host signature is ${algo}`, async function () {
      this.timeout(30_000);
      const kh = path.join(scene.dir, `known_hosts_ca_${algo}`);
      fs.writeFileSync(kh, `@cert-authority * ${keyBlob(hostCa)}\n${knownHostsLine(sshdHostKey(scene), scene.sshd.port)}\n`);
      const cert = signCertificate(scene.dir, ca, scene.keys.alice!, { name: `alice-${algo}-host-test`, id: 'a', principals: 'alice' });
      const cfg = writeSshConfig(scene.dir, scene.keys.alice!, `ssh_config_hostca_${algo}`, [
        'StrictHostKeyChecking yes',
        `UserKnownHostsFile ${kh}`,
        'GlobalKnownHostsFile /dev/null',
        `HostKeyAlgorithms ${algo}-cert-v01@openssh.com,ssh-ed25519`,
        `CertificateFile ${cert}`,
      ]);
      const ok = await jump(cfg, 'alice');
      expect(ok.stdout.toString(), ok.stderr).to.equal('ok\n');
      const v = await run('ssh', ['-v', '-F', cfg, '-p', String(hf.port), 'alice@127.0.0.1', 'true'], { timeoutMs: 20_000 });
      const err = v.stderr.toString();
      expect(err).to.include(`kex: host key algorithm: ${algo}-cert-v01@openssh.com`);
      expect(err).to.match(/Server host certificate: ssh-rsa-cert-v01@openssh\.com .* ID "holdfast-host-rsa" CA ssh-ed25519/);
      expect(err).to.include('matches the RSA-CERT host certificate');
      expect(err).to.not.include('verification failed');
    });
  }

  it('revokedKeys is re-read when it changes: a newly revoked serial is refused at the next login, and a reload ends the live session (access-revoked)', async function () {
    this.timeout(60_000);
    const cert = signCertificate(scene.dir, ca, scene.keys.bob!, { name: 'bob-900', id: 'bob-900', principals: 'bob', serial: 900 });
    const cfg = withCert(scene.keys.bob!, cert, 'bob-900');
    let out = '';
    const sink = new PassThrough().on('data', (d: Buffer) => (out += d));
    const live = run('ssh', ['-F', cfg, '-J', `bob@127.0.0.1:${hf.port}`, '-p', String(scene.sshd.port), 'root@127.0.0.1', 'echo started; sleep 40; echo finished'], { timeoutMs: 60_000, stdoutTo: sink });
    await waitFor(() => out === 'started\n', { timeoutMs: 15_000, what: 'the live session to start' });
    const krl = path.join(scene.dir, 'revoked.krl');
    const before = fs.readFileSync(krl);
    makeKrl(scene.dir, 'revoked.krl', ['serial: 666', 'serial: 900', 'id: stolen-laptop'], `${ca}.pub`);
    try {
      const from = hf.logs.length;
      const again = await jump(cfg, 'bob');
      expect(again.code).to.equal(255);
      expect(hf.logs.slice(from).find((l) => l.event === 'auth-failed' && l.rule === 'revoked')?.why).to.equal('certificate serial 900 is revoked');
      const t0 = performance.now();
      hf.proc.kill('SIGHUP');
      const r = await live;
      const took = Math.round(performance.now() - t0);
      console.log(`      live session ended ${took} ms after SIGHUP (exit ${r.code})`);
      expect(out).to.equal('started\n');
      expect(r.code).to.equal(255);
      const revoked = hf.logs.find((l) => l.event === 'access-revoked' && l.user === 'bob');
      expect(String(revoked?.why)).to.equal('revoked: certificate serial 900 is revoked');
    } finally {
      fs.writeFileSync(krl, before);
    }
  });
});
