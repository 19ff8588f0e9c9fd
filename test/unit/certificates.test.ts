import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { execFileSync } from 'node:child_process';
import { expect } from 'chai';
import { CertificateError, checkCertificate, certificatePermits, parseCertificate, type Certificate } from '../../src/ssh/certificate.js';
import { fingerprintSha256, publicKeyFromBlob, verifySignature } from '../../src/ssh/public-key.js';
import { RevocationList } from '../../src/ssh/krl.js';
import { CertificateFiles } from '../../src/ssh/user-ca.js';
import { certificateLogin, certificateVerdict } from '../../src/session/cert-login.js';
import type { KeyLookup } from '../../src/ssh/auth.js';
import { parseAuthorizedKeys } from '../../src/ssh/authorized-keys.js';
import { keygen, publicKey, removeTempDirs, tempDir } from '../helpers/tmp.js';
import { mutate, prng } from '../helpers/mutate.js';
import { certBlob, makeKrl, signCertificate, sshKeygenFingerprint, sshKeygenRevoked } from '../helpers/certs.js';

const NOW = { now: new Date(), clientIp: '192.0.2.7' };

/** The offset of `needle` in `hay`, which must hold it exactly once. */
function onlyAt(hay: Buffer, needle: string | Buffer): number {
  const at = hay.indexOf(needle);
  expect(at, `${String(needle)} in the certificate`).to.be.at.least(0);
  expect(hay.indexOf(needle, at + 1)).to.equal(-1);
  return at;
}

function flip(blob: Buffer, at: number): Buffer {
  const b = Buffer.from(blob);
  b[at] = b[at]! ^ 0x01;
  return b;
}

