/**
 * Files read at each login but parsed once per change: cached by path and validated by inode, size
 * and mtime, so a busy host does not re-parse a file per attempt and an edited file is seen at once.
 * Optionally held to sshd's StrictModes (files a user could otherwise plant keys in).
 */
import fs from 'node:fs';
import { LRUCache } from 'lru-cache';
import { strictModes } from './strict-modes.js';

export type FileRead<T> = { readonly ok: true; readonly value: T; readonly file: string } | { readonly ok: false; readonly file: string; readonly why: string };

export class ParsedFileCache<T extends object> {
  private readonly cache = new LRUCache<string, { stamp: string; value: T }>({ max: 1024 });

  constructor(
    /** Parses the file's bytes; throws Error saying what is wrong. Called once per change. */
    private readonly parse: (data: Buffer, file: string) => T,
    private readonly opts: { readonly strict?: boolean } = {},
  ) {}

  read(file: string): FileRead<T> {
    let st: fs.Stats;
    try {
      st = fs.statSync(file);
    } catch (err) {
      return { ok: false, file, why: `cannot read ${file}: ${(err as NodeJS.ErrnoException).code ?? String(err)}` };
    }
    if (!st.isFile()) return { ok: false, file, why: `${file} is not a regular file` };
    if (this.opts.strict) {
      const unsafe = strictModes(file, st);
      if (unsafe) return { ok: false, file, why: unsafe };
    }
    const stamp = `${st.ino}:${st.size}:${st.mtimeMs}`;
    const hit = this.cache.get(file);
    if (hit && hit.stamp === stamp) return { ok: true, value: hit.value, file };
    let value: T;
    try {
      value = this.parse(fs.readFileSync(file), file);
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      return { ok: false, file, why: code ? `cannot read ${file}: ${code}` : `${file}: ${(err as Error).message}` };
    }
    this.cache.set(file, { stamp, value });
    return { ok: true, value, file };
  }
}
