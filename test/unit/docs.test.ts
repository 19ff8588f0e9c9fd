import fs from 'node:fs';
import path from 'node:path';
import { expect } from 'chai';
import { withConfigTable } from '../../src/config/docs.js';
import { ConfigSchema } from '../../src/config/schema.js';
import { ROOT } from '../helpers/holdfast.js';

describe('docs match the code', function () {
  const readme = fs.readFileSync(path.join(ROOT, 'README.md'), 'utf8');

  it("README's config table is the one generated from the schema (npm run docs)", function () {
    expect(readme).to.equal(withConfigTable(readme));
  });

  it('every top-level config key is in the README table', function () {
    for (const key of Object.keys(ConfigSchema.shape)) expect(readme).to.match(new RegExp(`\\| \`${key}(\\[\\])?\``));
  });

  it('README names the two commands, and .ci/run runs the test one', function () {
    expect(readme).to.include('npm ci && npx holdfast serve');
    expect(readme).to.include('npm ci && npm test');
    const ci = fs.readFileSync(path.join(ROOT, '.ci/run'), 'utf8');
    expect(ci).to.match(/^npm ci && npm test$/m);
  });

  it('README names each runtime dependency', function () {
    const pkg = JSON.parse(fs.readFileSync(path.join(ROOT, 'package.json'), 'utf8')) as { dependencies: Record<string, string> };
    for (const dep of Object.keys(pkg.dependencies)) expect(readme, dep).to.include(`| \`${dep}\``);
  });
});
