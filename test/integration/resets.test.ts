/**
 * Issue 22, acceptance 1: a TCP reset at any stage of a connection ends that connection only. With
 * `workers: 2`, a plain and a PROXY listener, 20 resets at each stage (before any byte, mid PROXY
 * header, after it, mid-ident, mid-KEX, mid-auth, mid-channel-open, and a target that resets right
 * after its connect) while 8 hash-checked transfers run through the plain listener: no worker is
 * lost and every transfer is intact.
 */
import crypto from 'node:crypto';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { execFileSync } from 'node:child_process';
import { expect } from 'chai';
import ssh2 from 'ssh2';
import { CONFIG_HEAD, makeScene, requireSshd, type Scene } from '../helpers/fixture.js';
import { startHoldfast, type Holdfast } from '../helpers/holdfast.js';
import { sshJump, type SshResult } from '../helpers/ssh.js';
import { waitFor } from '../helpers/wait.js';

const EACH = 20;
const PROXY_V1 = 'PROXY TCP4 127.0.0.9 127.0.0.1 40000 22\r\n';

/** Worker pids, from their worker-started lines (set in before()). */
let workerPids: number[] = [];

/** Whether a worker process holds the server side of the connection from `local` to `port` (ss -tanp). */
function heldByWorker(port: number, local: number): boolean {
  const out = execFileSync('ss', ['-H', '-tanp', 'sport', `= :${port}`, 'dport', `= :${local}`], { encoding: 'utf8' });
  return workerPids.some((pid) => out.includes(`pid=${pid},`));
}

/** Connects and waits until a worker holds the connection (a reset before that never reaches one). */
async function connectHeld(port: number): Promise<net.Socket> {
  const s = await connect(port);
  await waitFor(() => heldByWorker(port, s.localPort!), { timeoutMs: 5000, intervalMs: 5, what: 'a worker to hold the connection' });
  return s;
}

function connect(port: number): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const s = net.connect(port, '127.0.0.1', () => resolve(s));
    s.on('error', () => {});
    s.once('error', reject);
  });
}

/** Resolves once `sock` has received `n` bytes or more (or closed). */
function received(sock: net.Socket, n: number, timeoutMs = 5000): Promise<void> {
  return new Promise((resolve, reject) => {
    let got = 0;
    const t = setTimeout(() => reject(new Error(`only ${got} of ${n} bytes from holdfast`)), timeoutMs);
    const done = () => {
      clearTimeout(t);
      sock.off('data', onData);
      resolve();
    };
    const onData = (d: Buffer) => {
      got += d.length;
      if (got >= n) done();
    };
    sock.on('data', onData);
    sock.once('close', done);
  });
}

/** An ssh2 client over an already connected socket (PROXY header sent first, if `proxy`). */
async function client(port: number, proxy: boolean, cfg: Partial<ssh2.ConnectConfig>): Promise<{ c: ssh2.Client; sock: net.Socket }> {
  const sock = await connect(port);
  if (proxy) sock.write(PROXY_V1);
  const c = new ssh2.Client();
  c.on('error', () => {});
  c.connect({ sock, username: 'alice', readyTimeout: 10_000, ...cfg });
  return { c, sock };
}

