import fs from 'node:fs';
import path from 'node:path';
import { expect } from 'chai';
import { GENERATED_PAGES } from '../../src/config/docs.js';
import { CLOSE_REASONS } from '../../src/close-reasons.js';
import { EVENTS } from '../../src/events.js';
import { ConfigSchema } from '../../src/config/schema.js';
import { ROOT } from '../helpers/holdfast.js';

const read = (f: string) => fs.readFileSync(path.join(ROOT, f), 'utf8');
const DOCS = fs.readdirSync(path.join(ROOT, 'docs')).filter((f) => f.endsWith('.md')).map((f) => `docs/${f}`);

/** GitHub's anchor for a heading: lower case, punctuation dropped, spaces to hyphens. */
function anchor(heading: string): string {
  return heading.trim().toLowerCase().replace(/`/g, '').replace(/[^\w\- ]/g, '').replace(/ /g, '-');
}

/** The headings' anchors of a Markdown text (outside code fences). */
function anchors(text: string): Set<string> {
  const out = new Set<string>();
  let fence = false;
  for (const l of text.split('\n')) {
    if (l.startsWith('```')) fence = !fence;
    const m = /^#{1,6} (.*)$/.exec(l);
    if (m && !fence) out.add(anchor(m[1]!));
  }
  return out;
}

/** Every relative link [x](target) of a Markdown text, outside code fences. */
function links(text: string): string[] {
  const out: string[] = [];
  let fence = false;
  for (const l of text.split('\n')) {
    if (l.startsWith('```')) fence = !fence;
    if (fence) continue;
    for (const m of l.matchAll(/\]\(([^)\s]+)\)/g)) if (!/^(https?:|mailto:)/.test(m[1]!)) out.push(m[1]!);
  }
  return out;
}

describe('docs match the code', function () {
  const readme = read('README.md');
  const configuration = read('docs/configuration.md');
  const observability = read('docs/observability.md');
  const dependencies = read('docs/dependencies.md');

  it('the generated tables (config keys; close reasons, events, metrics) are the ones npm run docs writes', function () {
    for (const [file, regenerate] of GENERATED_PAGES) expect(read(file), file).to.equal(regenerate(read(file)));
    for (const r of Object.keys(CLOSE_REASONS)) expect(observability).to.include(`| \`${r}\` |`);
    for (const e of Object.keys(EVENTS)) expect(observability).to.include(`| \`${e}\` |`);
  });

  it('the README is short (at most 300 lines) and links every docs page; every relative link and anchor resolves', function () {
    expect(readme.split('\n').length, 'README lines').to.be.at.most(300);
    for (const f of DOCS) expect(readme, `README links ${f}`).to.include(`](${f})`);
    const broken: string[] = [];
    for (const file of ['README.md', 'SECURITY.md', 'CHANGELOG.md', ...DOCS]) {
      const text = read(file);
      for (const target of links(text)) {
        const [p, hash] = target.split('#') as [string, string | undefined];
        const dest = p ? path.normalize(path.join(path.dirname(file), p)) : file;
        if (!fs.existsSync(path.join(ROOT, dest))) broken.push(`${file}: ${target} (no ${dest})`);
        else if (hash && dest.endsWith('.md') && !anchors(read(dest)).has(hash)) broken.push(`${file}: ${target} (no heading #${hash} in ${dest})`);
      }
    }
    expect(broken).to.deep.equal([]);
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

  it('every top-level config key is in the configuration table', function () {
    for (const key of Object.keys(ConfigSchema.shape)) expect(configuration).to.match(new RegExp(`\\| \`${key}(\\[\\])?\``));
  });

  it('README names the two commands, and .ci/run runs the test one', function () {
    expect(readme).to.include('npm ci && npx holdfast serve');
    expect(readme).to.include('npm ci && npm test');
    const ci = fs.readFileSync(path.join(ROOT, '.ci/run'), 'utf8');
    expect(ci).to.match(/^\s*npm ci && npm test$/m);
  });

  it('docs/dependencies.md names each runtime dependency', function () {
    const pkg = JSON.parse(fs.readFileSync(path.join(ROOT, 'package.json'), 'utf8')) as { dependencies: Record<string, string> };
    for (const dep of Object.keys(pkg.dependencies)) expect(dependencies, dep).to.include(`| \`${dep}\``);
  });

  it('every dependency with an install script is reviewed in allowScripts (npm 12 runs no other), and the docs say why', function () {
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
    expect(dependencies).to.include('`allowScripts`');
    const said = dependencies.slice(dependencies.indexOf('`allowScripts`'));
    for (const name of withScripts) expect(said.slice(0, 1500), name).to.include(`\`${name}\``);
  });
});
