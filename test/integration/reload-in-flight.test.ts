/**
 * A reload that lands while a destination is still being resolved: the channel (ssh -J) or the
 * gateway login is decided on the config in force once the name resolves, not on the one it began
 * with. In process, with a DNS lookup the test holds until it has reloaded; real OpenSSH client and
 * sshd around it.
 */
import fs from 'node:fs';
import path from 'node:path';
import { Writable } from 'node:stream';
import { expect } from 'chai';
import { makeScene, requireSshd, sshdHostKey, type Scene } from '../helpers/fixture.js';
import { keygen, knownHostsLine, publicKey } from '../helpers/tmp.js';
import { run, sshJump, type SshResult } from '../helpers/ssh.js';
import { waitFor } from '../helpers/wait.js';
import { loadConfigText } from '../../src/config/load.js';
import { createLogger } from '../../src/log.js';
import { HoldfastServer } from '../../src/server.js';
import { Events } from '../../src/events.js';

type Line = Record<string, unknown>;

describe('a reload while the destination is being resolved (in process, a DNS lookup held by the test)', function () {
  let scene: Scene;
  let server: HoldfastServer | undefined;
  let port = 0;
  const lines: Line[] = [];
  /** Lookups of *.held names wait here until released. */
  const pending: Array<() => void> = [];

  const yaml = (allowed: string) => `listen: [{address: 127.0.0.1, port: 0}]
hostKeys: [hk/inflight]
authorizedKeys: ak/%u
# The .held names resolve to 127.0.0.1, which a name alone never reaches: each route names it too.
routes:
  - name: gw
    users: [${allowed}]
    to: ["target.held:${scene.sshd.port}", "127.0.0.1:${scene.sshd.port}"]
    gateway: { user: root, identity: holdfast_gateway_key, knownHosts: known_hosts }
  - name: jump
    users: [${allowed}]
    to: ["jump.held:${scene.sshd.port}", "127.0.0.1:${scene.sshd.port}"]
`;
  const load = (allowed: string) => loadConfigText(yaml(allowed), { displayName: 'inflight.yaml', baseDir: scene.dir, embedded: false }).config;

  before(async function () {
    this.timeout(60_000);
    requireSshd(this);
    scene = await makeScene(['alice']);
    scene.authorizeOwn('alice');
    const gwKey = keygen(scene.dir, 'holdfast_gateway_key');
    fs.appendFileSync(path.join(scene.dir, 'target_authorized_keys'), `${publicKey(gwKey)}\n`);
    fs.writeFileSync(path.join(scene.dir, 'known_hosts'), `${knownHostsLine(sshdHostKey(scene), scene.sshd.port, 'target.held')}\n`);
    const sink = new Writable({
      write(chunk: Buffer, _e, cb) {
        for (const l of chunk.toString().split('\n')) if (l) lines.push(JSON.parse(l) as Line);
        cb();
      },
    });
    const lookup = (host: string) =>
      host.endsWith('.held') ? new Promise<string[]>((resolve) => pending.push(() => resolve(['127.0.0.1']))) : Promise.reject(new Error(`ENOTFOUND ${host}`));
    server = new HoldfastServer(load('alice'), Events.loggingTo(createLogger({ json: true, stream: sink })), lookup);
    const bound = await server.start();
    port = bound[0]!.port;
  });

  after(async function () {
    pending.splice(0).forEach((go) => go());
    await server?.stop();
    await scene?.stop();
  });

  /** Starts `attempt`, reloads with `allowed` while its lookup is held, then lets the lookup answer. */
  const acrossReload = async (attempt: () => Promise<SshResult>, allowed: string) => {
    const since = lines.length;
    const result = attempt();
    await waitFor(() => pending.length === 1, { timeoutMs: 15_000, what: 'holdfast resolving a .held name' });
    server!.reload(load(allowed));
    pending.splice(0).forEach((go) => go());
    return { r: await result, after: () => lines.slice(since) };
  };
  const gatewayLogin = () => run('ssh', ['-F', scene.cfg.alice!, '-p', String(port), `alice+target.held+${scene.sshd.port}@127.0.0.1`, 'echo reached'], { timeoutMs: 30_000 });
  const jump = () => sshJump(scene.cfg.alice!, 'alice', port, scene.sshd.port, 'echo reached', { timeoutMs: 30_000 }, 'jump.held');

  it('control: a reload that keeps alice allowed changes nothing (gateway login and ssh -J both reach the target)', async function () {
    this.timeout(60_000);
    for (const attempt of [gatewayLogin, jump]) {
      const { r } = await acrossReload(attempt, 'alice');
      expect(r.stdout.toString(), r.stderr).to.equal('reached\n');
    }
  });

  it('gateway login: the route no longer allows alice once the name resolves: refused, never opened', async function () {
    this.timeout(60_000);
    const { r, after } = await acrossReload(gatewayLogin, 'nobody');
    server!.reload(load('alice'));
    expect(r.stdout.toString()).to.equal('');
    expect(r.stderr).to.include(`no gateway route allows alice to reach target.held:${scene.sshd.port} any more`);
    const refused = await waitFor(() => after().find((l) => l.event === 'gateway-refused'), { what: 'gateway-refused' });
    expect(refused.code).to.equal('no-route');
    expect(String(refused.why)).to.match(/^no gateway route allows it any more/);
    expect(after().find((l) => l.event === 'gateway-open'), 'never opened').to.equal(undefined);
  });

  it('ssh -J: the route no longer allows alice once the name resolves: refused before the channel opens', async function () {
    this.timeout(60_000);
    const { r, after } = await acrossReload(jump, 'nobody');
    server!.reload(load('alice'));
    expect(r.stdout.toString()).to.equal('');
    expect(r.code).to.equal(255);
    const refused = await waitFor(() => after().find((l) => l.event === 'channel-refused'), { what: 'channel-refused' });
    expect(refused.code).to.equal('no-route');
    expect(String(refused.why)).to.match(/^no route allows it any more/);
    expect(after().find((l) => l.event === 'channel-open'), 'never opened').to.equal(undefined);
  });
});