describe('OpenSSH certificates: parser and verifier (node:crypto) on certificates made by ssh-keygen', function () {
  let dir: string;
  let ca: string;
  let user: string;
  before(function () {
    this.timeout(30_000);
    dir = tempDir();
    ca = keygen(dir, 'ca');
    user = keygen(dir, 'user');
  });
  after(removeTempDirs);

  it('reads every field of an ed25519 certificate as ssh-keygen -L shows them', function () {
    const file = signCertificate(dir, ca, user, { name: 'full', id: 'alice@corp', principals: 'alice,ops', validity: '20300101000000:20300102000000', serial: 4242, options: ['source-address=192.0.2.0/24', 'force-command=/usr/bin/true'] });
    const c = parseCertificate(certBlob(file));
    expect(c.type).to.equal('ssh-ed25519-cert-v01@openssh.com');
    expect(c.kind).to.equal('user');
    expect(c.keyId).to.equal('alice@corp');
    expect(c.serial).to.equal(4242n);
    expect(c.principals).to.deep.equal(['alice', 'ops']);
    expect(new Date(Number(c.validAfter) * 1000).getFullYear()).to.equal(2030);
    expect([...c.criticalOptions.keys()]).to.deep.equal(['force-command', 'source-address']);
    expect([...c.extensions.keys()]).to.deep.equal(['permit-X11-forwarding', 'permit-agent-forwarding', 'permit-port-forwarding', 'permit-pty', 'permit-user-rc']);
    expect(fingerprintSha256(c.key.blob)).to.equal(sshKeygenFingerprint(file));
    expect(fingerprintSha256(c.caBlob)).to.equal(sshKeygenFingerprint(`${ca}.pub`));
    expect(certificatePermits(c)).to.deep.equal({ portForwarding: true, pty: true, agentForwarding: true, command: '/usr/bin/true' });
  });

  it('verifies CA signatures from ed25519, ECDSA P-256/384/521 and RSA (SHA-256, SHA-512) CAs on ed25519, RSA and ECDSA keys', function () {
    this.timeout(60_000);
    const cas: [string, string, string?][] = [
      ['ed25519', keygen(dir, 'ca-ed')],
      ['ecdsa-256', keygen(dir, 'ca-ec')],
      ['rsa-sha2-256', keygen(dir, 'ca-rsa', 'rsa'), 'rsa-sha2-256'],
      ['rsa-sha2-512', path.join(dir, 'ca-rsa'), 'rsa-sha2-512'],
    ];
    for (const bits of ['384', '521']) {
      const f = path.join(dir, `ca-ec${bits}`);
      fs.rmSync(f, { force: true });
      execKeygen(['-q', '-t', 'ecdsa', '-b', bits, '-N', '', '-f', f]);
      cas.push([`ecdsa-${bits}`, f]);
    }
    const keys: [string, string][] = [['ed25519', user], ['rsa', keygen(dir, 'user-rsa', 'rsa')], ['ecdsa', keygen(dir, 'user-ec', 'ecdsa')]];
    const seen: string[] = [];
    for (const [caName, caKey, sigType] of cas) {
      for (const [keyName, key] of keys) {
        const c = parseCertificate(certBlob(signCertificate(dir, caKey, key, { name: `${caName}-${keyName}`, id: 'x', principals: 'alice', ...(sigType ? { sigType } : {}) })));
        expect(checkCertificate(c, NOW), `${caName} CA, ${keyName} key`).to.deep.equal({ ok: true });
        seen.push(`${caName}/${c.type.split('-cert')[0]}`);
      }
    }
    expect(seen).to.have.length(18);
  });

  it('refuses a SHA-1 (ssh-rsa) CA signature', function () {
    const caRsa = path.join(dir, 'ca-rsa');
    if (!fs.existsSync(caRsa)) keygen(dir, 'ca-rsa', 'rsa');
    const c = parseCertificate(certBlob(signCertificate(dir, caRsa, user, { name: 'sha1', id: 'x', principals: 'alice', sigType: 'ssh-rsa' })));
    expect(checkCertificate(c, NOW)).to.deep.equal({ ok: false, rule: 'ca-signature', why: 'CA signature: ssh-rsa (SHA-1) signature refused: rsa-sha2-256 or rsa-sha2-512 only' });
  });

  it('refuses a certificate with one byte changed in the principals, the validity, the extensions, the key ID, the serial or the signature', function () {
    const blob = certBlob(signCertificate(dir, ca, user, { name: 'tamper', id: 'tamper-id', principals: 'alice', validity: '20200101:20991231', serial: 77 }));
    const c = parseCertificate(blob);
    expect(checkCertificate(c, NOW)).to.deep.equal({ ok: true });
    const serialAt = onlyAt(blob, Buffer.from([0, 0, 0, 0, 0, 0, 0, 77, 0, 0, 0, 1]));
    const places: Record<string, number> = {
      principals: onlyAt(blob, 'alice') + 2,
      'valid after': onlyAt(blob, 'alice') + 5 + 7,
      'valid before': onlyAt(blob, 'alice') + 5 + 15,
      extensions: onlyAt(blob, 'permit-pty') + 7,
      'key ID': onlyAt(blob, 'tamper-id'),
      serial: serialAt + 7,
      signature: blob.length - 10,
    };
    for (const [what, at] of Object.entries(places)) {
      let changed: Certificate;
      try {
        changed = parseCertificate(flip(blob, at));
      } catch (err) {
        // A change that breaks the structure is refused as malformed: also a refusal.
        expect((err as Error).message, what).to.match(/malformed|out of order/);
        continue;
      }
      const r = checkCertificate(changed, NOW);
      expect(r, what).to.deep.equal({ ok: false, rule: 'ca-signature', why: 'CA signature: ssh-ed25519 signature does not verify' });
    }
  });

  it('checks validity ("forever" understood), the certificate type, principals and critical options', function () {
    const mk = (name: string, spec: Partial<Parameters<typeof signCertificate>[3]>) => parseCertificate(certBlob(signCertificate(dir, ca, user, { name, id: name, principals: 'alice', ...spec })));
    expect(checkCertificate(mk('forever', { validity: 'always:forever' }), NOW).ok).to.equal(true);
    const expired = checkCertificate(mk('expired', { validity: '20200101:20200102' }), NOW);
    expect(expired).to.include({ ok: false, rule: 'expired' });
    expect(checkCertificate(mk('future', { validity: '+1d:+2d' }), NOW)).to.include({ ok: false, rule: 'not-yet-valid' });
    expect(checkCertificate(mk('host', { host: true }), NOW)).to.include({ ok: false, rule: 'certificate-type' });
    const none = parseCertificate(certBlob(signCertificate(dir, ca, user, { name: 'nopr', id: 'nopr' })));
    expect(checkCertificate(none, NOW)).to.include({ ok: false, rule: 'principals' });
    const src = mk('src', { options: ['source-address=10.0.0.0/8,192.0.2.7'] });
    expect(checkCertificate(src, NOW).ok).to.equal(true);
    expect(checkCertificate(src, { ...NOW, clientIp: '::ffff:10.1.2.3' }).ok).to.equal(true);
    expect(checkCertificate(src, { ...NOW, clientIp: '198.51.100.1' })).to.deep.equal({ ok: false, rule: 'source-address', why: "client address 198.51.100.1 not in the certificate's source-address 10.0.0.0/8,192.0.2.7" });
    // Families must match (OpenSSH addr_match_cidr_list): ::/0 is no IPv4 client's source-address.
    const v6 = mk('src6', { options: ['source-address=::/0'] });
    expect(checkCertificate(v6, NOW)).to.include({ ok: false, rule: 'source-address' });
    expect(checkCertificate(v6, { ...NOW, clientIp: '2001:db8::5' }).ok).to.equal(true);
    const unknown = mk('crit', { options: ['critical:verify-required'] });
    expect(checkCertificate(unknown, NOW)).to.deep.equal({ ok: false, rule: 'critical-option', why: 'unknown critical option verify-required' });
    expect(certificatePermits(mk('clear', { options: ['clear', 'permit-pty'] }))).to.deep.equal({ portForwarding: false, pty: true, agentForwarding: false });
  });

  it('refuses truncated and garbage blobs as malformed, never with an exception of another kind', function () {
    const blob = certBlob(signCertificate(dir, ca, user, { name: 'trunc', id: 'x', principals: 'alice' }));
    for (let n = 0; n < blob.length; n += 7) expect(() => parseCertificate(blob.subarray(0, n)), `${n} bytes`).to.throw(/malformed|not a supported certificate type/);
    expect(() => parseCertificate(Buffer.concat([blob, Buffer.from([0])]))).to.throw(/1 bytes after the end of the certificate/);
    expect(() => parseCertificate(Buffer.from(publicKey(user).split(' ')[1]!, 'base64'))).to.throw(/ssh-ed25519 is not a supported certificate type/);
  });

  it('20,000 seeded mutations of ed25519, RSA and ECDSA certificates: each is malformed or fails the CA signature, none throws another way', function () {
    this.timeout(30_000);
    const rsaCa = keygen(dir, 'mut_rsa_ca', 'rsa');
    const ecKey = keygen(dir, 'mut_ec_user', 'ecdsa');
    const seeds = [
      certBlob(signCertificate(dir, ca, user, { name: 'mut1', id: 'alice@corp', principals: 'alice,ops', serial: 7, options: ['source-address=192.0.2.0/24', 'force-command=/bin/true'] })),
      certBlob(signCertificate(dir, rsaCa, ecKey, { name: 'mut2', id: 'bob', principals: 'bob' })),
    ];
    for (const s of seeds) expect(checkCertificate(parseCertificate(s), NOW)).to.deep.equal({ ok: true });
    const random = prng(14);
    const seen = { malformed: 0, refused: 0 };
    for (let i = 0; i < 20_000; i++) {
      const seed = seeds[i % seeds.length]!;
      const bytes = mutate(seed, random);
      if (bytes.equals(seed)) continue;
      let c: Certificate;
      try {
        c = parseCertificate(bytes);
      } catch (err) {
        expect(err, `mutation ${i}: ${String(err)}`).to.be.instanceOf(CertificateError);
        seen.malformed++;
        continue;
      }
      const v = checkCertificate(c, NOW);
      expect(v, `mutation ${i} (${bytes.toString('hex')}) passed`).to.deep.include({ ok: false, rule: 'ca-signature' });
      seen.refused++;
    }
    expect(seen.refused, JSON.stringify(seen)).to.be.above(2000);
  });

  it("a user signature checks out only with the certified key's private half (ssh-keygen -Y sign)", function () {
    const c = parseCertificate(certBlob(signCertificate(dir, ca, user, { name: 'sig', id: 'x', principals: 'alice' })));
    const data = path.join(dir, 'data');
    fs.writeFileSync(data, 'signed by the user');
    // ssh-keygen -Y signs a wrapper of the message; take the inner SSH signature and its signed data.
    execKeygen(['-q', '-Y', 'sign', '-f', user, '-n', 'file', data]);
    const { signed, signature } = sshsig(fs.readFileSync(`${data}.sig`, 'utf8'), fs.readFileSync(data));
    expect(verifySignature(c.key, signed, signature)).to.deep.equal({ ok: true, algo: 'ssh-ed25519' });
    expect(verifySignature(publicKeyFromBlob(c.caBlob), signed, signature).ok).to.equal(false);
    expect(verifySignature(c.key, Buffer.concat([signed, Buffer.from('x')]), signature).ok).to.equal(false);
  });
});

