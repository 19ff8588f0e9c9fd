/**
 * Upgrade in place (SIGUSR2) the way the README says to do it: the new release installed beside the
 * old one, the symlink switched, then USR2. Two releases of this checkout's compiled code, told apart
 * by the version in their package.json (the SSH banner shows it).
 */
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import crypto from 'node:crypto';
import { PassThrough, Readable } from 'node:stream';
import { expect } from 'chai';
import { CONFIG_HEAD, makeScene, requireSshd, type Scene } from '../helpers/fixture.js';
import { ROOT, startHoldfast, type Holdfast, type LogLine } from '../helpers/holdfast.js';
import { removeTempDirs, tempDir } from '../helpers/tmp.js';
import { sshJump, type SshResult } from '../helpers/ssh.js';
import { waitFor } from '../helpers/wait.js';

const MiB = 1024 * 1024;
const pkgVersion = (JSON.parse(fs.readFileSync(path.join(ROOT, 'package.json'), 'utf8')) as { version: string }).version;
const NEXT = `${pkgVersion}-upgrade.2`;

/** A release folder: this checkout's bin/ and dist/src copied, its node_modules linked, `version` in package.json. */
function makeRelease(dir: string, version: string): void {
  fs.mkdirSync(path.join(dir, 'dist'), { recursive: true });
  fs.cpSync(path.join(ROOT, 'bin'), path.join(dir, 'bin'), { recursive: true });
  fs.cpSync(path.join(ROOT, 'dist', 'src'), path.join(dir, 'dist', 'src'), { recursive: true });
  fs.symlinkSync(path.join(ROOT, 'node_modules'), path.join(dir, 'node_modules'));
  const pkg = JSON.parse(fs.readFileSync(path.join(ROOT, 'package.json'), 'utf8')) as Record<string, unknown>;
  fs.writeFileSync(path.join(dir, 'package.json'), JSON.stringify({ ...pkg, version }, null, 2));
}

function banner(port: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const s = net.connect(port, '127.0.0.1');
    let got = '';
    s.setEncoding('utf8');
    s.on('data', (d: string) => {
      got += d;
      if (got.includes('\n')) {
        s.destroy();
        resolve(got.split('\r\n')[0]!);
      }
    });
    s.on('error', reject);
  });
}

const alive = (pid: number) => {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
};

/** `bytes` of random data, 1 MiB every `everyMs`, hashed as it goes; `sent` counts what went out. */
function pacedUpload(bytes: number, everyMs: number) {
  const hash = crypto.createHash('sha256');
  const state = { sent: 0, digest: '' };
  const stream = new Readable({
    read() {
      if (state.sent >= bytes) {
        state.digest = hash.digest('hex');
        this.push(null);
        return;
      }
      setTimeout(() => {
        const chunk = crypto.randomBytes(Math.min(MiB, bytes - state.sent));
        hash.update(chunk);
        state.sent += chunk.length;
        this.push(chunk);
      }, everyMs);
    },
  });
  return { stream, state };
}

