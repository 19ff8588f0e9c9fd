/**
 * Issue 28: the post-quantum hybrid key exchange mlkem768x25519-sha256 (ssh2 patch) with a real
 * OpenSSH 10.0 (test/fetch-openssh10.sh) on every leg: its client through `ssh -J` and in gateway
 * mode, its sshd as a `via` bastion and as a gateway target; an older client still logs in and is
 * counted as classical; one changed byte of either key share fails the handshake cleanly.
 */
import fs from 'node:fs';
import path from 'node:path';
import { expect } from 'chai';
import { CONFIG_HEAD, makeScene, requireSshd, sshdHostKey, type Scene } from '../helpers/fixture.js';
import { startHoldfast, type Holdfast } from '../helpers/holdfast.js';
import { run, sshJump } from '../helpers/ssh.js';
import { startSshd, type Sshd } from '../helpers/sshd.js';
import { keygen, knownHostsLine, publicKey } from '../helpers/tmp.js';
import { requireOpenssh10, type OpenSsh10 } from '../helpers/openssh10.js';
import { kexTamperRelay, type Tamper } from '../helpers/kex-tamper.js';
import { freePort } from '../helpers/ports.js';

const PQ = 'mlkem768x25519-sha256';
const kexLines = (stderr: string) => [...stderr.matchAll(/kex: algorithm: (\S+)/g)].map((m) => m[1]);

