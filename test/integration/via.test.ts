/**
 * Issue 4, `via`: acceptance 1-3. holdfast reaches the target through real sshd bastions over its
 * own pooled SSH connection, with keepalive@openssh.com on it, and checks bastion host keys.
 */
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import crypto from 'node:crypto';
import { expect } from 'chai';
import { CONFIG_HEAD, makeScene, requireSshd, sshdHostKey, type Scene } from '../helpers/fixture.js';
import { startHoldfast, type Holdfast } from '../helpers/holdfast.js';
import { keyBlob, keygen, knownHostsLine, publicKey } from '../helpers/tmp.js';
import { run, sshJump } from '../helpers/ssh.js';
import { descendants, startSshd, type Sshd } from '../helpers/sshd.js';
import { startIdleRelay, type IdleRelay } from '../helpers/idle-relay.js';
import { tcpConnectionsTo } from '../helpers/proc.js';
import { waitFor } from '../helpers/wait.js';

const MiB = 1024 * 1024;

/**
 * A TCP relay to 127.0.0.1:`port` that holds each new connection (nothing read, nothing connected)
 * until release(): a bastion that has not answered yet, for as long as the test needs.
 */
async function heldRelay(port: number) {
  const waiting: Array<() => void> = [];
  const socks: net.Socket[] = [];
  const srv = net.createServer((c) => {
    c.pause();
    c.on('error', () => {});
    socks.push(c);
    waiting.push(() => {
      const u = net.connect(port, '127.0.0.1');
      socks.push(u);
      u.on('error', () => c.destroy());
      c.on('close', () => u.destroy());
      u.on('close', () => c.destroy());
      c.pipe(u);
      u.pipe(c);
      c.resume();
    });
  });
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  return {
    port: (srv.address() as net.AddressInfo).port,
    held: () => waiting.length,
    release: () => waiting.splice(0).forEach((go) => go()),
    close: () => {
      socks.forEach((x) => x.destroy());
      srv.close();
    },
  };
}

