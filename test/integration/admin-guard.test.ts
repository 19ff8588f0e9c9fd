/**
 * Issue 22, items 4 and 6: the admin listener is never reachable through holdfast, whatever spelling
 * its address has in the config (`localhost`), and idle sockets cannot make /healthz unreachable.
 */
import net from 'node:net';
import { expect } from 'chai';
import { CONFIG_HEAD, makeScene, requireSshd, type Scene } from '../helpers/fixture.js';
import { startHoldfast, type Holdfast } from '../helpers/holdfast.js';
import { freePort } from '../helpers/ports.js';
import { run } from '../helpers/ssh.js';
import { waitFor } from '../helpers/wait.js';
import { adminStatus } from '../helpers/admin.js';

/** Opens `n` sockets from `from` to the admin port and leaves them silent. */
async function idleSockets(port: number, from: string, n: number): Promise<net.Socket[]> {
  return Promise.all(
    Array.from({ length: n }, () =>
      new Promise<net.Socket>((resolve) => {
        const s = net.connect({ port, host: '127.0.0.1', localAddress: from }, () => resolve(s));
        s.on('error', () => resolve(s));
        s.resume(); // read what the listener says (a 408) so its close is seen
      }),
    ),
  );
}

const healthz = (port: number) => adminStatus(port, '/healthz', {}, 1000);

describe('the admin listener: never a destination by any spelling, and answering beside idle sockets', function () {
  let scene: Scene;
  let hf: Holdfast;
  let adminPort = 0;

  before(async function () {
    this.timeout(30_000);
    requireSshd(this);
    scene = await makeScene(['alice']);
    scene.authorizeOwn('alice');
    adminPort = await freePort();
    hf = await startHoldfast(
      scene.dir,
      `${CONFIG_HEAD}admin: { address: localhost, port: ${adminPort} }\nroutes:\n  - name: loopback-any-port\n    to: ["127.0.0.1:*", "[::1]:*", "localhost:*"]\n`,
    );
    await hf.waitForLog((l) => l.event === 'admin-listening');
  });

  after(async function () {
    await hf?.stop();
    await scene?.stop();
  });

  it('admin.address: localhost — the bound address is refused through ssh -W by every spelling; check warns', async function () {
    this.timeout(60_000);
    const bound = String(hf.logs.find((l) => l.event === 'admin-listening')!.address);
    // Every spelling of the address the name resolved to and the listener bound (localhost -> 127.0.0.1 here).
    for (const dst of [`127.0.0.1:${adminPort}`, `[::ffff:127.0.0.1]:${adminPort}`, `localhost:${adminPort}`]) {
      const r = await run('ssh', ['-F', scene.cfgInfo.alice!, '-p', String(hf.port), '-W', dst, 'alice@127.0.0.1'], { timeoutMs: 20_000, input: 'GET /sessions HTTP/1.0\r\n\r\n' });
      expect(r.stdout.toString(), `${dst} answered through holdfast`).to.not.include('HTTP/1');
      expect(r.stderr, dst).to.match(/administratively prohibited: holdfast: .* is the jump host's admin port/);
    }
    const refused = hf.logs.filter((l) => l.event === 'channel-refused' && l.code === 'admin-port');
    console.log(`      admin bound on ${bound}:${adminPort}; ${refused.length} spellings refused (admin-port)`);
    expect(refused).to.have.length(3);
    const warning = hf.logs.find((l) => l.event === 'config-warning' && String(l.warning).startsWith('admin.address'));
    expect(String(warning?.warning)).to.include('"localhost" is a name');
  });

  it('200 idle sockets from one address: /healthz answers every probe from another, and the idle ones are closed within the header timeout', async function () {
    this.timeout(60_000);
    const idle = await idleSockets(adminPort, '127.0.0.2', 200);
    let answered = 0;
    let probes = 0;
    for (const end = Date.now() + 3000; Date.now() < end && probes < 100; probes++) {
      if ((await healthz(adminPort)) === 200) answered++;
    }
    console.log(`      /healthz answered ${answered} of ${probes} probes beside 200 idle sockets`);
    expect(answered).to.equal(probes);
    expect(probes).to.be.at.least(10);
    // Past the per-source cap at once, the rest after the header timeout: none left open.
    const closedAfter = Date.now();
    await waitFor(() => idle.every((s) => s.destroyed || s.readyState === 'closed'), { timeoutMs: 5000, what: 'the idle sockets to be closed' });
    console.log(`      the idle ones were all closed ${Date.now() - closedAfter} ms after the probes`);
    for (const s of idle) s.destroy();
  });
});
