// Regenerates the generated parts of the docs: the README's config key, close reason and event
// tables, and schema/holdfast.schema.json. Run after changing src/config/schema.ts,
// src/close-reasons.ts or src/events.ts: npm run docs
import fs from 'node:fs';
import { withGeneratedTables } from '../dist/src/config/docs.js';
import { configJsonSchema } from '../dist/src/config/schema.js';

fs.writeFileSync('README.md', withGeneratedTables(fs.readFileSync('README.md', 'utf8')));
fs.writeFileSync('schema/holdfast.schema.json', `${JSON.stringify(configJsonSchema(), null, 2)}\n`);
console.log('README.md tables (config keys, close reasons, events) and schema/holdfast.schema.json regenerated');
