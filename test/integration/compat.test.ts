/**
 * Clients other than a default OpenSSH, through holdfast to a real sshd. Each case failed on ssh2
 * 1.17.0 as published and passes with patches/ssh2+1.17.0.patch (applied by `npm ci`): so these tests
 * also fail if the patch stops applying.
 */
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { execFileSync, spawnSync } from 'node:child_process';
import { expect } from 'chai';
import ssh2 from 'ssh2';
import { CONFIG_HEAD, makeScene, requireSshd, sshdHostKey, type Scene } from '../helpers/fixture.js';
import { startHoldfast, type Holdfast } from '../helpers/holdfast.js';
import { run, writeSshConfig } from '../helpers/ssh.js';
import { keygen, publicKey } from '../helpers/tmp.js';

/** A relay that sends the client's identification line to holdfast in `pieces` TCP segments. */
async function splittingRelay(target: number, pieces: number): Promise<{ port: number; close(): void }> {
  const socks: net.Socket[] = [];
  const srv = net.createServer((client) => {
    const up = net.connect({ host: '127.0.0.1', port: target, noDelay: true });
    socks.push(client, up);
    client.setNoDelay(true);
    client.on('error', () => up.destroy());
    up.on('error', () => client.destroy());
    up.pipe(client);
    let head = Buffer.alloc(0);
    const onData = async (d: Buffer) => {
      head = Buffer.concat([head, d]);
      const nl = head.indexOf(10);
      if (nl < 0) return;
      client.off('data', onData);
      client.pause();
      const line = head.subarray(0, nl + 1);
      const step = Math.ceil(line.length / pieces);
      for (let i = 0; i < line.length; i += step) {
        up.write(line.subarray(i, i + step));
        await new Promise((r) => setTimeout(r, 40)); // separate reads on holdfast's side
      }
      up.write(head.subarray(nl + 1));
      client.pipe(up);
      client.resume();
    };
    client.on('data', onData);
  });
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  return { port: (srv.address() as net.AddressInfo).port, close: () => (socks.forEach((s) => s.destroy()), srv.close()) };
}