describe('post-quantum key exchange (mlkem768x25519-sha256) with OpenSSH 10 on every leg', function () {
  let scene: Scene;
  let o: OpenSsh10;
  let sshd10: Sshd;
  let hf: Holdfast;
  let adminPort: number;
  /** A relay to the OpenSSH 10 target that changes one bit of the target's key share. */
  let tamperedTargetPort: number;
  const relays: { close(): void }[] = [];
  /** OpenSSH 10's client with the test identity, verbose (it prints the negotiated key exchange). */
  const ssh10 = (args: string[]) => run(o.ssh, ['-F', scene.cfg.alice!, '-v', ...args], { timeoutMs: 30_000 });

  before(async function () {
    this.timeout(60_000);
    requireSshd(this);
    o = requireOpenssh10(this);
    scene = await makeScene(['alice'], {}, ['ListenAddress 127.0.0.2:$PORT', 'ListenAddress 127.0.0.3:$PORT']);
    scene.authorizeOwn('alice');
    const hfKey = keygen(scene.dir, 'holdfast_key');
    const ak10 = path.join(scene.dir, 'ak10');
    fs.writeFileSync(ak10, `${publicKey(hfKey)}\n${publicKey(scene.keys.alice!)}\n`, { mode: 0o600 });
    sshd10 = await startSshd(scene.dir, ak10, o.sshdExtra, { binary: o.sshd });
    adminPort = await freePort();
    const hostKey = sshdHostKey(scene); // both sshds use the scene's host key
    const tamperedTarget = await kexTamperRelay(sshd10.port, { msg: 31, at: 10 });
    relays.push(tamperedTarget);
    tamperedTargetPort = tamperedTarget.port;
    fs.writeFileSync(path.join(scene.dir, 'known_hosts'), [sshd10.port, tamperedTarget.port].map((p) => knownHostsLine(hostKey, p)).join('\n') + '\n');
    const gw = `gateway: { user: root, identity: holdfast_key, knownHosts: known_hosts }`;
    hf = await startHoldfast(
      scene.dir,
      `${CONFIG_HEAD}connectTimeout: 5s
admin: { address: 127.0.0.1, port: ${adminPort} }
upstreams:
  b10: { host: 127.0.0.1, port: ${sshd10.port}, user: root, identity: holdfast_key, knownHosts: known_hosts }
routes:
  - name: gw10
    to: ["127.0.0.1:${sshd10.port}"]
    ${gw}
  - name: gw-tampered
    to: ["127.0.0.1:${tamperedTarget.port}"]
    ${gw}
  - name: via10
    to: ["127.0.0.2:${scene.sshd.port}"]
    via: b10
  - name: jump
    to: ["127.0.0.3:${scene.sshd.port}"]
`,
    );
  });

  after(async function () {
    for (const r of relays) r.close();
    await hf?.stop();
    await sshd10?.stop();
    await scene?.stop();
  });

  it('holdfast offers it first, and says so when it starts', function () {
    const started = hf.logs.find((l) => l.event === 'started')!;
    expect((started.kex as string[])[0]).to.equal(PQ);
    expect(started.mlkem).to.be.oneOf(['node:crypto', '@noble/post-quantum']);
  });

  it('ssh -J with OpenSSH 10: the jump leg negotiates it; the login and the summary line say so', async function () {
    this.timeout(30_000);
    const r = await ssh10(['-J', `alice@127.0.0.1:${hf.port}`, '-p', String(scene.sshd.port), 'root@127.0.0.3', 'echo pq-jump']);
    expect(r.stdout.toString(), r.stderr).to.equal('pq-jump\n');
    // The first line is the jump leg's (holdfast), the second the target's (Debian 12's sshd 9.2: sntrup761).
    expect(kexLines(r.stderr)[0]).to.equal(PQ);
    const close = await hf.waitForLog((l) => l.event === 'session-close' && l.user === 'alice' && (l.dsts as string[]).includes(`127.0.0.3:${scene.sshd.port}`));
    expect(close.kex).to.equal(PQ);
    const accepted = hf.logs.find((l) => l.event === 'auth-accepted' && l.session === close.session)!;
    expect(accepted.kex).to.equal(PQ);
  });

  it('gateway mode with OpenSSH 10, to an OpenSSH 10 target: both of holdfast\'s legs negotiate it', async function () {
    this.timeout(30_000);
    const r = await ssh10(['-p', String(hf.port), `alice+127.0.0.1+${sshd10.port}@127.0.0.1`, 'echo pq-gateway']);
    expect(r.stdout.toString(), r.stderr).to.equal('pq-gateway\n');
    expect(kexLines(r.stderr)).to.deep.equal([PQ]);
    const open = await hf.waitForLog((l) => l.event === 'gateway-open' && l.dst === `127.0.0.1:${sshd10.port}`);
    expect(open.kex).to.equal(PQ);
  });

  it('a via bastion running OpenSSH 10: holdfast\'s client negotiates it (upstream-open)', async function () {
    this.timeout(30_000);
    const r = await sshJump(scene.cfg.alice!, 'alice', hf.port, scene.sshd.port, 'echo pq-via', {}, '127.0.0.2');
    expect(r.stdout.toString(), r.stderr).to.equal('pq-via\n');
    const open = await hf.waitForLog((l) => l.event === 'upstream-open' && l.upstream === 'b10');
    expect(open.kex).to.deep.equal([PQ]);
  });

  it("Debian 12's OpenSSH 9.2 (no ML-KEM) still logs in, and /metrics counts it as classical", async function () {
    this.timeout(30_000);
    const r = await sshJump(scene.cfg.alice!, 'alice', hf.port, scene.sshd.port, 'echo classical', {}, '127.0.0.3');
    expect(r.stdout.toString(), r.stderr).to.equal('classical\n');
    const close = await hf.waitForLog((l) => l.event === 'session-close' && l.kex === 'curve25519-sha256');
    expect(close.authenticated).to.equal(true);
    const metrics = await (await fetch(`http://127.0.0.1:${adminPort}/metrics`)).text();
    expect(metrics).to.match(/holdfast_session_kex_total\{kex="curve25519-sha256"\} [1-9]/);
    expect(metrics).to.match(/holdfast_session_kex_total\{kex="mlkem768x25519-sha256"\} [1-9]/);
  });

  const clientSide: Array<[string, Tamper]> = [
    ['the ML-KEM encapsulation key (a bit)', { msg: 30, at: 99 }],
    ['the client\'s X25519 share (a bit)', { msg: 30, at: -7 }],
    ['the ML-KEM ciphertext (a bit)', { msg: 31, at: 500 }],
    ['the server\'s X25519 share (a bit)', { msg: 31, at: -3 }],
    ['the ML-KEM encapsulation key (a coefficient past q: fails the modulus check)', { msg: 30, at: 101, change: () => 0xff }],
  ];
  for (const [what, t] of clientSide) {
    it(`one changed byte in ${what}: the login fails cleanly, holdfast logs it and serves the next`, async function () {
      this.timeout(30_000);
      const relay = await kexTamperRelay(hf.port, t);
      relays.push(relay);
      const logsBefore = hf.logs.length;
      const r = await run(o.ssh, ['-F', scene.cfgInfo.alice!, '-p', String(relay.port), 'alice@127.0.0.1', '-W', `127.0.0.3:${scene.sshd.port}`], { timeoutMs: 20_000 });
      relay.close();
      expect(relay.tampered()).to.equal(1);
      expect(r.code).to.equal(255);
      const close = await hf.waitForLog((l) => l.event === 'session-close' && l.authenticated === false && hf.logs.indexOf(l) >= logsBefore);
      console.log(`      ${what}: ssh: ${r.stderr.trim().split('\n').join(' / ')}; holdfast: reason ${String(close.reason)}${close.detail ? ` (${String(close.detail)})` : ''}`);
      expect(close).to.include({ authenticated: false, kex: null });
      // The client refuses holdfast's signature over an exchange hash it does not share; holdfast saw it leave mid-exchange.
      if (t.change) {
        // @noble/post-quantum: "ML-KEM.encapsulate: wrong publicKey modulus"; node:crypto: OpenSSL's words.
        expect(close.reason).to.equal('protocol-error');
        expect(String(close.detail)).to.match(/^Error while computing DH secret \(mlkem768x25519\): \S/);
      } else {
        expect(r.stderr).to.match(/incorrect signature/);
        expect(close).to.include({ reason: 'peer-closed', detail: 'the client left during the key exchange' });
      }
      const next = await sshJump(scene.cfg.alice!, 'alice', hf.port, scene.sshd.port, 'echo still-serving', {}, '127.0.0.3');
      expect(next.stdout.toString()).to.equal('still-serving\n');
    });
  }

  it("one changed bit in the target's reply to holdfast's gateway leg: the login fails with why, holdfast serves the next", async function () {
    this.timeout(30_000);
    const r = await run(o.ssh, ['-F', scene.cfg.alice!, '-p', String(hf.port), `alice+127.0.0.1+${tamperedTargetPort}@127.0.0.1`, 'echo never'], { timeoutMs: 20_000 });
    expect(r.code).to.not.equal(0);
    const failed = await hf.waitForLog((l) => l.event === 'gateway-connect-failed');
    console.log(`      gateway leg, tampered reply: ${String(failed.why)}; the user's ssh: ${r.stderr.trim().split('\n').filter((l) => !l.startsWith('debug')).at(-1)}`);
    expect(String(failed.why)).to.match(/signature verification failed/);
    const next = await ssh10(['-p', String(hf.port), `alice+127.0.0.1+${sshd10.port}@127.0.0.1`, 'echo gw-still-serving']);
    expect(next.stdout.toString()).to.equal('gw-still-serving\n');
  });
});
