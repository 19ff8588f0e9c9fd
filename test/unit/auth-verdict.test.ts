/**
 * Authentication verdicts (src/session/auth-verdict.ts): one attempt in, one verdict out, with keys
 * made by node:crypto and a fake key store: no connection (a file only for revokedKeys).
 */
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { expect } from 'chai';
import { CertificateFiles } from '../../src/ssh/user-ca.js';
import { authVerdict, reauthorize, type AuthAttempt } from '../../src/session/auth-verdict.js';
import { parseAuthorizedKeys } from '../../src/ssh/authorized-keys.js';
import type { KeyLookup } from '../../src/ssh/auth.js';

function sshString(b: Buffer | string): Buffer {
  const body = Buffer.from(b);
  const len = Buffer.alloc(4);
  len.writeUInt32BE(body.length);
  return Buffer.concat([len, body]);
}

function ed25519() {
  const { publicKey, privateKey } = crypto.generateKeyPairSync('ed25519');
  const raw = publicKey.export({ format: 'der', type: 'spki' }).subarray(-32);
  const wire = Buffer.concat([sshString('ssh-ed25519'), sshString(raw)]);
  return { wire, line: (opts = '') => `${opts}${opts ? ' ' : ''}ssh-ed25519 ${wire.toString('base64')} test`, sign: (data: Buffer) => crypto.sign(null, data, privateKey) };
}

