/**
 * Issue 24: Type=notify. READY=1 only once holdfast serves (its SSH banner answers then), RELOADING=1
 * (with MONOTONIC_USEC) and READY=1 around a SIGHUP, STOPPING=1 at SIGTERM; read from a socket that
 * stands in for systemd's (test/helpers/notify-socket.py), through systemd-notify(1) as in production.
 */
import net from 'node:net';
import path from 'node:path';
import { spawn, type ChildProcess } from 'node:child_process';
import { execFileSync } from 'node:child_process';
import { expect } from 'chai';
import { CONFIG_HEAD, makeScene, type Scene } from '../helpers/fixture.js';
import { ROOT, startHoldfast, type Holdfast } from '../helpers/holdfast.js';
import { waitFor } from '../helpers/wait.js';

function banner(port: number): Promise<string> {
  return new Promise((resolve) => {
    const s = net.connect(port, '127.0.0.1');
    let got = '';
    const timer = setTimeout(() => s.destroy(), 3000);
    s.on('data', (d) => {
      got += d;
      if (got.includes('\n')) s.destroy();
    });
    s.on('error', () => {});
    s.on('close', () => {
      clearTimeout(timer);
      resolve(got.trim());
    });
  });
}

describe('systemd Type=notify: readiness messages', function () {
  let scene: Scene;
  let hf: Holdfast | undefined;
  let sock: ChildProcess | undefined;

  before(function () {
    try {
      execFileSync('systemd-notify', ['--version'], { stdio: 'ignore' });
    } catch {
      console.log('    SKIPPED Type=notify: systemd-notify is not installed (Debian package systemd; test/ensure-system-deps.sh installs it as root)');
      this.skip();
    }
  });

  after(async function () {
    await hf?.stop();
    sock?.kill('SIGKILL');
    await scene?.stop();
  });

  it('READY=1 once the SSH port answers; RELOADING=1 + MONOTONIC_USEC then READY=1 on SIGHUP; STOPPING=1 on SIGTERM', async function () {
    this.timeout(60_000);
    scene = await makeScene(['alice']);
    const at = path.join(scene.dir, 'notify.sock');
    sock = spawn('python3', [path.join(ROOT, 'test/helpers/notify-socket.py'), at], { stdio: ['pipe', 'pipe', 'inherit'] });
    sock.on('error', (err) => console.log(`      notify socket: ${err.message}`));
    const msgs: string[] = [];
    let buf = '';
    let bound = false;
    let readyBanner: Promise<string> | undefined;
    sock.stdout!.on('data', (d) => {
      buf += d;
      for (let nl = buf.indexOf('\n'); nl >= 0; nl = buf.indexOf('\n')) {
        const j = JSON.parse(buf.slice(0, nl)) as { bound?: boolean; msg?: string };
        buf = buf.slice(nl + 1);
        if (j.bound) bound = true;
        if (j.msg === undefined) continue;
        msgs.push(j.msg);
        // At READY=1 the SSH port must answer with holdfast's banner (the port is in the log by then).
        if (j.msg.includes('READY=1') && !readyBanner && hf) readyBanner = banner(hf.port);
      }
    });
    await waitFor(() => bound, { what: 'the notification socket' });
    hf = await startHoldfast(scene.dir, `${CONFIG_HEAD}routes: [{name: r, to: ["127.0.0.1:22"]}]\n`, { env: { NOTIFY_SOCKET: at } });
    await waitFor(() => msgs.some((m) => m.includes('READY=1')), { what: 'READY=1' });
    readyBanner ??= banner(hf.port);
    expect(await readyBanner, 'the banner at READY=1').to.match(/^SSH-2\.0-holdfast/);
    expect(msgs[0]).to.match(/^READY=1\nSTATUS=serving: generation 1, 1 worker\(s\)$/);

    hf.proc.kill('SIGHUP');
    await waitFor(() => msgs.filter((m) => m.includes('READY=1')).length >= 2, { what: 'READY=1 after the reload' });
    const reloading = msgs.findIndex((m) => m.startsWith('RELOADING=1'));
    expect(msgs[reloading], 'RELOADING=1').to.match(/^RELOADING=1\nMONOTONIC_USEC=\d+$/);
    expect(reloading, 'RELOADING=1 before the second READY=1').to.be.lessThan(msgs.findLastIndex((m) => m.includes('READY=1')));
    expect(hf.logs.some((l) => l.event === 'reloaded'), 'the worker reloaded before READY=1').to.equal(true);

    await hf.stop();
    hf = undefined;
    await waitFor(() => msgs.some((m) => m.startsWith('STOPPING=1')), { what: 'STOPPING=1' });
    console.log(`      ${msgs.map((m) => m.replace(/\n/g, ' ')).join(' | ')}`);
  });
});
