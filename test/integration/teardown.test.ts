/**
 * Issue 2, acceptance 5: after 20 sequential and 20 concurrent `ssh -J` sessions end, holdfast holds
 * no socket to the target and its open file count is back where it started.
 */
import { expect } from 'chai';
import { makeScene, oneRouteConfig, requireSshd, type Scene } from '../helpers/fixture.js';
import { startHoldfast, type Holdfast } from '../helpers/holdfast.js';
import { sshJump } from '../helpers/ssh.js';
import { openFds, tcpConnectionsTo } from '../helpers/proc.js';
import { waitFor } from '../helpers/wait.js';
import { Writable } from 'node:stream';
import { loadConfigText } from '../../src/config/load.js';
import { createLogger } from '../../src/log.js';
import { HoldfastServer } from '../../src/server.js';
import { Events } from '../../src/events.js';

/**
 * Counts of this process's live timers and TCP handles (what a session owns). Pipes and child
 * processes belong to the test harness (ssh clients, other suites' servers) and are left out.
 */
function resources(): Record<string, number> {
  const out: Record<string, number> = { Timeout: 0, TCPSocketWrap: 0, TCPServerWrap: 0 };
  for (const r of process.getActiveResourcesInfo()) if (r in out) out[r]! += 1;
  return out;
}

describe('teardown: no sockets, timers or upstream connections left behind', function () {
  let scene: Scene;
  let hf: Holdfast;

  before(async function () {
    requireSshd(this);
    scene = await makeScene(['alice']);
    scene.authorizeOwn('alice');
    hf = await startHoldfast(scene.dir, oneRouteConfig(scene));
  });

  after(async function () {
    await hf?.stop();
    await scene?.stop();
  });

  it('20 sequential and 20 concurrent sessions leave the fd count where it started', async function () {
    this.timeout(120_000);
    const pid = hf.pid;
    // One session first, so lazily opened handles (DNS, crypto) are part of the baseline.
    const warm = await sshJump(scene.cfg.alice!, 'alice', hf.port, scene.sshd.port, 'true');
    expect(warm.code).to.equal(0);
    await waitFor(() => hf.logs.filter((l) => l.event === 'session-close').length === 1, { what: 'warm-up session to close' });
    const baseline = openFds(pid);

    for (let i = 0; i < 20; i++) {
      const r = await sshJump(scene.cfg.alice!, 'alice', hf.port, scene.sshd.port, `echo seq-${i}`);
      expect(r.stdout.toString()).to.equal(`seq-${i}\n`);
    }
    const concurrent = await Promise.all(
      Array.from({ length: 20 }, (_, i) => sshJump(scene.cfg.alice!, 'alice', hf.port, scene.sshd.port, `sleep 0.5; echo par-${i}`)),
    );
    concurrent.forEach((r, i) => expect(r.stdout.toString()).to.equal(`par-${i}\n`));

    await waitFor(() => hf.logs.filter((l) => l.event === 'session-close').length === 41, { what: '41 session-close lines' });
    const fds = await waitFor(() => (openFds(pid) === baseline ? baseline : 0), { timeoutMs: 5000, what: `fd count back to ${baseline}` }).catch(() => openFds(pid));
    expect(fds, 'open fds after the sessions').to.equal(baseline);
    expect(tcpConnectionsTo(pid, scene.sshd.port), 'sockets to the target').to.deep.equal([]);
    const closes = hf.logs.filter((l) => l.event === 'channel-close');
    expect(closes).to.have.length(41);
    for (const c of closes) expect(c.reason).to.be.oneOf(['upstream-closed', 'peer-closed', 'session-closed']);
  });

  it('in-process: no timer or socket outlives its session (normal end, refused channel, silent client)', async function () {
    this.timeout(60_000);
    const lines: Record<string, unknown>[] = [];
    const sink = new Writable({
      write(chunk: Buffer, _e, cb) {
        for (const l of chunk.toString().split('\n')) if (l) lines.push(JSON.parse(l) as Record<string, unknown>);
        cb();
      },
    });
    const { config } = loadConfigText(
      `listen: [{address: 127.0.0.1, port: 0}]\nhostKeys: [hk/inproc]\nauthorizedKeys: ak/%u\nloginGraceTime: 1s\nroutes:\n  - name: t\n    to: ["127.0.0.1:${scene.sshd.port}"]\n`,
      { displayName: 'inproc.yaml', baseDir: scene.dir, embedded: false },
    );
    const server = new HoldfastServer(config, Events.loggingTo(createLogger({ json: true, stream: sink })));
    const [bound] = await server.start();
    const closes = () => lines.filter((l) => l.event === 'session-close').length;
    // Warm-up, then the baseline.
    await sshJump(scene.cfg.alice!, 'alice', bound!.port, scene.sshd.port, 'true');
    await waitFor(() => closes() === 1 && server.sessionCount === 0, { what: 'warm-up close' });
    const baseline = resources();

    const ok = await sshJump(scene.cfg.alice!, 'alice', bound!.port, scene.sshd.port, 'echo in-process');
    expect(ok.stdout.toString()).to.equal('in-process\n');
    const refused = await sshJump(scene.cfg.alice!, 'alice', bound!.port, 9, 'true');
    expect(refused.code).to.equal(255);
    const silent = (await import('node:net')).connect(bound!.port, '127.0.0.1');
    silent.on('error', () => {});
    silent.resume(); // read the server's banner, so its FIN is seen
    await new Promise((r) => silent.once('close', r));
    await waitFor(() => closes() === 4 && server.sessionCount === 0, { what: 'three more session-close lines' });
    // No growth: a leaked timer or socket would show here. (Fewer is fine: sockets other suites left
    // closing may finish meanwhile.)
    const noGrowth = () => Object.entries(resources()).every(([k, v]) => v <= baseline[k]!);
    await waitFor(noGrowth, { timeoutMs: 3000, what: 'resources back to baseline' }).catch(() => {});
    const after = resources();
    for (const k of Object.keys(baseline)) expect(after[k], `${k}: ${JSON.stringify({ baseline, after })}`).to.be.at.most(baseline[k]!);
    expect(lines.filter((l) => l.event === 'session-close').map((l) => l.reason)).to.deep.equal(['peer-closed', 'peer-closed', 'peer-closed', 'login-grace']);
    await server.stop();
  });
});
