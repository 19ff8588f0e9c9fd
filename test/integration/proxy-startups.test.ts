/**
 * Issue 22, item 8: connections waiting for their PROXY header are startups (maxStartups, host-wide):
 * a trusted balancer's address could otherwise hold every descriptor with header-less connections,
 * past every startup limit (1,100 of them broke logins on the plain listener under a 1,024-fd limit).
 */
import net from 'node:net';
import { expect } from 'chai';
import { CONFIG_HEAD, makeScene, requireSshd, type Scene } from '../helpers/fixture.js';
import { startHoldfast, type Holdfast } from '../helpers/holdfast.js';

/** Connects; resolves when holdfast closes it ('closed') or sends its SSH banner ('banner'), or 'held' after `ms`. */
function outcome(sock: net.Socket, ms: number): Promise<'closed' | 'banner' | 'held'> {
  return new Promise((resolve) => {
    const t = setTimeout(() => resolve('held'), ms);
    sock.once('data', (d) => {
      clearTimeout(t);
      resolve(d.toString('latin1').startsWith('SSH-') ? 'banner' : 'held');
    });
    sock.once('close', () => {
      clearTimeout(t);
      resolve('closed');
    });
  });
}

function connect(port: number): Promise<net.Socket> {
  return new Promise((resolve) => {
    const s = net.connect(port, '127.0.0.1', () => resolve(s));
    s.on('error', () => {});
  });
}

describe('PROXY listener: connections waiting for their header count as startups', function () {
  let scene: Scene;
  let hf: Holdfast;
  let port = 0;
  const socks: net.Socket[] = [];

  before(async function () {
    this.timeout(30_000);
    requireSshd(this);
    scene = await makeScene(['alice']);
    const yaml = `${CONFIG_HEAD.replace('listen: [{address: 127.0.0.1, port: 0}]', 'listen: [{address: 127.0.0.1, port: 0, proxyProtocol: {trusted: [127.0.0.1/32]}}]')}maxStartups: "3:100:3"\nroutes: []\n`;
    hf = await startHoldfast(scene.dir, yaml);
    port = hf.port;
  });

  after(async function () {
    for (const s of socks) s.destroy();
    await hf?.stop();
    await scene?.stop();
  });

  it('maxStartups 3: three header-less connections are held, the fourth is closed at once; a header then gets the banner', async function () {
    this.timeout(30_000);
    for (let i = 0; i < 3; i++) socks.push(await connect(port));
    const held = await Promise.all(socks.map((s) => outcome(s, 500)));
    expect(held).to.deep.equal(['held', 'held', 'held']);
    const fourth = await connect(port);
    socks.push(fourth);
    const t0 = Date.now();
    expect(await outcome(fourth, 2500), 'the fourth header-less connection').to.equal('closed');
    const closedMs = Date.now() - t0;
    const refused = await hf.waitForLog((l) => l.event === 'startup-refused');
    expect(String(refused.why)).to.include('(connections waiting for their PROXY header count)');
    // One of the held ones sends its header: its wait is over, and it is served.
    const first = socks[0]!;
    const served = outcome(first, 3000);
    first.write('PROXY TCP4 127.0.0.9 127.0.0.1 40000 22\r\n');
    expect(await served).to.equal('banner');
    console.log(`      3 held, the 4th closed after ${closedMs} ms (${String(refused.why)}); a header on a held one: banner`);
  });
});
