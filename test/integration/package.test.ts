/**
 * Issue 23, acceptance 10: the package installs like a product. `npm pack` of this checkout, then
 * `npm install -g` of the tarball into an empty prefix (npm runs the install scripts the README's
 * command allows: ssh2's and cpu-features' builds, holdfast's postinstall applying the patches):
 * `holdfast connect` from there carries a real login through holdfast, and `holdfast serve` from
 * there has ssh2's patch and native binding.
 */
import fs from 'node:fs';
import path from 'node:path';
import { execFileSync, spawnSync } from 'node:child_process';
import { expect } from 'chai';
import { CONFIG_HEAD, makeScene, requireSshd, type Scene } from '../helpers/fixture.js';
import { ROOT, startHoldfast, type Holdfast } from '../helpers/holdfast.js';
import { run, sshJump } from '../helpers/ssh.js';
import { tempDir } from '../helpers/tmp.js';

describe('npm pack + npm install -g into an empty prefix', function () {
  let scene: Scene;
  let hf: Holdfast;
  let prefix: string;

  before(async function () {
    this.timeout(600_000);
    requireSshd(this);
    const dir = tempDir('holdfast-pack-');
    const packed = execFileSync('npm', ['pack', '--silent', '--pack-destination', dir], { cwd: ROOT, encoding: 'utf8' }).trim().split('\n').at(-1)!;
    prefix = path.join(dir, 'prefix');
    const t0 = Date.now();
    execFileSync('npm', ['install', '-g', '--allow-scripts=holdfast,ssh2,cpu-features', '--no-audit', '--no-fund', '--prefix', prefix, path.join(dir, packed)], { stdio: 'pipe', timeout: 540_000 });
    console.log(`      ${packed}: installed into an empty prefix in ${Math.round((Date.now() - t0) / 1000)} s`);
    scene = await makeScene(['alice']);
    scene.authorizeOwn('alice');
    hf = await startHoldfast(scene.dir, `${CONFIG_HEAD}workers: 1\nroutes:\n  - name: t\n    to: ["127.0.0.1:${scene.sshd.port}"]\n`);
  });

  after(async function () {
    await hf?.stop();
    await scene?.stop();
  });

  it('the installed holdfast connect carries a login through holdfast (output and exit status)', async function () {
    this.timeout(60_000);
    const bin = path.join(prefix, 'bin', 'holdfast');
    const pc = `ProxyCommand=${bin} connect -F ${scene.cfg.alice} alice@127.0.0.1:${hf.port} %h %p`;
    const r = await run('ssh', ['-F', scene.cfg.alice!, '-o', pc, '-p', String(scene.sshd.port), 'root@127.0.0.1', 'echo installed-ok; exit 5']);
    expect(r.stdout.toString(), r.stderr).to.equal('installed-ok\n');
    expect(r.code).to.equal(5);
  });

  it('the installed package carries the ssh2 patch and its native binding', function () {
    const pkg = path.join(prefix, 'lib', 'node_modules', 'holdfast');
    expect(fs.existsSync(path.join(pkg, 'node_modules', 'ssh2', 'lib', 'protocol', 'mlkem.js')), 'the patch applied').to.equal(true);
    const out = execFileSync(process.execPath, ['-e', "console.log(require('ssh2/lib/protocol/crypto.js').bindingAvailable === true)"], { cwd: pkg, encoding: 'utf8' });
    expect(out.trim(), 'native binding').to.equal('true');
    expect(execFileSync(path.join(prefix, 'bin', 'holdfast'), ['--version'], { encoding: 'utf8' }).trim()).to.match(/^\d+\.\d+\.\d+/);
  });

  it('the installed holdfast checks a config and serves: an ssh -J through it', async function () {
    this.timeout(60_000);
    const bin = path.join(prefix, 'bin', 'holdfast');
    const cfg = path.join(scene.dir, 'installed.yaml');
    fs.writeFileSync(cfg, `${CONFIG_HEAD}routes:\n  - name: t\n    to: ["127.0.0.1:${scene.sshd.port}"]\n`);
    const check = spawnSync(bin, ['check', '--config', cfg], { cwd: scene.dir, encoding: 'utf8' });
    expect(check.status, check.stderr).to.equal(0);
    const served = await startHoldfast(scene.dir, null, { launcher: bin, args: ['--config', cfg] });
    try {
      expect(served.logs.find((l) => l.event === 'started')!.nativeCrypto, 'the installed ssh2 binding').to.equal(true);
      const r = await sshJump(scene.cfgInfo.alice!, 'alice', served.port, scene.sshd.port, 'echo served-by-the-installed-holdfast');
      expect(r.stdout.toString().trim(), r.stderr).to.equal('served-by-the-installed-holdfast');
    } finally {
      await served.stop();
    }
  });
});
