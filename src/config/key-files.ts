/**
 * The authorized_keys source, checked at load the way a login would read it: it exists, and it
 * passes sshd's StrictModes (src/ssh/strict-modes.ts), which every login holds it to. Otherwise
 * `check` passed and every login failed, the reason only in a log line.
 */
import fs from 'node:fs';
import path from 'node:path';
import { hasUserTemplate } from './paths.js';
import { strictModes } from '../ssh/strict-modes.js';

export interface FileProblems {
  readonly problems: Array<{ readonly path: readonly PropertyKey[]; readonly message: string }>;
  readonly warnings: string[];
}

/** A %u folder with more files than this is checked by its first ones only (check stays quick). */
const MAX_FILES_CHECKED = 10_000;

export function checkAuthorizedKeys(authorizedKeys: string, embedded: boolean, out: FileProblems): void {
  const problem = (message: string): void => void out.problems.push({ path: ['authorizedKeys'], message });
  if (hasUserTemplate(authorizedKeys)) {
    const dir = path.dirname(authorizedKeys);
    if (hasUserTemplate(dir)) return;
    let st: fs.Stats;
    try {
      st = fs.statSync(dir);
    } catch {
      return problem(`folder ${dir} does not exist`);
    }
    if (!st.isDirectory()) return problem(`${dir} is not a folder`);
    // The folder decides for everyone: unsafe, every login is refused.
    const unsafe = strictModes(dir, st);
    if (unsafe) return problem(`${unsafe}: every login would be refused (authorized_keys files are held to sshd's StrictModes)`);
    // One user's file decides for that user only: a warning that names it.
    const [before, after] = path.basename(authorizedKeys).split('%u') as [string, string];
    let names: string[];
    try {
      names = fs.readdirSync(dir).slice(0, MAX_FILES_CHECKED);
    } catch (err) {
      return problem(`cannot read folder ${dir}: ${(err as NodeJS.ErrnoException).code ?? String(err)}`);
    }
    for (const name of names) {
      if (!name.startsWith(before) || !name.endsWith(after) || name.length <= before.length + after.length) continue;
      const file = path.join(dir, name);
      const fst = fs.statSync(file, { throwIfNoEntry: false });
      if (!fst?.isFile()) continue;
      const bad = strictModes(file, fst);
      if (bad) out.warnings.push(`authorizedKeys: ${bad}: logins as ${name.slice(before.length, name.length - after.length)} are refused until it is fixed`);
    }
    return;
  }
  const st = fs.statSync(authorizedKeys, { throwIfNoEntry: false });
  if (!st) {
    // A typo here would lock every user out with nothing but "Permission denied" to show for it.
    // The embedded default is for trying holdfast out: there it is a warning, not a refusal to start.
    const msg = `${authorizedKeys} does not exist; create it with the users' public keys (OpenSSH authorized_keys format)`;
    if (embedded) out.warnings.push(`authorizedKeys: ${msg}; every login is refused until it exists`);
    else problem(msg);
    return;
  }
  const unsafe = strictModes(authorizedKeys, st);
  if (unsafe) problem(`${unsafe}: every login would be refused (authorized_keys files are held to sshd's StrictModes)`);
}