describe('auth verdicts (src/session/auth-verdict.ts)', function () {
  const alice = ed25519();
  const other = ed25519();
  const files: Record<string, string> = {
    alice: [alice.line(), other.line('expiry-time="20200101"'), ''].join('\n'),
    carol: `${alice.line('from="10.0.0.0/8"')}\n`,
  };
  const keys = {
    lookup(user: string): KeyLookup {
      const text = files[user];
      if (text === undefined) return { ok: false, why: `cannot read /keys/${user}: ENOENT` };
      const parsed = parseAuthorizedKeys(text);
      return { ok: true, keys: parsed.keys, skipped: parsed.skipped, file: `/keys/${user}` };
    },
  };
  const at = { sawNone: false, clientIp: '192.0.2.10', now: new Date('2026-11-22T00:00:00Z') };
  const pk = (over: Partial<AuthAttempt> = {}): AuthAttempt => ({ method: 'publickey', user: 'alice', key: { algo: 'ssh-ed25519', data: alice.wire }, ...over });

  it('the first "none" asks for the methods and is not a failure; the second is', function () {
    expect(authVerdict({ method: 'none', user: 'alice' }, keys, at)).to.deep.equal({ kind: 'methods' });
    expect(authVerdict({ method: 'none', user: 'alice' }, keys, { ...at, sawNone: true })).to.deep.equal({ kind: 'fail', why: 'none authentication is not offered' });
  });

  it('password and keyboard-interactive are not offered', function () {
    expect(authVerdict({ method: 'password', user: 'alice' }, keys, at)).to.deep.equal({ kind: 'fail', why: 'password authentication is not offered' });
    expect(authVerdict({ method: 'keyboard-interactive', user: 'alice' }, keys, at)).to.include({ kind: 'fail' });
  });

  it('SHA-1 ssh-rsa is refused before any key file is read', function () {
    const v = authVerdict(pk({ user: 'nobody', key: { algo: 'ssh-rsa', data: Buffer.from('x') }, hashAlgo: undefined }), keys, at);
    expect(v).to.deep.equal({ kind: 'fail', why: 'ssh-rsa (SHA-1) signatures are refused; the client must use rsa-sha2-256 or rsa-sha2-512' });
  });

  it('revokedKeys refuses a plain key it lists (and a reload finds it revoked); an unreadable revokedKeys refuses every key', function () {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'holdfast-revoked-'));
    try {
      const file = path.join(dir, 'revoked');
      fs.writeFileSync(file, `${alice.line()}\n`);
      const certs = new CertificateFiles({ revokedKeys: file });
      expect(authVerdict(pk(), keys, at, certs)).to.deep.equal({ kind: 'fail', rule: 'revoked', why: 'the key is revoked (listed)' });
      const entry = parseAuthorizedKeys(files.alice!).keys[0]!;
      expect(reauthorize(keys, 'alice', entry, at.clientIp, at.now, certs)).to.deep.equal({ ok: false, why: 'revoked: the key is revoked (listed)' });
      expect(authVerdict(pk(), keys, at, new CertificateFiles({ revokedKeys: path.join(dir, 'gone') }))).to.include({ kind: 'fail', rule: 'revoked-keys' });
      expect(authVerdict(pk({ user: 'alice', key: { algo: 'ssh-ed25519', data: other.wire } }), keys, at, certs)).to.include({ kind: 'fail', why: 'key expired (expiry-time, line 2)' });
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  it("the key store's reason when the user has no usable file", function () {
    expect(authVerdict(pk({ user: 'dave' }), keys, at)).to.deep.equal({ kind: 'fail', why: 'cannot read /keys/dave: ENOENT' });
  });

  it('a key not in the file, an expired one, one whose from= does not match', function () {
    const stranger = ed25519();
    expect(authVerdict(pk({ key: { algo: 'ssh-ed25519', data: stranger.wire } }), keys, at)).to.deep.equal({ kind: 'fail', why: 'key not in authorized_keys' });
    expect(authVerdict(pk({ key: { algo: 'ssh-ed25519', data: other.wire } }), keys, at)).to.deep.equal({ kind: 'fail', why: 'key expired (expiry-time, line 2)' });
    expect(authVerdict(pk({ user: 'carol' }), keys, at)).to.deep.equal({ kind: 'fail', why: 'source address 192.0.2.10 not allowed by from= (line 1)' });
    expect(authVerdict(pk({ user: 'carol' }), keys, { ...at, clientIp: '10.1.2.3' })).to.deep.equal({ kind: 'key-ok' });
  });

  it('a query without a signature: "this key would do" (PK_OK)', function () {
    expect(authVerdict(pk(), keys, at)).to.deep.equal({ kind: 'key-ok' });
  });

  it('a valid signature logs in, naming the file and line; a bad one does not', function () {
    const blob = crypto.randomBytes(64);
    const ok = authVerdict(pk({ blob, signature: alice.sign(blob) }), keys, at);
    expect(ok.kind).to.equal('accept');
    if (ok.kind === 'accept') expect({ file: ok.file, line: ok.entry.line }).to.deep.equal({ file: '/keys/alice', line: 1 });
    expect(authVerdict(pk({ blob, signature: other.sign(blob) }), keys, at)).to.deep.equal({ kind: 'fail', why: 'signature did not verify' });
    expect(authVerdict(pk({ blob: Buffer.from('other data'), signature: alice.sign(blob) }), keys, at)).to.include({ kind: 'fail' });
  });

  it('a reload re-checks a live session\'s key: the entry in force now, or what changed', function () {
    const entry = parseAuthorizedKeys(alice.line()).keys[0]!;
    const still = reauthorize(keys, 'alice', entry, '192.0.2.10', at.now);
    expect(still.ok && still.entry.line).to.equal(1);
    files.erin = `${alice.line('no-port-forwarding')}\n`;
    const narrowed = reauthorize(keys, 'erin', entry, '192.0.2.10', at.now);
    expect(narrowed.ok && narrowed.entry.options.portForwarding, 'the options as they are now').to.equal(false);
    files.erin = `${other.line()}\n`;
    expect(reauthorize(keys, 'erin', entry, '192.0.2.10', at.now)).to.deep.equal({ ok: false, why: '/keys/erin: key not in authorized_keys' });
    files.erin = `${alice.line('expiry-time="20261121"')}\n`;
    expect(reauthorize(keys, 'erin', entry, '192.0.2.10', at.now)).to.deep.equal({ ok: false, why: '/keys/erin: key expired (expiry-time, line 1)' });
    expect(reauthorize(keys, 'carol', entry, '192.0.2.10', at.now)).to.deep.equal({ ok: false, why: '/keys/carol: source address 192.0.2.10 not allowed by from= (line 1)' });
    expect(reauthorize(keys, 'dave', entry, '192.0.2.10', at.now)).to.deep.equal({ ok: false, why: 'cannot read /keys/dave: ENOENT' });
  });
});
