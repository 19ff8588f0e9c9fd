/**
 * Issue 24: an operator ends a session from the admin side. `holdfast sessions --close ID --why TEXT`
 * (POST /sessions/ID/close with the bearer token): the user's ssh prints the reason and exits; the
 * session closes with reason admin-closed; who asked is logged. Without a token the listener stays
 * read-only; an unknown or malformed id says so.
 */
import fs from 'node:fs';
import path from 'node:path';
import { spawn } from 'node:child_process';
import { expect } from 'chai';
import { CONFIG_HEAD, makeScene, requireSshd, type Scene } from '../helpers/fixture.js';
import { startHoldfast, type Holdfast } from '../helpers/holdfast.js';
import { holdfast } from '../helpers/cli.js';
import { freePort } from '../helpers/ports.js';
import { waitFor } from '../helpers/wait.js';

describe('holdfast sessions --close: an operator ends a session', function () {
  let scene: Scene;
  let hf: Holdfast;
  let port: number;

  before(async function () {
    this.timeout(30_000);
    requireSshd(this);
    scene = await makeScene(['alice']);
    scene.authorizeOwn('alice');
    fs.writeFileSync(path.join(scene.dir, 'admin.token'), `${'c'.repeat(40)}\n`, { mode: 0o600 });
    port = await freePort();
    hf = await startHoldfast(scene.dir, `${CONFIG_HEAD}admin: { address: 127.0.0.1, port: ${port}, tokenFile: admin.token }\nroutes:\n  - name: r\n    to: ["127.0.0.1:${scene.sshd.port}"]\n`);
    await hf.waitForLog((l) => l.event === 'admin-listening');
  });

  after(async function () {
    await hf?.stop();
    await scene?.stop();
  });

  it("the user's ssh prints the operator's reason and exits; session-close says admin-closed; the request is logged", async function () {
    this.timeout(60_000);
    const ssh = spawn('ssh', ['-F', scene.cfg.alice!, '-J', `alice@127.0.0.1:${hf.port}`, '-p', String(scene.sshd.port), 'root@127.0.0.1', 'sleep 60'], { stdio: ['ignore', 'ignore', 'pipe'] });
    let err = '';
    ssh.on('error', (e) => (err += String(e)));
    ssh.stderr!.on('data', (d) => (err += d));
    const exited = new Promise<number | null>((r) => ssh.once('close', r));
    try {
      const open = await hf.waitForLog((l) => l.event === 'channel-open', 20_000);
      const cfg = path.join(scene.dir, 'holdfast.yaml');
      const r = holdfast(['sessions', '--config', cfg, '--close', String(open.session), '--why', 'maintenance at 14:00'], { cwd: scene.dir });
      expect(r.code, r.stderr).to.equal(0);
      expect(r.stdout.trim()).to.equal(`closed session ${open.session} (the user sees: maintenance at 14:00)`);
      const code = await exited;
      expect(err, "the user's ssh").to.include('holdfast: an administrator ended this session: maintenance at 14:00');
      expect(code).to.equal(255);
      const close = await hf.waitForLog((l) => l.event === 'session-close' && l.session === open.session);
      expect([close.reason, close.detail]).to.deep.equal(['admin-closed', 'maintenance at 14:00']);
      const asked = hf.logs.find((l) => l.event === 'admin-session-close')!;
      expect([asked.session, asked.found, String(asked.src).startsWith('127.0.0.1:')]).to.deep.equal([open.session, true, true]);
      const chan = await hf.waitForLog((l) => l.event === 'channel-close' && l.session === open.session);
      expect(chan.reason, 'its channel').to.equal('admin-closed');
      console.log(`      ssh said: ${err.trim().split('\n').pop()}`);
    } finally {
      ssh.kill('SIGKILL');
    }
  });

  it('an unknown id exits 1 saying so; a malformed one is a usage error; no token, a wrong one: refused', async function () {
    this.timeout(30_000);
    const cfg = path.join(scene.dir, 'holdfast.yaml');
    const unknown = holdfast(['sessions', '--config', cfg, '--close', '0badc0de'], { cwd: scene.dir });
    expect([unknown.code, unknown.stderr.trim()]).to.deep.equal([1, 'holdfast: cannot close session 0badc0de: no session 0badc0de is open (holdfast sessions lists them)']);
    const bad = holdfast(['sessions', '--config', cfg, '--close', 'alice'], { cwd: scene.dir });
    expect([bad.code, bad.stderr.trim()]).to.deep.equal([64, 'holdfast: --close "alice" is not a session id (8 hex digits: the ID column of holdfast sessions)']);
    const stray = holdfast(['sessions', '--config', cfg, '--why', 'x'], { cwd: scene.dir });
    expect([stray.code, stray.stderr.trim()]).to.deep.equal([64, 'holdfast: --why goes with --close ID']);
    const post = (headers: Record<string, string>) => fetch(`http://127.0.0.1:${port}/sessions/0badc0de/close`, { method: 'POST', headers, body: '{}' });
    expect((await post({})).status, 'no token').to.equal(401);
    expect((await post({ authorization: 'Bearer wrong' })).status, 'a wrong token').to.equal(401);
    const huge = await fetch(`http://127.0.0.1:${port}/sessions/0badc0de/close`, { method: 'POST', headers: { authorization: `Bearer ${'c'.repeat(40)}` }, body: 'x'.repeat(5000) });
    expect(huge.status, 'a body over 2 KiB').to.equal(413);
    const notJson = await fetch(`http://127.0.0.1:${port}/sessions/0badc0de/close`, { method: 'POST', headers: { authorization: `Bearer ${'c'.repeat(40)}` }, body: 'why' });
    expect(notJson.status, 'a body that is not JSON').to.equal(400);
  });

  it('a listener without admin.tokenFile is read-only: POST answers 403 saying what to configure', async function () {
    this.timeout(30_000);
    const p2 = await freePort();
    const dir = fs.mkdtempSync(path.join(scene.dir, 'open-'));
    for (const f of ['ak', 'hk']) fs.cpSync(path.join(scene.dir, f), path.join(dir, f), { recursive: true });
    const hf2 = await startHoldfast(dir, `${CONFIG_HEAD}admin: { address: 127.0.0.1, port: ${p2} }\nroutes: [{name: r, to: ["127.0.0.1:22"]}]\n`);
    try {
      await hf2.waitForLog((l) => l.event === 'admin-listening');
      const r = await waitFor(() => fetch(`http://127.0.0.1:${p2}/sessions/0badc0de/close`, { method: 'POST' }).catch(() => undefined), { what: 'the admin listener' });
      expect([r.status, (await r.text()).trim()]).to.deep.equal([403, 'ending sessions needs admin.tokenFile: without a token the admin listener is read-only']);
    } finally {
      await hf2.stop();
    }
  });
});
