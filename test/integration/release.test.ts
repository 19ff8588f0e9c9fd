/**
 * Issue 24, acceptance 1: `npm run release` builds the tarball and the .deb. The tarball, unpacked
 * into an empty folder and run with no Node on PATH, checks, serves and carries an ssh -J; the .deb
 * installs (dpkg -i), runs as its unit would (the holdfast user it made), carries an ssh -J, and
 * `dpkg --purge` leaves nothing behind. lintian's findings are printed.
 */
import fs from 'node:fs';
import path from 'node:path';
import { execFileSync, spawnSync } from 'node:child_process';
import { expect } from 'chai';
import { makeScene, requireSshd, type Scene } from '../helpers/fixture.js';
import { ROOT, startHoldfast, type Holdfast } from '../helpers/holdfast.js';
import { sshJump } from '../helpers/ssh.js';
import { removeTempDirs, tempDir } from '../helpers/tmp.js';

const VERSION = (JSON.parse(fs.readFileSync(path.join(ROOT, 'package.json'), 'utf8')) as { version: string }).version;
const NO_NODE = { PATH: '/nonexistent', HOME: '/nonexistent' };

describe('npm run release: the tarball and the Debian package', function () {
  let out: string;
  let scene: Scene;

  before(async function () {
    this.timeout(900_000);
    requireSshd(this);
    out = tempDir('holdfast-release-out-');
    const t0 = Date.now();
    // HOLDFAST_TEST_RELEASE_OUT: a folder npm run release already filled (to iterate on these tests).
    if (process.env.HOLDFAST_TEST_RELEASE_OUT) out = process.env.HOLDFAST_TEST_RELEASE_OUT;
    else execFileSync(process.execPath, [path.join(ROOT, 'scripts/release.mjs'), out], { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'], timeout: 840_000 });
    const files = fs.readdirSync(out).map((f) => `${f} ${(fs.statSync(path.join(out, f)).size / 1048576).toFixed(1)} MiB`);
    console.log(`      built in ${Math.round((Date.now() - t0) / 1000)} s: ${files.join(', ')}`);
    scene = await makeScene(['alice']);
    scene.authorizeOwn('alice');
  });

  after(async function () {
    await scene?.stop();
    removeTempDirs();
  });

  /** A config for `dir` (readable by the service user): the scene's target, alice's key. */
  function config(dir: string, hostKey: string): string {
    fs.mkdirSync(path.join(dir, 'ak'), { recursive: true });
    fs.copyFileSync(path.join(scene.dir, 'ak', 'alice'), path.join(dir, 'ak', 'alice'));
    for (const p of [dir, path.join(dir, 'ak')]) fs.chmodSync(p, 0o755);
    fs.chmodSync(path.join(dir, 'ak', 'alice'), 0o644);
    const file = path.join(dir, 'holdfast.yaml');
    fs.writeFileSync(file, `listen: [{address: 127.0.0.1, port: 0}]\nhostKeys: [${hostKey}]\nauthorizedKeys: ${dir}/ak/%u\nroutes:\n  - name: t\n    to: ["127.0.0.1:${scene.sshd.port}"]\n`, { mode: 0o644 });
    return file;
  }

  it('the tarball, unpacked into an empty folder with no Node on PATH: --version, check, serve, ssh -J', async function () {
    this.timeout(120_000);
    const dir = tempDir('holdfast-tarball-');
    execFileSync('tar', ['-xzf', path.join(out, `holdfast-${VERSION}-linux-x64.tar.gz`), '-C', dir]);
    const launcher = path.join(dir, `holdfast-${VERSION}`, 'bin', 'holdfast');
    const v = spawnSync(launcher, ['--version'], { env: NO_NODE, encoding: 'utf8' });
    expect([v.status, v.stdout.trim()], v.stderr).to.deep.equal([0, VERSION]);
    const cfg = config(path.join(dir, 'etc'), path.join(dir, 'state', 'hk'));
    const check = spawnSync(launcher, ['check', '--config', cfg], { env: NO_NODE, encoding: 'utf8' });
    expect(check.status, check.stderr).to.equal(0);
    const hf = await startHoldfast(dir, null, { launcher, args: ['--config', cfg], env: NO_NODE });
    try {
      const started = hf.logs.find((l) => l.event === 'started')!;
      expect([started.nativeCrypto, started.mlkem], 'the bundled Node loads the patched, built ssh2').to.deep.equal([true, 'node:crypto']);
      const r = await sshJump(scene.cfgInfo.alice!, 'alice', hf.port, scene.sshd.port, 'echo from-the-tarball');
      expect(r.stdout.toString().trim(), r.stderr).to.equal('from-the-tarball');
      console.log(`      ${fs.readFileSync(path.join(dir, `holdfast-${VERSION}`, 'RELEASE'), 'utf8').split('\n').slice(0, 2).join(', ')}; ML-KEM from ${started.mlkem}`);
    } finally {
      await hf.stop();
    }
  });

  it('the .deb: dpkg -i, the unit and a holdfast user; serve as that user, ssh -J; dpkg --purge leaves nothing', async function () {
    this.timeout(180_000);
    const deb = path.join(out, `holdfast_${VERSION}_amd64.deb`);
    const lintian = spawnSync('lintian', ['--no-tag-display-limit', deb], { encoding: 'utf8' });
    if (lintian.error) console.log('      lintian: not installed (Debian package lintian)');
    else console.log(`      lintian: ${lintian.stdout.trim().split('\n').filter(Boolean).length} findings:\n${lintian.stdout.trim().split('\n').map((l) => `        ${l}`).join('\n')}`);
    const installed = spawnSync('dpkg-query', ['-W', 'holdfast']).status === 0 || spawnSync('getent', ['passwd', 'holdfast']).status === 0;
    if (process.getuid?.() !== 0 || spawnSync('dpkg', ['--version']).status !== 0 || installed) {
      console.log('    SKIPPED .deb install: needs root and dpkg, and no holdfast package or user already on this machine');
      this.skip();
    }
    let hf: Holdfast | undefined;
    try {
      const i = spawnSync('dpkg', ['-i', deb], { encoding: 'utf8' });
      expect(i.status, `${i.stdout}${i.stderr}`).to.equal(0);
      for (const f of ['/usr/bin/holdfast', '/usr/lib/holdfast/node/bin/node', '/lib/systemd/system/holdfast.service', '/etc/holdfast/holdfast.yaml']) expect(fs.existsSync(f), f).to.equal(true);
      const unit = fs.readFileSync('/lib/systemd/system/holdfast.service', 'utf8');
      expect(unit).to.include('ExecStart=/usr/lib/holdfast/bin/holdfast serve --config /etc/holdfast/holdfast.yaml');
      const st = fs.statSync('/var/lib/holdfast');
      const uid = Number(execFileSync('id', ['-u', 'holdfast'], { encoding: 'utf8' }).trim());
      expect([st.uid, st.mode & 0o777]).to.deep.equal([uid, 0o700]);
      // As the unit runs it: the holdfast user, its state in /var/lib/holdfast. The shipped example
      // config passes check; the test's own config carries the login.
      const as = ['/usr/bin/setpriv', '--reuid=holdfast', '--regid=holdfast', '--clear-groups', '--'];
      const env = { ...NO_NODE, HOLDFAST_STATE_DIR: '/var/lib/holdfast' };
      const example = spawnSync(as[0]!, [...as.slice(1), '/usr/bin/holdfast', 'check', '--config', '/etc/holdfast/holdfast.yaml'], { env, encoding: 'utf8' });
      expect(example.status, example.stderr).to.equal(0);
      const cfg = config(tempDir('holdfast-deb-etc-'), '/var/lib/holdfast/ssh_host_ed25519_key');
      hf = await startHoldfast(path.dirname(cfg), null, { launcher: '/usr/bin/holdfast', args: ['--config', cfg], env, wrap: as });
      const r = await sshJump(scene.cfgInfo.alice!, 'alice', hf.port, scene.sshd.port, 'echo from-the-deb');
      expect(r.stdout.toString().trim(), r.stderr).to.equal('from-the-deb');
      expect(fs.statSync('/var/lib/holdfast/ssh_host_ed25519_key').uid, 'the host key belongs to holdfast').to.equal(uid);
      expect(await hf.stop()).to.equal(0);
      hf = undefined;
    } finally {
      await hf?.stop();
      const p = spawnSync('dpkg', ['--purge', 'holdfast'], { encoding: 'utf8' });
      expect(p.status, `${p.stdout}${p.stderr}`).to.equal(0);
    }
    const left = ['/usr/lib/holdfast', '/usr/bin/holdfast', '/etc/holdfast', '/var/lib/holdfast', '/lib/systemd/system/holdfast.service'].filter((f) => fs.existsSync(f));
    expect(left, 'left after dpkg --purge').to.deep.equal([]);
    expect(spawnSync('getent', ['passwd', 'holdfast']).status, 'the holdfast user').to.not.equal(0);
    expect(spawnSync('getent', ['group', 'holdfast']).status, 'the holdfast group').to.not.equal(0);
    expect(spawnSync('dpkg-query', ['-W', 'holdfast']).status, 'dpkg knows no holdfast').to.not.equal(0);
  });
});
