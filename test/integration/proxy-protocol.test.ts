/**
 * Issue 13: two holdfast replicas behind a real haproxy (Debian's package; test/ensure-system-deps.sh
 * installs it) speaking PROXY protocol v2, run from examples/haproxy/haproxy.cfg with only addresses,
 * ports and timeouts replaced. Clients are the real OpenSSH client bound to 127.0.0.5 / 127.0.0.6.
 */
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { expect } from 'chai';
import { makeScene, requireSshd, type Scene } from '../helpers/fixture.js';
import { ROOT, startHoldfast, type Holdfast, type LogLine } from '../helpers/holdfast.js';
import { keygen, publicKey } from '../helpers/tmp.js';
import { signCertificate } from '../helpers/certs.js';
import { run, writeSshConfig } from '../helpers/ssh.js';
import { freePort } from '../helpers/ports.js';
import { waitFor } from '../helpers/wait.js';
import { stopProcess } from '../helpers/sshd.js';

/** haproxy's `timeout tunnel` (and client/server) in this test. */
const TUNNEL_S = 2;

function haproxyAvailable(): boolean {
  return spawnSync('haproxy', ['-v'], { stdio: 'ignore' }).status === 0;
}

/** examples/haproxy/haproxy.cfg, each placeholder replaced exactly once (or every time, for `all`). */
function haproxyConfig(dir: string, frontPort: number, replicas: [number, number]): string {
  let text = fs.readFileSync(path.join(ROOT, 'examples', 'haproxy', 'haproxy.cfg'), 'utf8');
  const swap = (from: string | RegExp, to: string, times = 1) => {
    const n = text.split(from).length - 1;
    if (n !== times) throw new Error(`examples/haproxy/haproxy.cfg: expected ${times} × ${String(from)}, found ${n}`);
    text = text.split(from).join(to);
  };
  swap('/run/haproxy/admin.sock', path.join(dir, 'haproxy.sock'));
  swap('bind :22', `bind 127.0.0.1:${frontPort}`);
  swap('10.0.0.11:2222', `127.0.0.1:${replicas[0]}`);
  swap('10.0.0.12:2222', `127.0.0.1:${replicas[1]}`);
  swap(/ 10m\n/, ` ${TUNNEL_S}s\n`, 3);
  swap('inter 2s', 'inter 300ms');
  const file = path.join(dir, 'haproxy.cfg');
  fs.writeFileSync(file, text);
  return file;
}

