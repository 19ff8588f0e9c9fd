/**
 * `holdfast serve`: the embedded default (acceptance 1's run command), signals, reload, and the
 * failures an operator meets first (port in use, bad config).
 */
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { spawnSync } from 'node:child_process';
import { expect } from 'chai';
import { makeScene, oneRouteConfig, requireSshd, type Scene } from '../helpers/fixture.js';
import { startHoldfast } from '../helpers/holdfast.js';
import { holdfast } from '../helpers/cli.js';
import { publicKey, tempDir } from '../helpers/tmp.js';
import { run, sshJump } from '../helpers/ssh.js';
import { waitFor } from '../helpers/wait.js';

describe('holdfast serve', function () {
  let scene: Scene;

  before(async function () {
    requireSshd(this);
    scene = await makeScene(['alice']);
    scene.authorizeOwn('alice');
  });
  after(async function () {
    await scene?.stop();
  });

  it('runs on the embedded default with no config: :2222, host key created 0600, ~/.ssh/authorized_keys, any host on port 22', async function () {
    this.timeout(30_000);
    const home = tempDir();
    fs.mkdirSync(path.join(home, '.ssh'), { mode: 0o700 });
    fs.writeFileSync(path.join(home, '.ssh', 'authorized_keys'), `${publicKey(scene.keys.alice!)}\n`, { mode: 0o600 });
    const state = path.join(home, 'state');
    const hf = await startHoldfast(home, null, { env: { HOME: home, HOLDFAST_STATE_DIR: state } });
    try {
      const chose = hf.logs.find((l) => l.event === 'embedded-default');
      expect(chose, 'logs what it chose').to.not.equal(undefined);
      expect(chose!.authorizedKeys).to.equal(path.join(home, '.ssh', 'authorized_keys'));
      expect(hf.port).to.equal(2222);
      const key = path.join(state, 'ssh_host_ed25519_key');
      expect(fs.statSync(key).mode & 0o777).to.equal(0o600);
      // OpenSSH format: ssh-keygen itself reads it back (-y prints the public key).
      const pub = spawnSync('ssh-keygen', ['-y', '-f', key], { encoding: 'utf8' });
      expect(pub.status, pub.stderr).to.equal(0);
      expect(pub.stdout).to.match(/^ssh-ed25519 /);
      await hf.waitForLog((l) => l.event === 'host-key-created' && l.file === key);

      // Port 22 is what the default route allows: the sshd on another port is refused...
      const refused = await sshJump(scene.cfgInfo.alice!, 'alice', 2222, scene.sshd.port, 'true');
      expect(refused.stderr).to.include('administratively prohibited');
      // ...and the wildcard never reaches the jump host itself (loopback) or cloud metadata
      // (link-local), even on port 22: refused before any connect.
      for (const dst of ['127.0.0.1:22', '169.254.169.254:22', '[::ffff:127.0.0.1]:22', '2130706433:22']) {
        const r = await run('ssh', ['-F', scene.cfgInfo.alice!, '-p', '2222', '-W', dst, 'alice@127.0.0.1'], { timeoutMs: 20_000 });
        expect(r.stderr, dst).to.include('administratively prohibited');
      }
      const guarded = hf.logs.filter((l) => l.event === 'channel-refused' && /is a (loopback|link-local) address/.test(String(l.why)));
      expect(guarded.map((l) => l.dst)).to.deep.equal(['127.0.0.1:22', '169.254.169.254:22', '127.0.0.1:22', '127.0.0.1:22']);
      expect(hf.logs.some((l) => l.event === 'channel-open' || l.event === 'channel-connect-failed'), 'no connect attempted').to.equal(false);
      // A public address on port 22 is what the default allows (explain: no packet leaves the machine).
      const env = { HOME: home, HOLDFAST_STATE_DIR: state };
      const open = holdfast(['explain', '203.0.113.5'], { env });
      expect(open.code, open.stdout + open.stderr).to.equal(0);
      expect(open.stdout).to.match(/route: default/);
      const loop = holdfast(['explain', '127.0.0.1'], { env });
      expect(loop.code).to.equal(1);
      expect(loop.stdout).to.match(/127\.0\.0\.1 is a loopback address: only an entry naming that address/);
    } finally {
      expect(await hf.stop()).to.equal(0);
    }
  });

  it('SIGTERM with a session open: closes it with reason "shutdown" and exits 0 within the bound', async function () {
    this.timeout(30_000);
    const hf = await startHoldfast(scene.dir, oneRouteConfig(scene, 'shutdownTimeout: 2s'));
    const session = sshJump(scene.cfgInfo.alice!, 'alice', hf.port, scene.sshd.port, 'sleep 60');
    await hf.waitForLog((l) => l.event === 'channel-open');
    const t0 = Date.now();
    const code = await hf.stop('SIGTERM');
    const took = Date.now() - t0;
    expect(code).to.equal(0);
    expect(took).to.be.lessThan(2000 + 1500);
    const close = hf.logs.find((l) => l.event === 'session-close');
    expect(close?.reason).to.equal('shutdown');
    expect(hf.logs.find((l) => l.event === 'channel-close')?.reason).to.equal('shutdown');
    const r = await session;
    expect(r.code, 'the user\'s ssh ends too').to.not.equal(0);
    // The user is told why (DISCONNECT with a description: patches/ssh2+1.17.0.patch).
    expect(r.stderr).to.match(/Received disconnect from 127\.0\.0\.1 port \d+:11: holdfast: the jump host is shutting down; reconnect in a moment/);
  });

  it('started by npm (npx holdfast serve): when the shell npm hands its SIGTERM to ends, holdfast stops too (parent-gone), every process exits', async function () {
    this.timeout(30_000);
    // npm runs `sh -c 'holdfast' serve ...` and passes signals to that shell only.
    const hf = await startHoldfast(scene.dir, oneRouteConfig(scene), { wrap: ['sh', '-c', '"$@"; exit $?', 'sh'], env: { npm_command: 'exec' } });
    const sh = hf.proc.pid!;
    const primary = Number(fs.readFileSync(`/proc/${sh}/task/${sh}/children`, 'utf8').trim().split(/\s+/)[0]);
    expect(primary, 'holdfast runs under the shell').to.be.greaterThan(0).and.not.equal(sh);
    const t0 = Date.now();
    process.kill(sh, 'SIGTERM');
    await waitFor(() => !fs.existsSync(`/proc/${primary}`) && !fs.existsSync(`/proc/${hf.pid}`), { timeoutMs: 15_000, what: 'holdfast to exit after its shell' });
    const gone = hf.logs.find((l) => l.event === 'parent-gone');
    console.log(`      holdfast stopped ${Date.now() - t0} ms after its shell was killed: ${JSON.stringify(gone)}`);
    expect(gone?.effect).to.equal('stopping as on SIGTERM');
    expect(hf.logs.some((l) => l.event === 'shutdown-complete')).to.equal(true);
  });

  it('SIGINT on an idle server exits 0', async function () {
    const hf = await startHoldfast(scene.dir, oneRouteConfig(scene));
    expect(await hf.stop('SIGINT')).to.equal(0);
    expect(hf.logs.some((l) => l.event === 'shutdown-complete')).to.equal(true);
  });

  it('a second SIGTERM cuts at once: a worker that cannot answer (SIGSTOPped) is killed, every process exits 0', async function () {
    this.timeout(30_000);
    const hf = await startHoldfast(scene.dir, oneRouteConfig(scene, 'shutdownTimeout: 20s\n'));
    const worker = hf.pid;
    process.kill(worker, 'SIGSTOP');
    hf.proc.kill('SIGTERM');
    await hf.waitForLog((l) => l.event === 'signal' && l.worker === 0);
    await new Promise((r) => setTimeout(r, 500));
    expect(hf.proc.exitCode, 'the first SIGTERM waits for the worker (shutdownTimeout 20s)').to.equal(null);
    const t0 = Date.now();
    // Signalled by hand (not hf.stop(), which would also kill what is left behind).
    const exited = new Promise<number | null>((r) => hf.proc.once('exit', (c) => r(c)));
    hf.proc.kill('SIGTERM');
    expect(await exited).to.equal(0);
    expect(Date.now() - t0).to.be.lessThan(3000);
    expect(hf.logs.some((l) => l.event === 'shutdown-forced')).to.equal(true);
    const gone = () => {
      try {
        process.kill(worker, 0);
        return false;
      } catch {
        return true;
      }
    };
    await waitFor(gone, { timeoutMs: 3000, what: 'the stopped worker to be killed' });
  });

  it('SIGHUP reloads routes; a broken config on reload is refused and the old one kept', async function () {
    this.timeout(30_000);
    const hf = await startHoldfast(scene.dir, oneRouteConfig(scene));
    try {
      const before = await sshJump(scene.cfgInfo.alice!, 'alice', hf.port, scene.sshd.port, 'echo ok');
      expect(before.stdout.toString()).to.equal('ok\n');
      const file = path.join(scene.dir, 'holdfast.yaml');
      fs.writeFileSync(file, oneRouteConfig(scene).replace(`127.0.0.1:${scene.sshd.port}`, '127.0.0.1:1'));
      hf.proc.kill('SIGHUP');
      await hf.waitForLog((l) => l.event === 'reloaded');
      const after = await sshJump(scene.cfgInfo.alice!, 'alice', hf.port, scene.sshd.port, 'echo ok');
      expect(after.stderr).to.include('administratively prohibited');

      fs.writeFileSync(file, 'routes: [oops\n');
      hf.proc.kill('SIGHUP');
      const failed = await hf.waitForLog((l) => l.event === 'reload-failed');
      expect(String((failed.problems as string[])[0])).to.match(/holdfast\.yaml:\d+:\d+: YAML syntax error/);
      expect(hf.proc.exitCode).to.equal(null);
    } finally {
      expect(await hf.stop()).to.equal(0);
    }
  });

  it('restartNeededFor names listen only while the listen change stands (undone: no restart needed)', async function () {
    this.timeout(30_000);
    const hf = await startHoldfast(scene.dir, oneRouteConfig(scene));
    try {
      const file = path.join(scene.dir, 'holdfast.yaml');
      fs.writeFileSync(file, oneRouteConfig(scene).replace('port: 0', 'port: 1'));
      hf.proc.kill('SIGHUP');
      const first = await hf.waitForLog((l) => l.event === 'reloaded');
      expect(first.restartNeededFor).to.deep.equal(['listen']);
      fs.writeFileSync(file, oneRouteConfig(scene));
      hf.proc.kill('SIGHUP');
      const second = await hf.waitForLog((l) => l.event === 'reloaded' && l !== first);
      expect(second.restartNeededFor, 'the listen change was undone').to.equal(undefined);
    } finally {
      expect(await hf.stop()).to.equal(0);
    }
  });

  it("a SIGHUP while a worker is starting (serving, its ready message not yet at the primary) is applied once it is ready, not lost; a SIGUSR2 then is refused with a reason", async function () {
    this.timeout(30_000);
    // Preloaded in every process: in the worker, the `ready` message leaves 1.5 s late, the way a
    // busy machine may deliver it after the `started` line.
    const preload = path.join(scene.dir, 'late-ready.mjs');
    fs.writeFileSync(
      preload,
      `import cluster from 'node:cluster';
if (cluster.isWorker) {
  const send = process.send.bind(process);
  process.send = (m, ...rest) => {
    if (m && m.holdfast === 'ready') {
      process.stdout.write(JSON.stringify({ event: 'test-ready-held' }) + '\\n');
      setTimeout(() => send(m, ...rest), 1500);
      return true;
    }
    return send(m, ...rest);
  };
}
`,
    );
    const hf = await startHoldfast(scene.dir, oneRouteConfig(scene), { nodeArgs: ['--import', preload] });
    try {
      await hf.waitForLog((l) => l.event === 'test-ready-held');
      expect(hf.logs.some((l) => l.event === 'worker-started'), 'the primary has not heard ready yet').to.equal(false);
      // The route moves to another port while the worker is not ready: the next -J must be refused.
      fs.writeFileSync(path.join(scene.dir, 'holdfast.yaml'), oneRouteConfig(scene).replace(`:${scene.sshd.port}"`, ':1"'));
      hf.proc.kill('SIGHUP');
      // An upgrade cannot start before the first generation serves: it is refused, and says what to do.
      hf.proc.kill('SIGUSR2');
      const ignored = await hf.waitForLog((l) => l.event === 'upgrade-ignored', 10_000, 'upgrade-ignored');
      expect(ignored.why).to.equal('the first generation is still starting: send SIGUSR2 again once worker-started is logged');
      await hf.waitForLog((l) => l.event === 'worker-started', 10_000, 'worker-started');
      const reloaded = await hf.waitForLog((l) => l.event === 'reloaded', 10_000, 'the reloaded line');
      expect(reloaded.level).to.equal('info');
      const r = await sshJump(scene.cfg.alice!, 'alice', hf.port, scene.sshd.port, 'echo reached');
      expect(r.stdout.toString()).to.equal('');
      expect(r.stderr).to.match(/stdio forwarding failed/);
      const refused = await hf.waitForLog((l) => l.event === 'channel-refused' && l.user === 'alice');
      expect(refused.code).to.equal('no-route');
    } finally {
      expect(await hf.stop()).to.equal(0);
    }
  });

  it('exits 1 with a clear message when the port is taken', async function () {
    const blocker = net.createServer();
    await new Promise<void>((r) => blocker.listen(0, '127.0.0.1', r));
    const port = (blocker.address() as net.AddressInfo).port;
    fs.writeFileSync(path.join(scene.dir, 'taken.yaml'), oneRouteConfig(scene).replace('port: 0', `port: ${port}`));
    const r = holdfast(['serve', '--config', 'taken.yaml'], { cwd: scene.dir });
    blocker.close();
    expect(r.code).to.equal(1);
    const line = r.stdout.split('\n').find((l) => l.includes('listen-failed'));
    expect(JSON.parse(line!).error).to.equal(`cannot listen on 127.0.0.1:${port}: the address is in use (another holdfast or sshd?); pick another listen.port`);
  });

  it('exits 78 with FILE:LINE:COL and opens nothing when the config is bad', async function () {
    fs.writeFileSync(path.join(scene.dir, 'bad.yaml'), 'routes:\n  - name: x\n    to: ["a:99999"]\n');
    const r = holdfast(['serve', '--config', 'bad.yaml'], { cwd: scene.dir });
    expect(r.code).to.equal(78);
    expect(r.stderr).to.match(/^bad\.yaml:3:10: routes\[0\]\.to\[0\]: "a:99999" is not a valid port/);
  });
});
