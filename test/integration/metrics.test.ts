/**
 * Issue 12: the admin listener (metrics, health, sessions) of the real daemon, read by promtool and
 * a real Prometheus server (Debian's `prometheus` package; test/ensure-system-deps.sh installs it),
 * with sessions through holdfast from the real OpenSSH client.
 */
import fs from 'node:fs';
import path from 'node:path';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { expect } from 'chai';
import { CONFIG_HEAD, makeScene, requireSshd, sshdHostKey, type Scene } from '../helpers/fixture.js';
import { startHoldfast, type Holdfast } from '../helpers/holdfast.js';
import { keygen, knownHostsLine, publicKey } from '../helpers/tmp.js';
import { run, sshJump } from '../helpers/ssh.js';
import { freePort } from '../helpers/ports.js';
import { waitFor } from '../helpers/wait.js';
import { stopProcess } from '../helpers/sshd.js';
import { holdfast } from '../helpers/cli.js';
import { METRICS } from '../../src/metrics/declarations.js';
import { ROOT } from '../helpers/holdfast.js';

/** The value of one sample `name{labels}` in Prometheus text, summed over the samples that match. */
function sample(text: string, name: string, labels: Record<string, string> = {}): number {
  let sum = 0;
  let seen = false;
  for (const line of text.split('\n')) {
    if (!line.startsWith(`${name}{`) && !line.startsWith(`${name} `)) continue;
    if (!Object.entries(labels).every(([k, v]) => line.includes(`${k}="${v}"`))) continue;
    sum += Number(line.slice(line.lastIndexOf(' ') + 1));
    seen = true;
  }
  return seen ? sum : NaN;
}

