/**
 * A wildcard never reaches the jump host itself, and "itself" changes while holdfast runs: DHCP, a
 * floating IP moved to this host, a container bridge created after start. In a network namespace the
 * test creates: holdfast and the jump host's own sshd (on 0.0.0.0:22) share the namespace; an address
 * added to an interface after holdfast started is refused to `*:22` within the re-read bound, and once
 * removed it is an ordinary destination again.
 */
import { execFileSync } from 'node:child_process';
import { expect } from 'chai';
import { makeScene, requireSshd, type Scene } from '../helpers/fixture.js';
import { startHoldfast, type Holdfast, type LogLine } from '../helpers/holdfast.js';
import { removeTempDirs } from '../helpers/tmp.js';
import { run, type SshResult } from '../helpers/ssh.js';
import { waitFor } from '../helpers/wait.js';
import { requireNetns } from '../helpers/netns.js';
import { OWN_ADDRESSES_MAX_AGE_MS } from '../../src/routing/guard.js';

const AT_START = '198.18.9.1';
const ADDED = '198.18.9.7';

describe("holdfast's own addresses, read again while it runs (network namespace)", function () {
  const ns = `hfown${process.pid % 100000}`;
  let scene: Scene | undefined;
  let hf: Holdfast | undefined;
  const ip = (...args: string[]) => execFileSync('ip', ['-n', ns, ...args], { stdio: 'pipe' });

  before(async function () {
    this.timeout(60_000);
    requireSshd(this);
    requireNetns(this);
    try {
      execFileSync('ip', ['netns', 'del', ns], { stdio: 'pipe' });
    } catch {
      /* not there */
    }
    execFileSync('ip', ['netns', 'add', ns], { stdio: 'pipe' });
    ip('link', 'set', 'lo', 'up');
    // A veth pair with both ends here (this kernel may have no dummy driver): v0 is "the interface".
    ip('link', 'add', 'v0', 'type', 'veth', 'peer', 'name', 'v1');
    ip('link', 'set', 'v0', 'up');
    ip('link', 'set', 'v1', 'up');
    ip('addr', 'add', `${AT_START}/24`, 'dev', 'v0');
    // The jump host's own sshd, on every address it has or will have.
    scene = await makeScene(['alice'], { netns: ns, address: '0.0.0.0', port: 22 });
    scene.authorizeOwn('alice');
    hf = await startHoldfast(
      scene.dir,
      `listen: [{address: 0.0.0.0, port: 2222}]
hostKeys: [hk/key]
authorizedKeys: ak/%u
connectTimeout: 1s
routes:
  - name: anything-on-22
    to: ["*:22"]
`,
      { netns: ns },
    );
  });

  after(async function () {
    await hf?.stop();
    await scene?.stop();
    try {
      execFileSync('ip', ['netns', 'del', ns], { stdio: 'pipe' });
    } catch {
      /* not created */
    }
    removeTempDirs();
  });

  const jumpTo = (address: string): Promise<SshResult> =>
    run('ip', ['netns', 'exec', ns, 'ssh', '-F', scene!.cfg.alice!, '-J', 'alice@127.0.0.1:2222', '-p', '22', `root@${address}`, 'echo reached'], { timeoutMs: 20_000 });
  const refusedOwn = (address: string) => (l: LogLine) => l.event === 'channel-refused' && l.dst === `${address}:22` && String(l.why).includes("one of holdfast's own addresses");

  it('an address added after start is refused to a wildcard within the re-read bound; removed, it is an ordinary destination again', async function () {
    this.timeout(60_000);
    const h = hf!;
    const atStart = await jumpTo(AT_START);
    expect(atStart.stdout.toString()).to.equal('');
    expect(h.logs.find(refusedOwn(AT_START)), 'an address it had at start').to.not.equal(undefined);

    ip('addr', 'add', `${ADDED}/24`, 'dev', 'v0');
    const addedAt = performance.now();
    // Tried until refused: an attempt inside the bound may still reach the sshd (that is the bound).
    const attempts: Array<{ startMs: number; endMs: number; got: string }> = [];
    await waitFor(async () => {
      const startMs = Math.round(performance.now() - addedAt);
      const r = await jumpTo(ADDED);
      attempts.push({ startMs, endMs: Math.round(performance.now() - addedAt), got: r.stdout.toString().trim() || `exit ${String(r.code)}` });
      return h.logs.find(refusedOwn(ADDED));
    }, { timeoutMs: OWN_ADDRESSES_MAX_AGE_MS + 10_000, intervalMs: 100, what: `${ADDED} refused as holdfast's own` });
    console.log(`      ${ADDED} added: ${attempts.map((a) => `${a.startMs}-${a.endMs} ms ${a.got}`).join('; ')}`);
    expect(attempts.at(-1)!.got).to.equal('exit 255');
    // A channel opened after the bound meets a list read after the address was added: only attempts
    // begun within the bound may have reached the jump host's own sshd.
    for (const a of attempts.slice(0, -1)) expect(a.startMs, `${a.got} at ${a.startMs} ms`).to.be.below(OWN_ADDRESSES_MAX_AGE_MS);

    ip('addr', 'del', `${ADDED}/24`, 'dev', 'v0');
    const since = h.logs.length;
    // Gone from the host: routed like any address on the network (nothing answers there: connect failed).
    const failed = await waitFor(async () => {
      await jumpTo(ADDED);
      return h.logs.slice(since).find((l) => l.event === 'channel-connect-failed' && l.dst === `${ADDED}:22`);
    }, { timeoutMs: OWN_ADDRESSES_MAX_AGE_MS + 15_000, intervalMs: 100, what: `${ADDED} routed again after removal` });
    expect(failed.route).to.equal('anything-on-22');
    expect(h.proc.exitCode).to.equal(null);
  });
});
