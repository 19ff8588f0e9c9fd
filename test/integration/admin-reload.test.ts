/**
 * Issue 24: a reload that changes `admin:` is applied by the main process (it was silently ignored
 * until a restart): a rotated token, a new port and `admin:` removed, each after one SIGHUP; a config
 * with errors leaves the listener as it is.
 */
import fs from 'node:fs';
import path from 'node:path';
import { expect } from 'chai';
import { CONFIG_HEAD, makeScene, requireSshd, type Scene } from '../helpers/fixture.js';
import { startHoldfast, type Holdfast } from '../helpers/holdfast.js';
import { freePort } from '../helpers/ports.js';
import { waitFor } from '../helpers/wait.js';
import { adminStatus } from '../helpers/admin.js';

/** The status of GET /sessions with this token (0: nothing listens). */
const sessions = (port: number, token: string) => adminStatus(port, '/sessions', { headers: { authorization: `Bearer ${token}` } });

describe('SIGHUP applies admin: changes (main process)', function () {
  let scene: Scene;
  let hf: Holdfast;
  const A = 'a'.repeat(32);
  const B = 'b'.repeat(32);

  before(async function () {
    requireSshd(this);
    scene = await makeScene(['alice']);
  });

  after(async function () {
    await hf?.stop();
    await scene?.stop();
  });

  it('a rotated token, a new port, admin: removed; a broken config changes nothing', async function () {
    this.timeout(60_000);
    const tokenFile = path.join(scene.dir, 'admin.token');
    fs.writeFileSync(tokenFile, `${A}\n`, { mode: 0o600 });
    const [p1, p2] = [await freePort(), await freePort()];
    const cfg = (admin: string) => `${CONFIG_HEAD}${admin}routes:\n  - name: r\n    to: ["127.0.0.1:22"]\n`;
    hf = await startHoldfast(scene.dir, cfg(`admin: { address: 127.0.0.1, port: ${p1}, tokenFile: ${tokenFile} }\n`));
    await hf.waitForLog((l) => l.event === 'admin-listening');
    expect(await sessions(p1, A)).to.equal(200);

    const hup = async (admin: string, expectChange: string | null) => {
      const seen = hf.logs.filter((l) => l.event === 'primary-reloaded').length;
      const failed = hf.logs.filter((l) => l.event === 'reload-failed').length;
      if (admin !== 'keep') fs.writeFileSync(path.join(scene.dir, 'holdfast.yaml'), admin);
      hf.proc.kill('SIGHUP');
      const nth = (event: string, n: number) => waitFor(() => hf.logs.filter((l) => l.event === event)[n], { timeoutMs: 10_000, what: `${event} #${n + 1}` });
      if (expectChange === null) return nth('reload-failed', failed);
      const line = await nth('primary-reloaded', seen);
      expect(line.admin).to.equal(expectChange);
      return line;
    };

    // The token file's content changed: the old token is refused at once, the new one works.
    fs.writeFileSync(tokenFile, `${B}\n`);
    await hup('keep', 'reopened');
    expect([await sessions(p1, A), await sessions(p1, B)], 'old token, new token').to.deep.equal([401, 200]);

    // Another port: the old one is closed, the new one answers.
    await hup(cfg(`admin: { address: 127.0.0.1, port: ${p2}, tokenFile: ${tokenFile} }\n`), 'reopened');
    expect([await sessions(p1, B), await sessions(p2, B)], 'old port, new port').to.deep.equal([0, 200]);

    // The same file again: nothing to do.
    await hup('keep', 'unchanged');
    expect(await sessions(p2, B)).to.equal(200);

    // A config with errors: every process keeps what it has.
    await hup(cfg(`admin: { address: 127.0.0.1, port: ${p1}, tokenFile: ${tokenFile} }\nbogus: 1\n`), null);
    expect([await sessions(p1, B), await sessions(p2, B)], 'after a broken config').to.deep.equal([0, 200]);

    // admin: removed, and a changed workers count is said to wait for the next SIGUSR2.
    const line = await hup(cfg('workers: 2\n'), 'closed');
    expect(line.workersAtNextUpgrade).to.equal(2);
    expect(await sessions(p2, B), 'admin: removed').to.equal(0);
    console.log(`      token rotated, port ${p1} -> ${p2}, then closed: ${hf.logs.filter((l) => l.event === 'admin-listening').length} admin-listening lines`);
  });
});