describe('observability: /metrics, /healthz, /sessions, holdfast sessions, Prometheus', function () {
  let scene: Scene;
  let hf: Holdfast;
  let adminPort: number;
  let admin: string;
  const procs: ChildProcess[] = [];
  /** admin.tokenFile's token: /metrics and /sessions need it. */
  const TOKEN = 'f3a1c9e07b5d42e8a6c1d0b9e8f7a6b5';
  let tokenFile: string;
  const bearer = { authorization: `Bearer ${TOKEN}` };
  const get = async (p: string, headers: Record<string, string> = bearer) => {
    const r = await fetch(`http://${admin}${p}`, { headers });
    return { status: r.status, text: await r.text(), type: r.headers.get('content-type') };
  };
  const metrics = async () => (await get('/metrics')).text;
  const jumpArgs = (user: string, cmd: string) => ['-F', scene.cfg[user]!, '-J', `${user}@127.0.0.1:${hf.port}`, '-p', String(scene.sshd.port), 'root@127.0.0.1', cmd];

  before(async function () {
    this.timeout(60_000);
    requireSshd(this);
    scene = await makeScene(['alice', 'dave', 'erin']);
    scene.authorizeOwn('alice', 'dave', 'erin');
    const gwKey = keygen(scene.dir, 'holdfast_gateway_key');
    fs.appendFileSync(path.join(scene.dir, 'target_authorized_keys'), `${publicKey(gwKey)}\n`);
    fs.writeFileSync(path.join(scene.dir, 'known_hosts'), `${knownHostsLine(sshdHostKey(scene), scene.sshd.port)}\n`);
    adminPort = await freePort();
    admin = `127.0.0.1:${adminPort}`;
    tokenFile = path.join(scene.dir, 'admin.token');
    fs.writeFileSync(tokenFile, `${TOKEN}\n`, { mode: 0o600 });
    hf = await startHoldfast(
      scene.dir,
      `${CONFIG_HEAD}admin: { address: 127.0.0.1, port: ${adminPort}, tokenFile: admin.token }
keepalive:
  client: { interval: 1s, countMax: 3 }
routes:
  - name: db-net
    users: [alice, dave]
    to: ["127.0.0.1:${scene.sshd.port}"]
  - name: names-admin
    to: ["127.0.0.1:${adminPort}", "localhost:${adminPort}"]
  - name: gw-net
    users: [erin]
    to: ["127.0.0.1:${scene.sshd.port}"]
    gateway: { user: root, identity: holdfast_gateway_key, knownHosts: known_hosts }
    keepalive: { upstream: { interval: 1s, countMax: 3 } }
`,
    );
    await hf.waitForLog((l) => l.event === 'admin-listening');
  });

  afterEach(function () {
    for (const p of procs.splice(0)) {
      try {
        process.kill(-p.pid!, 'SIGKILL');
      } catch {
        /* gone */
      }
    }
    if (this.currentTest?.state === 'failed' && hf) fs.writeFileSync('/tmp/metrics-failed-logs.jsonl', hf.logs.map((l) => JSON.stringify(l)).join('\n'));
  });

  after(async function () {
    await hf?.stop();
    await scene?.stop();
  });

  const background = (args: string[]) => {
    const p = spawn('ssh', args, { stdio: 'ignore', detached: true });
    procs.push(p);
    return p;
  };

  it('/healthz answers 200 while serving; unknown paths 404, other methods 405', async function () {
    const h = await get('/healthz');
    expect(h.status).to.equal(200);
    expect(JSON.parse(h.text)).to.deep.equal({ status: 'serving' });
    expect((await get('/nope')).status).to.equal(404);
    expect((await fetch(`http://${admin}/metrics`, { method: 'POST' })).status).to.equal(405);
  });

  it('admin.tokenFile: /metrics and /sessions answer 401 without the bearer token or with another; /healthz needs none', async function () {
    for (const p of ['/metrics', '/sessions']) {
      for (const headers of [{} as Record<string, string>, { authorization: `Bearer ${TOKEN.slice(0, -1)}x` }, { authorization: TOKEN }, { authorization: `Basic ${Buffer.from(`x:${TOKEN}`).toString('base64')}` }]) {
        const r = await fetch(`http://${admin}${p}`, { headers });
        expect(r.status, `${p} ${JSON.stringify(headers)}`).to.equal(401);
        expect(r.headers.get('www-authenticate')).to.equal('Bearer realm="holdfast"');
        expect(await r.text()).to.equal('unauthorized: send Authorization: Bearer <the token in admin.tokenFile>\n');
      }
      expect((await get(p)).status, p).to.equal(200);
    }
    expect((await get('/healthz', {})).status).to.equal(200);
    // holdfast sessions: --config reads the token; --admin needs --token-file.
    const bare = holdfast(['sessions', '--admin', admin]);
    expect(bare.code).to.equal(1);
    expect(bare.stderr).to.equal(`holdfast: http://${admin}/sessions wants the admin token: run with --config (admin.tokenFile) or --admin HOST:PORT --token-file FILE\n`);
    const wrong = path.join(scene.dir, 'wrong.token');
    fs.writeFileSync(wrong, 'not-the-token-at-all\n', { mode: 0o600 });
    expect(holdfast(['sessions', '--admin', admin, '--token-file', wrong]).stderr).to.include(`the token sent was refused (${wrong} differs from the one the running holdfast read at start)`);
    expect(holdfast(['sessions', '--admin', admin, '--token-file', tokenFile]).code).to.equal(0);
    expect(holdfast(['sessions', '--token-file', tokenFile]).code, '--token-file without --admin').to.equal(64);
    expect(holdfast(['sessions', '--admin', admin, '--token-file', path.join(scene.dir, 'nope')]).stderr).to.include('cannot read --token-file');
    expect(holdfast(['sessions', '--config', path.join(scene.dir, 'holdfast.yaml')], { cwd: scene.dir }).code).to.equal(0);
  });

  it('promtool check metrics accepts the output; a real Prometheus scrapes it and its query API says holdfast_sessions_active = 1 while a session is open', async function () {
    this.timeout(60_000);
    for (const bin of ['promtool', 'prometheus']) {
      if (spawnSync('sh', ['-c', `command -v ${bin}`]).status !== 0) {
        console.log(`      SKIPPED: ${bin} is missing (Debian package prometheus; test/ensure-system-deps.sh installs it as root)`);
        this.skip();
      }
    }
    const t0 = Date.now();
    background(jumpArgs('alice', 'sleep 20'));
    await hf.waitForLog((l) => l.event === 'channel-open' && l.user === 'alice' && Date.parse(String(l.time)) >= t0 - 5, 15_000);
    const text = await metrics();
    const lint = spawnSync('promtool', ['check', 'metrics'], { input: text });
    expect(lint.status, `promtool: ${lint.stdout.toString()}${lint.stderr.toString()}`).to.equal(0);
    expect(sample(text, 'holdfast_sessions_active', { mode: 'jump' })).to.equal(1);
    expect(sample(text, 'holdfast_channels_active', { route: 'db-net' })).to.equal(1);

    const promPort = await freePort();
    const dir = fs.mkdtempSync(path.join(scene.dir, 'prom-'));
    // Prometheus sends the admin token as holdfast's docs say: authorization.credentials_file.
    fs.writeFileSync(path.join(dir, 'prometheus.yml'), `global: { scrape_interval: 1s, evaluation_interval: 1s }\nscrape_configs:\n  - job_name: holdfast\n    authorization: { credentials_file: ${tokenFile} }\n    static_configs: [{ targets: ["${admin}"] }]\n`);
    const prom = spawn('prometheus', [`--config.file=${path.join(dir, 'prometheus.yml')}`, `--storage.tsdb.path=${path.join(dir, 'data')}`, `--web.listen-address=127.0.0.1:${promPort}`], { stdio: 'ignore' });
    try {
      const started = Date.now();
      const value = await waitFor(
        async () => {
          const r = await fetch(`http://127.0.0.1:${promPort}/api/v1/query?query=${encodeURIComponent('sum(holdfast_sessions_active{job="holdfast"})')}`).catch(() => null);
          if (!r?.ok) return undefined;
          const body = (await r.json()) as { data: { result: Array<{ value: [number, string] }> } };
          return body.data.result[0]?.value[1];
        },
        { timeoutMs: 30_000, intervalMs: 250, what: 'Prometheus to have scraped holdfast' },
      );
      console.log(`      Prometheus ${spawnSync('prometheus', ['--version']).stdout.toString().split('\n')[0]} scraped holdfast: sum(holdfast_sessions_active) = ${value} (${Date.now() - started} ms after it started)`);
      expect(value).to.equal('1');
      const up = await fetch(`http://127.0.0.1:${promPort}/api/v1/query?query=up`).then((r) => r.json() as Promise<{ data: { result: Array<{ value: [number, string] }> } }>);
      expect(up.data.result[0]?.value[1]).to.equal('1');
    } finally {
      await stopProcess(prom, 'SIGTERM', 10_000);
    }
  });

  it('client keepalive at 1 s: probe and RTT counters for leg="client" move; a frozen client counts a dead client leg and its close reason', async function () {
    this.timeout(40_000);
    const before = await metrics();
    const sent0 = sample(before, 'holdfast_keepalive_probes_sent_total', { leg: 'client' }) || 0;
    const answered0 = sample(before, 'holdfast_keepalive_probes_answered_total', { leg: 'client' }) || 0;
    const rtt0 = sample(before, 'holdfast_keepalive_rtt_seconds_count', { leg: 'client' }) || 0;
    const r = await sshJump(scene.cfg.alice!, 'alice', hf.port, scene.sshd.port, 'sleep 3; echo done');
    expect(r.stdout.toString()).to.equal('done\n');
    const after = await metrics();
    const moved = {
      sent: sample(after, 'holdfast_keepalive_probes_sent_total', { leg: 'client', route: 'db-net' }) - sent0,
      answered: sample(after, 'holdfast_keepalive_probes_answered_total', { leg: 'client', route: 'db-net' }) - answered0,
      rtt: sample(after, 'holdfast_keepalive_rtt_seconds_count', { leg: 'client', route: 'db-net' }) - rtt0,
    };
    expect(moved.sent).to.be.greaterThan(0);
    expect(moved.answered).to.be.greaterThan(0);
    expect(moved.rtt).to.equal(moved.answered);

    const dead0 = sample(after, 'holdfast_keepalive_timeouts_total', { leg: 'client', layer: 'ssh', route: 'db-net' }) || 0;
    const closes0 = sample(after, 'holdfast_session_closes_total', { reason: 'client-keepalive-timeout' }) || 0;
    const t0 = Date.now();
    const outer = background(jumpArgs('dave', 'sleep 60'));
    await hf.waitForLog((l) => l.event === 'channel-open' && l.user === 'dave' && Date.parse(String(l.time)) >= t0 - 5, 15_000);
    // The jump leg is the `ssh -W` child of the user's ssh: freeze it.
    const child = await waitFor(() => fs.readFileSync(`/proc/${outer.pid}/task/${outer.pid}/children`, 'utf8').trim().split(/\s+/).filter(Boolean).map(Number)[0], { what: 'the ProxyJump child' });
    process.kill(child, 'SIGSTOP');
    try {
      await hf.waitForLog((l) => l.event === 'session-close' && l.user === 'dave' && Date.parse(String(l.time)) >= t0 - 5, 15_000);
    } finally {
      process.kill(child, 'SIGCONT');
    }
    const m = await metrics();
    const dead = sample(m, 'holdfast_keepalive_timeouts_total', { leg: 'client', layer: 'ssh', route: 'db-net' }) - dead0;
    const closes = sample(m, 'holdfast_session_closes_total', { reason: 'client-keepalive-timeout' }) - closes0;
    console.log(`      client leg during a 3 s session: +${moved.sent} probes, +${moved.answered} answered, +${moved.rtt} RTT samples; frozen client: +${dead} dead client leg, +${closes} session close (client-keepalive-timeout)`);
    expect(dead).to.equal(1);
    expect(closes).to.equal(1);
  });

  it('a gateway leg shows leg="upstream" probes and RTTs; the connect time is observed', async function () {
    this.timeout(30_000);
    const r = await run('ssh', ['-F', scene.cfg.erin!, '-p', String(hf.port), `erin+127.0.0.1+${scene.sshd.port}@127.0.0.1`, 'sleep 3; echo gw'], { timeoutMs: 20_000 });
    expect(r.stdout.toString(), r.stderr).to.equal('gw\n');
    const m = await metrics();
    expect(sample(m, 'holdfast_keepalive_rtt_seconds_count', { leg: 'upstream', route: 'gw-net' })).to.be.greaterThan(0);
    expect(sample(m, 'holdfast_keepalive_probes_answered_total', { leg: 'upstream', route: 'gw-net' })).to.be.greaterThan(0);
    expect(sample(m, 'holdfast_upstream_connect_seconds_count', { route: 'gw-net' })).to.be.greaterThan(0);
    expect(sample(m, 'holdfast_sessions_total', { mode: 'gateway' })).to.be.greaterThan(0);
  });

  it('the admin port is refused through holdfast (ssh -W), even with a route naming its address', async function () {
    this.timeout(30_000);
    for (const dst of [`127.0.0.1:${adminPort}`, `localhost:${adminPort}`]) {
      const r = await run('ssh', ['-F', scene.cfgInfo.alice!, '-p', String(hf.port), '-W', dst, 'alice@127.0.0.1'], { timeoutMs: 20_000 });
      expect(r.code).to.equal(255);
      expect(r.stderr).to.match(/administratively prohibited: holdfast: .* is the jump host's admin port/);
    }
    const refused = hf.logs.filter((l) => l.event === 'channel-refused' && l.code === 'admin-port');
    expect(refused).to.have.length(2);
    expect(sample(await metrics(), 'holdfast_channels_opened_total', { result: 'refused' })).to.be.at.least(2);
  });

  it('holdfast sessions lists a live session with user, route and client RTT (table and --json, by --admin or --config)', async function () {
    this.timeout(30_000);
    const t0 = Date.now();
    background(jumpArgs('alice', 'sleep 20'));
    const open = await hf.waitForLog((l) => l.event === 'channel-open' && l.user === 'alice' && Date.parse(String(l.time)) >= t0 - 5, 15_000);
    // Let a probe or two go out and come back.
    await waitFor(async () => {
      const r = holdfast(['sessions', '--admin', admin, '--token-file', tokenFile, '--json']);
      const s = (JSON.parse(r.stdout) as Array<{ id: string; client: { probesAnswered: number } | null }>).find((x) => x.id === open.session);
      return s && s.client && s.client.probesAnswered > 0;
    }, { timeoutMs: 10_000, what: 'a client probe answered' });
    const j = holdfast(['sessions', '--admin', admin, '--token-file', tokenFile, '--json']);
    expect(j.code, j.stderr).to.equal(0);
    const s = (JSON.parse(j.stdout) as Array<Record<string, unknown>>).find((x) => x.id === open.session)!;
    expect(s).to.include({ user: 'alice', mode: 'jump', channels: 1 });
    expect(s.routes).to.deep.equal(['db-net']);
    expect(s.destinations).to.deep.equal([`127.0.0.1:${scene.sshd.port}`]);
    expect(s.upstream).to.deep.equal({ layer: 'tcp', channels: 1 });
    const t = holdfast(['sessions', '--config', path.join(scene.dir, 'holdfast.yaml')], { cwd: scene.dir });
    expect(t.code, t.stderr).to.equal(0);
    console.log(t.stdout.replace(/^/gm, '      '));
    expect(t.stdout).to.match(new RegExp(`^${open.session}\\s+alice\\s+127\\.0\\.0\\.1:\\d+\\s+jump\\s+db-net\\s+127\\.0\\.0\\.1:${scene.sshd.port}\\s`, 'm'));
    const nobody = await freePort();
    const none = holdfast(['sessions', '--admin', `127.0.0.1:${nobody}`]);
    expect(none.code).to.equal(1);
    expect(none.stderr).to.include(`cannot read sessions from http://127.0.0.1:${nobody}/sessions: connect ECONNREFUSED`);
    expect(holdfast(['sessions', '--admin', 'nonsense']).code).to.equal(64);
  });

  it('the metrics never contain a user name, client address, destination or session id', async function () {
    const text = await metrics();
    const ids = [...new Set(hf.logs.filter((l) => l.event === 'session-close').map((l) => String(l.session)))];
    expect(ids.length).to.be.greaterThan(3);
    for (const secret of ['alice', 'dave', 'erin', '127.0.0.1', String(scene.sshd.port), 'localhost', ...ids]) expect(text, secret).to.not.include(secret);
  });

  it('every metric the Grafana dashboard and the alert rules name is exported; promtool accepts the rules', function () {
    const names = (s: string) => new Set([...s.matchAll(/\b(holdfast_[a-z_]+|process_(?:open|max)_fds|process_resident_memory_bytes|nodejs_eventloop_lag_p99_seconds)\b/g)].map((m) => m[1]!.replace(/_(bucket|count|sum)$/, '')));
    const dashboard = fs.readFileSync(path.join(ROOT, 'examples/grafana/holdfast.json'), 'utf8');
    const rules = fs.readFileSync(path.join(ROOT, 'examples/prometheus/holdfast-alerts.yaml'), 'utf8');
    // prom-client's process metrics (collector.ts, collectDefaultMetrics) beside holdfast's own.
    const exported = new Set([...Object.keys(METRICS), 'process_open_fds', 'process_max_fds', 'process_resident_memory_bytes', 'nodejs_eventloop_lag_p99_seconds']);
    const used = [...names(dashboard), ...names(rules)];
    expect(used.length).to.be.greaterThan(8);
    for (const n of used) expect(exported.has(n), `${n} is named but not exported`).to.equal(true);
    if (spawnSync('sh', ['-c', 'command -v promtool']).status === 0) {
      const r = spawnSync('promtool', ['check', 'rules', path.join(ROOT, 'examples/prometheus/holdfast-alerts.yaml')]);
      expect(r.status, r.stdout.toString() + r.stderr.toString()).to.equal(0);
    }
    // Every panel's queries parse as JSON-embedded PromQL strings, and each panel has one.
    const dash = JSON.parse(dashboard) as { panels: Array<{ title: string; targets: Array<{ expr: string }>; fieldConfig?: { defaults?: { custom?: { stacking?: { mode?: string } } } } }> };
    for (const p of dash.panels) expect(p.targets.length, p.title).to.be.greaterThan(0);
    // Nothing stacked (session and channel closes stacked counted one disconnect twice), and the
    // refusals, logins and channel opens each on a graph of their own.
    for (const p of dash.panels) expect(p.fieldConfig?.defaults?.custom?.stacking?.mode ?? 'none', `${p.title} is stacked`).to.equal('none');
    for (const family of ['holdfast_session_closes_total', 'holdfast_auth_attempts_total', 'holdfast_channels_opened_total']) {
      const with_ = dash.panels.filter((p) => p.targets.some((t) => t.expr.includes(family)));
      expect(with_.map((p) => p.targets.length), `${family}: panels and their queries`).to.deep.equal([1]);
    }
  });

  it('with workers: 2, /metrics and /sessions cover both workers; /healthz says 503 while shutting down', async function () {
    this.timeout(60_000);
    const port2 = await freePort();
    const dir = fs.mkdtempSync(path.join(scene.dir, 'two-'));
    for (const f of ['ak', 'hk']) fs.cpSync(path.join(scene.dir, f), path.join(dir, f), { recursive: true });
    const hf2 = await startHoldfast(
      dir,
      `${CONFIG_HEAD}workers: 2\nadmin: { address: 127.0.0.1, port: ${port2} }\nroutes:\n  - name: two\n    to: ["127.0.0.1:${scene.sshd.port}"]\n`,
    );
    try {
      await hf2.waitForLog(() => hf2.logs.filter((l) => l.event === 'worker-started').length === 2, 30_000, 'two workers');
      await hf2.waitForLog((l) => l.event === 'admin-listening');
      const t0 = Date.now();
      // Workers accept for themselves (SCHED_NONE: src/daemon/primary.ts), so which one takes a login
      // is the kernel's choice: log in until both serve one (bounded), then read the two of them.
      const opened = () => hf2.logs.filter((l) => l.event === 'channel-open' && Date.parse(String(l.time)) >= t0 - 5);
      for (let i = 0; i < 12 && new Set(opened().map((l) => l.worker)).size < 2; i++) {
        procs.push(spawn('ssh', ['-F', scene.cfg.alice!, '-J', `alice@127.0.0.1:${hf2.port}`, '-p', String(scene.sshd.port), 'root@127.0.0.1', 'sleep 20'], { stdio: 'ignore', detached: true }));
        await hf2.waitForLog(() => opened().length === i + 1, 15_000, `channel ${i + 1}`);
      }
      const logins = opened().length;
      const workers = new Set(opened().map((l) => l.worker));
      const sessions = (await (await fetch(`http://127.0.0.1:${port2}/sessions`)).json()) as Array<{ worker: number; user: string }>;
      const text = await (await fetch(`http://127.0.0.1:${port2}/metrics`)).text();
      console.log(`      workers serving the two sessions: ${[...workers].join(', ')}; /sessions from workers ${sessions.map((x) => x.worker).join(', ')}; sessions_active ${sample(text, 'holdfast_sessions_active')}; build_info series ${text.split('\n').filter((l) => l.startsWith('holdfast_build_info{')).length}`);
      expect(workers.size).to.equal(2);
      expect(sessions).to.have.length(logins);
      expect([...new Set(sessions.map((x) => x.worker))].sort()).to.deep.equal([...workers].map(Number).sort());
      expect(sample(text, 'holdfast_sessions_active', { mode: 'jump' })).to.equal(logins);
      expect(sample(text, 'holdfast_channels_active', { route: 'two' })).to.equal(logins);
      expect(sample(text, 'holdfast_build_info')).to.equal(1);
      // Shutting down: /healthz says 503 while the sessions are being closed. Frozen clients keep
      // their sessions open for the 1 s a graceful close may take.
      const clients = procs.slice(-logins);
      for (const p of clients) process.kill(-p.pid!, 'SIGSTOP');
      try {
        hf2.proc.kill('SIGTERM');
        const status = await waitFor(
          async () => {
            const r = await fetch(`http://127.0.0.1:${port2}/healthz`).catch(() => null);
            return r?.status === 503 ? ((await r.json()) as { status: string }).status : undefined;
          },
          { timeoutMs: 3000, intervalMs: 20, what: '/healthz to say 503' },
        );
        expect(status).to.equal('shutting down');
      } finally {
        for (const p of clients) process.kill(-p.pid!, 'SIGCONT');
      }
    } finally {
      await hf2.stop();
    }
  });

  it('process metrics per worker (fds and their limit, RSS, event-loop lag, GC); label sets read 0 before any event; reloads and a worker restart are counted', async function () {
    this.timeout(60_000);
    const port3 = await freePort();
    const dir = fs.mkdtempSync(path.join(scene.dir, 'ops-'));
    for (const f of ['ak', 'hk']) fs.cpSync(path.join(scene.dir, f), path.join(dir, f), { recursive: true });
    const cfg = `${CONFIG_HEAD}workers: 2\nadmin: { address: 127.0.0.1, port: ${port3} }\nroutes:\n  - name: ops\n    to: ["127.0.0.1:${scene.sshd.port}"]\n`;
    const hf3 = await startHoldfast(dir, cfg);
    const scrape = async () => (await fetch(`http://127.0.0.1:${port3}/metrics`)).text();
    try {
      await hf3.waitForLog(() => hf3.logs.filter((l) => l.event === 'worker-started').length === 2, 30_000, 'two workers');
      await hf3.waitForLog((l) => l.event === 'admin-listening');
      // prom-client measures the event-loop lag after a scrape (setImmediate): the next one shows it.
      await scrape();
      let text = await scrape();
      for (const w of ['1', '2']) {
        expect(sample(text, 'process_open_fds', { worker: w }), `worker ${w} fds`).to.be.greaterThan(0);
        expect(sample(text, 'process_max_fds', { worker: w }), `worker ${w} fd limit`).to.be.greaterThan(0);
        expect(sample(text, 'process_resident_memory_bytes', { worker: w }), `worker ${w} RSS`).to.be.greaterThan(0);
        expect(sample(text, 'nodejs_eventloop_lag_seconds', { worker: w }), `worker ${w} lag`).to.be.at.least(0);
      }
      expect(text).to.include('# TYPE nodejs_gc_duration_seconds histogram');
      // Series that exist before their first event (a rate() over them needs a 0 to start from).
      for (const [name, labels] of [
        ['holdfast_auth_attempts_total', { method: 'publickey', result: 'failed' }],
        ['holdfast_sessions_total', { mode: 'gateway' }],
        ['holdfast_proxy_refused_total', { cause: 'timeout' }],
        ['holdfast_reloads_total', { result: 'failed' }],
        ['holdfast_upgrades_total', { result: 'complete' }],
        ['holdfast_worker_restarts_total', {}],
      ] as const) expect(sample(text, name, labels), `${name} ${JSON.stringify(labels)}`).to.equal(0);
      const lint = spawnSync('sh', ['-c', 'command -v promtool']).status === 0 ? spawnSync('promtool', ['check', 'metrics'], { input: text }) : null;
      if (lint) expect(lint.status, `promtool: ${lint.stdout.toString()}${lint.stderr.toString()}`).to.equal(0);

      // A reload, a reload of a broken file, a worker killed: each counted once.
      hf3.proc.kill('SIGHUP');
      await waitFor(async () => sample(await scrape(), 'holdfast_reloads_total', { result: 'applied' }) === 1, { what: 'reloads applied 1' });
      fs.writeFileSync(path.join(dir, 'holdfast.yaml'), `${cfg}bogus: 1\n`);
      hf3.proc.kill('SIGHUP');
      await waitFor(async () => sample(await scrape(), 'holdfast_reloads_total', { result: 'failed' }) === 1, { what: 'reloads failed 1' });
      fs.writeFileSync(path.join(dir, 'holdfast.yaml'), cfg);
      const victim = hf3.logs.find((l) => l.event === 'worker-started')!;
      process.kill(Number(victim.pid), 'SIGKILL');
      await waitFor(async () => sample(await scrape(), 'holdfast_worker_restarts_total') === 1, { timeoutMs: 20_000, what: 'worker restarts 1' });
      text = await scrape();
      console.log(`      worker 2: fds ${sample(text, 'process_open_fds', { worker: '2' })}/${sample(text, 'process_max_fds', { worker: '2' })}, lag ${(sample(text, 'nodejs_eventloop_lag_seconds', { worker: '2' }) * 1000).toFixed(1)} ms; reloads applied/failed ${sample(text, 'holdfast_reloads_total', { result: 'applied' })}/${sample(text, 'holdfast_reloads_total', { result: 'failed' })}; worker restarts ${sample(text, 'holdfast_worker_restarts_total')}`);
    } finally {
      await hf3.stop();
    }
  });
});