describe('revokedKeys: KRLs made by ssh-keygen -k, checked against ssh-keygen -Q', function () {
  let dir: string;
  let ca: string;
  let other: string;
  let user: string;
  before(function () {
    this.timeout(30_000);
    dir = tempDir();
    ca = keygen(dir, 'ca');
    other = keygen(dir, 'other-ca');
    user = keygen(dir, 'user');
  });
  after(removeTempDirs);

  it('serials (ssh-keygen writes a list, a range and a bitmap section here), key IDs under a CA, explicit keys and SHA-256 fingerprints: the same verdict as ssh-keygen -Q', function () {
    this.timeout(60_000);
    const plain = keygen(dir, 'plain');
    const fpKey = keygen(dir, 'fp');
    const caKrl = makeKrl(dir, 'ca.krl', ['serial: 5', 'serial: 100-200', ...Array.from({ length: 20 }, (_, i) => `serial: ${1000 + 2 * i}`), 'id: gone@corp'], `${ca}.pub`);
    const anyKrl = makeKrl(dir, 'any.krl', [`key: ${publicKey(plain)}`, `sha256: ${publicKey(fpKey)}`]);
    const certs: [string, string, string, number][] = [
      ['s5', ca, 'ok@corp', 5],
      ['s6', ca, 'ok@corp', 6],
      ['s150', ca, 'ok@corp', 150],
      ['s201', ca, 'ok@corp', 201],
      ['s1010', ca, 'ok@corp', 1010],
      ['s1011', ca, 'ok@corp', 1011],
      ['gone', ca, 'gone@corp', 9],
      ['other5', other, 'ok@corp', 5],
      ['othergone', other, 'gone@corp', 9],
    ];
    const rows: string[] = [];
    for (const krl of [caKrl, anyKrl]) {
      const list = RevocationList.parse(fs.readFileSync(krl));
      expect(list.summary.format).to.equal('krl');
      // ca.krl: one serial in a list, one range, one bitmap (the 20 even serials), one key ID.
      if (krl === caKrl) expect(list.summary).to.include({ serials: 3, keyIds: 1, cas: 1 });
      for (const [name, signer, id, serial] of certs) {
        const file = signCertificate(dir, signer, user, { name: `${path.basename(krl)}-${name}`, id, principals: 'alice', serial });
        const c = parseCertificate(certBlob(file));
        const ours = list.check(c.key.blob, c);
        expect(ours !== null, `${path.basename(krl)} ${name}: ${ours}`).to.equal(sshKeygenRevoked(krl, file));
        rows.push(`${path.basename(krl)} ${name}: ${ours ?? 'not revoked'}`);
      }
      for (const key of [plain, fpKey, user]) {
        const blob = Buffer.from(publicKey(key).split(' ')[1]!, 'base64');
        expect(list.check(blob) !== null, `${path.basename(krl)} ${path.basename(key)}`).to.equal(sshKeygenRevoked(krl, `${key}.pub`));
      }
    }
    expect(rows.filter((r) => !r.endsWith('not revoked'))).to.deep.equal([
      'ca.krl s5: certificate serial 5 is revoked',
      'ca.krl s150: certificate serial 150 is revoked',
      'ca.krl s1010: certificate serial 1010 is revoked',
      'ca.krl gone: certificate key ID "gone@corp" is revoked',
    ]);
  });

  it('a revoked CA key revokes every certificate it signed; a plain list of public keys works too', function () {
    const list = RevocationList.parse(Buffer.from(`# revoked\n${publicKey(ca)}\n\n`));
    expect(list.summary).to.include({ format: 'keys', keys: 1 });
    const c = parseCertificate(certBlob(signCertificate(dir, ca, user, { name: 'by-revoked-ca', id: 'x', principals: 'alice' })));
    expect(list.check(c.key.blob, c)).to.equal("the certificate's CA key is revoked (listed)");
    expect(list.check(c.key.blob)).to.equal(null);
  });

  it('a certificate line in a key list revokes the key it certifies: that certificate, the others of that key and the plain key (sshd: "revoked by file")', function () {
    const file = signCertificate(dir, ca, user, { name: 'listed-cert', id: 'listed', principals: 'alice', serial: 77 });
    const list = RevocationList.parse(Buffer.from(`${fs.readFileSync(file, 'utf8').trim()}\n`));
    const listed = parseCertificate(certBlob(file));
    expect(list.check(listed.key.blob, listed)).to.equal('the key is revoked (listed)');
    const sibling = parseCertificate(certBlob(signCertificate(dir, other, user, { name: 'sibling-cert', id: 'sibling', principals: 'alice', serial: 78 })));
    expect(list.check(sibling.key.blob, sibling)).to.equal('the key is revoked (listed)');
    expect(list.check(Buffer.from(publicKey(user).split(' ')[1]!, 'base64'))).to.equal('the key is revoked (listed)');
    expect(list.check(Buffer.from(publicKey(ca).split(' ')[1]!, 'base64'))).to.equal(null);
    expect(() => RevocationList.parse(Buffer.from('ssh-ed25519-cert-v01@openssh.com AAAAIHNzaC1lZDI1NTE5LWNlcnQtdjAxQG9wZW5zc2guY29tAAAA\n'))).to.throw(/line 1 is a certificate holdfast cannot read/);
  });

  it('a KRL subsection with bytes left over is refused, not half read (a second range after the first would be skipped)', function () {
    const u64 = (n: bigint) => {
      const b = Buffer.alloc(8);
      b.writeBigUInt64BE(n);
      return b;
    };
    const str = (b: Buffer) => Buffer.concat([u32(b.length), b]);
    const u32 = (n: number) => {
      const b = Buffer.alloc(4);
      b.writeUInt32BE(n);
      return b;
    };
    const range = (ranges: [bigint, bigint][]) => Buffer.concat([Buffer.from([0x21]), str(Buffer.concat(ranges.flatMap(([lo, hi]) => [u64(lo), u64(hi)])))]);
    const krl = (ranges: [bigint, bigint][]) =>
      Buffer.concat([Buffer.from('SSHKRL\n\0', 'latin1'), u32(1), u64(1n), u64(0n), u64(0n), str(Buffer.alloc(0)), str(Buffer.alloc(0)), Buffer.from([1]), str(Buffer.concat([str(Buffer.alloc(0)), str(Buffer.alloc(0)), range(ranges)]))]);
    const one = RevocationList.parse(krl([[10n, 20n]]));
    const c = parseCertificate(certBlob(signCertificate(dir, ca, user, { name: 'in-range', id: 'r', principals: 'alice', serial: 15 })));
    expect(one.check(c.key.blob, c)).to.equal('certificate serial 15 is revoked (for any CA)');
    expect(() => RevocationList.parse(krl([[10n, 20n], [30n, 40n]]))).to.throw(/malformed KRL/);
  });

  it('refuses a damaged KRL with a message', function () {
    const krl = fs.readFileSync(makeKrl(dir, 'dmg.krl', ['serial: 1'], `${ca}.pub`));
    expect(() => RevocationList.parse(krl.subarray(0, krl.length - 3))).to.throw(/malformed KRL/);
    expect(() => RevocationList.parse(Buffer.from('not a key\n'))).to.throw(/line 1 is not a public key/);
  });
});

