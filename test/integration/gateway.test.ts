/**
 * Issue 4, gateway mode: acceptance 4 (what interactive and scripted users need, relayed) and the
 * error paths around it. The user runs the real OpenSSH client against holdfast with
 * `user+target+port` as the login name; holdfast logs in to a real sshd with its own key (or the
 * user's forwarded agent).
 */
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import crypto from 'node:crypto';
import { spawn, execFileSync, type ChildProcess } from 'node:child_process';
import { expect } from 'chai';
import { CONFIG_HEAD, makeScene, requireSshd, sshdHostKey, type Scene } from '../helpers/fixture.js';
import { startHoldfast, ROOT, type Holdfast } from '../helpers/holdfast.js';
import { keygen, knownHostsLine, publicKey } from '../helpers/tmp.js';
import { run, sshJump } from '../helpers/ssh.js';
import { stopProcess } from '../helpers/sshd.js';
import { waitFor } from '../helpers/wait.js';
import { tcpConnectionsTo } from '../helpers/proc.js';

const MiB = 1024 * 1024;

function sha256File(file: string): string {
  return crypto.createHash('sha256').update(fs.readFileSync(file)).digest('hex');
}

describe('gateway mode: holdfast terminates SSH and opens its own to the target', function () {
  let scene: Scene;
  let hf: Holdfast;
  let login: (target?: string) => string;
  const gw = (args: string[], opts: Parameters<typeof run>[2] = {}, cfg?: string, target?: string) =>
    run('ssh', ['-F', cfg ?? scene.cfg.alice!, '-p', String(hf.port), login(target), ...args], opts);

  before(async function () {
    this.timeout(60_000);
    requireSshd(this);
    scene = await makeScene(['alice', 'restricted', 'forced', 'limited'], {}, ['AcceptEnv HOLDFAST_OK_*', 'ListenAddress 127.0.0.2:$PORT', 'ListenAddress 127.0.0.4:$PORT', 'ListenAddress 127.0.0.5:$PORT']);
    scene.authorizeOwn('alice');
    scene.authorize('restricted', [`restrict ${publicKey(scene.keys.restricted!)}`]);
    scene.authorize('forced', [`command="echo forced" ${publicKey(scene.keys.forced!)}`]);
    scene.authorize('limited', [`permitopen="127.0.0.1:${scene.sshd.port}" ${publicKey(scene.keys.limited!)}`]);
    // holdfast's own key for the target, which accepts it as root next to the test identities.
    const gwKey = keygen(scene.dir, 'holdfast_gateway_key');
    keygen(scene.dir, 'stranger_key');
    fs.appendFileSync(path.join(scene.dir, 'target_authorized_keys'), `${publicKey(gwKey)}\n`);
    const port = scene.sshd.port;
    const hostKey = sshdHostKey(scene);
    fs.writeFileSync(path.join(scene.dir, 'known_hosts'), `${knownHostsLine(hostKey, port)}\n${knownHostsLine(hostKey, port, '127.0.0.5')}\n`);
    fs.writeFileSync(path.join(scene.dir, 'known_hosts_other'), `${knownHostsLine(keygen(scene.dir, 'other'), port, '127.0.0.2')}\n`);
    login = (target = `127.0.0.1+${port}`) => `alice+${target}@127.0.0.1`;
    hf = await startHoldfast(
      scene.dir,
      `${CONFIG_HEAD}connectTimeout: 5s
routes:
  - name: gw-agent
    to: ["127.0.0.5:${port}"]
    gateway: { user: root, agent: true, knownHosts: known_hosts }
  - name: gw
    users: [alice, restricted, forced, limited]
    to: ["127.0.0.1:${port}", "127.0.0.1:1"]
    gateway: { user: root, identity: holdfast_gateway_key, knownHosts: known_hosts }
  - name: gw-key-not-on-target
    to: ["127.0.0.4:${port}"]
    gateway: { user: root, identity: stranger_key, hostKeyPolicy: accept-new }
  - name: gw-wrong-host-key
    to: ["127.0.0.2:${port}"]
    gateway: { user: root, identity: holdfast_gateway_key, knownHosts: known_hosts_other }
  - name: jump-only
    to: ["127.0.0.3:${port}"]
`,
    );
  });

  afterEach(function () {
    if (this.currentTest?.state === 'failed' && hf) fs.writeFileSync('/tmp/gateway-failed-logs.jsonl', hf.logs.map((l) => JSON.stringify(l)).join('\n'));
  });

  after(async function () {
    await hf?.stop();
    await scene?.stop();
  });

  it('exec: stdout, stderr and the exit code come back', async function () {
    const r = await gw(['echo out; echo err >&2; exit 3']);
    expect(r.stdout.toString()).to.equal('out\n');
    expect(r.stderr).to.equal('err\n');
    expect(r.code).to.equal(3);
    const open = await hf.waitForLog((l) => l.event === 'gateway-open' && l.user === 'alice');
    expect(open).to.include({ route: 'gw', upstreamUser: 'root', auth: 'identity', addr: '127.0.0.1' });
    const ch = await hf.waitForLog((l) => l.event === 'channel-open' && l.kind === 'exec');
    expect(ch.command).to.equal('echo out; echo err >&2; exit 3');
  });

  it('stdin with EOF: printf abc | ssh … wc -c gives 3; a signal exit is relayed', async function () {
    const r = await gw(['wc -c'], { input: 'abc' });
    expect(r.stdout.toString().trim()).to.equal('3');
    expect(r.code).to.equal(0);
    // exit-signal: OpenSSH's client reports it and exits 255.
    const k = await gw(['kill -TERM $$']);
    expect(k.code).to.equal(255);
  });

  it('ssh -tt: a pty of the client\'s size, and stty size follows a window change', async function () {
    this.timeout(30_000);
    const helper = path.join(ROOT, 'test', 'helpers', 'pty-winch.py');
    const r = await run('python3', [helper, '20', '--', 'ssh', '-tt', '-F', scene.cfg.alice!, '-p', String(hf.port), login(), 'while read x; do stty size; done']);
    const out = r.stdout.toString();
    expect(out, `${out} / exit ${r.code} / ${r.stderr}`).to.include('24 80');
    expect(out, `${out} / exit ${r.code} / ${r.stderr}`).to.include('40 100');
    expect(out.indexOf('40 100')).to.be.greaterThan(out.indexOf('24 80'));
    expect(r.code, out).to.equal(0);
  });

  it('env: passed where the target\'s sshd accepts it (AcceptEnv), dropped by sshd where not', async function () {
    const r = await gw(['-o', 'SetEnv=HOLDFAST_OK_A=passed HOLDFAST_NO=leaked', 'echo "[$HOLDFAST_OK_A][$HOLDFAST_NO]"']);
    expect(r.stdout.toString()).to.equal('[passed][]\n');
  });

  it('sftp: put and get 64 MiB with matching SHA-256 (subsystem relayed as raw bytes)', async function () {
    this.timeout(120_000);
    const src = path.join(scene.dir, 'sftp-src.bin');
    fs.writeFileSync(src, crypto.randomBytes(64 * MiB));
    const remote = path.join(scene.dir, 'sftp-remote.bin');
    const back = path.join(scene.dir, 'sftp-back.bin');
    const batch = path.join(scene.dir, 'sftp-batch');
    fs.writeFileSync(batch, `put ${src} ${remote}\nget ${remote} ${back}\n`);
    const r = await run('sftp', ['-F', scene.cfg.alice!, '-P', String(hf.port), '-b', batch, login()], { timeoutMs: 110_000 });
    expect(r.code, r.stderr).to.equal(0);
    const h = sha256File(src);
    expect(sha256File(remote)).to.equal(h);
    expect(sha256File(back)).to.equal(h);
    const ch = await hf.waitForLog((l) => l.event === 'channel-close' && l.kind === 'subsystem:sftp');
    expect(Number(ch.bytesUp)).to.be.greaterThan(64 * MiB);
    expect(Number(ch.bytesDown)).to.be.greaterThan(64 * MiB);
  });

  describe('with the user\'s ssh-agent', function () {
    let agent: ChildProcess;
    let sock: string;

    before(async function () {
      sock = path.join(scene.dir, 'agent.sock');
      agent = spawn('ssh-agent', ['-D', '-a', sock], { stdio: 'ignore' });
      await waitFor(() => fs.existsSync(sock), { timeoutMs: 5000, what: 'ssh-agent socket' });
      execFileSync('ssh-add', [scene.keys.alice!], { env: { ...process.env, SSH_AUTH_SOCK: sock }, stdio: 'ignore' });
    });

    after(async function () {
      if (agent) await stopProcess(agent);
    });

    const fp = () => execFileSync('ssh-keygen', ['-lf', `${scene.keys.alice!}.pub`]).toString().split(' ')[1]!;

    it('authorized_keys restrict: the pty and agent forwarding are refused (as sshd does; ssh -tt then gives up)', async function () {
      const args = (extra: string[], cmd: string) => ['-F', scene.cfg.restricted!, '-A', '-o', `IdentityAgent=${sock}`, ...extra, '-p', String(hf.port), `restricted+127.0.0.1+${scene.sshd.port}@127.0.0.1`, cmd];
      const noAgent = await run('ssh', args([], 'echo "[$SSH_AUTH_SOCK]"'));
      expect(noAgent.stdout.toString(), noAgent.stderr).to.equal('[]\n');
      const tty = await run('ssh', args(['-tt'], 'echo never'));
      expect(tty.stderr).to.include('PTY allocation request failed');
      expect(tty.stdout.toString()).to.not.include('never');
      const refused = hf.logs.filter((l) => l.event === 'gateway-request-refused' && l.user === 'restricted').map((l) => String(l.what));
      expect(refused.join('|')).to.match(/pty/).and.to.match(/agent forwarding/);
    });

    it('ssh -A, then ssh-add -l on the target lists the user\'s key', async function () {
      const r = await gw(['-A', '-o', `IdentityAgent=${sock}`, 'ssh-add -l']);
      expect(r.code, r.stderr).to.equal(0);
      expect(r.stdout.toString()).to.include(fp());
    });

    it('agent: true: holdfast logs in to the target with the key in the user\'s forwarded agent', async function () {
      const r = await gw(['-A', '-o', `IdentityAgent=${sock}`, 'echo signed-by-your-agent'], {}, undefined, `127.0.0.5+${scene.sshd.port}`);
      expect(r.stdout.toString(), r.stderr).to.equal('signed-by-your-agent\n');
      const open = await hf.waitForLog((l) => l.event === 'gateway-open' && l.route === 'gw-agent');
      expect(open.auth).to.equal('agent');
    });

    it('agent: true without ssh -A: a one-line message that says to use ssh -A, exit 255', async function () {
      const r = await gw(['echo never'], {}, undefined, `127.0.0.5+${scene.sshd.port}`);
      expect(r.stdout.toString()).to.equal('');
      expect(r.stderr).to.match(/^holdfast: .*ssh -A/m);
      expect(r.code).to.equal(255);
    });
  });

  it('ssh -L through the gateway reaches a port on the target side', async function () {
    this.timeout(30_000);
    const echo = net.createServer((s) => s.pipe(s));
    await new Promise<void>((r) => echo.listen(0, '127.0.0.1', r));
    const echoPort = (echo.address() as net.AddressInfo).port;
    const lport = await new Promise<number>((r) => {
      const s = net.createServer().listen(0, '127.0.0.1', () => {
        const p = (s.address() as net.AddressInfo).port;
        s.close(() => r(p));
      });
    });
    const fwd = spawn('ssh', ['-F', scene.cfg.alice!, '-p', String(hf.port), '-N', '-o', 'ExitOnForwardFailure=yes', '-L', `127.0.0.1:${lport}:127.0.0.1:${echoPort}`, login()], { stdio: 'ignore' });
    try {
      const payload = crypto.randomBytes(256 * 1024);
      const got = await waitFor(
        () =>
          new Promise<Buffer | null>((resolve) => {
            const c = net.connect(lport, '127.0.0.1');
            const parts: Buffer[] = [];
            let n = 0;
            c.on('connect', () => c.write(payload));
            c.on('data', (d) => {
              parts.push(d);
              n += d.length;
              if (n >= payload.length) c.end();
            });
            c.on('error', () => resolve(null));
            c.on('close', () => resolve(n >= payload.length ? Buffer.concat(parts) : null));
          }),
        { timeoutMs: 15_000, what: 'the -L port to echo' },
      );
      expect(got.equals(payload)).to.equal(true);
      const open = await hf.waitForLog((l) => l.event === 'channel-open' && l.dst === `127.0.0.1:${echoPort}`);
      expect(open.addr).to.equal(`via 127.0.0.1:${scene.sshd.port}`);
    } finally {
      await stopProcess(fwd);
      echo.close();
    }
  });

  describe('refusals say what is wrong', function () {
    it("authorized_keys permitopen= names the only gateway targets the key may log in to", async function () {
      const as = (target: string) => run('ssh', ['-F', scene.cfg.limited!, '-p', String(hf.port), `limited+${target}@127.0.0.1`, 'echo reached']);
      const there = await as(`127.0.0.1+${scene.sshd.port}`);
      expect(there.stdout.toString(), there.stderr).to.equal('reached\n');
      // A target the route allows, but not the key.
      const elsewhere = await as('127.0.0.1+1');
      expect(elsewhere.code).to.equal(255);
      expect(elsewhere.stderr).to.include('holdfast: 127.0.0.1:1 is not allowed by permitopen for this key');
      const l = await hf.waitForLog((x) => x.event === 'gateway-refused' && x.user === 'limited');
      expect(l).to.include({ code: 'permitopen', dst: '127.0.0.1:1' });
    });

    it('no gateway route for the target', async function () {
      const r = await gw(['echo never'], {}, undefined, `127.0.0.9+${scene.sshd.port}`);
      expect(r.stderr).to.include(`holdfast: no gateway route allows alice to reach 127.0.0.9:${scene.sshd.port}`);
      expect(r.code).to.equal(255);
      await hf.waitForLog((l) => l.event === 'gateway-refused' && l.user === 'alice');
    });

    it('a route without gateway does not serve gateway logins, and a gateway route does not serve ssh -J', async function () {
      const r = await gw(['echo never'], {}, undefined, `127.0.0.3+${scene.sshd.port}`);
      expect(r.stderr).to.include('no gateway route allows');
      const j = await sshJump(scene.cfgInfo.alice!, 'alice', hf.port, scene.sshd.port, 'echo never');
      expect(j.code).to.equal(255);
      expect(j.stderr, j.stderr).to.include('administratively prohibited');
    });

    it('the target refuses the connection', async function () {
      const r = await gw(['echo never'], {}, undefined, '127.0.0.1+1');
      expect(r.stderr).to.include('holdfast: connection refused (127.0.0.1:1)');
      expect(r.code).to.equal(255);
      const l = await hf.waitForLog((x) => x.event === 'gateway-connect-failed' && x.dst === '127.0.0.1:1');
      expect(l.route).to.equal('gw');
    });

    it('the target refuses holdfast\'s key: the user is told which key to authorize', async function () {
      const r = await gw(['echo never'], {}, undefined, `127.0.0.4+${scene.sshd.port}`);
      expect(r.stderr).to.match(/holdfast: target 127\.0\.0\.4:\d+ .*authentication as root failed \(is holdfast's key .*stranger_key\.pub in the target's authorized_keys\?\)/);
      expect(r.code).to.equal(255);
    });

    it('a login name holdfast cannot read', async function () {
      const r = await gw(['echo never'], {}, undefined, 'db1+x+y');
      expect(r.stderr).to.include('holdfast: cannot read the target in "alice+db1+x+y"');
    });

    it('the target\'s host key does not match known_hosts: refused, logged loudly', async function () {
      const r = await gw(['echo never'], {}, undefined, `127.0.0.2+${scene.sshd.port}`);
      expect(r.stderr).to.match(/holdfast: target 127\.0\.0\.2:\d+ .*host key CHANGED \(SHA256:.*\): refused/);
      expect(r.code).to.equal(255);
      const loud = await hf.waitForLog((l) => l.event === 'upstream-host-key-changed' && l.role === 'target');
      expect(loud.level).to.equal('error');
      expect(String(loud.why)).to.include('man-in-the-middle');
    });

    it('authorized_keys command=: no gateway session for a key with a forced command', async function () {
      const forced = await run('ssh', ['-F', scene.cfg.forced!, '-p', String(hf.port), `forced+127.0.0.1+${scene.sshd.port}@127.0.0.1`, 'echo never']);
      expect(forced.stdout.toString()).to.equal('');
      expect(forced.stderr).to.include('forced command');
      expect(forced.code).to.equal(1);
    });
  });

  it('teardown: every gateway leg opened above is closed, and holdfast holds no connection to the target', async function () {
    this.timeout(20_000);
    const pid = hf.pid;
    await waitFor(() => tcpConnectionsTo(pid, scene.sshd.port).length === 0, { timeoutMs: 10_000, what: 'no holdfast socket to the target' });
    const opened = hf.logs.filter((l) => l.event === 'gateway-open').length;
    await waitFor(() => hf.logs.filter((l) => l.event === 'gateway-close').length === opened, { timeoutMs: 10_000, what: 'a gateway-close per gateway-open' });
    expect(opened).to.be.greaterThanOrEqual(5);
    expect(hf.stderr()).to.equal('');
  });
});
