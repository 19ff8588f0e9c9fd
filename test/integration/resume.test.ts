/**
 * Issue 23: `holdfast connect`, the ProxyCommand helper with a resumable client leg, with the real
 * OpenSSH client and sshd on loopback: output and exit status through it; transfers that survive
 * their transport being SIGKILLed again and again (hash equal, bytes replayed); a resume needs this
 * user's login and the secret; the detach timeout closes the target connection; the helper gives up
 * with one line; a refused destination reads as it does with ssh -J.
 */
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { expect } from 'chai';
import { CONFIG_HEAD, makeScene, requireSshd, sshdHostKey, type Scene } from '../helpers/fixture.js';
import { BIN, startHoldfast, type Holdfast } from '../helpers/holdfast.js';
import { run } from '../helpers/ssh.js';
import { waitFor } from '../helpers/wait.js';
import { helperProcs, proxyCommand, rawTransport } from '../helpers/resume.js';
import { FRAME } from '../../src/resume/frames.js';
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { rssMiB, tcpConnectionsTo } from '../helpers/proc.js';
import { freePort } from '../helpers/ports.js';

const MiB = 1024 * 1024;
/** Where the transfers of the kill tests wait for the 20th kill (64 MiB files). */
const HELD_BACK_AT = 63 * MiB;

