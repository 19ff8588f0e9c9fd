/**
 * Issue 22, item 5: bytes before the SSH identification line are bounded (OpenSSH's 8 KiB line cap;
 * ssh2 read a stream of '\r' without bound, at full CPU, until loginGraceTime). The ssh2 patch counts
 * every byte of the line. Here: a '\r' stream is closed at once, and 8 such streams, reconnecting as
 * soon as they are closed, leave another user's echo round trip close to its baseline.
 */
import fs from 'node:fs';
import net from 'node:net';
import { expect } from 'chai';
import ssh2 from 'ssh2';
import { CONFIG_HEAD, makeScene, requireSshd, type Scene } from '../helpers/fixture.js';
import { startHoldfast, type Holdfast } from '../helpers/holdfast.js';
import { waitFor } from '../helpers/wait.js';
import path from 'node:path';
import { spawn } from 'node:child_process';

const ATTACKERS = path.join(path.dirname(new URL(import.meta.url).pathname), '..', 'helpers', 'cr-streams.js');

const CR = Buffer.alloc(64 * 1024, 13);

/** Streams '\r' until holdfast closes the connection; resolves with how long that took (ms). */
function crStream(port: number, maxMs: number): Promise<number> {
  return new Promise((resolve) => {
    const t0 = Date.now();
    const s = net.connect(port, '127.0.0.1');
    const timer = setTimeout(() => s.destroy(), maxMs);
    s.on('error', () => {});
    s.resume();
    s.once('close', () => {
      clearTimeout(timer);
      resolve(Date.now() - t0);
    });
    const pump = () => {
      while (!s.destroyed && s.write(CR));
      if (!s.destroyed) s.once('drain', pump);
    };
    s.once('connect', pump);
  });
}

function percentile(xs: number[], p: number): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))]!;
}

/** `rounds` 1-byte round trips through an open channel to the echo target; each RTT in ms. */
async function echoRtts(ch: ssh2.ClientChannel, rounds: number): Promise<number[]> {
  const rtts: number[] = [];
  for (let i = 0; i < rounds; i++) {
    const t0 = performance.now();
    await new Promise<void>((resolve) => {
      ch.once('data', () => resolve());
      ch.write('x');
    });
    rtts.push(performance.now() - t0);
  }
  return rtts;
}

describe('bytes before the identification line are bounded', function () {
  let scene: Scene;
  let hf: Holdfast;
  let echo: net.Server;

  before(async function () {
    this.timeout(30_000);
    requireSshd(this);
    scene = await makeScene(['alice']);
    scene.authorizeOwn('alice');
    echo = net.createServer((s) => {
      s.on('error', () => {});
      s.setNoDelay(true);
      s.pipe(s);
    });
    await new Promise<void>((r) => echo.listen(0, '127.0.0.1', r));
    const port = (echo.address() as net.AddressInfo).port;
    hf = await startHoldfast(scene.dir, `${CONFIG_HEAD}routes:\n  - name: echo\n    to: ["127.0.0.1:${port}"]\n`);
  });

  after(async function () {
    await hf?.stop();
    echo?.close();
    await scene?.stop();
  });

  it("a stream of '\\r' is closed at once; 8 of them, reconnecting, leave another user's echo working (p99 printed; the 2 x goal is the bench's flood row)", async function () {
    this.timeout(90_000);
    const alone = await crStream(hf.port, 10_000);
    expect(alone, "ms until a '\\r' stream was closed").to.be.below(2000);
    await hf.waitForLog((l) => l.event === 'session-close' && l.authenticated === false);

    const c = new ssh2.Client();
    await new Promise<void>((resolve, reject) => {
      c.once('ready', () => resolve());
      c.once('connect', () => c.setNoDelay(true));
      c.once('error', reject);
      c.connect({ host: '127.0.0.1', port: hf.port, username: 'alice', privateKey: fs.readFileSync(scene.keys.alice!) });
    });
    const ch = await new Promise<ssh2.ClientChannel>((resolve, reject) =>
      c.forwardOut('127.0.0.1', 1, '127.0.0.1', (echo.address() as net.AddressInfo).port, (err, channel) => (err ? reject(err) : resolve(channel))),
    );
    await echoRtts(ch, 50); // warm up
    const baseline = percentile(await echoRtts(ch, 400), 99);

    // 8 attackers in a process of their own, each connecting again 100 ms after holdfast closed it.
    const attack = spawn(process.execPath, [ATTACKERS, String(hf.port), '8', '4'], { stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    attack.stdout!.on('data', (d) => (out += d));
    const closedBefore = hf.logs.filter((l) => l.event === 'session-close').length;
    await waitFor(() => hf.logs.filter((l) => l.event === 'session-close').length >= closedBefore + 8, { timeoutMs: 10_000, what: 'the attackers to be closed once each' });
    const during = percentile(await echoRtts(ch, 400), 99);
    const got = await waitFor(() => (out.includes('\n') ? (JSON.parse(out) as { connections: number; maxMs: number; p50Ms: number }) : undefined), { timeoutMs: 20_000, what: 'the attackers to finish' });
    c.end();
    console.log(`      echo p99: ${baseline.toFixed(2)} ms alone, ${during.toFixed(2)} ms beside 8 '\\r' streams (${got.connections} connections, closed after p50 ${got.p50Ms} ms, max ${got.maxMs} ms)`);
    expect(got.maxMs, 'ms until each stream was closed').to.be.below(2000);
    // Not a speed goal (that is `npm run bench`'s flood row, against sshd): a guard against the
    // streams being read at full speed until loginGraceTime again (~50 x, 0.8 -> 45 ms p50 on 522ad8e);
    // this machine's own p99 noise alone is 2-4 ms.
    expect(during, 'echo p99 beside the streams (ms)').to.be.below(10 * baseline + 5);
  });
});
