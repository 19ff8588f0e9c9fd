/**
 * Issue 28: holdfast's algorithm offer, audited from outside by ssh-audit (Debian package). Every
 * `fail` or `warn` it reports must be docs/security.md's list (section "Algorithms", between the
 * ssh-audit markers), each with the reason it stays; nothing more, nothing less.
 */
import fs from 'node:fs';
import path from 'node:path';
import { spawnSync } from 'node:child_process';
import { expect } from 'chai';
import { CONFIG_HEAD, makeScene, type Scene } from '../helpers/fixture.js';
import { ROOT, startHoldfast, type Holdfast } from '../helpers/holdfast.js';

/** "algorithm: level: what ssh-audit says", one per finding. */
function findings(out: string): string[] {
  const found: string[] = [];
  let current = '';
  for (const line of out.split('\n')) {
    const head = line.match(/^\((kex|key|enc|mac)\) (\S+)\s+-- \[(\w+)\] (.*)$/);
    const cont = line.match(/^\s+`- \[(\w+)\] (.*)$/);
    if (head) current = head[2]!;
    const [level, text] = head ? [head[3]!, head[4]!] : cont ? [cont[1]!, cont[2]!] : ['', ''];
    if ((head || (cont && current)) && (level === 'fail' || level === 'warn')) found.push(`${current}: ${level}: ${text.trim()}`);
    if (!head && !cont) current = '';
  }
  return found.sort();
}

function readmeList(): string[] {
  const readme = fs.readFileSync(path.join(ROOT, 'docs', 'security.md'), 'utf8');
  const start = readme.indexOf('<!-- ssh-audit:start -->');
  const end = readme.indexOf('<!-- ssh-audit:end -->');
  expect(start, 'docs/security.md ssh-audit markers').to.be.greaterThan(0);
  return readme
    .slice(start, end)
    .split('\n')
    .map((l) => l.match(/^\| `([^`]+)` \| (fail|warn): ([^|]+) \|/))
    .filter((m): m is RegExpMatchArray => m !== null)
    .map((m) => `${m[1]}: ${m[2]}: ${m[3]!.trim()}`)
    .sort();
}

describe('ssh-audit against holdfast: the findings are the README\'s list', function () {
  let scene: Scene;
  let hf: Holdfast;

  before(async function () {
    this.timeout(30_000);
    if (spawnSync('sh', ['-c', 'command -v ssh-audit']).status !== 0) {
      console.log('    SKIPPED: ssh-audit missing (Debian package ssh-audit; test/ensure-system-deps.sh installs it as root)');
      this.skip();
    }
    scene = await makeScene([]);
    hf = await startHoldfast(scene.dir, `${CONFIG_HEAD}routes: []\n`);
  });

  after(async function () {
    await hf?.stop();
    await scene?.stop();
  });

  it('fail and warn findings match docs/security.md, each with why it stays', function () {
    this.timeout(30_000);
    const r = spawnSync('ssh-audit', ['-n', '-p', String(hf.port), '127.0.0.1'], { encoding: 'utf8', timeout: 20_000 });
    const got = findings(r.stdout);
    console.log(`      ssh-audit: ${got.length} findings (${got.filter((f) => f.includes(': fail: ')).length} fail): ${got.join('; ')}`);
    expect(r.stdout, 'ssh-audit ran').to.include('(kex)');
    expect(got).to.deep.equal(readmeList());
  });
});
