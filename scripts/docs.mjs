// Regenerates the generated parts of the docs: the config key table in README.md and
// schema/holdfast.schema.json. Run after changing src/config/schema.ts: npm run docs
import fs from 'node:fs';
import { withConfigTable } from '../dist/src/config/docs.js';
import { configJsonSchema } from '../dist/src/config/schema.js';

fs.writeFileSync('README.md', withConfigTable(fs.readFileSync('README.md', 'utf8')));
fs.writeFileSync('schema/holdfast.schema.json', `${JSON.stringify(configJsonSchema(), null, 2)}\n`);
console.log('README.md config table and schema/holdfast.schema.json regenerated');
