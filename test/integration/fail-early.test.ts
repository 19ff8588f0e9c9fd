/**
 * Issue 24: what `serve` would fail on, `check` finds first, as the user the service runs as; and
 * `serve` never exits 70 ("internal error") for something an operator fixes. Run as uid 65534
 * (nobody) with setpriv, as systemd's User= would.
 */
import fs from 'node:fs';
import path from 'node:path';
import { spawnSync } from 'node:child_process';
import { expect } from 'chai';
import { holdfast } from '../helpers/cli.js';
import { ROOT } from '../helpers/holdfast.js';
import { removeTempDirs, tempDir } from '../helpers/tmp.js';

const NOBODY = 65534;

describe('fail early: check finds what serve would fail on (as the service user)', function () {
  let dir: string;

  before(function () {
    if (process.getuid?.() !== 0 || spawnSync('setpriv', ['--version']).status !== 0) {
      console.log('    SKIPPED fail-early as the service user: needs root and setpriv (util-linux)');
      this.skip();
    }
    // A folder the service user can read but not write, as /etc/holdfast is.
    dir = tempDir();
    fs.chmodSync(dir, 0o755);
    fs.writeFileSync(path.join(dir, 'authorized_keys'), '');
    fs.chmodSync(path.join(dir, 'authorized_keys'), 0o644);
  });
  after(removeTempDirs);

  it('a host key whose folder the service user cannot create: check and serve exit 78 naming the folder and what to do', function () {
    const key = path.join(dir, 'keys', 'ssh_host_ed25519_key');
    const cfg = path.join(dir, 'holdfast.yaml');
    fs.writeFileSync(cfg, `listen: [{address: 127.0.0.1, port: 0}]\nhostKeys: [${key}]\nauthorizedKeys: ${dir}/authorized_keys\nroutes: [{name: a, to: ["127.0.0.1:22"]}]\n`);
    fs.chmodSync(cfg, 0o644);
    const want = `holdfast.yaml:2:12: hostKeys[0]: cannot create host key ${key}: ${dir} is not writable by this user (uid ${NOBODY}, EACCES); create the key as its owner (ssh-keygen -t ed25519 -N '' -f ${key})`;
    for (const cmd of ['check', 'serve']) {
      const r = holdfast([cmd, '--config', cfg], { asUid: NOBODY });
      expect(r.stderr, cmd).to.include(want);
      expect(r.code, `${cmd}: ${r.stderr}`).to.equal(78);
      expect(r.stderr, cmd).to.not.include('internal error');
    }
    // As root (the folder's owner) the same config passes: the key will be created.
    expect(holdfast(['check', '--config', cfg]).code).to.equal(0);
    expect(fs.existsSync(path.join(dir, 'keys')), 'check creates nothing').to.equal(false);
  });

  it('a key folder that turns unwritable after the checks: loadOrCreateHostKey throws a HostKeyError with the fix (the worker logs host-key-failed and exits 73 on it), not EACCES', function () {
    const key = path.join(dir, 'later', 'hk');
    const code = `import('${path.join(ROOT, 'dist/src/ssh/host-keys.js')}').then((m) => { try { m.loadOrCreateHostKey(${JSON.stringify(key)}); } catch (e) { console.log(e.name + ': ' + e.message); } })`;
    const r = spawnSync('setpriv', [`--reuid=${NOBODY}`, `--regid=${NOBODY}`, '--clear-groups', '--', process.execPath, '-e', code], { encoding: 'utf8', timeout: 20_000 });
    expect(r.stdout.trim()).to.equal(`HostKeyError: cannot create host key ${key}: ${dir} is not writable by this user (uid ${NOBODY}, EACCES); create the key as its owner (ssh-keygen -t ed25519 -N '' -f ${key}) or give the service user a folder it owns (the unit's StateDirectory=)`);
  });
});
