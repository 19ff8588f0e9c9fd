/**
 * Issue 2, acceptance 6: malformed input on the SSH port never crashes holdfast, other sessions carry
 * on, a silent client is dropped at loginGraceTime, and more than maxAuthTries failures end the
 * connection.
 */
import net from 'node:net';
import crypto from 'node:crypto';
import fs from 'node:fs';
import { expect } from 'chai';
import ssh2 from 'ssh2';
import { makeScene, oneRouteConfig, requireSshd, type Scene } from '../helpers/fixture.js';
import { startHoldfast, type Holdfast } from '../helpers/holdfast.js';
import { keygen } from '../helpers/tmp.js';
import { sshJump } from '../helpers/ssh.js';
import { waitFor } from '../helpers/wait.js';
import { byte, login, sendRaw, u32 } from '../helpers/raw-ssh.js';

/** Connects, sends `bytes`, and resolves with how long the server took to close the connection. */
function sendAndWaitClose(port: number, bytes: Buffer | null, timeoutMs = 10_000): Promise<{ closedAfterMs: number; received: Buffer }> {
  return new Promise((resolve, reject) => {
    const started = Date.now();
    const got: Buffer[] = [];
    const s = net.connect(port, '127.0.0.1', () => {
      if (bytes) s.write(bytes);
    });
    const t = setTimeout(() => {
      s.destroy();
      reject(new Error(`server did not close within ${timeoutMs} ms`));
    }, timeoutMs);
    s.on('data', (d) => got.push(d));
    s.on('error', () => {});
    s.on('close', () => {
      clearTimeout(t);
      resolve({ closedAfterMs: Date.now() - started, received: Buffer.concat(got) });
    });
  });
}

describe('robustness: hostile and broken clients', function () {
  let scene: Scene;
  let hf: Holdfast;

  before(async function () {
    requireSshd(this);
    scene = await makeScene(['alice']);
    scene.authorizeOwn('alice');
    hf = await startHoldfast(scene.dir, oneRouteConfig(scene, 'loginGraceTime: 1500ms\nmaxAuthTries: 3'));
  });

  after(async function () {
    await hf?.stop();
    await scene?.stop();
  });

  it('survives random bytes, a truncated banner and a silent client while another session carries on', async function () {
    this.timeout(60_000);
    // A real session that spans all the abuse below.
    const longSession = sshJump(scene.cfg.alice!, 'alice', hf.port, scene.sshd.port, 'sleep 3; echo still-here');
    await hf.waitForLog((l) => l.event === 'channel-open');

    const junk = await Promise.all([
      sendAndWaitClose(hf.port, crypto.randomBytes(64 * 1024)),
      sendAndWaitClose(hf.port, Buffer.from('SSH-2.0-trunc')), // banner with no end of line, then silence
      sendAndWaitClose(hf.port, Buffer.concat([Buffer.from('SSH-2.0-OpenSSH_9.9\r\n'), crypto.randomBytes(4096)])),
      sendAndWaitClose(hf.port, Buffer.from('GET / HTTP/1.1\r\nHost: x\r\n\r\n')),
      sendAndWaitClose(hf.port, null), // connects and says nothing
    ]);
    const silent = junk[4]!;
    // Dropped by loginGraceTime (1.5 s), not before, and well within a second after.
    expect(silent.closedAfterMs).to.be.within(1400, 2600);
    // holdfast sent its identification line first, as a server does.
    expect(silent.received.toString()).to.match(/^SSH-2\.0-holdfast_/);

    const r = await longSession;
    expect(r.stdout.toString()).to.equal('still-here\n');
    expect(r.code).to.equal(0);
    expect(hf.proc.exitCode, 'holdfast is still running').to.equal(null);
    const grace = hf.logs.filter((l) => l.event === 'session-close' && l.reason === 'login-grace');
    expect(grace.length).to.be.greaterThanOrEqual(1);
    expect(hf.stderr()).to.equal('');
  });

  it('ends a connection after maxAuthTries failed attempts', async function () {
    this.timeout(20_000);
    const wrong = Array.from({ length: 5 }, (_, i) => fs.readFileSync(keygen(scene.dir, `wrong${i}`)));
    let attempts = 0;
    const outcome = await new Promise<string>((resolve) => {
      const c = new ssh2.Client();
      c.on('ready', () => resolve('authenticated?!'));
      c.on('error', (err) => resolve(`error: ${err.message}`));
      c.on('close', () => resolve('closed'));
      c.connect({
        host: '127.0.0.1',
        port: hf.port,
        username: 'alice',
        authHandler: (_methodsLeft, _partial, next) => {
          const key = wrong[attempts++];
          if (!key) return next(false as never);
          next({ type: 'publickey', username: 'alice', key } as never);
        },
      });
    });
    expect(outcome).to.not.equal('authenticated?!');
    // The third failure ends it; the client never got to try a fourth key.
    expect(attempts).to.equal(3);
    const close = await hf.waitForLog((l) => l.event === 'session-close' && l.reason === 'auth-failed' && l.authFailures === 3);
    expect(String(close.detail)).to.include('maxAuthTries 3');
  });

  it('a client that resets its TCP connection after login is logged as peer-closed with the socket error, not protocol-error', async function () {
    this.timeout(20_000);
    const key = fs.readFileSync(scene.keys.alice!);
    const sock = new net.Socket();
    sock.on('error', () => {});
    await new Promise<void>((resolve, reject) => {
      const c = new ssh2.Client();
      c.on('error', () => {});
      c.on('ready', () => {
        // What the user's ssh does when it exits with bytes in flight: the kernel answers with RST.
        sock.resetAndDestroy();
        resolve();
      });
      c.on('close', () => reject(new Error('closed before login')));
      sock.connect(hf.port, '127.0.0.1', () => c.connect({ sock, username: 'alice', privateKey: key }));
    });
    const close = await hf.waitForLog((l) => l.event === 'session-close' && l.authenticated === true && l.detail === 'ECONNRESET');
    expect(close).to.include({ user: 'alice', reason: 'peer-closed' });
  });

  it('a window adjust that overflows 2^32 - 1 ends the connection as a protocol error (RFC 4254 5.2; OpenSSH disconnects too)', async function () {
    this.timeout(20_000);
    const c = await login(hf.port, 'alice', scene.keys.alice!);
    const ch = await new Promise<ssh2.ClientChannel>((resolve, reject) => c.forwardOut('127.0.0.1', 1, '127.0.0.1', scene.sshd.port, (err, channel) => (err ? reject(err) : resolve(channel))));
    const closed = new Promise<void>((resolve) => c.once('close', () => resolve()));
    const remote = (ch as unknown as { outgoing: { id: number } }).outgoing.id;
    sendRaw(c, Buffer.concat([byte(93), u32(remote), u32(0xffffffff)]));
    await closed;
    const close = await hf.waitForLog((l) => l.event === 'session-close' && l.user === 'alice' && l.reason === 'protocol-error');
    expect(String(close.detail)).to.include('CHANNEL_WINDOW_ADJUST overflows the window');
  });

  it('still serves after all that', async function () {
    const r = await sshJump(scene.cfg.alice!, 'alice', hf.port, scene.sshd.port, 'echo fine');
    expect(r.stdout.toString()).to.equal('fine\n');
    await waitFor(() => hf.proc.exitCode === null);
  });
});
