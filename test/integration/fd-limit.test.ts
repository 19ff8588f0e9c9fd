/**
 * Issue 22, acceptance 0: running out of file descriptors is survivable. Under a 1,500-fd limit,
 * 1,000 idle `-J` sessions are asked for; holdfast serves what its plan allows (maxSessions: auto)
 * and refuses the rest with their reason; once every client is killed at once, a new `ssh -J` logs
 * in within 2 s of the last session's close. (Before: the worker hit EMFILE while the cluster's
 * round-robin handed it a connection, and it was never given another one: src/daemon/primary.ts.)
 */
import path from 'node:path';
import { spawn } from 'node:child_process';
import { expect } from 'chai';
import { CONFIG_HEAD, makeScene, requireSshd, type Scene } from '../helpers/fixture.js';
import { startHoldfast, type Holdfast } from '../helpers/holdfast.js';
import { sshJump } from '../helpers/ssh.js';
import { openFds } from '../helpers/proc.js';
import { tcpSink } from '../helpers/sink.js';
import { stopProcess } from '../helpers/sshd.js';
import { waitFor } from '../helpers/wait.js';

const HELPER = path.join(path.dirname(new URL(import.meta.url).pathname), '..', 'helpers', 'idle-sessions.js');

describe('file descriptors: refused before the limit, serving again once they are free', function () {
  let scene: Scene;
  let hf: Holdfast;
  let sink: Awaited<ReturnType<typeof tcpSink>>;

  before(async function () {
    this.timeout(30_000);
    requireSshd(this);
    scene = await makeScene(['alice']);
    scene.authorizeOwn('alice');
    sink = await tcpSink(true);
    const sinkPort = sink.port;
    hf = await startHoldfast(
      scene.dir,
      `${CONFIG_HEAD}perSourceMaxStartups: none\nmaxStartups: "200:30:400"\nmaxConnectionsPerUser: none\nroutes:\n  - name: target\n    to: ["127.0.0.1:${scene.sshd.port}", "127.0.0.1:${sinkPort}"]\n`,
      { nofile: 1500 },
    );
  });

  after(async function () {
    await hf?.stop();
    sink?.close();
    await scene?.stop();
  });

  it('1,000 idle -J sessions under a 1,500-fd limit: the excess refused with a reason; all clients killed: a new ssh -J within 2 s', async function () {
    this.timeout(120_000);
    const started = hf.logs.find((l) => l.event === 'started')!;
    expect(started.fdLimit).to.equal(1500);
    const maxSessions = Number(started.maxSessions);
    expect(maxSessions, 'maxSessions planned from RLIMIT_NOFILE').to.be.within(600, 720);
    const sinkPort = sink.port;
    const load = spawn(process.execPath, [HELPER, String(hf.port), String(sinkPort), '1000', scene.keys.alice!], { stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    load.stdout!.on('data', (d) => (out += d));
    try {
      const counts = await waitFor(() => (out.includes('\n') ? (JSON.parse(out) as { open: number; refused: number; channelFailed: number }) : undefined), { timeoutMs: 90_000, what: 'the 1,000 sessions' });
      const fdsAtPeak = openFds(hf.pid);
      console.log(`      maxSessions ${maxSessions}: ${counts.open} open, ${counts.refused} refused, ${counts.channelFailed} channels failed; worker fds ${fdsAtPeak} of 1500`);
      expect(counts.open, 'sessions served').to.be.at.least(maxSessions - 10);
      expect(counts.channelFailed, 'channels of admitted sessions that failed').to.equal(0);
      expect(counts.open + counts.refused).to.equal(1000);
      expect(fdsAtPeak, 'the worker stayed below its limit').to.be.below(1500);
      const refused = hf.logs.filter((l) => l.event === 'session-refused');
      expect(refused.length, 'refusals logged').to.be.at.least(1);
      expect(String(refused[0]!.why)).to.match(/maxSessions \(\d+\)/);
      expect(hf.logs.filter((l) => l.event === 'fd-exhausted'), 'accepts that failed for want of a descriptor').to.deep.equal([]);
    } finally {
      await stopProcess(load, 'SIGKILL', 5000);
    }
    // Every client gone at once: the last session closes, then a new user logs in.
    const closes = () => hf.logs.filter((l) => l.event === 'session-close').length;
    await waitFor(() => closes() >= maxSessions - 10 && openFds(hf.pid) < 100, { timeoutMs: 30_000, what: 'the sessions to close' });
    const lastClose = Math.max(...hf.logs.filter((l) => l.event === 'session-close').map((l) => Date.parse(String(l.time))));
    const r = await sshJump(scene.cfg.alice!, 'alice', hf.port, scene.sshd.port, 'echo in-again', { timeoutMs: 15_000 });
    const loggedIn = Date.now();
    console.log(`      new ssh -J: rc ${r.code}, done ${loggedIn - lastClose} ms after the last session's close`);
    expect(r.stdout.toString()).to.equal('in-again\n');
    expect(loggedIn - lastClose, 'ms from the last close to the new login').to.be.below(2000);
  });
});