describe('other clients and client settings, through holdfast (ssh2 patch)', function () {
  let scene: Scene;
  let hf: Holdfast;
  let rsaKey: string;

  before(async function () {
    this.timeout(60_000);
    requireSshd(this);
    scene = await makeScene(['alice']);
    scene.authorizeOwn('alice');
    rsaKey = keygen(scene.dir, 'id_rsa3072', 'rsa');
    scene.authorize('rsa', [publicKey(rsaKey)]);
    fs.appendFileSync(path.join(scene.dir, 'target_authorized_keys'), `${publicKey(rsaKey)}\n`);
    hf = await startHoldfast(scene.dir, `${CONFIG_HEAD}routes:\n  - name: target\n    to: ["127.0.0.1:${scene.sshd.port}"]\n`);
  });
  after(async function () {
    await hf?.stop();
    await scene?.stop();
  });

  it('logs in when the identification line arrives in 5 TCP segments', async function () {
    this.timeout(30_000);
    const relay = await splittingRelay(hf.port, 5);
    try {
      const r = await run('ssh', ['-F', scene.cfg.alice!, '-J', `alice@127.0.0.1:${relay.port}`, '-p', String(scene.sshd.port), 'root@127.0.0.1', 'echo five-segments']);
      expect(r.stdout.toString(), r.stderr).to.equal('five-segments\n');
    } finally {
      relay.close();
    }
  });

  it('ssh with PubkeyAcceptedAlgorithms=rsa-sha2-512 and an RSA key logs in (server-sig-algs, PK_OK)', async function () {
    this.timeout(30_000);
    // In the config file: ProxyJump hands -F to the jump leg's ssh, but not -o.
    const cfg = writeSshConfig(scene.dir, rsaKey, 'ssh_config_rsa512', ['PubkeyAcceptedAlgorithms rsa-sha2-512']);
    const r = await run('ssh', ['-F', cfg, '-J', `rsa@127.0.0.1:${hf.port}`, '-p', String(scene.sshd.port), 'root@127.0.0.1', 'echo rsa-sha2-512']);
    expect(r.stdout.toString(), r.stderr).to.equal('rsa-sha2-512\n');
    const ok = hf.logs.filter((l) => l.event === 'auth-accepted' && l.user === 'rsa');
    expect(ok.length).to.be.at.least(1);
  });

  it('an ssh-rsa (SHA-1) signature is refused and logged as exactly that', async function () {
    this.timeout(30_000);
    const client = new ssh2.Client();
    const err = await new Promise<Error | undefined>((resolve) => {
      client.once('ready', () => resolve(undefined));
      client.once('error', resolve);
      client.connect({ host: '127.0.0.1', port: hf.port, username: 'rsa', privateKey: fs.readFileSync(rsaKey) });
      // Ignore the server's EXT_INFO (server-sig-algs): ssh2's client then signs with SHA-1 ssh-rsa,
      // as old clients do.
      (client as unknown as { _protocol: { _handlers: Record<string, unknown> } })._protocol._handlers.EXT_INFO = () => {};
    });
    client.end();
    expect(err?.message).to.match(/All configured authentication methods failed/);
    const failed = await hf.waitForLog((l) => l.event === 'auth-failed' && l.user === 'rsa');
    expect(String(failed.why)).to.match(/^ssh-rsa \(SHA-1\) signatures are refused/);
  });

  describe("Dropbear's dbclient (multihop through holdfast)", function () {
    before(function () {
      if (spawnSync('sh', ['-c', 'command -v dbclient && command -v dropbearkey']).status !== 0) {
        console.log('    SKIPPED: dbclient/dropbearkey missing (Debian package dropbear-bin; test/ensure-system-deps.sh installs it as root)');
        this.skip();
      }
    });
    for (const [label, type, bits] of [['RSA-3072', 'rsa', '3072'], ['ECDSA P-521', 'ecdsa', '521']] as const) {
      it(`logs in with an ${label} key`, async function () {
        this.timeout(60_000);
        const key = path.join(scene.dir, `db_${type}`);
        execFileSync('dropbearkey', ['-t', type, '-s', bits, '-f', key], { stdio: 'ignore' });
        const pub = execFileSync('dropbearkey', ['-y', '-f', key]).toString().split('\n').find((l) => /^(ssh-rsa|ecdsa-sha2-)/.test(l))!;
        const user = `db${type}`;
        scene.authorize(user, [pub]);
        fs.appendFileSync(path.join(scene.dir, 'target_authorized_keys'), `${pub}\n`);
        const home = path.join(scene.dir, `dbhome_${type}`);
        fs.mkdirSync(path.join(home, '.ssh'), { recursive: true, mode: 0o700 });
        const r = await run('env', [`HOME=${home}`, '/usr/bin/dbclient', '-y', '-y', '-i', key, `${user}@127.0.0.1/${hf.port},root@127.0.0.1/${scene.sshd.port}`, `echo dropbear-${type}`], { timeoutMs: 30_000 });
        expect(r.stdout.toString(), r.stderr).to.equal(`dropbear-${type}\n`);
        expect(hf.logs.some((l) => l.event === 'auth-accepted' && l.user === user)).to.equal(true);
        expect(hf.logs.some((l) => l.event === 'channel-open' && l.user === user)).to.equal(true);
      });
    }
  });
  /** SHA256 fingerprint of a private key's public half (ssh-keygen reads either). */
  const fingerprint = (key: string) => execFileSync('ssh-keygen', ['-l', '-E', 'sha256', '-f', key]).toString().split(' ')[1]!;

  describe("PuTTY's plink (-proxycmd through holdfast)", function () {
    before(function () {
      if (spawnSync('sh', ['-c', 'command -v plink && command -v puttygen']).status !== 0) {
        console.log('    SKIPPED: plink/puttygen missing (Debian package putty-tools; test/ensure-system-deps.sh installs it as root)');
        this.skip();
      }
    });
    it('logs in through holdfast to the target and runs a command', async function () {
      this.timeout(60_000);
      const ppk = path.join(scene.dir, 'alice.ppk');
      execFileSync('puttygen', [scene.keys.alice!, '-O', 'private', '-o', ppk], { stdio: 'ignore' });
      const hop = `plink -batch -ssh -i ${ppk} -hostkey ${fingerprint(path.join(scene.dir, 'hk', 'key'))} -P ${hf.port} -nc 127.0.0.1:${scene.sshd.port} alice@127.0.0.1`;
      const r = await run('plink', ['-batch', '-ssh', '-i', ppk, '-hostkey', fingerprint(sshdHostKey(scene)), '-proxycmd', hop, '-P', String(scene.sshd.port), 'root@127.0.0.1', 'echo putty-ok'], { timeoutMs: 30_000 });
      expect(r.stdout.toString(), r.stderr).to.equal('putty-ok\n');
      const open = hf.logs.find((l) => l.event === 'auth-accepted' && l.user === 'alice' && typeof l.kex === 'string');
      expect(open, 'auth-accepted with the key exchange').to.not.equal(undefined);
    });
  });

  describe('paramiko (a Transport over a direct-tcpip channel of holdfast)', function () {
    before(function () {
      if (spawnSync('/usr/bin/python3', ['-c', 'import paramiko']).status !== 0) {
        console.log('    SKIPPED: paramiko missing (Debian package python3-paramiko; test/ensure-system-deps.sh installs it as root)');
        this.skip();
      }
    });
    it('logs in through holdfast to the target and runs a command', async function () {
      this.timeout(60_000);
      const script = [
        'import sys, paramiko',
        'key = paramiko.Ed25519Key.from_private_key_file(sys.argv[1])',
        'jump = paramiko.Transport(("127.0.0.1", int(sys.argv[2])))',
        'jump.connect(username="alice", pkey=key)',
        'ch = jump.open_channel("direct-tcpip", ("127.0.0.1", int(sys.argv[3])), ("127.0.0.1", 0))',
        'target = paramiko.Transport(ch)',
        'target.connect(username="root", pkey=key)',
        's = target.open_session(); s.exec_command("echo paramiko-ok")',
        'sys.stdout.write(s.makefile().read().decode()); print(jump.remote_version + " " + jump.get_security_options().kex[0], file=sys.stderr)',
        'target.close(); jump.close()',
      ].join('\n');
      const r = await run('/usr/bin/python3', ['-c', script, scene.keys.alice!, String(hf.port), String(scene.sshd.port)], { timeoutMs: 30_000 });
      expect(r.stdout.toString(), r.stderr).to.equal('paramiko-ok\n');
    });
  });
});
