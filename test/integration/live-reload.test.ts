/**
 * Issue 11: a reload reaches live sessions (access re-checked, keepalive re-planned), and the idle and
 * session-time limits, with the real OpenSSH client through holdfast to a real sshd (and to echo
 * servers through `ssh -L`). The conntrack half of acceptance 1 is in keepalive-netns.test.ts; the
 * 100 reloads during transfers in reload-stress.test.ts.
 */
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { spawn, type ChildProcess } from 'node:child_process';
import { expect } from 'chai';
import { CONFIG_HEAD, makeScene, requireSshd, sshdHostKey, type Scene } from '../helpers/fixture.js';
import { startHoldfast, type Holdfast, type LogLine } from '../helpers/holdfast.js';
import { keygen, knownHostsLine, publicKey } from '../helpers/tmp.js';
import { run, type SshResult } from '../helpers/ssh.js';
import { freePort } from '../helpers/ports.js';
import { waitFor } from '../helpers/wait.js';

interface Spawned {
  readonly proc: ChildProcess;
  readonly done: Promise<SshResult & { at: number }>;
}

/** A command run in the background (its own process group), killed at the end of the test at the latest. */
function background(cmd: string, args: string[], killers: Array<() => void>): Spawned {
  const proc = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'], detached: true });
  let out = Buffer.alloc(0);
  let err = '';
  proc.stdout!.on('data', (d: Buffer) => (out = Buffer.concat([out, d])));
  proc.stderr!.on('data', (d) => (err += d));
  const done = new Promise<SshResult & { at: number }>((resolve) => proc.once('close', (code) => resolve({ code, stdout: out, stderr: err, at: Date.now() })));
  killers.push(() => {
    try {
      process.kill(-proc.pid!, 'SIGKILL');
    } catch {
      /* gone */
    }
  });
  return { proc, done };
}

/** A TCP client through a local forward: sends lines, reads their echoes. */
async function echoClient(port: number): Promise<{ sock: net.Socket; say(line: string): Promise<string>; closed: Promise<number> }> {
  const sock = await waitFor(
    () =>
      new Promise<net.Socket | undefined>((resolve) => {
        const s = net.connect(port, '127.0.0.1');
        s.once('connect', () => resolve(s));
        s.once('error', () => resolve(undefined));
      }),
    { what: `ssh -L listening on ${port}` },
  );
  sock.setEncoding('utf8');
  let buf = '';
  const waiting: Array<(l: string) => void> = [];
  sock.on('data', (d: string) => {
    buf += d;
    let nl: number;
    while ((nl = buf.indexOf('\n')) >= 0 && waiting.length) {
      const line = buf.slice(0, nl);
      buf = buf.slice(nl + 1);
      waiting.shift()!(line);
    }
  });
  sock.on('error', () => {});
  const closed = new Promise<number>((r) => sock.once('close', () => r(Date.now())));
  return {
    sock,
    closed,
    say: (line) =>
      new Promise((resolve, reject) => {
        const t = setTimeout(() => reject(new Error(`no echo of ${line}`)), 5000);
        waiting.push((l) => {
          clearTimeout(t);
          resolve(l);
        });
        sock.write(`${line}\n`);
      }),
  };
}