describe('certificate logins: trust, principals, revocation (cert-login.ts)', function () {
  let dir: string;
  let ca: string;
  let user: string;
  const noKeys: KeyLookup = { ok: false, why: 'no file' };
  before(function () {
    this.timeout(30_000);
    dir = tempDir();
    ca = keygen(dir, 'ca');
    user = keygen(dir, 'user');
    fs.writeFileSync(path.join(dir, 'cas'), `${publicKey(ca)}\n`);
  });
  after(removeTempDirs);

  const cert = (spec: Partial<Parameters<typeof signCertificate>[3]> & { name: string }) => parseCertificate(certBlob(signCertificate(dir, ca, user, { id: spec.name, principals: 'alice', ...spec })));

  it('trustedUserCAKeys: the user name must be a principal; with authorizedPrincipalsFile, one of its lines (with its options)', function () {
    const files = new CertificateFiles({ trustedUserCAKeys: path.join(dir, 'cas') });
    const c = cert({ name: 'p1', principals: 'alice,ops' });
    const ok = certificateLogin(c, 'alice', noKeys, files, NOW);
    expect(ok.ok && ok.entry.certificate).to.deep.include({ principal: 'alice', keyId: 'p1', trustedBy: `trustedUserCAKeys ${path.join(dir, 'cas')}:1` });
    expect(certificateLogin(c, 'bob', noKeys, files, NOW)).to.deep.equal({ ok: false, rule: 'principal', why: "user bob is not among the certificate's principals (alice, ops)" });
    fs.mkdirSync(path.join(dir, 'principals'), { mode: 0o755 });
    fs.writeFileSync(path.join(dir, 'principals', 'bob'), 'from="192.0.2.0/24",no-pty ops\n', { mode: 0o600 });
    const withFile = new CertificateFiles({ trustedUserCAKeys: path.join(dir, 'cas'), authorizedPrincipalsFile: path.join(dir, 'principals', '%u') });
    const bob = certificateLogin(c, 'bob', noKeys, withFile, NOW);
    expect(bob.ok && [bob.entry.certificate!.principal, bob.entry.options.pty, bob.entry.line]).to.deep.equal(['ops', false, 1]);
    expect(certificateLogin(c, 'bob', noKeys, withFile, { ...NOW, clientIp: '198.51.100.9' })).to.include({ ok: false, rule: 'principal' });
    expect(certificateLogin(c, 'carol', noKeys, withFile, NOW)).to.include({ ok: false, rule: 'principal' });
  });

  it('a cert-authority line with principals="..." trusts the CA for that user only; the CA key itself never logs in', function () {
    const files = new CertificateFiles({});
    const ak = parseAuthorizedKeys(`cert-authority,principals="ops,dba",no-agent-forwarding ${publicKey(ca)}\n`);
    expect(ak.skipped).to.deep.equal([]);
    const lookup: KeyLookup = { ok: true, keys: ak.keys, file: '/ak/dave', skipped: [] };
    const good = certificateLogin(cert({ name: 'ca1', principals: 'dba' }), 'dave', lookup, files, NOW);
    expect(good.ok && good.entry.certificate).to.deep.include({ principal: 'dba', trustedBy: '/ak/dave:1 (cert-authority)' });
    expect(good.ok && good.entry.options.agentForwarding).to.equal(false);
    expect(certificateLogin(cert({ name: 'ca2', principals: 'dave' }), 'dave', lookup, files, NOW)).to.include({ ok: false, rule: 'principal' });
    expect(certificateLogin(cert({ name: 'ca3' }), 'dave', noKeys, files, NOW)).to.include({ ok: false, rule: 'untrusted-ca' });
    // Offered as a plain key, the CA's own key matches nothing.
    const caBlob = Buffer.from(publicKey(ca).split(' ')[1]!, 'base64');
    const v = certificateVerdict({ user: 'dave', algo: 'ssh-ed25519-cert-v01@openssh.com', data: caBlob }, lookup, files, NOW);
    expect(v).to.include({ kind: 'fail', rule: 'certificate-malformed' });
  });

  it('revokedKeys refuses by serial and key ID; unreadable revokedKeys refuses everything', function () {
    const krl = makeKrl(dir, 'r.krl', ['serial: 13', 'id: lost-laptop'], `${ca}.pub`);
    const files = new CertificateFiles({ trustedUserCAKeys: path.join(dir, 'cas'), revokedKeys: krl });
    expect(certificateLogin(cert({ name: 'r1', serial: 13 }), 'alice', noKeys, files, NOW)).to.deep.equal({ ok: false, rule: 'revoked', why: 'certificate serial 13 is revoked' });
    expect(certificateLogin(cert({ name: 'lost-laptop', serial: 14 }), 'alice', noKeys, files, NOW)).to.deep.equal({ ok: false, rule: 'revoked', why: 'certificate key ID "lost-laptop" is revoked' });
    expect(certificateLogin(cert({ name: 'r3', serial: 14 }), 'alice', noKeys, files, NOW).ok).to.equal(true);
    const gone = new CertificateFiles({ trustedUserCAKeys: path.join(dir, 'cas'), revokedKeys: path.join(dir, 'missing.krl') });
    expect(certificateLogin(cert({ name: 'r4' }), 'alice', noKeys, gone, NOW)).to.include({ ok: false, rule: 'revoked-keys' });
  });
});

