import { expect } from 'chai';
import { execFileSync } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { fromAllows, parseAuthorizedKeys, permitOpenAllows } from '../../src/ssh/authorized-keys.js';
import { AuthorizedKeysStore, matchOfferedKey } from '../../src/ssh/auth.js';
import { strictModes } from '../../src/ssh/strict-modes.js';
import os from 'node:os';
import { keygen, publicKey, removeTempDirs, tempDir } from '../helpers/tmp.js';

describe('authorized_keys', function () {
  let dir: string;
  let ed: string;
  let ecdsa: string;
  let rsa: string;
  before(function () {
    dir = tempDir();
    ed = publicKey(keygen(dir, 'ed', 'ed25519'));
    ecdsa = publicKey(keygen(dir, 'ec', 'ecdsa'));
    rsa = publicKey(keygen(dir, 'rsa', 'rsa'));
  });
  after(removeTempDirs);

  it('parses plain ed25519, ECDSA and RSA lines, comments and blank lines', function () {
    const r = parseAuthorizedKeys(`# comment\n\n${ed}\n${ecdsa}\r\n${rsa}\n`);
    expect(r.skipped).to.deep.equal([]);
    expect(r.keys.map((k) => [k.type, k.line])).to.deep.equal([['ssh-ed25519', 3], ['ecdsa-sha2-nistp256', 4], ['ssh-rsa', 5]]);
    expect(r.keys[0]!.comment).to.equal('ed@test');
  });

  it('parses options with quoted values, commas and escaped quotes', function () {
    const line = `from="10.0.0.0/8,!10.9.9.9,192.0.2.*",permitopen="db1:22",permitopen="[2001:db8::1]:*",command="echo \\"hi, there\\"",no-pty ${ed}`;
    const [k] = parseAuthorizedKeys(line).keys;
    expect(k!.options.from).to.deep.equal(['10.0.0.0/8', '!10.9.9.9', '192.0.2.*']);
    expect(k!.options.permitOpen).to.deep.equal([{ host: 'db1', port: 22 }, { host: '2001:db8::1', port: '*' }]);
    expect(k!.options.portForwarding).to.equal(true);
    expect(k!.options.command).to.equal('echo "hi, there"');
    expect(k!.options.pty).to.equal(false);
    expect(k!.options.agentForwarding).to.equal(true);
  });

  it('gateway options: restrict turns pty and agent forwarding off; pty / agent-forwarding after it turn them back on', function () {
    const o = (opts: string) => parseAuthorizedKeys(`${opts} ${ed}`).keys[0]!.options;
    expect(o('restrict')).to.include({ pty: false, agentForwarding: false, portForwarding: false });
    expect(o('restrict,pty,agent-forwarding')).to.include({ pty: true, agentForwarding: true, portForwarding: false });
    expect(o('no-agent-forwarding')).to.include({ pty: true, agentForwarding: false });
    expect(parseAuthorizedKeys(ed).keys[0]!.options).to.include({ pty: true, agentForwarding: true, portForwarding: true });
    expect(parseAuthorizedKeys(ed).keys[0]!.options.command).to.equal(undefined);
  });

  it('restrict and no-port-forwarding turn forwarding off; port-forwarding after restrict turns it back on', function () {
    expect(parseAuthorizedKeys(`restrict ${ed}`).keys[0]!.options.portForwarding).to.equal(false);
    expect(parseAuthorizedKeys(`no-port-forwarding ${ed}`).keys[0]!.options.portForwarding).to.equal(false);
    expect(parseAuthorizedKeys(`restrict,port-forwarding ${ed}`).keys[0]!.options.portForwarding).to.equal(true);
  });

  it('skips, with a reason, what it cannot honour', function () {
    const r = parseAuthorizedKeys(
      [`bogus-option ${ed}`, `principals="ops" ${ed}`, `from="unterminated ${ed}`, 'sk-ssh-ed25519@openssh.com AAAAGnNrLXNzaC1lZDI1NTE5QG9wZW5zc2guY29t x', 'ssh-ed25519 !!notbase64', `permitopen="nohost" ${ed}`].join('\n'),
    );
    expect(r.keys).to.deep.equal([]);
    expect(r.skipped.map((s) => s.line)).to.deep.equal([1, 2, 3, 4, 5, 6]);
    expect(r.skipped[0]!.why).to.equal('unknown option "bogus-option"');
    expect(r.skipped[1]!.why).to.equal('principals= belongs on a cert-authority line');
    expect(r.skipped[3]!.why).to.include('security-key');
  });

  it('a cert-authority line is a CA (with its principals), never a key that logs in itself', function () {
    const r = parseAuthorizedKeys(`cert-authority,principals="ops,dba",from="10.0.0.0/8" ${ed}`);
    expect(r.skipped).to.deep.equal([]);
    expect(r.keys[0]!.certAuthority).to.deep.equal({ principals: ['ops', 'dba'] });
    expect(r.keys[0]!.options.from).to.deep.equal(['10.0.0.0/8']);
    const blob = r.keys[0]!.publicSSH;
    expect(matchOfferedKey(r.keys, { algo: 'ssh-ed25519', data: blob }, '10.1.1.1', new Date())).to.deep.equal({ ok: false, why: 'key not in authorized_keys' });
  });

  it('from= matches addresses, globs and CIDRs, with negation', function () {
    const o = parseAuthorizedKeys(`from="10.0.0.0/8,!10.9.9.9,192.0.2.*" ${ed}`).keys[0]!.options;
    expect(fromAllows(o, '10.1.2.3')).to.equal(true);
    expect(fromAllows(o, '::ffff:10.1.2.3')).to.equal(true);
    expect(fromAllows(o, '10.9.9.9')).to.equal(false);
    expect(fromAllows(o, '192.0.2.200')).to.equal(true);
    expect(fromAllows(o, '127.0.0.1')).to.equal(false);
  });

  it('permitopen= matches the requested host and port', function () {
    const o = parseAuthorizedKeys(`permitopen="db1:22",permitopen="*:2222" ${ed}`).keys[0]!.options;
    expect(permitOpenAllows(o, 'db1', 22)).to.equal(true);
    expect(permitOpenAllows(o, 'DB1', 22)).to.equal(true);
    expect(permitOpenAllows(o, 'db1', 23)).to.equal(false);
    expect(permitOpenAllows(o, 'anything', 2222)).to.equal(true);
  });

  it('expiry-time= in the past refuses the key', function () {
    const keys = parseAuthorizedKeys(`expiry-time="20200101" ${ed}\n`).keys;
    const offered = { algo: 'ssh-ed25519', data: keys[0]!.publicSSH };
    expect(matchOfferedKey(keys, offered, '127.0.0.1', new Date())).to.deep.equal({ ok: false, why: 'key expired (expiry-time, line 1)' });
    const later = parseAuthorizedKeys(`expiry-time="29990101" ${ed}\n`).keys;
    expect(matchOfferedKey(later, offered, '127.0.0.1', new Date()).ok).to.equal(true);
  });

  it('the store refuses group/world-writable files, re-reads edited files, and rejects unsafe user names', function () {
    const store = new AuthorizedKeysStore(path.join(dir, 'ak-%u'));
    const file = path.join(dir, 'ak-alice');
    fs.writeFileSync(file, `${ed}\n`, { mode: 0o600 });
    fs.chmodSync(file, 0o600);
    const first = store.lookup('alice');
    expect(first.ok && first.keys.length).to.equal(1);
    fs.writeFileSync(file, `${ed}\n${ecdsa}\n`);
    const second = store.lookup('alice');
    expect(second.ok && second.keys.length).to.equal(2);
    fs.chmodSync(file, 0o666);
    const loose = store.lookup('alice');
    expect(loose.ok).to.equal(false);
    if (!loose.ok) expect(loose.why).to.include('writable by group or others');
    expect(store.lookup('../etc/passwd').ok).to.equal(false);
    expect(store.lookup('..').ok).to.equal(false);
    const missing = store.lookup('nobody');
    expect(missing.ok).to.equal(false);
    if (!missing.ok) expect(missing.why).to.include('ENOENT');
  });

  it('parses keys exactly as ssh-keygen prints them', function () {
    const fp = execFileSync('ssh-keygen', ['-lf', path.join(dir, 'ed.pub')], { encoding: 'utf8' }).split(' ')[1];
    const k = parseAuthorizedKeys(ed).keys[0]!;
    const ours = `SHA256:${crypto.createHash('sha256').update(k.publicSSH).digest('base64').replace(/=+$/, '')}`;
    expect(ours).to.equal(fp);
  });
});

