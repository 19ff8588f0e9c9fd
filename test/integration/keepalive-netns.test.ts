/**
 * Issue 3, acceptance 3 and 5, through real kernel middleboxes (conntrack in network namespaces):
 *
 *   client ── r1 (forgets idle flows after 3 s) ── holdfast ── r2 (same) ── target sshd
 *
 * A userspace relay cannot test the upstream leg: it terminates TCP, so TCP keepalive probes never
 * cross it. Here they do, as through a real NAT or stateful firewall.
 */
import fs from 'node:fs';
import path from 'node:path';
import { spawn } from 'node:child_process';
import { expect } from 'chai';
import { makeScene, requireSshd, type Scene } from '../helpers/fixture.js';
import { startHoldfast, type Holdfast } from '../helpers/holdfast.js';
import { removeTempDirs } from '../helpers/tmp.js';
import { run } from '../helpers/ssh.js';
import { waitFor } from '../helpers/wait.js';
import { createTopology, requireNetns, type Topology } from '../helpers/netns.js';

const FORGET_S = 3;

describe('keepalive through kernel middleboxes (conntrack in network namespaces)', function () {
  let topo: Topology;
  let scene: Scene;
  let hf: Holdfast;

  before(async function () {
    this.timeout(60_000);
    requireSshd(this);
    requireNetns(this);
    topo = createTopology(FORGET_S);
    scene = await makeScene(['alice', 'bob', 'carol', 'dave', 'eve', 'frank'], { netns: topo.ns.target, address: topo.addr.target, port: 22 });
    scene.authorizeOwn('alice', 'bob', 'carol', 'dave', 'eve', 'frank');
    hf = await startHoldfast(scene.dir, config(false), { netns: topo.ns.jump });
  });

  /** The lab's config; `thawed`: the route of eve's sessions has keepalive on both legs (a reload turns it on). */
  const config = (thawed: boolean) => {
    const target = `${topo.addr.target}:22`;
    return `listen: [{address: 0.0.0.0, port: 2222}]
hostKeys: [hk/key]
authorizedKeys: ak/%u
keepalive:
  client: { interval: 0 }
  upstream: { interval: 0 }
routes:
  - name: both-legs
    users: [alice, dave]
    to: ["${target}"]
    keepalive:
      client: { interval: 1s, countMax: 3 }
      upstream: { interval: 1s, countMax: 3 }
  - name: client-leg-off
    users: [bob]
    to: ["${target}"]
    keepalive:
      upstream: { interval: 1s, countMax: 3 }
  - name: upstream-leg-off
    users: [carol]
    to: ["${target}"]
    keepalive:
      client: { interval: 1s, countMax: 3 }
  - name: thawed
    users: [eve]
    to: ["${target}"]
${thawed ? '    keepalive: { client: { interval: 1s, countMax: 3 }, upstream: { interval: 1s, countMax: 3 } }' : ''}
  - name: frozen
    users: [frank]
    to: ["${target}"]
`;
  };

  after(async function () {
    await hf?.stop();
    await scene?.sshd.stop();
    topo?.destroy();
    removeTempDirs();
  });

  const sshArgs = (user: string, command: string) => [
    'netns', 'exec', topo.ns.client,
    'ssh', '-F', scene.cfg[user]!, '-J', `${user}@${topo.addr.jumpFront}:2222`, '-p', '22', `root@${topo.addr.target}`, command,
  ];

  it(`the middleboxes are in place: conntrack forgets established flows after ${FORGET_S} s, loose pick-up off, invalid dropped`, async function () {
    // That they really forget is shown by the keepalive-off sessions of the next test.
    for (const r of [topo.ns.r1, topo.ns.r2]) {
      const rules = await run('ip', ['netns', 'exec', r, 'nft', 'list', 'ruleset']);
      expect(rules.stdout.toString()).to.include('ct state invalid');
      const sysctl = await run('ip', ['netns', 'exec', r, 'sysctl', '-n', 'net.netfilter.nf_conntrack_tcp_timeout_established', 'net.netfilter.nf_conntrack_tcp_loose']);
      expect(sysctl.stdout.toString()).to.equal(`${FORGET_S}\n0\n`);
    }
  });

  it(`a session idle 5 × ${FORGET_S} s prints "alive" with both legs kept alive, not with either leg's off; one opened with both off lives once a reload turns them on, its twin left off dies`, async function () {
    // One run of 5 × FORGET_S for all five sessions: the reload changes only the route of eve's
    // session (thawed); the others run on routes it leaves alone.
    this.timeout(60_000);
    const idle = 5 * FORGET_S;
    const cmd = `sleep ${idle}; echo alive`;
    const t0 = Date.now();
    const since = (l: Record<string, unknown>) => Date.parse(String(l.time)) >= t0 - 1000;
    const opts = { timeoutMs: (idle + 8) * 1000 };
    const sessions = ['alice', 'bob', 'carol', 'eve', 'frank'].map((u) => run('ip', sshArgs(u, cmd), opts));
    const open = await hf.waitForLog((l) => l.event === 'channel-open' && l.user === 'eve' && since(l), 20_000);
    // All five sessions open before the reload (it is to count them all).
    for (const u of ['alice', 'bob', 'carol', 'frank']) await hf.waitForLog((l) => l.event === 'channel-open' && l.user === u && since(l), 20_000);
    expect(open.upstreamKeepalive, 'opened with TCP keepalive off').to.include({ enabled: false });
    expect(open.clientKeepalive).to.equal('off');
    // systemctl reload: the config file changed, SIGHUP to the main process.
    const n = hf.logs.filter((l) => l.event === 'reloaded').length;
    fs.writeFileSync(path.join(scene.dir, 'holdfast.yaml'), config(true));
    const hupAt = Date.now();
    hf.proc.kill('SIGHUP');
    const line = await waitFor(() => hf.logs.filter((l) => l.event === 'reloaded')[n], { what: 'the reloaded line' });
    const tcp = await hf.waitForLog((l) => l.event === 'leg-replanned' && l.session === open.session && l.leg === 'upstream');
    const client = await hf.waitForLog((l) => l.event === 'leg-replanned' && l.session === open.session && l.leg === 'client');
    const [both, clientOff, upstreamOff, e, f] = await Promise.all(sessions);
    console.log(`      both legs: ${JSON.stringify(both!.stdout.toString())} (exit ${both!.code}); client leg off: ${JSON.stringify(clientOff!.stdout.toString())}; upstream leg off: ${JSON.stringify(upstreamOff!.stdout.toString())}`);
    console.log(
      `      reload logged ${Date.parse(String(line.time)) - hupAt} ms after SIGHUP: ${JSON.stringify({ sessions: line.sessions, legsReplanned: line.legsReplanned })}; live socket read back ${JSON.stringify(tcp.tcp)}; ` +
        `after ${idle} s idle: reloaded ${JSON.stringify(e!.stdout.toString())} (exit ${e!.code}), control ${JSON.stringify(f!.stdout.toString())} (exit ${f!.code})`,
    );
    expect(both!.stdout.toString(), both!.stderr).to.equal('alive\n');
    expect(both!.code).to.equal(0);
    expect(clientOff!.stdout.toString(), 'client leg keepalive off').to.equal('');
    expect(upstreamOff!.stdout.toString(), 'upstream leg keepalive off').to.equal('');
    // Only eve's session changed: its client leg and its TCP leg.
    expect(Number(line.sessions)).to.be.at.least(5);
    expect(line).to.include({ legsReplanned: 2, sessionsRevoked: 0, channelsRevoked: 0 });
    expect(tcp).to.deep.include({ layer: 'tcp', route: 'thawed', tcp: { enabled: true, idleS: 1, intervalS: 1, count: 3, userTimeoutMs: 4000 } });
    expect(client).to.include({ layer: 'ssh', policy: '1s x 3' });
    expect(e!.stdout.toString(), e!.stderr).to.equal('alive\n');
    expect(e!.code).to.equal(0);
    expect(f!.stdout.toString(), 'control: keepalive still off').to.equal('');
  });

  it("dead upstream (target black-holed at r2): the user's ssh -J exits by itself within the bound + 1 s", async function () {
    this.timeout(60_000);
    const bound = 1000 * (3 + 1);
    const started = Date.now();
    const user = spawn('ip', sshArgs('dave', 'sleep 120'), { stdio: 'ignore', detached: true });
    const exited = new Promise<number>((resolve) => user.once('exit', () => resolve(Date.now())));
    try {
      const open = await hf.waitForLog((l) => l.event === 'channel-open' && l.user === 'dave' && Date.parse(String(l.time)) >= started - 1000, 20_000);
      // Let the session settle into idleness, then cut the target off.
      await new Promise((r) => setTimeout(r, 1500));
      const cutAt = Date.now();
      topo.blackholeTarget();
      const exitAt = await Promise.race([exited, new Promise<number>((r) => setTimeout(() => r(-1), bound + 5000))]);
      expect(exitAt, "the user's ssh did not exit").to.not.equal(-1);
      const took = exitAt - cutAt;
      console.log(`      dead upstream: user's ssh exited ${took} ms after the black-hole (bound ${bound} ms)`);
      expect(took).to.be.lessThan(bound + 1000);
      const line = await hf.waitForLog((l) => l.event === 'upstream-keepalive-timeout' && l.session === open.session);
      expect(line).to.include({ reason: 'upstream-keepalive-timeout', route: 'both-legs', leg: 'upstream', layer: 'tcp', interval: 1000, countMax: 3 });
      const close = await hf.waitForLog((l) => l.event === 'channel-close' && l.session === open.session);
      expect(close.reason).to.equal('upstream-keepalive-timeout');
    } finally {
      try {
        process.kill(-user.pid!, 'SIGKILL');
      } catch {
        /* gone */
      }
      topo.restoreTarget();
    }
  });
});