function execKeygen(args: string[]): void {
  execFileSync('ssh-keygen', args, { stdio: ['ignore', 'ignore', 'pipe'] });
}

/**
 * An SSHSIG file (PROTOCOL.sshsig) -> the data the inner signature covers and the inner SSH
 * signature blob: "SSHSIG" string(namespace) string(reserved) string(hash alg) string(H(message)).
 */
function sshsig(armored: string, message: Buffer): { signed: Buffer; signature: Buffer } {
  const b64 = armored.replace(/-----[A-Z ]+-----/g, '').replace(/\s+/g, '');
  const raw = Buffer.from(b64, 'base64');
  let at = 6 + 4; // "SSHSIG", version
  const str = () => {
    const n = raw.readUInt32BE(at);
    const v = raw.subarray(at + 4, at + 4 + n);
    at += 4 + n;
    return v;
  };
  str(); // public key
  const namespace = str();
  str(); // reserved
  const hashAlg = str().toString();
  const signature = str();
  const s = (b: Buffer | string) => {
    const v = Buffer.from(b);
    const len = Buffer.alloc(4);
    len.writeUInt32BE(v.length);
    return Buffer.concat([len, v]);
  };
  const hash = crypto.createHash(hashAlg).update(message).digest();
  return { signed: Buffer.concat([Buffer.from('SSHSIG'), s(namespace), s(''), s(hashAlg), s(hash)]), signature };
}