describe('authorized_keys StrictModes (file and every folder above it)', function () {
  const made: string[] = [];
  after(() => {
    for (const b of made.splice(0)) fs.rmSync(b, { recursive: true, force: true });
  });
  const setup = () => {
    const base = fs.mkdtempSync(path.join(os.tmpdir(), 'holdfast-strict-'));
    made.push(base);
    const dir = path.join(base, 'keys');
    fs.mkdirSync(dir, { mode: 0o755 });
    const file = path.join(dir, 'alice');
    fs.writeFileSync(file, '', { mode: 0o600 });
    return { base, dir, file };
  };
  it('accepts a file and folders owned by root or holdfast and writable by no one else (/tmp: sticky, root-owned)', function () {
    const { file } = setup();
    expect(strictModes(file, fs.statSync(file))).to.equal(null);
  });
  it('refuses a group- or world-writable file, a writable folder above it, and another owner', function () {
    const a = setup();
    fs.chmodSync(a.file, 0o664);
    expect(strictModes(a.file, fs.statSync(a.file))).to.match(/is writable by group or others \(chmod go-w/);
    const b = setup();
    fs.chmodSync(b.dir, 0o777);
    expect(strictModes(b.file, fs.statSync(b.file))).to.match(/folder .*keys above .* is writable by group or others/);
    const c = setup();
    fs.chmodSync(c.base, 0o775);
    expect(strictModes(c.file, fs.statSync(c.file))).to.match(/folder .*holdfast-strict-\w+ above .* is writable by group or others/);
    const d = setup();
    fs.chownSync(d.file, 4242, 4242);
    expect(strictModes(d.file, fs.statSync(d.file))).to.match(/owned by uid 4242/);
    const e = setup();
    fs.chownSync(e.dir, 4242, 4242);
    expect(strictModes(e.file, fs.statSync(e.file))).to.match(/folder .*keys above .* is owned by uid 4242/);
  });
  it("follows a symlink and checks the target's folders, as sshd (realpath): a safe link to a file in a writable folder is refused", function () {
    const unsafe = setup();
    fs.chmodSync(unsafe.dir, 0o777);
    const safe = setup();
    const link = path.join(safe.dir, 'linked');
    fs.symlinkSync(unsafe.file, link);
    expect(strictModes(link, fs.statSync(link))).to.equal(`folder ${unsafe.dir} above ${link} (-> ${unsafe.file}) is writable by group or others (chmod go-w ${unsafe.dir})`);
    // And the other way round: a link in a writable folder to a file in safe ones is what sshd accepts.
    const back = path.join(unsafe.dir, 'back');
    fs.symlinkSync(safe.file, back);
    expect(strictModes(back, fs.statSync(back))).to.equal(null);
  });

  it('the store refuses such a file at login with the reason', function () {
    const { file, dir } = setup();
    fs.chmodSync(dir, 0o757);
    const store = new AuthorizedKeysStore(path.join(dir, '%u'));
    const r = store.lookup('alice');
    expect(r.ok).to.equal(false);
    if (!r.ok) expect(r.why).to.include(`folder ${dir} above ${file}`);
  });
});