describe('resets at every stage never take a worker down (workers: 2, plain and PROXY listeners)', function () {
  let scene: Scene;
  let hf: Holdfast;
  let plain = 0;
  let proxied = 0;
  /** A target that resets every connection as soon as it is accepted. */
  let resetter: net.Server;
  let resetterPort = 0;

  before(async function () {
    this.timeout(40_000);
    requireSshd(this);
    scene = await makeScene(['alice']);
    scene.authorizeOwn('alice');
    resetter = net.createServer((s) => s.resetAndDestroy());
    await new Promise<void>((r) => resetter.listen(0, '127.0.0.1', r));
    resetterPort = (resetter.address() as net.AddressInfo).port;
    const yaml = `${CONFIG_HEAD.replace(
      'listen: [{address: 127.0.0.1, port: 0}]',
      'listen:\n  - {address: 127.0.0.1, port: 0}\n  - {address: 127.0.0.1, port: 0, proxyProtocol: {trusted: [127.0.0.1/32]}}',
    )}workers: 2
routes:
  - name: target
    to: ["127.0.0.1:${scene.sshd.port}", "127.0.0.1:${resetterPort}"]
`;
    hf = await startHoldfast(scene.dir, yaml);
    const started = hf.logs.find((l) => l.event === 'started')!;
    [plain, proxied] = (started.listen as string[]).map((a) => Number(a.split(':').pop()));
    await waitFor(() => hf.logs.filter((l) => l.event === 'worker-started').length >= 2, { what: 'two workers' });
    workerPids = hf.logs.filter((l) => l.event === 'worker-started').map((l) => Number(l.pid));
  });

  after(async function () {
    await hf?.stop();
    resetter?.close();
    await scene?.stop();
  });

  it('20 resets at each stage: 0 workers lost, 8 transfers intact', async function () {
    this.timeout(180_000);
    const key = fs.readFileSync(scene.keys.alice!);
    // 8 transfers: each repeats a 256 KiB file until the test has finished resetting.
    const src = path.join(scene.dir, 'src.bin');
    const chunk = crypto.randomBytes(256 * 1024);
    fs.writeFileSync(src, chunk);
    const stop = path.join(scene.dir, 'stop-transfers');
    const transfers: Promise<SshResult & { endedAt: number }>[] = [];
    for (let i = 0; i < 8; i++) {
      transfers.push(sshJump(scene.cfg.alice!, 'alice', plain, scene.sshd.port, `n=0; while [ ! -e ${stop} ] && [ $n -lt 1200 ]; do cat ${src}; sleep 0.25; n=$((n+1)); done; cat ${src}`, { timeoutMs: 170_000 }).then((r) => ({ ...r, endedAt: Date.now() })));
    }
    await waitFor(() => hf.logs.filter((l) => l.event === 'channel-open').length >= 8, { timeoutMs: 30_000, what: '8 transfers open' });

    const stages: [string, (port: number, proxy: boolean) => Promise<void>][] = [
      ['before any byte', async (port) => void (await connectHeld(port)).resetAndDestroy()],
      ['mid-ident', async (port, proxy) => {
        const s = await connect(port);
        s.write(`${proxy ? PROXY_V1 : ''}SSH-2.0-rese`);
        await received(s, 8);
        s.resetAndDestroy();
      }],
      ['mid-KEX', async (port, proxy) => {
        const s = await connect(port);
        s.write(`${proxy ? PROXY_V1 : ''}SSH-2.0-resetter\r\n`);
        // holdfast's ident line and KEXINIT, then half of a packet of ours.
        await received(s, 200);
        s.write(Buffer.from([0, 0, 3, 0, 10, 20, 1, 2, 3]));
        s.resetAndDestroy();
      }],
      ['mid-auth', async (port, proxy) => {
        await new Promise<void>((resolve) => {
          void client(port, proxy, {
            authHandler: (_left, _partial, _next) => {
              sockOf.resetAndDestroy();
              resolve();
            },
          }).then(({ sock }) => (sockOf = sock));
          let sockOf: net.Socket;
        });
      }],
      ['mid-channel-open', async (port, proxy) => {
        const { c, sock } = await client(port, proxy, { privateKey: key });
        await new Promise<void>((r) => c.once('ready', () => r()));
        c.forwardOut('127.0.0.1', 1, '127.0.0.1', scene.sshd.port, () => {});
        sock.resetAndDestroy();
      }],
      ['target resets right after connect', async (port, proxy) => {
        const { c, sock } = await client(port, proxy, { privateKey: key });
        await new Promise<void>((r) => c.once('ready', () => r()));
        await new Promise<void>((r) =>
          c.forwardOut('127.0.0.1', 1, '127.0.0.1', resetterPort, (err, ch) => {
            if (err) return r();
            ch.on('close', () => r());
            ch.resume();
          }),
        );
        sock.resetAndDestroy();
      }],
    ];
    const proxyOnly: [string, (port: number) => Promise<void>][] = [
      ['mid PROXY header', async (port) => {
        const s = await connectHeld(port);
        s.write(PROXY_V1.slice(0, 12));
        s.resetAndDestroy();
      }],
      ['after the PROXY header', async (port) => {
        const s = await connect(port);
        s.write(PROXY_V1);
        s.resetAndDestroy();
      }],
    ];
    const done: string[] = [];
    const failed = (stage: string, i: number) => (err: Error) => {
      const lost = hf.logs.filter((l) => l.event === 'worker-lost').map((l) => JSON.stringify(l));
      throw new Error(`${stage}, reset ${i + 1}: ${err.message}; workers lost: ${lost.length} ${lost.slice(0, 2).join(' ')}`);
    };
    for (const [name, run] of proxyOnly) {
      const t0 = Date.now();
      for (let i = 0; i < EACH; i++) await run(proxied).catch(failed(`PROXY ${name}`, i));
      done.push(`PROXY ${name} ${Date.now() - t0} ms`);
    }
    for (const [name, run] of stages) {
      for (const [listener, port, proxy] of [['plain', plain, false], ['PROXY', proxied, true]] as const) {
        const t0 = Date.now();
        for (let i = 0; i < EACH; i++) await run(port, proxy).catch(failed(`${listener} ${name}`, i));
        done.push(`${listener} ${name} ${Date.now() - t0} ms`);
      }
    }
    const stormEnd = Date.now();
    fs.writeFileSync(stop, '');
    const results = await Promise.all(transfers);
    const want = (k: number) => crypto.createHash('sha256').update(Buffer.concat(Array(k).fill(chunk))).digest('hex');
    const intact = results.map((r) => {
      const k = r.stdout.length / chunk.length;
      return r.code === 0 && Number.isInteger(k) && k > 1 && crypto.createHash('sha256').update(r.stdout).digest('hex') === want(k);
    });
    console.log(`      ${EACH} resets at each stage: ${done.join(', ')}`);
    console.log(`      transfers: ${results.map((r) => `${(r.stdout.length / 1048576).toFixed(1)} MiB rc ${r.code}`).join(', ')}`);
    expect(intact, `transfers intact (stderr: ${results.map((r) => r.stderr).join(' | ')})`).to.deep.equal(Array(8).fill(true));
    // The transfers ran through the whole storm: each was still sending after the last reset.
    expect(results.filter((r) => r.endedAt >= stormEnd).length, 'transfers that ended after the last reset').to.equal(8);
    const lost = hf.logs.filter((l) => ['worker-lost', 'worker-exit', 'internal-error'].includes(l.event));
    expect(lost, 'workers lost').to.deep.equal([]);
    expect(hf.stderr(), 'holdfast stderr').to.not.match(/\n\s+at |Error:/);
    expect(done).to.have.length(14);
  });
});
