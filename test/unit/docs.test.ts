import fs from 'node:fs';
import path from 'node:path';
import { expect } from 'chai';
import { withConfigTable, withGeneratedTables } from '../../src/config/docs.js';
import { CLOSE_REASONS } from '../../src/close-reasons.js';
import { EVENTS } from '../../src/events.js';
import { ConfigSchema } from '../../src/config/schema.js';
import { ROOT } from '../helpers/holdfast.js';

describe('docs match the code', function () {
  const readme = fs.readFileSync(path.join(ROOT, 'README.md'), 'utf8');

  it("README's config table is the one generated from the schema (npm run docs)", function () {
    expect(readme).to.equal(withConfigTable(readme));
  });

  it("README's close reason and event tables are the ones generated from src/close-reasons.ts and src/events.ts (npm run docs)", function () {
    expect(readme).to.equal(withGeneratedTables(readme));
    for (const r of Object.keys(CLOSE_REASONS)) expect(readme).to.include(`| \`${r}\` |`);
    for (const e of Object.keys(EVENTS)) expect(readme).to.include(`| \`${e}\` |`);
  });

  it('every close reason and event the code emits is declared (no literal outside the two modules)', function () {
    // Emitted names are type-checked against EVENTS; reasons against CLOSE_REASONS. This catches a
    // reason written as a plain string in a log field that the types cannot see.
    const src = path.join(ROOT, 'src');
    const files = fs.readdirSync(src, { recursive: true }).map(String).filter((f) => f.endsWith('.ts'));
    for (const f of files) {
      const text = fs.readFileSync(path.join(src, f), 'utf8');
      for (const m of text.matchAll(/reason: '([a-z-]+)'/g)) expect(CLOSE_REASONS, `${f}: ${m[1]}`).to.have.property(m[1]!);
    }
  });

  it('every top-level config key is in the README table', function () {
    for (const key of Object.keys(ConfigSchema.shape)) expect(readme).to.match(new RegExp(`\\| \`${key}(\\[\\])?\``));
  });

  it('README names the two commands, and .ci/run runs the test one', function () {
    expect(readme).to.include('npm ci && npx holdfast serve');
    expect(readme).to.include('npm ci && npm test');
    const ci = fs.readFileSync(path.join(ROOT, '.ci/run'), 'utf8');
    expect(ci).to.match(/^\s*npm ci && npm test$/m);
  });

  it('README names each runtime dependency', function () {
    const pkg = JSON.parse(fs.readFileSync(path.join(ROOT, 'package.json'), 'utf8')) as { dependencies: Record<string, string> };
    for (const dep of Object.keys(pkg.dependencies)) expect(readme, dep).to.include(`| \`${dep}\``);
  });

  it('every dependency with an install script is reviewed in allowScripts (npm 12 runs no other), and the README says why', function () {
    const pkg = JSON.parse(fs.readFileSync(path.join(ROOT, 'package.json'), 'utf8')) as { allowScripts?: Record<string, boolean> };
    const lock = JSON.parse(fs.readFileSync(path.join(ROOT, 'package-lock.json'), 'utf8')) as {
      packages: Record<string, { hasInstallScript?: boolean }>;
    };
    const withScripts = Object.entries(lock.packages)
      .filter(([at, p]) => at !== '' && p.hasInstallScript === true)
      .map(([at]) => at.slice(at.lastIndexOf('node_modules/') + 'node_modules/'.length))
      .sort();
    expect(withScripts).to.deep.equal(['cpu-features', 'ssh2']);
    expect(Object.keys(pkg.allowScripts ?? {}).sort()).to.deep.equal(withScripts);
    expect(readme).to.include('`allowScripts`');
    const said = readme.slice(readme.indexOf('`allowScripts`'));
    for (const name of withScripts) expect(said.slice(0, 1500), name).to.include(`\`${name}\``);
  });
});