describe('upgrade in place: SIGUSR2 with the release symlink switched', function () {
  let scene: Scene;
  let hf: Holdfast;
  let current: string;
  let releases: string;
  const configFile = () => path.join(scene.dir, 'holdfast.yaml');
  const config = (extra: string, port = scene.sshd.port) => `${CONFIG_HEAD}shutdownTimeout: 2s\n${extra}routes:\n  - name: target\n    to: ["127.0.0.1:${port}"]\n`;
  const workerStarts = () => hf.logs.filter((l) => l.event === 'worker-started');
  const upgraded = (generation: number) => hf.waitForLog((l) => l.event === 'upgrade-complete' && l.generation === generation, 20_000, `upgrade to generation ${generation}`);
  const holdingSession = (input: PassThrough) => sshJump(scene.cfg.alice!, 'alice', hf.port, scene.sshd.port, 'read line; echo "got $line"', { input, timeoutMs: 60_000 });
  /** `ln -sfn RELEASE current`, atomically (a new link renamed over the old one). */
  const switchTo = (release: string) => {
    fs.symlinkSync(release, `${current}.new`);
    fs.renameSync(`${current}.new`, current);
  };
  const channelOpens = () => hf.logs.filter((l) => l.event === 'channel-open').length;

  before(async function () {
    requireSshd(this);
    this.timeout(60_000);
    scene = await makeScene(['alice']);
    scene.authorizeOwn('alice');
    releases = tempDir('holdfast-releases-');
    makeRelease(path.join(releases, 'holdfast-1'), pkgVersion);
    makeRelease(path.join(releases, 'holdfast-2'), NEXT);
    current = path.join(releases, 'current');
    fs.symlinkSync(path.join(releases, 'holdfast-1'), current);
    hf = await startHoldfast(scene.dir, config('drainTimeout: 30s\n'), { bin: path.join(current, 'bin', 'holdfast.js') });
  });

  after(async function () {
    await hf?.stop();
    await scene?.stop();
    removeTempDirs();
  });

  it('an idle session and a 128 MiB upload span the upgrade; 12 logins over it all work; new banner, same main pid; the old worker exits after its last session', async function () {
    this.timeout(90_000);
    const mainPid = hf.proc.pid!;
    const oldWorker = hf.pid;
    expect(await banner(hf.port)).to.equal(`SSH-2.0-holdfast_${pkgVersion}`);

    const idleIn = new PassThrough();
    let opens = channelOpens();
    const idle = holdingSession(idleIn);
    await waitFor(() => channelOpens() > opens, { what: 'the idle session' });
    const upload = pacedUpload(128 * MiB, 25);
    opens = channelOpens();
    const uploading = sshJump(scene.cfg.alice!, 'alice', hf.port, scene.sshd.port, 'sha256sum', { input: upload.stream, timeoutMs: 60_000 });
    await waitFor(() => upload.state.sent >= 24 * MiB, { timeoutMs: 20_000, what: '24 MiB uploaded' });

    // The README's upgrade: the new release beside the old one, the symlink switched, then USR2.
    switchTo(path.join(releases, 'holdfast-2'));
    const logins: Array<Promise<SshResult>> = [];
    const login = (i: number) => logins.push(sshJump(scene.cfg.alice!, 'alice', hf.port, scene.sshd.port, `echo login-${i}`, { timeoutMs: 30_000 }));
    for (let i = 0; i < 4; i++) login(i);
    process.kill(mainPid, 'SIGUSR2');
    for (let i = 4; i < 12; i++) {
      await new Promise((r) => setTimeout(r, 150));
      login(i);
    }
    const done = await upgraded(2);
    expect(done).to.include({ version: NEXT, draining: 1 });
    const sentAtUpgrade = upload.state.sent;

    idleIn.end('hello\n');
    const i = await idle;
    expect(i.stdout.toString(), i.stderr).to.equal('got hello\n');
    const u = await uploading;
    expect(u.code, u.stderr).to.equal(0);
    expect(u.stdout.toString().split(' ')[0]).to.equal(upload.state.digest);
    const results = await Promise.all(logins);
    results.forEach((r, n) => expect(r.stdout.toString(), `login ${n}: ${r.stderr}`).to.equal(`login-${n}\n`));

    expect(await banner(hf.port)).to.equal(`SSH-2.0-holdfast_${NEXT}`);
    expect(hf.proc.exitCode, 'the main process is still the same one').to.equal(null);
    expect(alive(mainPid)).to.equal(true);
    await waitFor(() => !alive(oldWorker), { timeoutMs: 15_000, what: 'the old worker to exit once its last session ended' });
    const exit = await hf.waitForLog((l) => l.event === 'worker-exit' && l.pid === oldWorker);
    expect(exit).to.include({ generation: 1 });
    console.log(`      upload: ${(sentAtUpgrade / MiB).toFixed(0)} MiB sent when the new generation served, 128 MiB hash equal; 12/12 logins; old worker ${oldWorker} gone, main pid ${mainPid} unchanged`);
  });

  it('drainTimeout closes a session left on the old code with a reason the user sees', async function () {
    this.timeout(60_000);
    fs.writeFileSync(configFile(), config('drainTimeout: 2s\n'));
    const oldWorker = workerStarts().at(-1)!.pid as number;
    const opens = channelOpens();
    const started = Date.now();
    const left = sshJump(scene.cfg.alice!, 'alice', hf.port, scene.sshd.port, 'sleep 40', { timeoutMs: 50_000 });
    await waitFor(() => channelOpens() > opens, { what: 'the long session' });
    process.kill(hf.proc.pid!, 'SIGUSR2');
    await upgraded(3);
    const r = await left;
    expect(Date.now() - started).to.be.lessThan(15_000);
    expect(r.stderr).to.match(/Received disconnect from .*holdfast: the jump host is shutting down/);
    const close = await hf.waitForLog((l: LogLine) => l.event === 'session-close' && l.user === 'alice' && l.reason === 'shutdown');
    expect(close.worker).to.equal(hf.logs.find((l) => l.event === 'worker-started' && l.pid === oldWorker)!.worker);
    await waitFor(() => !alive(oldWorker), { timeoutMs: 10_000, what: 'the drained worker to exit' });
  });

  it('SIGHUP after an upgrade reaches the new generation: a removed route refuses the next -J', async function () {
    this.timeout(30_000);
    const before = hf.logs.filter((l) => l.event === 'reloaded').length;
    fs.writeFileSync(configFile(), config('drainTimeout: 2s\n', 1));
    process.kill(hf.proc.pid!, 'SIGHUP');
    const newest = workerStarts().at(-1)!;
    await waitFor(() => hf.logs.filter((l) => l.event === 'reloaded').length > before, { what: 'reloaded' });
    expect(hf.logs.filter((l) => l.event === 'reloaded').at(-1)).to.include({ worker: newest.worker });
    const r = await sshJump(scene.cfgInfo.alice!, 'alice', hf.port, scene.sshd.port, 'echo should-not-run');
    expect(r.stdout.toString()).to.equal('');
    expect(r.stderr).to.match(/open failed: administratively prohibited: holdfast: no route allows alice/);
    const refused = await hf.waitForLog((l) => l.event === 'channel-refused' && l.code === 'no-route');
    expect(refused.worker).to.equal(newest.worker);
    fs.writeFileSync(configFile(), config('drainTimeout: 2s\n'));
    process.kill(hf.proc.pid!, 'SIGHUP');
    await waitFor(() => hf.logs.filter((l) => l.event === 'reloaded').length > before + 1, { what: 'reloaded again' });
  });

  it('workers: 2 — a worker killed with SIGKILL is replaced; a session on the other carries on', async function () {
    this.timeout(60_000);
    fs.writeFileSync(configFile(), config('drainTimeout: 2s\nworkers: 2\n'));
    process.kill(hf.proc.pid!, 'SIGUSR2');
    await upgraded(4);
    const gen4 = workerStarts().filter((l) => l.generation === 4);
    expect(gen4).to.have.length(2);
    // The kernel picks the worker (SCHED_NONE): sessions until both workers hold one (at most 12).
    // One at a time, so the n-th channel-open line is the n-th session's.
    const inputs: PassThrough[] = [];
    const sessions: Array<Promise<SshResult>> = [];
    const firstOpen = channelOpens();
    const byWorker = new Map<unknown, number[]>();
    for (let n = 0; n < 12 && byWorker.size < 2; n++) {
      const input = new PassThrough();
      inputs.push(input);
      sessions.push(holdingSession(input));
      await waitFor(() => channelOpens() > firstOpen + n, { what: 'the session' });
      const line = hf.logs.filter((l) => l.event === 'channel-open')[firstOpen + n]!;
      byWorker.set(line.worker, [...(byWorker.get(line.worker) ?? []), n]);
    }
    const openLines = hf.logs.filter((l) => l.event === 'channel-open').slice(firstOpen);
    expect(byWorker.size, 'sessions on both workers').to.equal(2);
    const victim = gen4.find((w) => w.worker === openLines[0]!.worker)!;
    const survivor = gen4.find((w) => w.worker !== victim.worker)!;
    process.kill(victim.pid as number, 'SIGKILL');
    const lost = await hf.waitForLog((l) => l.event === 'worker-lost' && l.pid === victim.pid, 10_000, 'worker-lost');
    expect(lost).to.include({ signal: 'SIGKILL', generation: 4 });
    await hf.waitForLog((l) => l.event === 'worker-started' && l.generation === 4 && l.pid !== victim.pid && l.pid !== survivor.pid, 30_000, 'a replacement worker');
    inputs.forEach((input) => input.end('still-here\n'));
    const results = await Promise.all(sessions);
    for (const n of byWorker.get(survivor.worker)!) expect(results[n]!.stdout.toString(), results[n]!.stderr).to.equal('got still-here\n');
    for (const n of byWorker.get(victim.worker)!) expect(results[n]!.stdout.toString()).to.equal('');
    const after = await sshJump(scene.cfg.alice!, 'alice', hf.port, scene.sshd.port, 'echo after-replacement');
    expect(after.stdout.toString()).to.equal('after-replacement\n');
  });

  it('a broken release or config at USR2: upgrade-failed, and the running generation keeps serving', async function () {
    this.timeout(40_000);
    const serving = workerStarts().at(-1)!;
    const broken = path.join(releases, 'holdfast-broken');
    makeRelease(broken, `${pkgVersion}-broken`);
    fs.writeFileSync(path.join(broken, 'bin', 'holdfast.js'), "#!/usr/bin/env node\nthrow new Error('this release is broken');\n");
    switchTo(broken);
    const failures = () => hf.logs.filter((l) => l.event === 'upgrade-failed').length;
    process.kill(hf.proc.pid!, 'SIGUSR2');
    await waitFor(() => failures() === 1, { timeoutMs: 15_000, what: 'upgrade-failed (broken release)' });
    switchTo(path.join(releases, 'holdfast-2'));
    fs.writeFileSync(configFile(), `${config('drainTimeout: 2s\n')}bogusKey: 1\n`);
    process.kill(hf.proc.pid!, 'SIGUSR2');
    await waitFor(() => failures() === 2, { timeoutMs: 15_000, what: 'upgrade-failed (bad config)' });
    expect(hf.logs.filter((l) => l.event === 'upgrade-failed').at(-1)!.problems).to.be.an('array').with.length.greaterThan(0);
    fs.writeFileSync(configFile(), config('drainTimeout: 2s\nworkers: 2\n'));
    expect(alive(serving.pid as number)).to.equal(true);
    const r = await sshJump(scene.cfg.alice!, 'alice', hf.port, scene.sshd.port, 'echo still-serving');
    expect(r.stdout.toString()).to.equal('still-serving\n');
    expect(await banner(hf.port)).to.equal(`SSH-2.0-holdfast_${NEXT}`);
  });

  it('a new worker that never says it serves is killed after workerStartTimeout: upgrade-failed, and the next SIGUSR2 is not blocked', async function () {
    this.timeout(40_000);
    const hung = path.join(releases, 'holdfast-hung');
    makeRelease(hung, `${pkgVersion}-hung`);
    // The worker of this release starts and then does nothing: no `ready`, ever.
    fs.writeFileSync(path.join(hung, 'bin', 'holdfast.js'), '#!/usr/bin/env node\nsetInterval(() => {}, 1000);\n');
    const kept = fs.readFileSync(configFile(), 'utf8');
    // Workers of generation `n` (their environment says so; read from /proc, not from their output).
    const workersOf = (n: number) =>
      fs.readdirSync('/proc').filter((p) => /^\d+$/.test(p) && (() => {
        try {
          return fs.readFileSync(`/proc/${p}/environ`, 'utf8').split('\0').includes(`HOLDFAST_GENERATION=${n}`);
        } catch {
          return false;
        }
      })());
    try {
      switchTo(hung);
      fs.writeFileSync(configFile(), config('drainTimeout: 2s\nworkerStartTimeout: 2s\n'));
      const failures = hf.logs.filter((l) => l.event === 'upgrade-failed').length;
      const begins = hf.logs.filter((l) => l.event === 'upgrade-begin').length;
      const t0 = Date.now();
      process.kill(hf.proc.pid!, 'SIGUSR2');
      const begin = await waitFor(() => hf.logs.filter((l) => l.event === 'upgrade-begin')[begins], { timeoutMs: 10_000, what: 'upgrade-begin' });
      const hungProcs = () => workersOf(Number(begin.to));
      await waitFor(() => hungProcs().length > 0, { timeoutMs: 10_000, what: 'the hung worker to start' });
      const failed = await waitFor(() => hf.logs.filter((l) => l.event === 'upgrade-failed')[failures], { timeoutMs: 15_000, what: 'upgrade-failed (hung worker)' });
      expect(failed.why).to.equal('a new worker did not report that it serves within workerStartTimeout (2000 ms): killed: the running generation stays');
      await waitFor(() => hungProcs().length === 0, { timeoutMs: 5000, what: 'the hung worker to be gone' });
      console.log(`      hung worker killed, upgrade-failed ${Date.now() - t0} ms after SIGUSR2`);
    } finally {
      switchTo(path.join(releases, 'holdfast-2'));
      fs.writeFileSync(configFile(), kept);
    }
  });

  it('SIGUSR2 during an upgrade is ignored and says so; the upgrade under way completes', async function () {
    this.timeout(40_000);
    const begins = () => hf.logs.filter((l) => l.event === 'upgrade-begin');
    const n = begins().length;
    process.kill(hf.proc.pid!, 'SIGUSR2');
    const begin = await waitFor(() => begins()[n], { timeoutMs: 10_000, what: 'upgrade-begin' });
    process.kill(hf.proc.pid!, 'SIGUSR2');
    const ignored = await hf.waitForLog((l) => l.event === 'upgrade-ignored', 10_000, 'upgrade-ignored');
    expect(ignored.level).to.equal('warn');
    expect(ignored.why).to.equal(`an upgrade to generation ${String(begin.to)} is under way: send SIGUSR2 again after its upgrade-complete or upgrade-failed`);
    await upgraded(Number(begin.to));
    expect(begins().length, 'one upgrade, not two').to.equal(n + 1);
  });

  it('SIGTERM leaves no process', async function () {
    this.timeout(30_000);
    const pids = [hf.proc.pid!, ...workerStarts().map((l) => l.pid as number)];
    // Signalled by hand (not hf.stop(), which would also kill what is left behind).
    const exited = new Promise<number | null>((r) => hf.proc.once('exit', (c) => r(c)));
    hf.proc.kill('SIGTERM');
    expect(await exited, `holdfast's stderr: ${hf.stderr()}; its last lines: ${hf.logs.slice(-5).map((l) => JSON.stringify(l)).join(' ')}`).to.equal(0);
    await waitFor(() => pids.every((p) => !alive(p)), { timeoutMs: 10_000, what: 'every holdfast process to be gone' });
  });
});

