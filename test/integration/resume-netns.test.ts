/**
 * Issue 23, acceptance 1-3: `holdfast connect` through real kernel middleboxes (conntrack in network
 * namespaces), client ── r1 ── holdfast ── r2 ── target, client-leg keepalive 1 s x 3 (holdfast
 * detaches within ~4 s of the client leg going silent):
 * an interactive shell survives 60 s of its network being gone; 256 MiB up and down survive 5
 * outages each with r1's flows forgotten (conntrack flushed: the old TCP flow is dead for good);
 * a client whose address changes mid-transfer resumes from the new one (and may not, with
 * `resume.sameSource`).
 */
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { execFileSync, spawn } from 'node:child_process';
import { expect } from 'chai';
import { makeScene, requireSshd, type Scene } from '../helpers/fixture.js';
import { BIN, startHoldfast, type Holdfast } from '../helpers/holdfast.js';
import { removeTempDirs } from '../helpers/tmp.js';
import { waitFor } from '../helpers/wait.js';
import { createTopology, requireNetns, type Topology } from '../helpers/netns.js';

const MiB = 1024 * 1024;

describe('holdfast connect through kernel middleboxes: outages, flushed flows, a new address', function () {
  let topo: Topology;
  let scene: Scene;
  let hf: Holdfast;
  let file: string;
  let hash: string;

  before(async function () {
    this.timeout(90_000);
    requireSshd(this);
    requireNetns(this);
    topo = createTopology(120);
    scene = await makeScene(['alice', 'bob'], { netns: topo.ns.target, address: topo.addr.target, port: 22 });
    scene.authorizeOwn('alice', 'bob');
    file = path.join(scene.dir, 'data.bin');
    const data = crypto.randomBytes(256 * MiB);
    fs.writeFileSync(file, data);
    hash = crypto.createHash('sha256').update(data).digest('hex');
    hf = await startHoldfast(
      scene.dir,
      `listen: [{address: 0.0.0.0, port: 2222}]
hostKeys: [hk/key]
authorizedKeys: ak/%u
workers: 1
resume: { detachTimeout: 3m }
keepalive:
  client: { interval: 1s, countMax: 3 }
routes:
  - name: roam
    users: [alice]
    to: ["${topo.addr.target}:22"]
  - name: pinned
    users: [bob]
    to: ["${topo.addr.target}:22"]
    resume: { sameSource: true }
`,
      { netns: topo.ns.jump },
    );
  });

  after(async function () {
    await hf?.stop();
    await scene?.sshd.stop();
    topo?.destroy();
    removeTempDirs();
  });

  /** The user's ssh in the client namespace, through `holdfast connect` (heartbeat 500 ms). */
  function user(who: string, command: string, opts: { tty?: boolean } = {}) {
    const pc = `ProxyCommand=${process.execPath} ${BIN} connect -F ${scene.cfg[who]} --heartbeat 500 ${who}@${topo.addr.jumpFront}:2222 %h %p`;
    const p = spawn('ip', ['netns', 'exec', topo.ns.client, 'ssh', ...(opts.tty ? ['-tt'] : []), '-F', scene.cfg[who]!, '-o', pc, '-p', '22', `root@${topo.addr.target}`, command], { stdio: ['pipe', 'pipe', 'pipe'], detached: true });
    const hashed = crypto.createHash('sha256');
    let bytes = 0;
    let text = '';
    let err = '';
    p.stdout.on('data', (d: Buffer) => {
      bytes += d.length;
      hashed.update(d);
      if (text.length < 65536) text += d.toString();
    });
    p.stderr.on('data', (d) => (err += d));
    p.stdin.on('error', () => {});
    const exit = new Promise<number | null>((r) => p.once('close', r));
    const kill = () => {
      try {
        process.kill(-p.pid!, 'SIGKILL');
      } catch {
        /* gone */
      }
    };
    return { p, exit, kill, bytes: () => bytes, text: () => text, err: () => err, digest: () => hashed.digest('hex') };
  }

  const since = (t0: number) => (l: Record<string, unknown>) => Date.parse(String(l.time)) >= t0;

  it('interactive: a shell sets a variable; the client leg is black-holed at r1 for 60 s; the same shell prints it', async function () {
    this.timeout(150_000);
    const t0 = Date.now();
    const u = user('alice', 'bash --norc -i', { tty: true });
    try {
      u.p.stdin.write('PS1="$ "; X=held-$((6*7))\n');
      u.p.stdin.write('echo ready-$X\n');
      await waitFor(() => u.text().includes('ready-held-42') || undefined, { timeoutMs: 30_000, what: 'the shell' });
      topo.blackholeClient();
      await hf.waitForLog((l) => l.event === 'session-detached' && since(t0)(l), 20_000);
      await new Promise((r) => setTimeout(r, 60_000 - 4000));
      topo.restoreClient();
      const resumed = await hf.waitForLog((l) => l.event === 'session-resumed' && since(t0)(l), 60_000);
      u.p.stdin.write('echo "still-$X"; exit\n');
      await waitFor(() => u.text().includes('still-held-42') || undefined, { timeoutMs: 30_000, what: 'the same shell to answer' });
      console.log(`      resumed after a gap of ${(Number(resumed.gapMs) / 1000).toFixed(1)} s (black-holed 60 s); replayed ${resumed.replayedDown} down, ${resumed.replayedUp} up`);
      expect(Number(resumed.gapMs)).to.be.within(50_000, 90_000);
      expect(await u.exit).to.equal(0);
    } finally {
      try {
        topo.restoreClient();
      } catch {
        /* restored */
      }
      u.kill();
    }
  });

  for (const dir of ['upload', 'download'] as const) {
    it(`256 MiB ${dir}, 5 outages of 5 s with r1's flows forgotten: SHA-256 equal, bytes replayed`, async function () {
      this.timeout(240_000);
      const t0 = Date.now();
      const u = user('alice', dir === 'upload' ? 'sha256sum' : `cat ${file}`);
      if (dir === 'upload') fs.createReadStream(file).pipe(u.p.stdin);
      try {
        for (let i = 0; i < 5; i++) {
          // Mid-transfer: wait for the stream to move (and the previous resume), then cut it.
          const at = u.bytes();
          await waitFor(() => hf.logs.filter((l) => (l.event === 'session-resumed' || l.event === 'resume-open') && since(t0)(l)).length > i || undefined, { timeoutMs: 60_000, what: `transport ${i + 1}` });
          await new Promise((r) => setTimeout(r, 700));
          if (u.p.exitCode !== null) break;
          topo.blackholeClient();
          topo.flushClientRouter();
          await new Promise((r) => setTimeout(r, 5000));
          topo.restoreClient();
          void at;
        }
        const code = await u.exit;
        const resumed = hf.logs.filter((l) => l.event === 'session-resumed' && since(t0)(l));
        const replayed = resumed.reduce((n, l) => n + Number(l.replayedDown) + Number(l.replayedUp), 0);
        console.log(`      ${dir}: ${resumed.length} resumes, gaps ${resumed.map((l) => (Number(l.gapMs) / 1000).toFixed(1)).join('/')} s, ${replayed} bytes replayed, exit ${code}`);
        expect(code, u.err()).to.equal(0);
        expect(dir === 'upload' ? u.text().split(' ')[0] : u.digest()).to.equal(hash);
        expect(resumed.length).to.be.at.least(5);
        expect(replayed).to.be.greaterThan(0);
      } finally {
        try {
          topo.restoreClient();
        } catch {
          /* restored */
        }
        u.kill();
      }
    });
  }

  it('roaming: the client address changes mid-transfer (198.18.1.2 -> 198.18.1.3); resumed from the new one; with sameSource the same move is refused', async function () {
    this.timeout(180_000);
    const t0 = Date.now();
    const u = user('alice', `cat ${file}`);
    const pinned = user('bob', 'sleep 60');
    try {
      await waitFor(() => u.bytes() > 16 * MiB || undefined, { timeoutMs: 60_000, what: 'the transfer to run' });
      await hf.waitForLog((l) => l.event === 'resume-open' && l.user === 'bob' && since(t0)(l), 30_000);
      topo.moveClient('198.18.1.3');
      const moved = Date.now();
      const code = await Promise.race([u.exit, new Promise<'stuck'>((r) => setTimeout(() => r('stuck'), 60_000))]);
      if (code === 'stuck') {
        const lines = hf.logs.filter((l) => /resume|detach/.test(l.event) && since(moved - 1000)(l)).map((l) => JSON.stringify(l));
        const tree = execFileSync('sh', ['-c', `ps -eo pid,ppid,sid,stat,args | grep -E 'ssh|holdfast' | grep -v grep | grep -v sshd`], { encoding: 'utf8' });
        throw new Error(`the transfer did not end within 60 s of the move (${u.bytes()} bytes): processes ${tree}; helper said ${JSON.stringify(u.err())}; holdfast: ${lines.join(' | ')}`);
      }
      const resumed = await hf.waitForLog((l) => l.event === 'session-resumed' && l.user === 'alice' && since(t0)(l));
      console.log(`      roamed: ${String(resumed.previousSrc)} -> ${String(resumed.src)} after ${(Number(resumed.gapMs) / 1000).toFixed(1)} s`);
      expect(code, u.err()).to.equal(0);
      expect(u.digest()).to.equal(hash);
      expect(String(resumed.previousSrc)).to.match(/^198\.18\.1\.2:/);
      expect(String(resumed.src)).to.match(/^198\.18\.1\.3:/);
      const refused = await hf.waitForLog((l) => l.event === 'resume-refused' && l.user === 'bob' && since(t0)(l), 60_000);
      expect(refused.cause).to.equal('other-source');
      expect(await pinned.exit).to.equal(255);
      expect(pinned.err()).to.include('holdfast: this session may only be resumed from 198.18.1.2 (resume.sameSource)');
    } finally {
      u.kill();
      pinned.kill();
    }
  });
});
