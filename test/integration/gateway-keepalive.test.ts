/**
 * Issue 4, acceptance 5: gateway keepalive. Both legs are SSH, each with its own policy:
 * middleboxes that forget idle flows on both legs, and either leg black-holed.
 *
 *   ssh ──[client relay]── holdfast ──[upstream relay]── sshd
 *
 * The relays are userspace middleboxes (test/helpers/idle-relay.ts): they forget a flow idle for
 * T = 2 s, or, switched to black hole, swallow every byte both ways without a FIN or RST.
 */
import fs from 'node:fs';
import path from 'node:path';
import { spawn, type ChildProcess } from 'node:child_process';
import { expect } from 'chai';
import { CONFIG_HEAD, makeScene, requireSshd, sshdHostKey, type Scene } from '../helpers/fixture.js';
import { startHoldfast, type Holdfast, type LogLine } from '../helpers/holdfast.js';
import { keygen, knownHostsLine, publicKey } from '../helpers/tmp.js';
import { run } from '../helpers/ssh.js';
import { startIdleRelay, type IdleRelay } from '../helpers/idle-relay.js';
import { tcpConnectionsTo } from '../helpers/proc.js';
import { waitFor } from '../helpers/wait.js';

const T = 2000;

describe('gateway keepalive: both legs SSH, each with its own policy', function () {
  let scene: Scene;
  let hf: Holdfast;
  let clientRelay: IdleRelay;
  let upRelay: IdleRelay;
  let bhClient: IdleRelay;
  let bhUp: IdleRelay;
  const spawned: ChildProcess[] = [];

  /** ssh to holdfast through `relayPort`, gateway login to the target through `targetPort`. */
  const sshArgs = (user: string, relayPort: number, targetPort: number, cmd: string) => [
    '-F',
    scene.cfg[user]!,
    '-p',
    String(relayPort),
    `${user}+127.0.0.1+${targetPort}@127.0.0.1`,
    cmd,
  ];
  const at = (l: LogLine) => Date.parse(String(l.time));

  before(async function () {
    this.timeout(60_000);
    requireSshd(this);
    scene = await makeScene(['alice', 'bob', 'carol', 'dave', 'erin']);
    scene.authorizeOwn('alice', 'bob', 'carol', 'dave', 'erin');
    const gwKey = keygen(scene.dir, 'holdfast_gateway_key');
    fs.appendFileSync(path.join(scene.dir, 'target_authorized_keys'), `${publicKey(gwKey)}\n`);
    upRelay = await startIdleRelay(scene.sshd.port, T);
    bhUp = await startIdleRelay(scene.sshd.port, 0);
    fs.writeFileSync(
      path.join(scene.dir, 'known_hosts'),
      [scene.sshd.port, upRelay.port, bhUp.port].map((p) => knownHostsLine(sshdHostKey(scene), p)).join('\n') + '\n',
    );
    const route = (name: string, user: string, client: string, upstream: string) => `  - name: ${name}
    users: [${user}]
    to: ["127.0.0.1:*"]
    gateway: { user: root, identity: holdfast_gateway_key, knownHosts: known_hosts }
    keepalive: { client: ${client}, upstream: ${upstream} }
`;
    const on = '{ interval: 500ms, countMax: 3 }';
    const off = '{ interval: 0 }';
    hf = await startHoldfast(
      scene.dir,
      `${CONFIG_HEAD}routes:
${route('both-on', 'alice', on, on)}${route('upstream-off', 'bob', on, off)}${route('client-off', 'carol', off, on)}${route('bh-up', 'dave', on, on)}${route('bh-client', 'erin', on, on)}`,
    );
    clientRelay = await startIdleRelay(hf.port, T);
    bhClient = await startIdleRelay(hf.port, 0);
  });

  afterEach(function () {
    if (this.currentTest?.state === 'failed' && hf) fs.writeFileSync('/tmp/gateway-ka-failed-logs.jsonl', hf.logs.map((l) => JSON.stringify(l)).join('\n'));
  });

  after(async function () {
    for (const p of spawned) {
      try {
        process.kill(-p.pid!, 'SIGKILL');
      } catch {
        /* already gone */
      }
    }
    for (const r of [clientRelay, upRelay, bhClient, bhUp]) await r?.close();
    await hf?.stop();
    await scene?.stop();
  });

  it(`relays forgetting flows idle for T=${T / 1000}s on both legs: idle 5T survives with both keepalives, dies with either off`, async function () {
    this.timeout(40_000);
    const cmd = `sleep ${(5 * T) / 1000}; echo alive`;
    const deadline = { timeoutMs: 5 * T + 8000 };
    const [both, noUp, noClient] = await Promise.all([
      run('ssh', sshArgs('alice', clientRelay.port, upRelay.port, cmd), deadline),
      run('ssh', sshArgs('bob', clientRelay.port, upRelay.port, cmd), deadline),
      run('ssh', sshArgs('carol', clientRelay.port, upRelay.port, cmd), deadline),
    ]);
    console.log(
      `      both on: ${JSON.stringify(both.stdout.toString())} (exit ${both.code}); upstream off: ${JSON.stringify(noUp.stdout.toString())}; client off: ${JSON.stringify(noClient.stdout.toString())}; flows forgotten: client relay ${clientRelay.forgotten()}, upstream relay ${upRelay.forgotten()}`,
    );
    expect(both.stdout.toString(), both.stderr).to.equal('alive\n');
    expect(both.code).to.equal(0);
    expect(noUp.stdout.toString()).to.equal('');
    expect(noClient.stdout.toString()).to.equal('');
    // Exactly the legs without keepalive were forgotten: bob's upstream flow, carol's client flow.
    expect(upRelay.forgotten()).to.equal(1);
    expect(clientRelay.forgotten()).to.equal(1);
    // The surviving session's upstream leg was kept with keepalive@openssh.com, answered by sshd.
    const close = await hf.waitForLog((l) => l.event === 'gateway-close' && l.user === 'alice');
    const ka = close.upstreamKeepalive as { probesSent: number; probesAnswered: number; lastRttMs: number };
    expect(ka.probesSent).to.be.greaterThanOrEqual(15);
    expect(ka.probesAnswered).to.be.greaterThanOrEqual(15);
    expect(ka.lastRttMs).to.be.a('number');
  });

  /** Starts ssh and waits until the command runs on the target (holdfast logs the channel open). */
  async function startSession(user: string, relayPort: number, targetPort: number): Promise<{ proc: ChildProcess; done: Promise<{ code: number | null; stderr: string }> }> {
    const proc = spawn('ssh', sshArgs(user, relayPort, targetPort, 'sleep 60'), { stdio: ['ignore', 'ignore', 'pipe'], detached: true });
    spawned.push(proc);
    let stderr = '';
    proc.stderr!.on('data', (d) => (stderr += d));
    const done = new Promise<{ code: number | null; stderr: string }>((resolve) => proc.once('close', (code) => resolve({ code, stderr })));
    await hf.waitForLog((l) => l.event === 'channel-open' && l.user === user && l.kind === 'exec');
    return { proc, done };
  }

  it('upstream leg black-holed: the user gets a one-line reason and ssh exits within the bound (2 s) + 1 s', async function () {
    this.timeout(20_000);
    const { done } = await startSession('dave', clientRelay.port, bhUp.port);
    const t0 = Date.now();
    bhUp.blackhole();
    const r = await done;
    const exitedAfter = Date.now() - t0;
    const dead = await hf.waitForLog((l) => l.event === 'upstream-keepalive-timeout' && l.user === 'dave');
    console.log(`      upstream black-holed: upstream-keepalive-timeout ${at(dead) - t0} ms, ssh exited ${exitedAfter} ms after (bound 2000 ms); stderr ${JSON.stringify(r.stderr.trim())}`);
    expect(dead).to.include({ leg: 'upstream', layer: 'ssh', route: 'bh-up', probesSent: 3, countMax: 3 });
    expect(at(dead) - t0).to.be.at.most(3000);
    expect(exitedAfter).to.be.at.most(3000);
    expect(r.code).to.equal(255);
    expect(r.stderr).to.match(new RegExp(`^holdfast: lost the connection to 127\\.0\\.0\\.1:${bhUp.port}: upstream-keepalive-timeout \\(no answer from .* to 3 keepalives in [0-9.]+s\\)`, 'm'));
    const s = await hf.waitForLog((l) => l.event === 'session-close' && l.user === 'dave');
    expect(s.reason).to.equal('upstream-keepalive-timeout');
  });

  it('client leg black-holed: holdfast closes its SSH connection to the target within the bound (2 s) + 1 s', async function () {
    this.timeout(20_000);
    const before = tcpConnectionsTo(hf.pid, scene.sshd.port).length;
    const { proc } = await startSession('erin', bhClient.port, scene.sshd.port);
    await waitFor(() => tcpConnectionsTo(hf.pid, scene.sshd.port).length === before + 1, { what: 'the upstream connection' });
    const t0 = Date.now();
    bhClient.blackhole();
    const dead = await hf.waitForLog((l) => l.event === 'client-keepalive-timeout' && l.user === 'erin', 5000);
    const gone = await hf.waitForLog((l) => l.event === 'gateway-close' && l.user === 'erin', 5000);
    await waitFor(() => tcpConnectionsTo(hf.pid, scene.sshd.port).length === before, { timeoutMs: 3000, what: 'the upstream socket to close' });
    const socketGoneAfter = Date.now() - t0;
    console.log(`      client black-holed: client-keepalive-timeout ${at(dead) - t0} ms, upstream closed ${at(gone) - t0} ms, socket gone by ${socketGoneAfter} ms (bound 2000 ms)`);
    expect(dead).to.include({ leg: 'client', probesSent: 3 });
    expect(gone.reason).to.equal('client-keepalive-timeout');
    expect(at(gone) - t0).to.be.at.most(3000);
    expect(socketGoneAfter).to.be.at.most(3000);
    try {
      process.kill(-proc.pid!, 'SIGKILL'); // still waiting behind the black hole, unless the relay let it go
    } catch {
      /* already exited */
    }
  });
});
