/**
 * Loaded by mocha before any test (.mocharc.cjs "require"): tests never touch the home of the user
 * who runs them. HOME, XDG_STATE_HOME and HOLDFAST_STATE_DIR point into one temporary folder for the
 * test process and every process it starts (holdfast's accept-new known_hosts, generated host keys,
 * ssh's ~/.ssh all land there); the folder is removed when the run ends.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

const home = fs.mkdtempSync(path.join(os.tmpdir(), 'holdfast-test-home-'));
fs.mkdirSync(path.join(home, '.ssh'), { mode: 0o700 });
process.env.HOME = home;
process.env.XDG_STATE_HOME = path.join(home, '.local', 'state');
process.env.HOLDFAST_STATE_DIR = path.join(home, '.local', 'state', 'holdfast');
process.on('exit', () => fs.rmSync(home, { recursive: true, force: true }));

export const TEST_HOME = home;