/** `show stat` on haproxy's stats socket: server name -> status (UP, DOWN, ...). */
async function serverStatus(sock: string): Promise<Record<string, string>> {
  const csv = await new Promise<string>((resolve, reject) => {
    let out = '';
    const c = net.connect(sock, () => c.write('show stat\n'));
    c.setTimeout(2000, () => c.destroy(new Error('stats socket timed out')));
    c.on('data', (d) => (out += d));
    c.on('end', () => resolve(out));
    c.on('error', reject);
  });
  const [head, ...rows] = csv.replace(/^# /, '').trim().split('\n');
  const cols = head!.split(',');
  const at = (name: string) => cols.indexOf(name);
  const status: Record<string, string> = {};
  for (const r of rows.map((l) => l.split(','))) if (r[at('pxname')] === 'holdfast' && r[at('svname')] !== 'BACKEND') status[r[at('svname')]!] = r[at('status')]!;
  return status;
}

describe('behind a load balancer: PROXY protocol v2 from a real haproxy to two replicas', function () {
  let scene: Scene;
  const replicas: Holdfast[] = [];
  let haproxy: ChildProcess | undefined;
  let haproxyOut = '';
  let front = 0;
  let statsSock = '';
  /** Replica a's admin listener (its /metrics count PROXY refusals by cause). */
  let adminPort = 0;
  let coraCert = '';
  const refusals = async (cause: string) => {
    const text = await (await fetch(`http://127.0.0.1:${adminPort}/metrics`)).text();
    const m = new RegExp(`^holdfast_proxy_refused_total\\{cause="${cause}"\\} (\\d+)$`, 'm').exec(text);
    return m ? Number(m[1]) : 0;
  };
  /** ssh_config for `identity` with every connection bound to `bind`. */
  const configs = new Map<string, string>();
  const cfgFrom = (identity: string, bind: string) => {
    const name = `ssh_config_${identity}_${bind}`;
    if (!configs.has(name)) configs.set(name, writeSshConfig(scene.dir, scene.keys[identity]!, name, [`BindAddress ${bind}`]));
    return configs.get(name)!;
  };
  const through = (user: string, bind: string, cmd: string, timeoutMs = 30_000) =>
    run('ssh', ['-F', cfgFrom(user, bind), '-J', `${user}@127.0.0.1:${front}`, '-p', String(scene.sshd.port), 'root@127.0.0.1', cmd], { timeoutMs });
  const allLogs = (): LogLine[] => replicas.flatMap((r) => r.logs);
  const aConfig = () => path.join(scene.dir, 'a', 'holdfast.yaml');
  /** Rewrites replica a's config and reloads it (SIGHUP); its `reloaded` line. */
  const reloadA = async (yaml: string) => {
    const a = replicas[0]!;
    const n = a.logs.filter((l) => l.event === 'reloaded').length;
    fs.writeFileSync(aConfig(), yaml);
    a.proc.kill('SIGHUP');
    return waitFor(() => a.logs.filter((l) => l.event === 'reloaded')[n], { what: 'reloaded' });
  };
  /**
   * Connects to replica a from 127.0.0.1 (haproxy's address) with a v1 header naming `client`, and
   * resolves with what holdfast answers first (its SSH banner line, or '' when it closes). The
   * socket stays open until `hold` is done with it (destroyed after 5 s at the latest).
   */
  const greet = (client: string, hold?: (c: net.Socket) => void, header = `PROXY TCP4 ${client} 127.0.0.1 40000 22\r\n`) =>
    new Promise<string>((resolve) => {
      let got = '';
      const c = net.connect({ port: replicas[0]!.port, host: '127.0.0.1' }, () => c.write(header));
      c.setTimeout(5000, () => c.destroy());
      c.on('data', (d) => {
        got += d;
        if (!got.includes('\n')) return;
        if (hold) hold(c);
        else c.destroy();
        resolve(got);
      });
      c.on('error', () => {});
      c.on('close', () => resolve(got));
    });

  before(async function () {
    this.timeout(90_000);
    requireSshd(this);
    if (!haproxyAvailable()) {
      console.log('    SKIPPED: haproxy is missing (Debian package haproxy; test/ensure-system-deps.sh installs it as root)');
      this.skip();
    }
    scene = await makeScene(['alice', 'bob', 'carol', 'cora']);
    scene.authorize('alice', [`from="127.0.0.5" ${publicKey(scene.keys.alice!)}`]);
    scene.authorizeOwn('bob', 'carol');
    // cora logs in with a certificate whose source-address is 127.0.0.5 (her CA is on a cert-authority line).
    const ca = keygen(scene.dir, 'user_ca');
    scene.authorize('cora', [`cert-authority ${publicKey(ca)}`]);
    coraCert = signCertificate(scene.dir, ca, scene.keys.cora!, { name: 'cora', id: 'cora', principals: 'cora', options: ['source-address=127.0.0.5/32'] });
    // Both replicas: one PROXY listener trusting haproxy (127.0.0.1 here); the control route (carol)
    // has no client keepalive, and no default either.
    const yaml = (admin: string) => `${admin}listen: [{address: 127.0.0.1, port: 0, proxyProtocol: {trusted: [127.0.0.1/32]}}]
hostKeys: [hk/key]
authorizedKeys: ak/%u
keepalive:
  client: { interval: 0 }
routes:
  - name: kept
    users: [alice, bob, cora]
    to: ["127.0.0.1:${scene.sshd.port}"]
    keepalive: { client: { interval: 1s, countMax: 3 } }
  - name: bare
    users: [carol]
    to: ["127.0.0.1:${scene.sshd.port}"]
`;
    adminPort = await freePort();
    for (const name of ['a', 'b']) {
      const dir = path.join(scene.dir, name);
      fs.mkdirSync(dir);
      fs.symlinkSync(path.join(scene.dir, 'ak'), path.join(dir, 'ak'));
      replicas.push(await startHoldfast(dir, yaml(name === 'a' ? `admin: { address: 127.0.0.1, port: ${adminPort} }\n` : 'logLevel: debug\n')));
    }
    front = await freePort();
    const cfg = haproxyConfig(scene.dir, front, [replicas[0]!.port, replicas[1]!.port]);
    statsSock = path.join(scene.dir, 'haproxy.sock');
    haproxy = spawn('haproxy', ['-db', '-f', cfg], { stdio: ['ignore', 'pipe', 'pipe'] });
    haproxy.stdout!.on('data', (d) => (haproxyOut += d));
    haproxy.stderr!.on('data', (d) => (haproxyOut += d));
    await waitFor(async () => Object.values(await serverStatus(statsSock)).filter((s) => s === 'UP').length === 2, { timeoutMs: 20_000, what: `both replicas UP in haproxy (${haproxyOut.slice(-500)})` });
  });

  afterEach(function () {
    if (this.currentTest?.state === 'failed') {
      fs.writeFileSync('/tmp/proxy-failed-logs.jsonl', allLogs().map((l) => JSON.stringify(l)).join('\n'));
      fs.writeFileSync('/tmp/proxy-failed-haproxy.log', haproxyOut);
    }
  });

  after(async function () {
    if (haproxy) await stopProcess(haproxy, 'SIGTERM', 5000);
    for (const r of replicas) await r.stop();
    await scene?.stop();
  });

  it("haproxy's stats show both replicas UP, and its health checks (v2 LOCAL) leave no log line", async function () {
    expect(await serverStatus(statsSock)).to.deep.equal({ holdfast1: 'UP', holdfast2: 'UP' });
    // Checks every 300 ms since start: each a v2 LOCAL header, then a reset. They start no session
    // and log nothing above debug (replica b logs at debug: it shows those whose header it read).
    const seen = replicas[1]!.logs.filter((l) => l.event === 'proxy-no-client').map((l) => `${l.level} ${String(l.what)}`);
    console.log(`      replica b, debug lines for health checks so far: ${seen.length} (${[...new Set(seen)].join(', ')})`);
    expect(allLogs().filter((l) => l.event === 'proxy-refused' || l.event === 'session-start' || l.event === 'session-close')).to.deep.equal([]);
    // The same LOCAL header haproxy sends, written by hand to replica b: closed, at debug only.
    let from = 0;
    const local = net.connect({ port: replicas[1]!.port, host: '127.0.0.1' }, () => {
      from = local.localPort!;
      local.write(Buffer.from('0d0a0d0a000d0a515549540a20000000', 'hex'));
    });
    local.on('error', () => {});
    await new Promise((r) => local.once('close', r));
    const line = await replicas[1]!.waitForLog((l) => l.event === 'proxy-no-client' && l.what === 'PROXY v2 LOCAL' && l.src === `127.0.0.1:${from}`, 5000, 'the LOCAL line');
    expect(line.level).to.equal('debug');
    expect(allLogs().filter((l) => l.level !== 'debug' && l.level !== 'info')).to.deep.equal([]);
  });

  it('the client address from the header is the one logged (src), with the balancer as `via`; from="127.0.0.5" lets alice in from there and not from 127.0.0.6', async function () {
    this.timeout(60_000);
    const ok = await through('alice', '127.0.0.5', 'echo via-balancer');
    expect(ok.stdout.toString(), ok.stderr).to.equal('via-balancer\n');
    const accepted = await waitFor(() => allLogs().find((l) => l.event === 'auth-accepted' && l.user === 'alice'), { what: 'auth-accepted' });
    expect(String(accepted.src)).to.match(/^127\.0\.0\.5:\d+$/);
    const closed = await waitFor(() => allLogs().find((l) => l.event === 'session-close' && l.user === 'alice'), { what: 'session-close' });
    expect(String(closed.src)).to.match(/^127\.0\.0\.5:\d+$/);
    expect(String(closed.via)).to.match(/^127\.0\.0\.1:\d+$/);
    const refused = await through('alice', '127.0.0.6', 'echo should-not-run');
    expect(refused.code).to.equal(255);
    expect(refused.stdout.toString()).to.equal('');
    const failed = await waitFor(() => allLogs().find((l) => l.event === 'auth-failed' && l.user === 'alice'), { what: 'auth-failed' });
    expect(String(failed.src)).to.match(/^127\.0\.0\.6:\d+$/);
    expect(String(failed.why)).to.contain('source address 127.0.0.6 not allowed by from=');
  });

  it("a certificate's source-address is checked against the client address from the header", async function () {
    this.timeout(60_000);
    const cfg = (bind: string) => writeSshConfig(scene.dir, scene.keys.cora!, `ssh_config_cora_${bind}`, [`BindAddress ${bind}`, `CertificateFile ${coraCert}`]);
    const jump = (bind: string) => run('ssh', ['-F', cfg(bind), '-J', `cora@127.0.0.1:${front}`, '-p', String(scene.sshd.port), 'root@127.0.0.1', 'echo cert-ok'], { timeoutMs: 30_000 });
    const ok = await jump('127.0.0.5');
    expect(ok.stdout.toString(), ok.stderr).to.equal('cert-ok\n');
    const no = await jump('127.0.0.6');
    expect(no.code).to.equal(255);
    const failed = await waitFor(() => allLogs().find((l) => l.event === 'auth-failed' && l.user === 'cora' && l.rule === 'source-address'), { what: "cora's refusal" });
    expect(String(failed.why)).to.equal("client address 127.0.0.6 not in the certificate's source-address 127.0.0.5/32");
  });

  it('six sessions are shared between the two replicas', async function () {
    this.timeout(60_000);
    const before = replicas.map((r) => r.logs.filter((l) => l.event === 'auth-accepted' && l.user === 'bob').length);
    const results = await Promise.all(Array.from({ length: 6 }, (_, i) => through('bob', '127.0.0.5', `sleep 1; echo s${i}`)));
    expect(results.map((r) => r.stdout.toString()), results.map((r) => `${r.code}: ${r.stderr}`).join('; ')).to.deep.equal(Array.from({ length: 6 }, (_, i) => `s${i}\n`));
    const per = await waitFor(
      () => {
        const n = replicas.map((r, i) => r.logs.filter((l) => l.event === 'auth-accepted' && l.user === 'bob').length - before[i]!);
        return n[0]! + n[1]! === 6 ? n : undefined;
      },
      { what: 'six logins logged' },
    );
    console.log(`      sessions per replica: ${per.join(' + ')}`);
    expect(per[0]).to.be.above(0);
    expect(per[1]).to.be.above(0);
  });

  it(`a session idle ${4 * TUNNEL_S} s (4 x timeout tunnel) survives thanks to the client-leg keepalive; without it (control) haproxy cuts it`, async function () {
    this.timeout(60_000);
    const idle = `sleep ${4 * TUNNEL_S}; echo alive`;
    const t0 = performance.now();
    const [kept, bare] = await Promise.all([through('bob', '127.0.0.6', idle), through('carol', '127.0.0.6', idle)]);
    const ms = Math.round(performance.now() - t0);
    console.log(`      keepalive 1s: exit ${kept.code} "${kept.stdout.toString().trim()}"; control: exit ${bare.code} "${bare.stdout.toString().trim()}" (${ms} ms)`);
    expect(kept.stdout.toString(), kept.stderr).to.equal('alive\n');
    expect(kept.code).to.equal(0);
    expect(bare.stdout.toString()).to.equal('');
    expect(bare.code).to.equal(255);
    const carol = await waitFor(() => allLogs().find((l) => l.event === 'session-close' && l.user === 'carol'), { what: "carol's session-close" });
    expect(Number(carol.durationMs)).to.be.below(4 * TUNNEL_S * 1000);
    const bob = await waitFor(() => allLogs().find((l) => l.event === 'session-close' && l.user === 'bob' && Number(l.durationMs) > 4 * TUNNEL_S * 1000), { what: "bob's idle session-close" });
    expect((bob.clientKeepalive as { probesAnswered: number } | undefined)?.probesAnswered ?? 0).to.be.at.least(4 * TUNNEL_S - 2);
  });

  it('a connection straight to a replica without a header, or from an untrusted address, is closed before any SSH byte; holdfast keeps serving', async function () {
    this.timeout(60_000);
    const direct = replicas[0]!;
    const cfg = cfgFrom('bob', '127.0.0.1');
    const noHeader = await run('ssh', ['-F', cfg, '-p', String(direct.port), 'bob@127.0.0.1', 'true'], { timeoutMs: 20_000 });
    expect(noHeader.code).to.equal(255);
    expect(noHeader.stderr).to.match(/Connection closed|reset by peer/);
    const invalid = await direct.waitForLog((l) => l.event === 'proxy-refused' && l.cause === 'invalid', 5000, 'proxy-refused invalid');
    expect(String(invalid.why)).to.contain('SSH bytes where a PROXY protocol header should be');
    const untrusted = await run('ssh', ['-F', cfgFrom('bob', '127.0.0.7'), '-p', String(direct.port), 'bob@127.0.0.1', 'true'], { timeoutMs: 20_000 });
    expect(untrusted.code).to.equal(255);
    expect(untrusted.stderr).to.match(/Connection closed|reset by peer/);
    // The log says it at most once per 5 s (the second refusal is counted there, not logged); the metric counts each.
    expect(await waitFor(async () => ((await refusals('untrusted')) === 1 ? 1 : 0), { timeoutMs: 5000, what: 'untrusted counted' })).to.equal(1);
    expect(await refusals('invalid')).to.equal(1);
    // A silent connection from the trusted address: closed when the header time runs out.
    const silent = net.connect({ port: direct.port, host: '127.0.0.1' });
    const t0 = performance.now();
    const closedAfter = await new Promise<number>((r) => {
      silent.on('error', () => {});
      silent.on('close', () => r(Math.round(performance.now() - t0)));
    });
    console.log(`      silent connection closed after ${closedAfter} ms`);
    expect(closedAfter).to.be.within(2500, 5000);
    expect(await refusals('timeout')).to.equal(1);
    const again = await through('bob', '127.0.0.5', 'echo still-serving');
    expect(again.stdout.toString(), again.stderr).to.equal('still-serving\n');
    expect(direct.proc.exitCode).to.equal(null);
  });

  it('fifty garbage headers at once: at most one proxy-refused line per 5 s, the next one saying how many it left out; the metric counts all fifty', async function () {
    this.timeout(60_000);
    const a = replicas[0]!;
    const invalidBefore = await refusals('invalid');
    const logsBefore = a.logs.length;
    const garbage = 'GET / HTTP/1.0\r\n\r\n';
    const t0 = performance.now();
    const answers = await Promise.all(Array.from({ length: 50 }, () => greet('', undefined, garbage)));
    const burstMs = performance.now() - t0;
    expect(answers.filter((g) => g !== '')).to.deep.equal([]);
    const counted = await waitFor(async () => {
      const n = (await refusals('invalid')) - invalidBefore;
      return n >= 50 ? n : undefined;
    }, { timeoutMs: 10_000, what: 'fifty invalid refusals counted' });
    expect(counted).to.equal(50);
    const logsAfterBurst = a.logs.length;
    const burst = a.logs.slice(logsBefore).filter((l) => l.event === 'proxy-refused');
    const burstLines = burst.length;
    // A line during the burst (the first refusal after a quiet 5 s, or one when the window ran out
    // mid-burst) carries the count left out before it, earlier tests' included.
    const burstNotLogged = burst.reduce((n, l) => n + Number(l.notLogged ?? 0), 0);
    expect(burstLines).to.be.within(0, 1 + Math.floor(burstMs / 5000));
    // One more garbage header every 500 ms until a line is logged: it carries what was left out. Only
    // lines after the burst count: a line logged during it may carry what an earlier test left out.
    let sent = 0;
    const next = await waitFor(async () => {
      await greet('', undefined, garbage);
      sent++;
      return a.logs.slice(logsAfterBurst).find((l) => l.event === 'proxy-refused' && Number(l.notLogged) > 0);
    }, { timeoutMs: 12_000, intervalMs: 500, what: 'a proxy-refused line with notLogged' });
    console.log(`      50 garbage headers in ${Math.round(burstMs)} ms: ${burstLines} line(s) during the burst (notLogged ${burstNotLogged}); next line after ${sent} more: notLogged ${String(next.notLogged)}`);
    // Every refusal of the burst is either a line or counted in one.
    expect(burstNotLogged + Number(next.notLogged)).to.be.at.least(50 - burstLines);
    const again = await through('bob', '127.0.0.5', 'echo still-serving');
    expect(again.stdout.toString(), again.stderr).to.equal('still-serving\n');
  });

  it('a reload changes who is trusted, live: the same header from haproxy\'s address is then refused, and accepted again after the next reload', async function () {
    this.timeout(60_000);
    const a = replicas[0]!;
    const original = fs.readFileSync(aConfig(), 'utf8');
    expect(await greet('192.0.2.44')).to.match(/^SSH-2\.0-holdfast_/);
    const untrustedBefore = await refusals('untrusted');
    const narrowed = await reloadA(original.replace('trusted: [127.0.0.1/32]', 'trusted: [127.0.0.9]'));
    expect(narrowed.restartNeededFor).to.equal(undefined);
    expect(await greet('192.0.2.44')).to.equal('');
    expect(await refusals('untrusted')).to.equal(untrustedBefore + 1);
    await reloadA(original);
    expect(await greet('192.0.2.44')).to.match(/^SSH-2\.0-holdfast_/);
    // Both accepted connections were sessions of the client the header named.
    const closes = await waitFor(() => {
      const c = a.logs.filter((l) => l.event === 'session-close' && String(l.src).startsWith('192.0.2.44:'));
      return c.length === 2 ? c : undefined;
    }, { what: 'two session-close lines' });
    expect(closes.map((l) => [l.reason, l.via])).to.deep.equal([['no-handshake', closes[0]!.via], ['no-handshake', closes[1]!.via]]);
    expect(String(closes[0]!.via)).to.match(/^127\.0\.0\.1:\d+$/);
  });

  it('per-source startup limits count the client the header names, not the balancer', async function () {
    this.timeout(30_000);
    const a = replicas[0]!;
    const original = fs.readFileSync(aConfig(), 'utf8');
    await reloadA(original.replace('keepalive:', 'perSourceMaxStartups: 1\nkeepalive:'));
    const held: net.Socket[] = [];
    try {
      // 192.0.2.50's first connection stays unauthenticated: its one startup slot is taken.
      expect(await greet('192.0.2.50', (c) => held.push(c))).to.match(/^SSH-2\.0-holdfast_/);
      expect(await greet('192.0.2.50')).to.equal('');
      const refused = await a.waitForLog((l) => l.event === 'startup-refused', 5000, 'startup-refused');
      expect(String(refused.src)).to.match(/^192\.0\.2\.50:/);
      expect(String(refused.why)).to.equal('perSourceMaxStartups 1 reached for 192.0.2.50/32');
      // Another client through the same balancer is not limited by it.
      expect(await greet('192.0.2.51', (c) => held.push(c))).to.match(/^SSH-2\.0-holdfast_/);
    } finally {
      for (const c of held) c.destroy();
      await reloadA(original);
    }
  });

  it("v1 UNKNOWN: the connection is served under the balancer's address, and the log says so", async function () {
    this.timeout(30_000);
    const a = replicas[0]!;
    let localPort = 0;
    expect(await greet('', (c) => ((localPort = c.localPort!), c.destroy()), 'PROXY UNKNOWN\r\n')).to.match(/^SSH-2\.0-holdfast_/);
    const said = await a.waitForLog((l) => l.event === 'proxy-address-unknown', 5000, 'proxy-address-unknown');
    expect(said.level).to.equal('warn');
    expect(String(said.why)).to.equal("PROXY v1 UNKNOWN: the balancer did not give the client's address, so its own is used");
    // This connection's own close (not an earlier test's): the source is the balancer's address and
    // port, i.e. this socket's own end.
    const closed = await waitFor(() => a.logs.find((l) => l.event === 'session-close' && l.src === `127.0.0.1:${localPort}`), { what: `session-close of 127.0.0.1:${localPort}` });
    expect(closed.via).to.equal(closed.src);
  });
});
