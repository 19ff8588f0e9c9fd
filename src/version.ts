/**
 * holdfast's version, from the package.json beside this code on disk. A worker started after an
 * upgrade in place reads the new release's (src/daemon/primary.ts): its SSH banner says so.
 */
import { createRequire } from 'node:module';

const pkg = createRequire(import.meta.url)('../../package.json') as { version: string };
export const VERSION = pkg.version;
