// Regenerates the generated parts of the docs: the config key table (docs/configuration.md), the
// close reason, event and metric tables (docs/observability.md), and schema/holdfast.schema.json.
// Run after changing src/config/schema.ts, src/close-reasons.ts, src/events.ts or
// src/metrics/declarations.ts: npm run docs
import fs from 'node:fs';
import { GENERATED_PAGES } from '../dist/src/config/docs.js';
import { configJsonSchema } from '../dist/src/config/schema.js';

for (const [file, regenerate] of GENERATED_PAGES) fs.writeFileSync(file, regenerate(fs.readFileSync(file, 'utf8')));
fs.writeFileSync('schema/holdfast.schema.json', `${JSON.stringify(configJsonSchema(), null, 2)}\n`);
console.log(`${GENERATED_PAGES.map(([f]) => f).join(', ')} (config keys, close reasons, events, metrics) and schema/holdfast.schema.json regenerated`);
