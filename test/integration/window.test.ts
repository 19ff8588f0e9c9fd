import crypto from 'node:crypto';
/**
 * The growing receive window, end to end through a real holdfast: a channel whose target reads grows
 * its window past ssh2's 2 MiB; channels whose target never reads (slow consumers) do not, so what
 * holdfast buffers for them stays bounded by the window it had granted.
 */
import fs from 'node:fs';
import net from 'node:net';
import { expect } from 'chai';
import ssh2 from 'ssh2';
import { CONFIG_HEAD, makeScene, requireSshd, type Scene } from '../helpers/fixture.js';
import { startHoldfast, type Holdfast } from '../helpers/holdfast.js';
import { waitFor } from '../helpers/wait.js';

const MiB = 1024 * 1024;

describe('channel windows through holdfast', function () {
  let scene: Scene;
  let hf: Holdfast;
  let client: InstanceType<typeof ssh2.Client>;
  const servers: net.Server[] = [];
  const held: net.Socket[] = [];

  before(async function () {
    this.timeout(30_000);
    requireSshd(this);
    scene = await makeScene(['alice']);
    scene.authorizeOwn('alice');
    hf = await startHoldfast(scene.dir, `${CONFIG_HEAD}routes:\n  - name: local\n    to: ["127.0.0.1:*"]\n`);
    client = new ssh2.Client();
    await new Promise<void>((resolve, reject) => {
      client.once('ready', () => resolve());
      client.once('error', reject);
      client.connect({ host: '127.0.0.1', port: hf.port, username: 'alice', privateKey: fs.readFileSync(scene.keys.alice!) });
    });
  });

  after(async function () {
    client?.end();
    for (const s of held) s.destroy();
    for (const s of servers) s.close();
    await hf?.stop();
    await scene?.stop();
  });

  /** A target that reads everything (`reads`) or accepts and never reads. */
  async function target(reads: boolean): Promise<{ port: number; received: () => number }> {
    let received = 0;
    const srv = net.createServer((s) => {
      held.push(s);
      s.on('error', () => {});
      if (reads) s.on('data', (d) => (received += d.length));
      else s.pause();
    });
    servers.push(srv);
    await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
    return { port: (srv.address() as net.AddressInfo).port, received: () => received };
  }

  const open = (port: number) =>
    new Promise<ssh2.ClientChannel>((resolve, reject) => client.forwardOut('127.0.0.1', 0, '127.0.0.1', port, (err, ch) => (err ? reject(err) : resolve(ch))));

  const rssMiB = () => Number(fs.readFileSync(`/proc/${hf.pid}/status`, 'utf8').match(/VmRSS:\s+(\d+) kB/)![1]) / 1024;

  it('grows to 16 MiB for a target that keeps up; for 6 targets that never read, stops growing and holds holdfast\'s memory to the windows granted', async function () {
    this.timeout(60_000);
    const fast = await target(true);
    const slow = await Promise.all(Array.from({ length: 6 }, () => target(false)));
    const payload = Buffer.alloc(48 * MiB, 7);
    const fastCh = await open(fast.port);
    fastCh.end(payload);
    await waitFor(() => fast.received() === payload.length, { timeoutMs: 30_000, what: 'the reading target to get all 48 MiB' });
    const rssBefore = rssMiB();
    const slowChs = await Promise.all(slow.map((t) => open(t.port)));
    for (const ch of slowChs) ch.write(payload);
    // The stalled ones: wait until holdfast has stopped taking more (kernel buffers full, window spent).
    const outstanding = () => slowChs.map((ch) => (ch as unknown as { outgoing: { window: number } }).outgoing.window);
    let last = '';
    await waitFor(
      async () => {
        const now = JSON.stringify(outstanding());
        const settled = now === last && outstanding().every((w) => w === 0);
        last = now;
        await new Promise((r) => setTimeout(r, 200));
        return settled;
      },
      { timeoutMs: 20_000, what: 'the stalled channels to run out of window' },
    );
    const rssStalled = rssMiB();
    // Backpressure reached the client: each stalled channel still holds most of its 48 MiB unsent.
    for (const ch of slowChs) expect(ch.writableLength, 'bytes the client could not send').to.be.greaterThan(24 * MiB);
    for (const ch of [fastCh, ...slowChs]) ch.close();
    const closes = await waitFor(() => {
      const c = hf.logs.filter((l) => l.event === 'channel-close');
      return c.length >= 7 ? c : undefined;
    });
    const byDst = new Map(closes.map((l) => [String(l.dst), l]));
    expect(byDst.get(`127.0.0.1:${fast.port}`)!.windowMiB).to.equal(16);
    let granted = 0;
    for (const t of slow) {
      const l = byDst.get(`127.0.0.1:${t.port}`)!;
      // It grew while the kernel's socket buffers were taking bytes, then stopped.
      expect(Number(l.windowMiB), `slow consumer ${t.port}`).to.be.at.most(16);
      granted += Number(l.windowMiB);
    }
    console.log(`      6 stalled targets: windows ${slow.map((t) => byDst.get(`127.0.0.1:${t.port}`)!.windowMiB).join('/')} MiB; holdfast RSS ${rssBefore.toFixed(0)} -> ${rssStalled.toFixed(0)} MiB with ${6 * 48} MiB offered`);
    // holdfast holds at most what it granted (plus its own working memory), not what was offered.
    expect(rssStalled - rssBefore).to.be.below(granted + 64);
  });

  it('a target that stops reading until every window is closed, then reads again, gets every byte (SHA-256): no window deadlock', async function () {
    this.timeout(60_000);
    const data = crypto.randomBytes(24 * 1024 * 1024);
    let sock: net.Socket | undefined;
    const hash = crypto.createHash('sha256');
    let got = 0;
    const done = new Promise<void>((resolve) => {
      const srv = net.createServer((s) => {
        sock = s;
        held.push(s);
        s.on('error', () => {});
        s.pause();
        s.on('data', (d) => {
          hash.update(d);
          got += d.length;
        });
        s.once('end', () => resolve());
      });
      servers.push(srv);
      srv.listen(0, '127.0.0.1');
    });
    await waitFor(() => servers.at(-1)!.listening, { what: 'the target' });
    const ch = await open((servers.at(-1)!.address() as net.AddressInfo).port);
    ch.end(data);
    // Stalled until holdfast's buffer for the channel is full and the client's window is 0.
    const outgoing = () => (ch as unknown as { outgoing: { window: number } }).outgoing.window;
    await waitFor(() => sock && outgoing() === 0, { timeoutMs: 20_000, what: 'the window to close' });
    sock!.resume();
    await waitFor(() => got === data.length || undefined, { timeoutMs: 30_000, what: `all ${data.length} bytes at the target (got ${got})` });
    await done;
    expect(hash.digest('hex')).to.equal(crypto.createHash('sha256').update(data).digest('hex'));
  });
});