describe('holdfast connect: a resumable client leg', function () {
  let scene: Scene;
  let hf: Holdfast;
  let file: string;
  let hash: string;
  let adminPort: number;
  const TOKEN = 'd'.repeat(40);
  const admin = async (p: string, init: RequestInit = {}) => (await fetch(`http://127.0.0.1:${adminPort}${p}`, { ...init, headers: { authorization: `Bearer ${TOKEN}` } })).text();

  before(async function () {
    this.timeout(60_000);
    requireSshd(this);
    scene = await makeScene(['alice', 'bob'], {}, ['ListenAddress 127.0.0.2:$PORT']);
    scene.authorizeOwn('alice', 'bob');
    file = path.join(scene.dir, 'data.bin');
    const data = crypto.randomBytes(64 * MiB);
    fs.writeFileSync(file, data);
    hash = crypto.createHash('sha256').update(data).digest('hex');
    adminPort = await freePort();
    fs.writeFileSync(path.join(scene.dir, 'admin.token'), `${TOKEN}\n`, { mode: 0o600 });
    hf = await startHoldfast(
      scene.dir,
      `${CONFIG_HEAD}workers: 1
admin: { address: 127.0.0.1, port: ${adminPort}, tokenFile: admin.token }
resume: { detachTimeout: 60s }
routes:
  - name: t
    to: ["127.0.0.1:${scene.sshd.port}"]
  - name: short
    to: ["127.0.0.2:${scene.sshd.port}"]
    resume: { detachTimeout: 2s }
`,
    );
  });

  after(async function () {
    await hf?.stop();
    await scene?.stop();
  });

  const sshVia = (cmd: string, opts: Parameters<typeof run>[2] = {}, target = '127.0.0.1', user = 'alice') =>
    run('ssh', ['-F', scene.cfg[user]!, '-o', proxyCommand(scene.cfg[user]!, user, hf.port, '--heartbeat 500'), '-p', String(scene.sshd.port), `root@${target}`, cmd], { timeoutMs: 120_000, ...opts });

  it("a command's output and exit status come through; the session ends with it (done)", async function () {
    this.timeout(30_000);
    const r = await sshVia('echo through-connect; exit 3');
    expect(r.stdout.toString(), r.stderr).to.equal('through-connect\n');
    expect(r.code).to.equal(3);
    const open = await hf.waitForLog((l) => l.event === 'resume-open');
    const closed = await hf.waitForLog((l) => l.event === 'resume-close' && l.resumable === open.resumable);
    expect(closed.reason).to.equal('done');
  });

  for (const dir of ['upload', 'download'] as const) {
    it(`a 64 MiB ${dir} whose transport ssh is SIGKILLed 20 times: SHA-256 equal, bytes replayed`, async function () {
      this.timeout(180_000);
      const before = hf.logs.length;
      const user = spawn('ssh', ['-F', scene.cfg.alice!, '-o', proxyCommand(scene.cfg.alice!, 'alice', hf.port, '--heartbeat 500 -q'), '-p', String(scene.sshd.port), 'root@127.0.0.1', dir === 'upload' ? 'sha256sum' : `head -c ${HELD_BACK_AT} ${file}; read go; tail -c +${HELD_BACK_AT + 1} ${file}`], { stdio: ['pipe', 'pipe', 'pipe'] });
      const got = crypto.createHash('sha256');
      let out = '';
      let err = '';
      user.stdout.on('data', (d: Buffer) => (dir === 'upload' ? (out += d) : got.update(d)));
      user.stderr.on('data', (d) => (err += d));
      // The last MiB waits for the 20th kill (a transfer that ended first would leave kills untried:
      // 19 of 20 once in CI): upload, the rest of the file; download, the line the target waits for.
      const head = dir === 'upload' ? fs.createReadStream(file, { end: HELD_BACK_AT - 1 }) : undefined;
      const headSent = head ? new Promise<void>((r) => head.once('end', () => r())) : Promise.resolve();
      head?.pipe(user.stdin, { end: false });
      const rest = () => void headSent.then(() => (dir === 'upload' ? fs.createReadStream(file, { start: HELD_BACK_AT }).pipe(user.stdin) : user.stdin.end('go\n')));
      let restSent = false;
      const exited = new Promise<number | null>((r) => user.once('close', r));
      let kills = 0;
      let lastTransport = 0;
      for (let i = 0; i < 1000 && user.exitCode === null; i++) {
        if (kills >= 20) {
          if (!restSent) rest();
          restSent = true;
          break;
        }
        await new Promise((r) => setTimeout(r, 50));
        const t = helperProcs(user.pid!).transport;
        // Each kill hits a transport that has resumed (a new pid) and carried bytes for a moment.
        if (t && t !== lastTransport && hf.logs.slice(before).filter((l) => l.event === 'session-resumed' || l.event === 'resume-open').length > kills) {
          await new Promise((r) => setTimeout(r, 60));
          try {
            process.kill(t, 'SIGKILL');
            kills++;
            lastTransport = t;
          } catch {
            /* gone already */
          }
        }
      }
      if (!restSent) rest();
      const code = await exited;
      const resumed = hf.logs.slice(before).filter((l) => l.event === 'session-resumed');
      const replayed = resumed.reduce((n, l) => n + Number(l.replayedDown) + Number(l.replayedUp), 0);
      console.log(`      ${dir}: ${kills} transports killed, ${resumed.length} resumes, ${replayed} bytes replayed, exit ${code}`);
      expect(code, err).to.equal(0);
      expect(dir === 'upload' ? out.split(' ')[0] : got.digest('hex')).to.equal(hash);
      expect(kills).to.equal(20);
      expect(resumed.length).to.be.at.least(20);
      expect(replayed).to.be.greaterThan(0);
    });
  }

  it("a resume needs the session's secret and this user's login: a wrong secret and another user's login are refused", async function () {
    this.timeout(30_000);
    const a = rawTransport(scene.cfg.alice!, 'alice', hf.port);
    a.hello({ v: 1, dst: { host: '127.0.0.1', port: scene.sshd.port } });
    const welcome = await waitFor(() => a.json(FRAME.WELCOME), { timeoutMs: 10_000, what: 'the WELCOME' });
    const token = String(welcome.token);
    expect(Buffer.from(token, 'base64url')).to.have.length(32);
    const bob = rawTransport(scene.cfg.bob!, 'bob', hf.port);
    bob.hello({ v: 1, resume: token, received: 0, sent: 0 });
    expect(await waitFor(() => bob.json(FRAME.REFUSED), { what: "bob's refusal" })).to.include({ code: 'other-user' });
    const wrong = rawTransport(scene.cfg.alice!, 'alice', hf.port);
    wrong.hello({ v: 1, resume: crypto.randomBytes(32).toString('base64url'), received: 0, sent: 0 });
    expect(await waitFor(() => wrong.json(FRAME.REFUSED), { what: 'the refusal' })).to.include({ code: 'unknown' });
    const refusals = await waitFor(() => {
      const r = hf.logs.filter((l) => l.event === 'resume-refused');
      return r.length >= 2 ? r : undefined;
    });
    expect(refusals.map((l) => [l.user, l.cause])).to.deep.include.members([['bob', 'other-user'], ['alice', 'unknown']]);
    const sessions = await admin('/sessions');
    const metrics = await admin('/metrics');
    for (const t of [a, bob, wrong]) t.stop();
    expect(JSON.stringify(hf.logs)).to.not.include(token);
    expect(hf.stderr()).to.not.include(token);
    for (const text of [sessions, metrics]) expect(text).to.not.include(token).and.not.include(Buffer.from(token, 'base64url').toString('hex'));
    expect(metrics).to.match(/holdfast_resumes_total\{result="refused"\} [2-9]/);
  });

  it('detached past resume.detachTimeout (route: 2 s): the target connection is closed (detach-timeout)', async function () {
    this.timeout(30_000);
    const a = rawTransport(scene.cfg.alice!, 'alice', hf.port);
    a.hello({ v: 1, dst: { host: '127.0.0.2', port: scene.sshd.port } });
    const welcome = await waitFor(() => a.json(FRAME.WELCOME), { timeoutMs: 10_000, what: 'the WELCOME' });
    expect(welcome.detachTimeoutMs).to.equal(2000);
    await waitFor(() => tcpConnectionsTo(hf.pid, scene.sshd.port).some((l) => l.includes('127.0.0.2')), { what: 'the target connection' });
    a.stop();
    const detached = await hf.waitForLog((l) => l.event === 'session-detached' && l.resumable === welcome.id);
    // Operators see it: /sessions (holdfast sessions) and the gauge.
    const listed = JSON.parse(await admin('/sessions')) as Array<Record<string, unknown>>;
    expect(listed.find((x) => x.id === welcome.id)).to.include({ user: 'alice', mode: 'jump' }).and.have.property('detachedS');
    expect(await admin('/metrics')).to.match(/holdfast_resumable_sessions\{state="detached"\} [1-9]/);
    const closed = await hf.waitForLog((l) => l.event === 'resume-close' && l.resumable === welcome.id, 10_000);
    expect(closed.reason).to.equal('detach-timeout');
    expect(Date.parse(String(closed.time)) - Date.parse(String(detached.time))).to.be.within(1500, 4000);
    await waitFor(() => !tcpConnectionsTo(hf.pid, scene.sshd.port).some((l) => l.includes('127.0.0.2')), { what: 'the target connection to close' });
  });

  it('a refused destination reads as with ssh -J; exit 255', async function () {
    this.timeout(30_000);
    const r = await sshVia('true', {}, '127.0.0.9');
    expect(r.code).to.equal(255);
    expect(r.stderr).to.include('channel 0: open failed: administratively prohibited: holdfast: no route allows alice to reach 127.0.0.9:');
  });
  /** The user's ssh through holdfast connect, its stdout hashed; resolves with its exit. */
  function userSsh(cmd: string, target = '127.0.0.1') {
    const user = spawn('ssh', ['-F', scene.cfg.alice!, '-o', proxyCommand(scene.cfg.alice!, 'alice', hf.port, '--heartbeat 500 -q'), '-p', String(scene.sshd.port), `root@${target}`, cmd], { stdio: ['ignore', 'pipe', 'pipe'] });
    const hashed = crypto.createHash('sha256');
    let bytes = 0;
    let text = '';
    let err = '';
    user.stdout.on('data', (d: Buffer) => {
      bytes += d.length;
      hashed.update(d);
      if (text.length < 4096) text += d.toString();
    });
    user.stderr.on('data', (d) => (err += d));
    const exit = new Promise<number | null>((r) => user.once('close', r));
    return { user, exit, bytes: () => bytes, text: () => text, err: () => err, digest: () => hashed.digest('hex') };
  }

  it('the target writes 64 MiB while the client is away (buffer 4 MiB): holdfast holds about the buffer; after the resume every byte arrives', async function () {
    this.timeout(90_000);
    const idleRss = rssMiB(hf.pid);
    const before = hf.logs.length;
    const u = userSsh(`cat ${file}`);
    await waitFor(() => u.bytes() > 2 * MiB || undefined, { timeoutMs: 30_000, what: 'the first bytes' });
    const { helper, transport } = helperProcs(u.user.pid!);
    process.kill(helper!, 'SIGSTOP');
    process.kill(transport!, 'SIGKILL');
    try {
      const detached = await hf.waitForLog((l) => l.event === 'session-detached' && hf.logs.indexOf(l) >= before, 20_000);
      // The buffer fills from the target, then the target is paused: wait until the RSS settles.
      let last = 0;
      let rss = 0;
      for (let i = 0; i < 40; i++) {
        await new Promise((r) => setTimeout(r, 250));
        rss = rssMiB(hf.pid);
        if (i > 8 && Math.abs(rss - last) < 0.5) break;
        last = rss;
      }
      console.log(`      detached with ${Number(detached.heldBytes)} bytes held; holdfast RSS ${idleRss.toFixed(0)} MiB idle -> ${rss.toFixed(0)} MiB while the target writes 64 MiB to a detached session`);
      expect(rss - idleRss, 'MiB of RSS beyond idle').to.be.below(4 + 28);
    } finally {
      process.kill(helper!, 'SIGCONT');
    }
    expect(await u.exit, u.err()).to.equal(0);
    expect(u.digest()).to.equal(hash);
  });

  it('`echo started; sleep 5; echo done; exit 3` across a 20 s outage: the user sees done and exit status 3', async function () {
    this.timeout(90_000);
    const before = hf.logs.length;
    const u = userSsh('echo started; sleep 5; echo done; exit 3');
    // The user's ssh is logged in to the target and the command runs: then the network goes.
    await waitFor(() => u.text().startsWith('started\n') || undefined, { timeoutMs: 20_000, what: 'the command to start' });
    const { helper, transport } = helperProcs(u.user.pid!);
    process.kill(helper!, 'SIGSTOP');
    process.kill(transport!, 'SIGKILL');
    await new Promise((r) => setTimeout(r, 20_000));
    process.kill(helper!, 'SIGCONT');
    expect(await u.exit, u.err()).to.equal(3);
    expect(u.text()).to.equal('started\ndone\n');
    const resumed = await hf.waitForLog((l) => l.event === 'session-resumed' && hf.logs.indexOf(l) >= before);
    expect(Number(resumed.gapMs)).to.be.within(19_000, 30_000);
  });

  it('holdfast unreachable for longer than detachTimeout (2 s): the helper gives up with one line, exit 255', async function () {
    this.timeout(60_000);
    const before = hf.logs.length;
    const u = userSsh('sleep 30', '127.0.0.2');
    await hf.waitForLog((l) => l.event === 'resume-open' && hf.logs.indexOf(l) >= before, 20_000);
    process.kill(hf.pid, 'SIGSTOP');
    let code: number | null;
    try {
      code = await u.exit;
    } finally {
      process.kill(hf.pid, 'SIGCONT');
    }
    const lines = u.err().split('\n').filter((l) => l.startsWith('holdfast connect:'));
    console.log(`      the helper said: ${lines.join(' / ')}`);
    expect(code).to.equal(255);
    expect(lines).to.deep.equal(['holdfast connect: gave up: holdfast could not be reached again within 2 s (its resume.detachTimeout); the session is gone']);
  });

  it("plink -proxycmd 'holdfast connect ...': a command's output and exit status", async function () {
    this.timeout(30_000);
    if (spawnSync('sh', ['-c', 'command -v plink && command -v puttygen']).status !== 0) {
      console.log('    SKIPPED: plink/puttygen missing (Debian package putty-tools; test/ensure-system-deps.sh installs it as root)');
      return this.skip();
    }
    const ppk = path.join(scene.dir, 'alice-resume.ppk');
    execFileSync('puttygen', [scene.keys.alice!, '-O', 'private', '-o', ppk], { stdio: 'ignore' });
    const fp = execFileSync('ssh-keygen', ['-l', '-E', 'sha256', '-f', sshdHostKey(scene)]).toString().split(' ')[1]!;
    const helper = `${process.execPath} ${BIN} connect -F ${scene.cfg.alice} alice@127.0.0.1:${hf.port} %host %port`;
    const r = await run('plink', ['-batch', '-ssh', '-i', ppk, '-hostkey', fp, '-proxycmd', helper, '-P', String(scene.sshd.port), 'root@127.0.0.1', 'echo plink-resume; exit 4'], { timeoutMs: 20_000 });
    expect(r.stdout.toString(), r.stderr).to.equal('plink-resume\n');
    expect(r.code).to.equal(4);
  });
  /** A resumable session of alice's whose transport is gone: its WELCOME. */
  async function detachedSession(): Promise<Record<string, unknown>> {
    const a = rawTransport(scene.cfg.alice!, 'alice', hf.port);
    a.hello({ v: 1, dst: { host: '127.0.0.1', port: scene.sshd.port } });
    const welcome = await waitFor(() => a.json(FRAME.WELCOME), { timeoutMs: 10_000, what: 'the WELCOME' });
    a.stop();
    await hf.waitForLog((l) => l.event === 'session-detached' && l.resumable === welcome.id);
    return welcome;
  }
  it("removing the user's key + SIGHUP ends a detached session (access-revoked)", async function () {
    this.timeout(30_000);
    const welcome = await detachedSession();
    scene.authorize('alice', []);
    try {
      hf.proc.kill('SIGHUP');
      const closed = await hf.waitForLog((l) => l.event === 'resume-close' && l.resumable === welcome.id, 10_000);
      expect(closed.reason).to.equal('access-revoked');
    } finally {
      scene.authorizeOwn('alice');
      hf.proc.kill('SIGHUP');
    }
  });
  it('POST /sessions/ID/close (what holdfast sessions --close sends) ends a detached session (admin-closed); it is no longer listed', async function () {
    this.timeout(30_000);
    const welcome = await detachedSession();
    const said = JSON.parse(await admin(`/sessions/${String(welcome.id)}/close`, { method: 'POST', body: JSON.stringify({ why: 'laptop reported stolen' }) })) as { closed: boolean };
    expect(said.closed).to.equal(true);
    const closed = await hf.waitForLog((l) => l.event === 'resume-close' && l.resumable === welcome.id, 10_000);
    expect([closed.reason, closed.detail]).to.deep.equal(['admin-closed', 'laptop reported stolen']);
    const listed = JSON.parse(await admin('/sessions')) as Array<{ id: string }>;
    expect(listed.map((x) => x.id), 'no longer listed').to.not.include(welcome.id);
  });
  it('check and explain show the resume settings per route', async function () {
    this.timeout(30_000);
    const cfg = path.join(scene.dir, 'holdfast.yaml');
    const check = await run(process.execPath, [BIN, 'check', '--config', cfg]);
    expect(check.stdout.toString()).to.include('resume (holdfast connect): detached sessions kept 1m, resumed from any address');
    expect(check.stdout.toString()).to.include('resume (holdfast connect): detached sessions kept 2s');
    const ex = await run(process.execPath, [BIN, 'explain', '--config', cfg, '-u', 'alice', `127.0.0.2:${scene.sshd.port}`]);
    expect(ex.stdout.toString()).to.include('resume (holdfast connect): detached sessions kept 2s, resumed from any address; buffer 4 MiB each way');
  });
});
