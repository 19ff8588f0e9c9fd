/**
 * maxStartups and perSourceMaxStartups are host-wide, as in sshd, however many workers serve: the
 * primary keeps the one count (src/daemon/shared-startups.ts). Real `holdfast serve` with two workers,
 * silent TCP clients, a real ssh -J login, and a worker killed while it holds a startup.
 */
import net from 'node:net';
import { expect } from 'chai';
import { CONFIG_HEAD, makeScene, requireSshd, type Scene } from '../helpers/fixture.js';
import { startHoldfast, type Holdfast, type LogLine } from '../helpers/holdfast.js';
import { sshJump } from '../helpers/ssh.js';
import { waitFor } from '../helpers/wait.js';

/** A silent client: 'admitted' once holdfast's identification line arrives, 'refused' if closed first. */
function silentClient(port: number): Promise<{ verdict: 'admitted' | 'refused'; sock: net.Socket; localPort: number }> {
  return new Promise((resolve) => {
    const sock = net.connect({ host: '127.0.0.1', port });
    let localPort = 0;
    sock.on('connect', () => (localPort = sock.localPort ?? 0));
    sock.on('error', () => {});
    sock.once('data', (d) => {
      expect(d.toString('latin1')).to.match(/^SSH-2\.0-/);
      resolve({ verdict: 'admitted', sock, localPort });
    });
    sock.once('close', () => resolve({ verdict: 'refused', sock, localPort }));
  });
}

describe('startup limits shared by every worker (the primary counts them)', function () {
  let scene: Scene;
  let hf: Holdfast;
  const open: net.Socket[] = [];

  before(async function () {
    this.timeout(60_000);
    requireSshd(this);
    scene = await makeScene(['alice']);
    scene.authorizeOwn('alice');
    hf = await startHoldfast(
      scene.dir,
      `${CONFIG_HEAD}logLevel: debug\nworkers: 2\nmaxStartups: 2\nloginGraceTime: 60s\nroutes:\n  - name: target\n    to: ["127.0.0.1:${scene.sshd.port}"]\n`,
    );
    await hf.waitForLog((l) => l.event === 'worker-started' && l.worker === 2, 20_000, 'the second worker');
  });

  after(async function () {
    for (const s of open) s.destroy();
    await hf?.stop();
    await scene?.stop();
  });

  const workerOf = (localPort: number): number => Number(hf.logs.find((l) => l.event === 'session-start' && String(l.src).endsWith(`:${localPort}`))?.worker);

  it('maxStartups 2 with 2 workers: 2 silent clients in all, not 2 per worker; a worker holding one refuses the next', async function () {
    this.timeout(60_000);
    const since = hf.logs.length;
    const results = [];
    // The kernel picks the worker (SCHED_NONE): go on until a worker holding fewer than 2 has
    // refused (a per-worker limit of 2 would have admitted it), at most 20 clients.
    const provesShared = () => {
      const held = open.map((s) => workerOf(s.localPort!));
      return hf.logs.slice(since).some((l) => l.event === 'startup-refused' && held.filter((w) => w === Number(l.worker)).length < 2);
    };
    for (let i = 0; i < 20 && (i < 6 || !provesShared()); i++) {
      const r = await silentClient(hf.port);
      if (r.verdict === 'admitted') open.push(r.sock);
      results.push(r.verdict);
      // Refusal lines are throttled (one per 5 s): wait for each, so every refusal names its worker.
      if (r.verdict === 'refused') await hf.waitForLog((l) => l.event === 'startup-refused' && hf.logs.indexOf(l) >= since && l.src === `127.0.0.1:${r.localPort}`, 2000).catch(() => undefined);
    }
    expect(results.slice(0, 6)).to.deep.equal(['admitted', 'admitted', 'refused', 'refused', 'refused', 'refused']);
    expect(results.filter((v) => v === 'admitted')).to.have.length(2);
    await hf.waitForLog((l) => l.event === 'startup-refused' && hf.logs.indexOf(l) >= since, 5000, 'a startup-refused line');
    const refused = hf.logs.slice(since).filter((l): l is LogLine => l.event === 'startup-refused');
    expect(String(refused[0]!.why)).to.equal('maxStartups full (2 unauthenticated connections)');
    expect(refused[0]!.pending).to.equal(2);
    // A worker refused while holding fewer than 2 startups itself: the limit is the host's.
    const holders = open.map((s) => workerOf(s.localPort!));
    const refusers = new Set(refused.map((l) => Number(l.worker)));
    console.log(`      ${results.length} silent clients: admitted by workers ${holders.join(', ')}; refused by workers ${[...refusers].join(', ')} (${refused.length} line(s) logged)`);
    expect(provesShared(), 'a worker holding fewer than 2 refused').to.equal(true);
  });

  it('a startup ends when its client closes or logs in, on whichever worker: the next client and ssh -J get in', async function () {
    this.timeout(60_000);
    // Full: a login is refused before any SSH byte...
    const blocked = await sshJump(scene.cfg.alice!, 'alice', hf.port, scene.sshd.port, 'echo in', { timeoutMs: 20_000 });
    expect(blocked.code, blocked.stderr).to.equal(255);
    // ...until one silent client goes away.
    open.shift()!.destroy();
    await waitFor(async () => (await silentProbeAdmitted(hf.port, open)) === true, { timeoutMs: 10_000, what: 'a slot given back after a client closed' });
    open.shift()!.destroy();
    await waitFor(
      async () => {
        const r = await sshJump(scene.cfg.alice!, 'alice', hf.port, scene.sshd.port, 'echo in', { timeoutMs: 20_000 });
        return r.stdout.toString() === 'in\n';
      },
      { timeoutMs: 20_000, what: 'ssh -J to get in' },
    );
    // The login's own startup ended when it authenticated: there is room for a silent client again.
    expect(await silentProbeAdmitted(hf.port, open)).to.equal(true);
  });

  it('a worker killed while it holds a startup gives it back (the primary releases what the worker held)', async function () {
    this.timeout(60_000);
    // Fill up again: 2 silent clients held.
    await waitFor(async () => open.length >= 2 || (await silentProbeAdmitted(hf.port, open)) === false, { timeoutMs: 10_000, what: 'two held startups' });
    expect(open.length).to.equal(2);
    expect((await silentClient(hf.port)).verdict).to.equal('refused');
    const victim = workerOf(open[0]!.localPort!);
    const pid = Number(hf.logs.filter((l) => l.event === 'worker-started' && l.worker === victim).at(-1)!.pid);
    const since = hf.logs.length;
    process.kill(pid, 'SIGKILL');
    await hf.waitForLog((l) => l.event === 'worker-lost' && l.worker === victim && hf.logs.indexOf(l) >= since, 10_000, 'worker-lost');
    await waitFor(async () => (await silentProbeAdmitted(hf.port, open)) === true, { timeoutMs: 15_000, what: 'a client admitted after the holder was killed' });
    expect(hf.proc.exitCode, 'the primary serves on').to.equal(null);
  });
});

/** One more silent client: true when admitted (kept open in `open`), false when refused. */
async function silentProbeAdmitted(port: number, open: net.Socket[]): Promise<boolean> {
  const r = await silentClient(port);
  if (r.verdict === 'admitted') open.push(r.sock);
  return r.verdict === 'admitted';
}