describe('via: through SSH bastions on a pooled connection', function () {
  let scene: Scene;
  let b1: Sshd;
  let b2: Sshd;
  let hf: Holdfast;
  let relay: IdleRelay;
  let held: Awaited<ReturnType<typeof heldRelay>>;
  let hostKeyLine: (port: number) => string;
  let state: string;

  before(async function () {
    this.timeout(60_000);
    requireSshd(this);
    // The target also answers on the other loopback addresses the routes below are told apart by.
    const extraListen = ['127.0.0.2', '127.0.0.3', '127.0.0.4', '127.0.0.5', '127.0.0.6', '127.0.1.1', '127.0.1.2', '127.0.1.3'].map((a) => `ListenAddress ${a}:$PORT`);
    scene = await makeScene(['alice'], {}, extraListen);
    scene.authorizeOwn('alice');
    const hfKey = keygen(scene.dir, 'holdfast_bastion_key');
    const stranger = keygen(scene.dir, 'stranger_key');
    void stranger;
    const bastionAuth = path.join(scene.dir, 'bastion_authorized_keys');
    fs.writeFileSync(bastionAuth, `${publicKey(hfKey)}\n`, { mode: 0o600 });
    b1 = await startSshd(scene.dir, bastionAuth);
    b2 = await startSshd(scene.dir, bastionAuth);
    hostKeyLine = (port) => knownHostsLine(sshdHostKey(scene), port);
    const other = keygen(scene.dir, 'other_host_key');
    const otherPub = keyBlob(other);
    fs.writeFileSync(path.join(scene.dir, 'known_hosts'), `${hostKeyLine(b1.port)}\n${hostKeyLine(b2.port)}\n`);
    fs.writeFileSync(path.join(scene.dir, 'known_hosts_changed'), `[127.0.0.1]:${b1.port} ${otherPub}\n`);
    fs.writeFileSync(path.join(scene.dir, 'known_hosts_empty'), '# nothing yet\n');
    relay = await startIdleRelay(b1.port, 2000);
    fs.appendFileSync(path.join(scene.dir, 'known_hosts'), `${hostKeyLine(relay.port)}\n`);
    held = await heldRelay(b1.port);
    fs.appendFileSync(path.join(scene.dir, 'known_hosts'), `${hostKeyLine(held.port)}\n`);
    state = path.join(scene.dir, 'state');
    const t = `127.0.0.1:${scene.sshd.port}`;
    const up = (name: string, port: number, extra = '') =>
      `  ${name}:\n    host: 127.0.0.1\n    port: ${port}\n    user: root\n    identity: holdfast_bastion_key\n${extra}`;
    hf = await startHoldfast(
      scene.dir,
      `${CONFIG_HEAD}connectTimeout: 5s
upstreamPool: { idleTimeout: 1500ms }
upstreams:
${up('b1', b1.port, '    knownHosts: known_hosts\n')}${up('b2', b2.port, '    knownHosts: known_hosts\n')}${up('b1-changed', b1.port, '    knownHosts: known_hosts_changed\n')}${up('b1-changed-new', b1.port, '    knownHosts: known_hosts_changed\n    hostKeyPolicy: accept-new\n')}${up('b1-unknown', b1.port, '    knownHosts: known_hosts_empty\n')}${up('b1-new', b1.port, '    hostKeyPolicy: accept-new\n')}${up('b1-badkey', b1.port, '    knownHosts: known_hosts\n').replace('holdfast_bastion_key', 'stranger_key')}${up('relayed-ka', relay.port, '    knownHosts: known_hosts\n')}${up('relayed-noka', relay.port, '    knownHosts: known_hosts\n')}${up('b1-held', held.port, '    knownHosts: known_hosts\n')}
routes:
${['b1', 'b1-changed', 'b1-changed-new', 'b1-unknown', 'b1-new', 'b1-badkey']
  .map((n, i) => `  - name: r-${n}\n    to: ["${i === 0 ? '127.0.0.1' : `127.0.0.${i + 1}`}:${scene.sshd.port}"]\n    via: ${n}\n`)
  .join('')}  - name: chain
    to: ["localhost:${scene.sshd.port}"]
    via: [b1, b2]
  - name: relayed-ka
    users: [alice]
    to: ["127.0.1.1:${scene.sshd.port}"]
    via: relayed-ka
    keepalive: { upstream: { interval: 500ms, countMax: 3 } }
  - name: relayed-noka
    to: ["127.0.1.2:${scene.sshd.port}"]
    via: relayed-noka
    keepalive: { upstream: { interval: 0 } }
  - name: r-held
    users: [alice]
    to: ["127.0.1.3:${scene.sshd.port}"]
    via: b1-held
`,
      { env: { HOLDFAST_STATE_DIR: state } },
    );
    void t;
  });

  afterEach(function () {
    if (this.currentTest?.state === 'failed' && hf) fs.writeFileSync('/tmp/via-failed-logs.jsonl', hf.logs.map((l) => JSON.stringify(l)).join('\n'));
  });

  after(async function () {
    await relay?.close();
    held?.close();
    await hf?.stop();
    await b1?.stop();
    await b2?.stop();
    await scene?.stop();
  });

  const accepted = (b: Sshd) => (b.log().match(/Accepted publickey for root/g) ?? []).length;

  it('ssh -J holdfast target via a bastion: command, exit code, 64 MiB each way with matching SHA-256', async function () {
    this.timeout(90_000);
    const r = await sshJump(scene.cfg.alice!, 'alice', hf.port, scene.sshd.port, 'echo via-bastion; exit 5');
    expect(r.stdout.toString()).to.equal('via-bastion\n');
    expect(r.code).to.equal(5);
    const open = await hf.waitForLog((l) => l.event === 'channel-open' && l.route === 'r-b1');
    expect(open.addr).to.equal('via b1');
    const data = crypto.randomBytes(64 * MiB);
    const hash = crypto.createHash('sha256').update(data).digest('hex');
    const up = await sshJump(scene.cfg.alice!, 'alice', hf.port, scene.sshd.port, 'sha256sum', { input: data });
    expect(up.stdout.toString().split(' ')[0]).to.equal(hash);
    const file = path.join(scene.dir, 'via-down.bin');
    fs.writeFileSync(file, data);
    const down = await sshJump(scene.cfg.alice!, 'alice', hf.port, scene.sshd.port, `cat ${file}`);
    expect(crypto.createHash('sha256').update(down.stdout).digest('hex')).to.equal(hash);
  });

  it('20 concurrent sessions through one bastion share one upstream connection, closed after the idle time', async function () {
    this.timeout(60_000);
    // Start from a pool with no b1 connection: every b1 connection opened so far has closed (the
    // previous test may have opened more than one, if the pool's idle time passed between its sessions).
    const count = (event: string) => hf.logs.filter((l) => l.event === event && l.upstream === 'b1').length;
    await waitFor(() => count('upstream-open') > 0 && count('upstream-close') === count('upstream-open'), { timeoutMs: 5000, what: 'every earlier b1 connection to idle out' });
    const before = accepted(b1);
    const opensBefore = count('upstream-open');
    const rs = await Promise.all(Array.from({ length: 20 }, (_, i) => sshJump(scene.cfg.alice!, 'alice', hf.port, scene.sshd.port, `sleep 1; echo s${i}`)));
    rs.forEach((r, i) => expect(r.stdout.toString(), r.stderr).to.equal(`s${i}\n`));
    console.log(`      20 concurrent sessions: bastion accepted ${accepted(b1) - before} connection(s) from holdfast`);
    expect(accepted(b1) - before, 'logins at the bastion').to.equal(1);
    expect(count('upstream-open') - opensBefore).to.equal(1);
    const closed = await hf.waitForLog((l) => l.event === 'upstream-close' && l.upstream === 'b1' && Date.parse(String(l.time)) > Date.now() - 10_000 && l.reason === 'upstream-idle', 6000);
    expect(closed.channels).to.equal(0);
    await waitFor(() => tcpConnectionsTo(hf.pid, b1.port).length === 0, { timeoutMs: 3000, what: 'no socket to the bastion' });
  });

  it('a chain of two bastions works', async function () {
    const r = await sshJump(scene.cfg.alice!, 'alice', hf.port, scene.sshd.port, 'echo chained', {}, 'localhost');
    expect(r.stdout.toString(), r.stderr).to.equal('chained\n');
    const open = await hf.waitForLog((l) => l.event === 'upstream-open' && l.upstream === 'b1>b2');
    expect(open.hops).to.deep.equal([`root@127.0.0.1:${b1.port}`, `root@127.0.0.1:${b2.port}`]);
  });

  it('a reload re-plans the pooled bastion connection under a live channel (the SSH keepalive of the route now in force)', async function () {
    this.timeout(30_000);
    const file = path.join(scene.dir, 'holdfast.yaml');
    const original = fs.readFileSync(file, 'utf8');
    const t0 = Date.now();
    const since = (l: Record<string, unknown>) => Date.parse(String(l.time)) >= t0 - 5;
    const session = sshJump(scene.cfg.alice!, 'alice', hf.port, scene.sshd.port, 'sleep 2; echo ok', {}, 'localhost');
    const open = await hf.waitForLog((l) => l.event === 'channel-open' && l.route === 'chain' && since(l), 15_000);
    const hup = async (yaml: string) => {
      const n = hf.logs.filter((l) => l.event === 'reloaded').length;
      fs.writeFileSync(file, yaml);
      hf.proc.kill('SIGHUP');
      return waitFor(() => hf.logs.filter((l) => l.event === 'reloaded')[n], { what: 'reloaded' });
    };
    try {
      const line = await hup(original.replace('    via: [b1, b2]\n', '    via: [b1, b2]\n    keepalive: { upstream: { interval: 4s, countMax: 2 } }\n'));
      expect(line).to.include({ sessions: 1, legsReplanned: 1 });
      const replanned = await hf.waitForLog((l) => l.event === 'leg-replanned' && l.session === open.session);
      expect(replanned).to.include({ leg: 'upstream', layer: 'ssh', policy: '4s x 2', route: 'chain', channel: open.channel });
      const r = await session;
      expect(r.stdout.toString()).to.equal('ok\n');
    } finally {
      await hup(original);
    }
  });

  it('a reload while a channel is being dialled (its bastion has not answered yet) applies to it: kept, it opens under the route now in force; no longer allowed, it is refused before it opens', async function () {
    this.timeout(60_000);
    const file = path.join(scene.dir, 'holdfast.yaml');
    const original = fs.readFileSync(file, 'utf8');
    const route = '  - name: r-held\n    users: [alice]\n';
    expect(original).to.include(route);
    const hup = async (yaml: string) => {
      const n = hf.logs.filter((l) => l.event === 'reloaded').length;
      fs.writeFileSync(file, yaml);
      hf.proc.kill('SIGHUP');
      return waitFor(() => hf.logs.filter((l) => l.event === 'reloaded')[n], { what: 'reloaded' });
    };
    const upstreams = (event: string) => hf.logs.filter((l) => l.event === event && l.upstream === 'b1-held').length;
    const jumpHeld = async (yaml: string) => {
      // A new bastion connection each time: the pooled one from before has idled out.
      await waitFor(() => upstreams('upstream-close') === upstreams('upstream-open'), { timeoutMs: 10_000, what: 'no pooled b1-held connection' });
      const since = hf.logs.length;
      const session = sshJump(scene.cfg.alice!, 'alice', hf.port, scene.sshd.port, 'echo reached', { timeoutMs: 30_000 }, '127.0.1.3');
      await waitFor(() => held.held() === 1, { timeoutMs: 15_000, what: 'holdfast dialling the held bastion' });
      await hup(yaml);
      held.release();
      return { r: await session, since };
    };
    try {
      const kept = await jumpHeld(original.replace(route, `${route}    keepalive: { upstream: { interval: 4s, countMax: 2 } }\n`));
      expect(kept.r.stdout.toString(), kept.r.stderr).to.equal('reached\n');
      const open = hf.logs.slice(kept.since).find((l) => l.event === 'channel-open' && l.route === 'r-held')!;
      expect(open.upstreamKeepalive, 'the policy of the route now in force').to.deep.equal({ layer: 'ssh', policy: '4s x 2' });

      const gone = await jumpHeld(original.replace(route, '  - name: r-held\n    users: [nobody]\n'));
      expect(gone.r.stdout.toString()).to.equal('');
      expect(gone.r.code).to.equal(255);
      const after = hf.logs.slice(gone.since);
      expect(after.find((l) => l.event === 'channel-open' && l.route === 'r-held'), 'never opened').to.equal(undefined);
      const refused = after.find((l) => l.event === 'channel-refused' && l.user === 'alice')!;
      expect(refused.code).to.equal('no-route');
      expect(String(refused.why)).to.match(/^no route allows it any more/);
    } finally {
      held.release();
      await hup(original);
    }
  });

  it('host keys: unknown refused under strict; accepted and recorded under accept-new; changed refused under both', async function () {
    this.timeout(30_000);
    // Changed first: once accept-new has recorded the real key in holdfast's own known_hosts, that
    // match would count (as in OpenSSH, a matching key in any known_hosts file is enough).
    for (const [name, target] of [['b1-changed', '127.0.0.2'], ['b1-changed-new', '127.0.0.3']] as const) {
      const r = await sshJump(scene.cfgInfo.alice!, 'alice', hf.port, scene.sshd.port, 'true', {}, target);
      expect(r.code, name).to.equal(255);
      expect(r.stderr).to.match(/connect failed: bastion .* host key CHANGED/);
      const line = await hf.waitForLog((l) => l.event === 'upstream-host-key-changed' && l.upstream === name);
      expect(line.level).to.equal('error');
      expect(String(line.why)).to.include('man-in-the-middle');
    }
    const unknown = await sshJump(scene.cfgInfo.alice!, 'alice', hf.port, scene.sshd.port, 'true', {}, '127.0.0.4');
    expect(unknown.code).to.equal(255);
    expect(unknown.stderr).to.match(/connect failed: bastion b1-unknown .*unknown host key SHA256:\S+: refused/);
    await hf.waitForLog((l) => l.event === 'upstream-host-key-unknown' && l.upstream === 'b1-unknown');

    const fresh = await sshJump(scene.cfg.alice!, 'alice', hf.port, scene.sshd.port, 'echo accepted', {}, '127.0.0.5');
    expect(fresh.stdout.toString(), fresh.stderr).to.equal('accepted\n');
    const recorded = fs.readFileSync(path.join(state, 'known_hosts'), 'utf8');
    expect(recorded).to.include(hostKeyLine(b1.port));
    await hf.waitForLog((l) => l.event === 'upstream-host-key-accepted' && l.upstream === 'b1-new');

  });

  it('a bastion that refuses holdfast\'s key gives the user "connect failed" naming the upstream', async function () {
    const r = await sshJump(scene.cfgInfo.alice!, 'alice', hf.port, scene.sshd.port, 'true', {}, '127.0.0.6');
    expect(r.code).to.equal(255);
    expect(r.stderr).to.match(/connect failed: bastion b1-badkey \(127\.0\.0\.1:\d+\): authentication as root failed/);
    const line = await hf.waitForLog((l) => l.event === 'channel-connect-failed' && l.upstream === 'b1-badkey');
    expect(line.route).to.equal('r-b1-badkey');
  });

  it('through a middlebox that forgets idle flows: alive with upstream keepalive, frozen without', async function () {
    this.timeout(60_000);
    const cmd = 'sleep 10; echo alive';
    const [on, off] = await Promise.all([
      sshJump(scene.cfg.alice!, 'alice', hf.port, scene.sshd.port, cmd, { timeoutMs: 14_000 }, '127.0.1.1'),
      sshJump(scene.cfg.alice!, 'alice', hf.port, scene.sshd.port, cmd, { timeoutMs: 14_000 }, '127.0.1.2'),
    ]);
    expect(on.stdout.toString(), on.stderr).to.equal('alive\n');
    expect(off.stdout.toString()).to.equal('');
    const close = hf.logs.filter((l) => l.event === 'session-close' && (l.dsts as string[]).includes(`127.0.1.1:${scene.sshd.port}`)).pop()!;
    expect(close.reason).to.equal('peer-closed');
  });

  it('a frozen bastion closes every channel on its connection with upstream-keepalive-timeout within the bound + 1 s', async function () {
    this.timeout(30_000);
    const bound = 500 * (3 + 1);
    const opensBefore = hf.logs.filter((l) => l.event === 'channel-open' && l.route === 'relayed-ka').length;
    const sessions = [0, 1].map(() => sshJump(scene.cfgInfo.alice!, 'alice', hf.port, scene.sshd.port, 'sleep 30', { timeoutMs: 20_000 }, '127.0.1.1'));
    await waitFor(() => hf.logs.filter((l) => l.event === 'channel-open' && l.route === 'relayed-ka').length >= opensBefore + 2, { what: 'two more channels on the relayed connection' });
    // Freeze the bastion's process for holdfast's connection (its TCP stays up; nothing answers).
    const frozen = descendants(b1.proc.pid!);
    const at = Date.now();
    for (const p of frozen) process.kill(p, 'SIGSTOP');
    try {
      const dead = await hf.waitForLog((l) => l.event === 'upstream-keepalive-timeout' && l.upstream === 'relayed-ka', bound + 3000);
      const took = Date.parse(String(dead.time)) - at;
      console.log(`      frozen bastion: upstream-keepalive-timeout ${took} ms after SIGSTOP (bound ${bound} ms), ${String(dead.channels)} channels`);
      expect(took).to.be.lessThan(bound + 1000);
      expect(dead).to.include({ leg: 'upstream', layer: 'ssh', channels: 2, interval: 500, countMax: 3 });
      const rs = await Promise.all(sessions);
      for (const r of rs) expect(r.code).to.equal(255);
      const closes = hf.logs.filter((l) => l.event === 'channel-close' && l.route === 'relayed-ka' && l.reason === 'upstream-keepalive-timeout');
      expect(closes).to.have.length(2);
    } finally {
      for (const p of frozen) {
        try {
          process.kill(p, 'SIGCONT');
        } catch {
          /* gone */
        }
      }
    }
  });
});

void run;
