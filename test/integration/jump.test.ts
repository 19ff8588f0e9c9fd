/**
 * Issue 2, acceptance 2 and 3: real `ssh -J` through holdfast to a real sshd.
 */
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import crypto from 'node:crypto';
import { Writable } from 'node:stream';
import { expect } from 'chai';
import { makeScene, requireSshd, type Scene } from '../helpers/fixture.js';
import { startHoldfast, type Holdfast } from '../helpers/holdfast.js';
import { publicKey, removeTempDirs } from '../helpers/tmp.js';
import { run, sshJump } from '../helpers/ssh.js';

const MiB = 1024 * 1024;

function sha256File(file: string): string {
  return crypto.createHash('sha256').update(fs.readFileSync(file)).digest('hex');
}

function writeRandomFile(file: string, bytes: number): string {
  const fd = fs.openSync(file, 'w');
  const hash = crypto.createHash('sha256');
  for (let done = 0; done < bytes; done += MiB) {
    const chunk = crypto.randomBytes(Math.min(MiB, bytes - done));
    hash.update(chunk);
    fs.writeSync(fd, chunk);
  }
  fs.closeSync(fd);
  return hash.digest('hex');
}

describe('ssh -J through holdfast to a real sshd', function () {
  let scene: Scene;
  let hf: Holdfast;
  let echo: net.Server;
  let echoPort: number;

  before(async function () {
    requireSshd(this);
    scene = await makeScene(['alice', 'bob', 'carol', 'dave', 'erin', 'frank', 'mallory']);
    scene.authorizeOwn('alice');
    scene.authorize('bob', [publicKey(scene.keys.bob!)]);
    scene.authorize('carol', [`from="10.9.9.9" ${publicKey(scene.keys.carol!)}`]);
    scene.authorize('dave', [`permitopen="127.0.0.1:${scene.sshd.port}" ${publicKey(scene.keys.dave!)}`]);
    scene.authorize('erin', [`restrict ${publicKey(scene.keys.erin!)}`]);
    scene.authorize('frank', [`from="10.0.0.0/8,127.0.0.1",no-pty ${publicKey(scene.keys.frank!)}`]);
    // mallory's key is authorized for nobody; she tries alice's account.

    // A TCP service that answers only after the client's EOF: it proves half-close is relayed.
    echo = net.createServer({ allowHalfOpen: true }, (s) => {
      const parts: Buffer[] = [];
      s.on('data', (d) => parts.push(d));
      s.on('end', () => s.end(`got ${Buffer.concat(parts).length} bytes: ${Buffer.concat(parts).toString().toUpperCase()}`));
    });
    await new Promise<void>((r) => echo.listen(0, '127.0.0.1', r));
    echoPort = (echo.address() as net.AddressInfo).port;

    hf = await startHoldfast(
      scene.dir,
      `listen: [{address: 127.0.0.1, port: 0}]
hostKeys: [hk/ssh_host_ed25519_key]
authorizedKeys: ak/%u
connectTimeout: 3s
routes:
  - name: echo-for-alice
    users: [alice]
    to: ["127.0.0.1:${echoPort}"]
  - name: target
    users: ["*", "!nobody"]
    to: ["127.0.0.1:${scene.sshd.port}", "localhost:${scene.sshd.port}", "127.0.0.1:1"]
`,
    );
  });

  after(async function () {
    await hf?.stop();
    await scene?.sshd.stop();
    echo?.close();
    removeTempDirs();
  });

  it('runs a command on the target and returns its exit code', async function () {
    const r = await sshJump(scene.cfg.alice!, 'alice', hf.port, scene.sshd.port, 'echo hello from $(whoami); exit 7');
    expect(r.stdout.toString()).to.equal('hello from root\n');
    expect(r.code).to.equal(7);
    const open = await hf.waitForLog((l) => l.event === 'channel-open' && l.user === 'alice');
    expect(open).to.include({ dst: `127.0.0.1:${scene.sshd.port}`, route: 'target', addr: '127.0.0.1' });
  });

  it('works with ProxyJump in ~/.ssh/config', async function () {
    const cfg = path.join(scene.dir, 'proxyjump_config');
    fs.writeFileSync(
      cfg,
      `Host db1\n  HostName 127.0.0.1\n  Port ${scene.sshd.port}\n  User root\n  ProxyJump alice@127.0.0.1:${hf.port}\n` +
        fs.readFileSync(scene.cfg.alice!, 'utf8'),
    );
    const r = await run('ssh', ['-F', cfg, 'db1', 'echo via-proxyjump']);
    expect(r.stdout.toString()).to.equal('via-proxyjump\n');
    expect(r.code).to.equal(0);
  });

  it('moves 64 MiB up and 64 MiB down with matching SHA-256', async function () {
    this.timeout(120_000);
    const src = path.join(scene.dir, 'up.bin');
    const srcHash = writeRandomFile(src, 64 * MiB);
    const dest = path.join(scene.dir, 'arrived.bin');
    const up = await sshJump(scene.cfg.alice!, 'alice', hf.port, scene.sshd.port, `cat > ${dest}`, { input: fs.createReadStream(src) });
    expect(up.code, up.stderr).to.equal(0);
    expect(fs.statSync(dest).size).to.equal(64 * MiB);
    expect(sha256File(dest)).to.equal(srcHash);

    const hash = crypto.createHash('sha256');
    const down = await sshJump(scene.cfg.alice!, 'alice', hf.port, scene.sshd.port, `cat ${src}`, { stdoutTo: hashSink(hash) });
    expect(down.code, down.stderr).to.equal(0);
    expect(hash.digest('hex')).to.equal(srcHash);

    const close = await hf.waitForLog((l) => l.event === 'session-close' && Number(l.bytesUp) > 64 * MiB);
    expect(close).to.include({ user: 'alice', reason: 'peer-closed' });
  });

  it('carries scp and sftp (-J and -o ProxyJump)', async function () {
    this.timeout(60_000);
    const src = path.join(scene.dir, 'scp-src.bin');
    const hash = writeRandomFile(src, 4 * MiB);
    const viaScp = path.join(scene.dir, 'via-scp.bin');
    const scp = await run('scp', ['-F', scene.cfg.alice!, '-J', `alice@127.0.0.1:${hf.port}`, '-P', String(scene.sshd.port), src, `root@127.0.0.1:${viaScp}`]);
    expect(scp.code, scp.stderr).to.equal(0);
    expect(sha256File(viaScp)).to.equal(hash);

    const back = path.join(scene.dir, 'via-scp-back.bin');
    const scpDown = await run('scp', ['-F', scene.cfg.alice!, '-o', `ProxyJump=alice@127.0.0.1:${hf.port}`, '-P', String(scene.sshd.port), `root@127.0.0.1:${viaScp}`, back]);
    expect(scpDown.code, scpDown.stderr).to.equal(0);
    expect(sha256File(back)).to.equal(hash);

    const viaSftp = path.join(scene.dir, 'via-sftp.bin');
    const sftpBack = path.join(scene.dir, 'via-sftp-back.bin');
    const batch = path.join(scene.dir, 'sftp-batch');
    fs.writeFileSync(batch, `put ${src} ${viaSftp}\nget ${viaSftp} ${sftpBack}\n`);
    const sftp = await run('sftp', ['-F', scene.cfg.alice!, '-J', `alice@127.0.0.1:${hf.port}`, '-P', String(scene.sshd.port), '-b', batch, 'root@127.0.0.1']);
    expect(sftp.code, sftp.stderr).to.equal(0);
    expect(sha256File(viaSftp)).to.equal(hash);
    expect(sha256File(sftpBack)).to.equal(hash);

    const sftpO = await run('sftp', ['-F', scene.cfg.alice!, '-o', `ProxyJump=alice@127.0.0.1:${hf.port}`, '-P', String(scene.sshd.port), '-b', batch, 'root@127.0.0.1']);
    expect(sftpO.code, sftpO.stderr).to.equal(0);
  });

  it('relays half-close: the client EOF reaches the target, whose answer still comes back', async function () {
    const r = await run('ssh', ['-F', scene.cfg.alice!, '-p', String(hf.port), '-W', `127.0.0.1:${echoPort}`, 'alice@127.0.0.1'], { input: 'half-close works' });
    expect(r.stdout.toString()).to.equal('got 16 bytes: HALF-CLOSE WORKS');
    expect(r.code).to.equal(0);
  });

  it('refuses a destination no route allows, and logs user, source and destination', async function () {
    const r = await sshJump(scene.cfgInfo.alice!, 'alice', hf.port, 2200, 'true', {}, '127.0.0.1');
    expect(r.code).to.equal(255);
    expect(r.stderr).to.match(/open failed: administratively prohibited: holdfast: no route allows alice to reach 127\.0\.0\.1:2200/);
    const line = await hf.waitForLog((l) => l.event === 'channel-refused' && l.dst === '127.0.0.1:2200');
    expect(line.user).to.equal('alice');
    expect(String(line.src)).to.match(/^127\.0\.0\.1:\d+$/);
    expect(line.level).to.equal('warn');
  });

  it("refuses a user who is not in a route's users for that route", async function () {
    const asAlice = await run('ssh', ['-F', scene.cfg.alice!, '-p', String(hf.port), '-W', `127.0.0.1:${echoPort}`, 'alice@127.0.0.1'], { input: 'x' });
    expect(asAlice.stdout.toString()).to.equal('got 1 bytes: X');
    const asBob = await run('ssh', ['-F', scene.cfgInfo.bob!, '-p', String(hf.port), '-W', `127.0.0.1:${echoPort}`, 'bob@127.0.0.1'], { input: 'x' });
    expect(asBob.code).to.equal(255);
    expect(asBob.stderr).to.include('administratively prohibited');
    const line = await hf.waitForLog((l) => l.event === 'channel-refused' && l.user === 'bob');
    expect(String(line.why)).to.include('echo-for-alice: user "bob" is not in users');
    // bob still reaches what his routes allow.
    const ok = await sshJump(scene.cfg.bob!, 'bob', hf.port, scene.sshd.port, 'echo bob-ok');
    expect(ok.stdout.toString()).to.equal('bob-ok\n');
  });

  it('refuses a wrong key and logs user and source address', async function () {
    const r = await sshJump(scene.cfgInfo.mallory!, 'alice', hf.port, scene.sshd.port, 'true');
    expect(r.code).to.equal(255);
    expect(r.stderr).to.include('Permission denied (publickey)');
    const line = await hf.waitForLog((l) => l.event === 'auth-failed' && l.user === 'alice');
    expect(line.why).to.equal('key not in authorized_keys');
    expect(String(line.src)).to.match(/^127\.0\.0\.1:\d+$/);
    expect(String(line.fingerprint)).to.match(/^SHA256:/);
  });

  it('enforces from= in authorized_keys', async function () {
    const carol = await sshJump(scene.cfg.carol!, 'carol', hf.port, scene.sshd.port, 'true');
    expect(carol.code).to.equal(255);
    const line = await hf.waitForLog((l) => l.event === 'auth-failed' && l.user === 'carol');
    expect(String(line.why)).to.include('not allowed by from=');
    const frank = await sshJump(scene.cfg.frank!, 'frank', hf.port, scene.sshd.port, 'echo frank-ok');
    expect(frank.stdout.toString()).to.equal('frank-ok\n');
  });

  it('enforces permitopen= and restrict / no-port-forwarding', async function () {
    const daveOk = await sshJump(scene.cfg.dave!, 'dave', hf.port, scene.sshd.port, 'echo dave-ok');
    expect(daveOk.stdout.toString()).to.equal('dave-ok\n');
    const daveNo = await sshJump(scene.cfgInfo.dave!, 'dave', hf.port, scene.sshd.port, 'true', {}, 'localhost');
    expect(daveNo.code).to.equal(255);
    expect(daveNo.stderr).to.include('not allowed by permitopen');
    const erin = await sshJump(scene.cfgInfo.erin!, 'erin', hf.port, scene.sshd.port, 'true');
    expect(erin.code).to.equal(255);
    expect(erin.stderr).to.include('port forwarding is disabled for this key');
  });

  it('answers "connect failed" with the reason when the destination refuses', async function () {
    const r = await sshJump(scene.cfgInfo.alice!, 'alice', hf.port, 1, 'true');
    expect(r.code).to.equal(255);
    expect(r.stderr).to.match(/open failed: connect failed: connection refused \(127\.0\.0\.1:1\)/);
    await hf.waitForLog((l) => l.event === 'channel-connect-failed' && l.dst === '127.0.0.1:1' && l.why === 'connection refused');
  });

  it('tells a user who logs in without -J, in one line, how to use it', async function () {
    const r = await run('ssh', ['-F', scene.cfg.alice!, '-p', String(hf.port), 'alice@127.0.0.1']);
    expect(r.code).to.equal(1);
    expect(r.stderr).to.include('this is an SSH jump host');
    expect(r.stderr).to.include(`ssh -J alice@<this-host>:${hf.port} user@target`);
    const exec = await run('ssh', ['-F', scene.cfg.alice!, '-p', String(hf.port), 'alice@127.0.0.1', 'id']);
    expect(exec.code).to.equal(1);
    expect(exec.stdout.length).to.equal(0);
  });
});

function hashSink(hash: crypto.Hash): NodeJS.WritableStream {
  return new Writable({
    write(chunk: Buffer, _enc, cb) {
      hash.update(chunk);
      cb();
    },
  });
}