describe('a reload reaches live sessions; idle and session-time limits', function () {
  let scene: Scene;
  let hf: Holdfast;
  const echo: net.Server[] = [];
  const echoPort: number[] = [];
  const killers: Array<() => void> = [];
  const file = () => path.join(scene.dir, 'holdfast.yaml');

  /** The config, with `over` spliced into the routes: keepalive, idleTimeout, maxSessionTime. */
  const config = (o: { top?: string; target?: string; echo?: string; echoTo?: number[]; gw?: string } = {}) => `${CONFIG_HEAD}${o.top ?? ''}
keepalive:
  client: { interval: 1s, countMax: 3 }
routes:
  - name: target
    users: [alice, bob]
    to: ["127.0.0.1:${scene.sshd.port}"]
${o.target ?? ''}
  - name: echo
    users: [alice]
    to: [${(o.echoTo ?? echoPort).map((p) => `"127.0.0.1:${p}"`).join(', ')}]
${o.echo ?? ''}
  - name: gw
    users: [erin]
    to: ["127.0.0.1:${scene.sshd.port}"]
    gateway: { user: root, identity: holdfast_gateway_key, knownHosts: known_hosts }
${o.gw ?? ''}
`;

  const reloads = () => hf.logs.filter((l) => l.event === 'reloaded');
  /** Writes the config, sends SIGHUP to the primary (systemctl reload) and returns the worker's `reloaded` line. */
  async function reload(yaml: string): Promise<LogLine> {
    const n = reloads().length;
    fs.writeFileSync(file(), yaml);
    hf.proc.kill('SIGHUP');
    return waitFor(() => reloads()[n], { what: 'a reloaded line' });
  }
  const since = (t: number) => (l: LogLine) => Date.parse(String(l.time)) >= t - 5;
  const jumpArgs = (user: string, command: string) => ['-F', scene.cfg[user]!, '-J', `${user}@127.0.0.1:${hf.port}`, '-p', String(scene.sshd.port), 'root@127.0.0.1', command];
  const forwardArgs = (ports: Array<[number, number]>) => ['-F', scene.cfg.alice!, '-N', ...ports.flatMap(([l, r]) => ['-L', `${l}:127.0.0.1:${r}`]), '-p', String(hf.port), 'alice@127.0.0.1'];
  const gatewayArgs = (command: string) => ['-F', scene.cfg.erin!, '-p', String(hf.port), `erin+127.0.0.1+${scene.sshd.port}@127.0.0.1`, command];

  before(async function () {
    this.timeout(60_000);
    requireSshd(this);
    scene = await makeScene(['alice', 'bob', 'erin']);
    scene.authorizeOwn('alice', 'bob', 'erin');
    const gwKey = keygen(scene.dir, 'holdfast_gateway_key');
    fs.appendFileSync(path.join(scene.dir, 'target_authorized_keys'), `${publicKey(gwKey)}\n`);
    fs.writeFileSync(path.join(scene.dir, 'known_hosts'), `${knownHostsLine(sshdHostKey(scene), scene.sshd.port)}\n`);
    for (let i = 0; i < 2; i++) {
      const srv = net.createServer((s) => {
        s.on('error', () => {});
        s.pipe(s);
      });
      await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
      echo.push(srv);
      echoPort.push((srv.address() as net.AddressInfo).port);
    }
    hf = await startHoldfast(scene.dir, config());
  });

  afterEach(async function () {
    for (const k of killers.splice(0)) k();
    if (this.currentTest?.state === 'failed' && hf) fs.writeFileSync('/tmp/live-reload-failed-logs.jsonl', hf.logs.map((l) => JSON.stringify(l)).join('\n'));
    scene.authorizeOwn('alice', 'bob', 'erin');
    if (hf) await reload(config());
  });

  after(async function () {
    await hf?.stop();
    for (const s of echo) s.close();
    await scene?.stop();
  });

  it("removing the user's key and reloading ends the live session at the reload, not at its command's end 30 s later (reason logged, the user's ssh exits; ms printed); another user's session carries on", async function () {
    this.timeout(60_000);
    const t0 = Date.now();
    const alice = background('ssh', jumpArgs('alice', 'sleep 30; echo not-reached'), killers);
    const bob = background('ssh', jumpArgs('bob', 'sleep 4; echo bob-done'), killers);
    await hf.waitForLog((l) => l.event === 'channel-open' && l.user === 'alice' && since(t0)(l), 15_000);
    await hf.waitForLog((l) => l.event === 'channel-open' && l.user === 'bob' && since(t0)(l), 15_000);
    scene.authorize('alice', []);
    const hupAt = Date.now();
    const line = await reload(config());
    const a = await Promise.race([alice.done, new Promise<null>((r) => setTimeout(() => r(null), 5000))]);
    expect(a, "alice's ssh did not exit").to.not.equal(null);
    const took = a!.at - hupAt;
    console.log(`      key removed: alice's ssh exited ${took} ms after SIGHUP (exit ${a!.code}); reloaded ${JSON.stringify({ sessions: line.sessions, sessionsRevoked: line.sessionsRevoked })}`);
    // Not a speed bound (a test is not a benchmark: 1005 ms once under CI's load): the race above
    // already says the reload, not the 30 s command, ended the session.
    expect(a!.code).to.equal(255);
    expect(a!.stderr, "the user's ssh says why").to.match(/Received disconnect from .*holdfast: access-revoked \(.*ak\/alice: key not in authorized_keys\)/);
    expect(line).to.include({ sessions: 2, sessionsRevoked: 1, channelsRevoked: 0 });
    const revoked = await hf.waitForLog((l) => l.event === 'access-revoked' && l.user === 'alice' && since(t0)(l));
    expect(String(revoked.why)).to.match(/ak\/alice: key not in authorized_keys$/);
    const close = await hf.waitForLog((l) => l.event === 'session-close' && l.user === 'alice' && since(t0)(l));
    expect(close).to.include({ reason: 'access-revoked' });
    expect(String(close.detail)).to.include('key not in authorized_keys');
    const b = await bob.done;
    expect(b.stdout.toString(), b.stderr).to.equal('bob-done\n');
  });

  it('narrowing a route ends only the channels it no longer allows (one connection, two -L forwards)', async function () {
    this.timeout(60_000);
    const [lA, lB] = [await freePort(), await freePort()];
    const t0 = Date.now();
    background('ssh', forwardArgs([[lA, echoPort[0]!], [lB, echoPort[1]!]]), killers);
    const a = await echoClient(lA);
    const b = await echoClient(lB);
    expect(await a.say('a1')).to.equal('a1');
    expect(await b.say('b1')).to.equal('b1');
    const line = await reload(config({ echoTo: [echoPort[0]!] }));
    expect(line).to.include({ sessions: 1, sessionsRevoked: 0, channelsRevoked: 1 });
    const closed = await hf.waitForLog((l) => l.event === 'channel-close' && l.reason === 'access-revoked' && since(t0)(l));
    expect(closed.dst).to.equal(`127.0.0.1:${echoPort[1]}`);
    expect(String(closed.detail)).to.match(/^no route allows it any more \(.*echo: no "to" entry matches/);
    await b.closed;
    expect(await a.say('a2'), 'the channel still allowed carries on').to.equal('a2');
    // This connection's channels only: under load the previous test's session can close after t0.
    expect(hf.logs.filter((l) => l.event === 'channel-close' && l.session === closed.session && since(t0)(l))).to.have.length(1);
    a.sock.destroy();
  });

  it('idleTimeout 3s, client keepalive 1s: a silent channel closes at 3 s ± 1 s, one with a line every second for 8 s lives; then the connection, left with no channel, closes too', async function () {
    this.timeout(60_000);
    await reload(config({ top: 'idleTimeout: 3s\n' }));
    const [lA, lB] = [await freePort(), await freePort()];
    const t0 = Date.now();
    const ssh = background('ssh', forwardArgs([[lA, echoPort[0]!], [lB, echoPort[1]!]]), killers);
    await echoClient(lA); // opens a channel and sends nothing
    const chatty = await echoClient(lB);
    const silentOpen = await hf.waitForLog((l) => l.event === 'channel-open' && l.dst === `127.0.0.1:${echoPort[0]}` && since(t0)(l));
    for (let i = 0; i < 8; i++) {
      expect(await chatty.say(`line ${i}`)).to.equal(`line ${i}`);
      await new Promise((r) => setTimeout(r, 1000));
    }
    const silentClose = await hf.waitForLog((l) => l.event === 'channel-close' && l.dst === `127.0.0.1:${echoPort[0]}` && since(t0)(l));
    expect(silentClose.reason).to.equal('idle-timeout');
    expect(silentClose.channel).to.equal(silentOpen.channel);
    const chattyClosed = hf.logs.find((l) => l.event === 'channel-close' && l.dst === `127.0.0.1:${echoPort[1]}` && since(t0)(l));
    expect(chattyClosed, 'the channel printing every second was closed').to.equal(undefined);
    const chattyLastAt = Date.now();
    const chattyClose = await hf.waitForLog((l) => l.event === 'channel-close' && l.dst === `127.0.0.1:${echoPort[1]}` && since(t0)(l), 10_000);
    const sessionClose = await hf.waitForLog((l) => l.event === 'session-close' && l.user === 'alice' && since(t0)(l), 10_000);
    const exit = await ssh.done;
    const chattyIdle = Date.parse(String(chattyClose.time)) - chattyLastAt;
    const connIdle = Date.parse(String(sessionClose.time)) - Date.parse(String(chattyClose.time));
    const probes = (sessionClose.clientKeepalive as { probesSent: number }).probesSent;
    console.log(`      silent channel closed after ${silentClose.durationMs} ms; chatty channel lived ${chattyClose.durationMs} ms and closed ${chattyIdle} ms after its last line; connection closed ${connIdle} ms after its last channel (${probes} client keepalive probes meanwhile; ssh exit ${exit.code})`);
    expect(Number(silentClose.durationMs)).to.be.within(2000, 4000);
    expect(Number(chattyClose.durationMs)).to.be.greaterThan(8000);
    expect(chattyClose.reason).to.equal('idle-timeout');
    expect(chattyIdle).to.be.within(2000, 4500);
    expect(sessionClose).to.include({ reason: 'idle-timeout' });
    expect(connIdle).to.be.within(2000, 4500);
    expect(probes, 'keepalive probes went out and did not count as activity').to.be.greaterThan(0);
  });

  it('gateway mode: the user sees the idle warning, then the reason, on stderr', async function () {
    this.timeout(30_000);
    await reload(config({ gw: '    idleTimeout: 3s' }));
    const t0 = Date.now();
    const r = await run('ssh', gatewayArgs('sleep 10; echo not-reached'), { timeoutMs: 20_000 });
    const took = Date.now() - t0;
    console.log(`      gateway idle: ssh exited ${r.code} after ${took} ms; stderr ${JSON.stringify(r.stderr)}`);
    expect(r.stdout.toString()).to.equal('');
    // Timers run on a grid of 1/20 of their delay (src/keepalive/monitor.ts): up to 75 ms late here.
    expect(r.stderr).to.match(/holdfast: no activity for 1\.[5-6]s: this channel closes in 1\.[4-5]s unless there is some \(idleTimeout 3s\)/);
    expect(r.stderr).to.match(/holdfast: idle-timeout: no channel data for 3s \(idleTimeout\)/);
    expect(r.code).to.equal(255);
    const warned = await hf.waitForLog((l) => l.event === 'limit-warning' && since(t0)(l));
    expect(warned).to.include({ user: 'erin', limit: 'idle-timeout' });
    expect(Number(warned.inMs)).to.be.within(1400, 1500);
  });

  it('maxSessionTime ends a busy session on time (ssh -J); in gateway mode the user is warned, then told why', async function () {
    this.timeout(60_000);
    await reload(config({ target: '    maxSessionTime: 3s', gw: '    maxSessionTime: 4s' }));
    const busy = 'while :; do echo x; sleep 0.05; done';
    const t0 = Date.now();
    const [jump, gw] = await Promise.all([
      run('ssh', jumpArgs('alice', busy), { timeoutMs: 20_000 }),
      run('ssh', gatewayArgs(busy), { timeoutMs: 20_000 }),
    ]);
    const jumpClose = await hf.waitForLog((l) => l.event === 'session-close' && l.user === 'alice' && since(t0)(l));
    const gwClose = await hf.waitForLog((l) => l.event === 'session-close' && l.user === 'erin' && since(t0)(l));
    console.log(`      ssh -J session closed after ${jumpClose.durationMs} ms (${jump.stdout.length} bytes printed), gateway session after ${gwClose.durationMs} ms; gateway stderr ${JSON.stringify(gw.stderr)}`);
    expect(jumpClose).to.include({ reason: 'session-time-limit', detail: 'maxSessionTime 3s of route target reached' });
    expect(Number(jumpClose.durationMs)).to.be.within(3000, 4000);
    expect(jump.stdout.length, 'busy until the end').to.be.greaterThan(20);
    expect(jump.code).to.equal(255);
    expect(jump.stderr, "the user's ssh says why").to.match(/Received disconnect from .*holdfast: session-time-limit \(maxSessionTime 3s of route target reached\)/);
    expect(gwClose).to.include({ reason: 'session-time-limit' });
    expect(Number(gwClose.durationMs)).to.be.within(4000, 5500);
    expect(gw.stderr).to.match(/holdfast: this session reaches its time limit \(maxSessionTime 4s\) in (2|1\.9)s/);
    expect(gw.stderr).to.match(/holdfast: session-time-limit: maxSessionTime 4s of route gw reached/);
  });

  it('gateway mode: a revoked key ends the session with one line saying why', async function () {
    this.timeout(30_000);
    const t0 = Date.now();
    const gw = background('ssh', gatewayArgs('sleep 30; echo not-reached'), killers);
    await hf.waitForLog((l) => l.event === 'channel-open' && l.user === 'erin' && since(t0)(l), 15_000);
    scene.authorize('erin', []);
    const hupAt = Date.now();
    await reload(config());
    const r = await gw.done;
    console.log(`      gateway, key removed: ssh exited ${r.code} ${r.at - hupAt} ms after SIGHUP; stderr ${JSON.stringify(r.stderr)}`);
    expect(r.stderr).to.match(/holdfast: access-revoked: .*ak\/erin: key not in authorized_keys/);
    expect(r.code).to.equal(255);
    expect(r.at - hupAt).to.be.lessThan(3000);
    const close = await hf.waitForLog((l) => l.event === 'session-close' && l.user === 'erin' && since(t0)(l));
    expect(close.reason).to.equal('access-revoked');
  });

  it('keepalive follows the config on a live ssh -J session: the client leg and the TCP socket re-planned, options read back', async function () {
    this.timeout(30_000);
    const t0 = Date.now();
    const s = background('ssh', jumpArgs('bob', 'sleep 3; echo ok'), killers);
    const open = await hf.waitForLog((l) => l.event === 'channel-open' && l.user === 'bob' && since(t0)(l), 15_000);
    expect(open.upstreamKeepalive).to.include({ enabled: true });
    const line = await reload(config({ target: '    keepalive: { client: { interval: 2s, countMax: 5 }, upstream: { interval: 3s, countMax: 2 } }' }));
    expect(line).to.include({ sessions: 1, legsReplanned: 2 });
    const upstream = await hf.waitForLog((l) => l.event === 'leg-replanned' && l.leg === 'upstream' && l.session === open.session);
    expect(upstream).to.deep.include({ layer: 'tcp', route: 'target', channel: open.channel, tcp: { enabled: true, idleS: 3, intervalS: 3, count: 2, userTimeoutMs: 9000 } });
    const client = await hf.waitForLog((l) => l.event === 'leg-replanned' && l.leg === 'client' && l.session === open.session);
    expect(client).to.include({ layer: 'ssh', policy: '2s x 5' });
    const r = await s.done;
    expect(r.stdout.toString()).to.equal('ok\n');
    await hf.waitForLog((l) => l.event === 'session-close' && l.session === open.session);
    const again = await reload(config({ target: '    keepalive: { client: { interval: 2s, countMax: 5 }, upstream: { interval: 3s, countMax: 2 } }' }));
    expect(again).to.include({ sessions: 0, legsReplanned: 0 });
  });

  it('keepalive follows the config on a live gateway session: its client leg and its SSH leg to the target re-planned', async function () {
    this.timeout(30_000);
    const t0 = Date.now();
    const s = background('ssh', gatewayArgs('sleep 2; echo ok'), killers);
    const open = await hf.waitForLog((l) => l.event === 'channel-open' && l.user === 'erin' && since(t0)(l), 15_000);
    const line = await reload(config({ gw: '    keepalive: { client: { interval: 2s, countMax: 5 }, upstream: { interval: 4s, countMax: 2 } }' }));
    expect(line).to.include({ sessions: 1, legsReplanned: 2 });
    const upstream = await hf.waitForLog((l) => l.event === 'leg-replanned' && l.leg === 'upstream' && l.session === open.session);
    expect(upstream).to.include({ layer: 'ssh', policy: '4s x 2', route: 'gw' });
    const client = await hf.waitForLog((l) => l.event === 'leg-replanned' && l.leg === 'client' && l.session === open.session);
    expect(client).to.include({ layer: 'ssh', policy: '2s x 5' });
    const r = await s.done;
    expect(r.stdout.toString()).to.equal('ok\n');
    const close = await hf.waitForLog((l) => l.event === 'gateway-close' && l.session === open.session);
    expect(close.reason).to.equal('session-closed');
  });
});