describe('a primary that dies without a shutdown (SIGKILL)', function () {
  let scene: Scene;
  let hf: Holdfast | undefined;

  before(async function () {
    requireSshd(this);
    this.timeout(60_000);
    scene = await makeScene(['alice']);
    scene.authorizeOwn('alice');
  });

  after(async function () {
    await hf?.stop();
    await scene?.stop();
    removeTempDirs();
  });

  it("each worker says so (primary-gone, with the sessions that end with it) and exits; the user's ssh ends", async function () {
    this.timeout(60_000);
    const yaml = `${CONFIG_HEAD}workers: 2\nroutes:\n  - name: target\n    to: ["127.0.0.1:${scene.sshd.port}"]\n`;
    const h = (hf = await startHoldfast(scene.dir, yaml));
    const workers = await waitFor(() => {
      const w = h.logs.filter((l) => l.event === 'worker-started');
      return w.length === 2 ? w : undefined;
    }, { timeoutMs: 20_000, what: 'two workers' });
    const input = new PassThrough();
    const t0 = performance.now();
    const session = sshJump(scene.cfg.alice!, 'alice', h.port, scene.sshd.port, 'read line; echo "got $line"', { input, timeoutMs: 30_000 });
    const open = await h.waitForLog((l) => l.event === 'channel-open', 15_000, 'channel-open');
    process.kill(h.proc.pid!, 'SIGKILL');
    const gone = await waitFor(() => {
      const g = h.logs.filter((l) => l.event === 'primary-gone');
      return g.length === 2 ? g : undefined;
    }, { timeoutMs: 10_000, what: 'primary-gone from both workers' });
    const holding = gone.find((l) => l.worker === open.worker)!;
    const other = gone.find((l) => l.worker !== open.worker)!;
    expect(holding).to.include({ level: 'error', sessions: 1 });
    expect(holding.ids).to.deep.equal([open.session]);
    expect(other).to.include({ sessions: 0 });
    expect(other.ids).to.deep.equal([]);
    const r = await session;
    console.log(`      primary SIGKILLed: ssh exited ${String(r.code)} ${Math.round(performance.now() - t0)} ms after it started; lines: ${gone.map((l) => `worker ${String(l.worker)} sessions ${String(l.sessions)}`).join(', ')}`);
    expect(r.code).to.equal(255);
    expect(r.stdout.toString()).to.equal('');
    await waitFor(() => workers.every((w) => !alive(w.pid as number)), { timeoutMs: 10_000, what: 'both workers gone' });
  });
});
