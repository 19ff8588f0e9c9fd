/**
 * Issue 24: under systemd (JOURNAL_STREAM names stdout's device and inode) every line carries its
 * syslog priority, so `journalctl -p warning` shows holdfast's warnings and errors; anywhere else the
 * lines are plain JSON. Read from what holdfast writes, not from the code.
 */
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { spawn } from 'node:child_process';
import { expect } from 'chai';
import { BIN } from '../helpers/holdfast.js';
import { removeTempDirs, tempDir } from '../helpers/tmp.js';
import { waitFor } from '../helpers/wait.js';

/** Runs `holdfast serve` with stdout into `out` until it logged admin-failed; returns the lines. */
async function serveInto(dir: string, out: string, journalStream: (fd: number) => string | undefined): Promise<string[]> {
  const fd = fs.openSync(out, 'w');
  const js = journalStream(fd);
  const p = spawn(process.execPath, [BIN, 'serve', '--config', path.join(dir, 'holdfast.yaml')], {
    stdio: ['ignore', fd, 'pipe'],
    env: { ...process.env, HOLDFAST_CONFIG: '', ...(js ? { JOURNAL_STREAM: js } : {}) },
  });
  fs.closeSync(fd);
  let err = '';
  p.on('error', (e) => (err += String(e)));
  p.stderr!.on('data', (d) => (err += d));
  let code: number | null | undefined;
  const exited = new Promise<number | null>((r) => p.once('exit', (c) => r((code = c))));
  try {
    await waitFor(
      () => {
        if (code !== undefined) throw new Error(`holdfast exited ${code}: ${err}`);
        return fs.readFileSync(out, 'utf8').includes('"admin-failed"');
      },
      { timeoutMs: 20_000, what: 'admin-failed in the log' },
    );
  } finally {
    p.kill('SIGTERM');
  }
  expect(await exited, err).to.equal(0);
  return fs.readFileSync(out, 'utf8').trim().split('\n');
}

describe('log priorities for the journal', function () {
  let dir: string;
  let taken: net.Server;

  before(async function () {
    dir = tempDir();
    fs.writeFileSync(path.join(dir, 'authorized_keys'), '');
    taken = net.createServer();
    await new Promise<void>((r) => taken.listen(0, '127.0.0.1', r));
    const port = (taken.address() as net.AddressInfo).port;
    // routes: [] -> a config-warning (warn); the admin port is taken -> admin-failed (error).
    fs.writeFileSync(path.join(dir, 'holdfast.yaml'), `listen: [{address: 127.0.0.1, port: 0}]\nhostKeys: [${dir}/hk]\nauthorizedKeys: ${dir}/authorized_keys\nadmin: {address: 127.0.0.1, port: ${port}}\nroutes: []\n`);
  });

  after(function () {
    taken?.close();
    removeTempDirs();
  });

  it('JOURNAL_STREAM naming stdout: <3> error, <4> warn, <6> info before each JSON line', async function () {
    this.timeout(30_000);
    const lines = await serveInto(dir, path.join(dir, 'journal.out'), (fd) => {
      const st = fs.fstatSync(fd, { bigint: true });
      return `${st.dev}:${st.ino}`;
    });
    const prio: Record<string, string> = { error: '3', warn: '4', info: '6', debug: '7' };
    const seen = new Set<string>();
    for (const l of lines) {
      const m = /^<(\d)>(\{.*\})$/.exec(l);
      expect(m, l).to.not.equal(null);
      const j = JSON.parse(m![2]!) as { level: string; event: string };
      expect(m![1], `${j.event} (${j.level})`).to.equal(prio[j.level]);
      seen.add(`${m![1]} ${j.event}`);
    }
    console.log(`      ${lines.length} lines, e.g. ${[...seen].filter((s) => /config-warning|admin-failed|listening/.test(s)).join(', ')}`);
    expect([...seen]).to.include.members(['4 config-warning', '3 admin-failed', '6 listening']);
  });

  it('JOURNAL_STREAM naming another stream (a child of a unit writing to a pipe) or unset: plain JSON lines', async function () {
    this.timeout(30_000);
    for (const js of ['1:2', undefined]) {
      const lines = await serveInto(dir, path.join(dir, 'plain.out'), () => js);
      for (const l of lines) expect(l, `JOURNAL_STREAM=${js}`).to.match(/^\{.*\}$/);
    }
  });
});
